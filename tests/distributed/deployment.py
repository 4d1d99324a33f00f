"""A real CeleryExecutor deployment of Airflow on this machine, started and always stopped by the tests.

Redis (Debian's ``redis-server``, on a free loopback port) is the Celery broker; a throwaway PostgreSQL
server holds Airflow's metadata DB, Celery's results and the archive table; ``airflow scheduler``,
``dag-processor``, ``triggerer``, ``api-server`` and two ``airflow celery worker`` processes (hostnames
``worker-a`` and ``worker-b``) run as separate process groups; the emulator runs as a child process.
Everything a process started (task processes included) is killed on :meth:`Deployment.stop`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from airflow_provider_imagesearch.emulator import EmulatorProcess
from tests.support.connections import connection_fields, env_name
from tests.support.postgres import PostgresServer, start_postgres
from tests.support.reaper import descendants

REPO = Path(__file__).resolve().parents[2]
WORKERS = ("worker-a", "worker-b")
WORKER_CONCURRENCY = 3
ARCHIVE_CONN_ID = "imagesearch_archive_pg"
# The scheduler notices a dead worker's tasks after this long without a heartbeat (default 300 s).
HEARTBEAT_TIMEOUT = 20


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Service:
    """One process started in its own process group, its output in ``log``."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> list[int]:
        """Send ``sig`` to the process group and to every descendant; return the pids signalled."""
        pids = [self.process.pid, *descendants(self.process.pid)]
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        return pids

    def stop(self, grace: float = 10.0) -> None:
        if not self.alive:
            self.kill(signal.SIGKILL)  # orphaned task processes, if any
            return
        family = [self.process.pid, *descendants(self.process.pid)]
        self.kill(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=grace)
        for pid in [*family, *descendants(self.process.pid)]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Deployment:
    """The services plus what the tests need to reach them (REST, SQL, the emulator, Redis)."""

    root: Path
    postgres: PostgresServer
    emulator: EmulatorProcess
    redis_port: int
    api_port: int
    env: dict[str, str]
    reaper: subprocess.Popen[bytes]
    services: dict[str, Service] = field(default_factory=dict)
    # Every process ever started, restarted ones included: all are stopped at the end.
    started: list[Service] = field(default_factory=list)

    # --- processes ------------------------------------------------------------------------------

    def spawn(self, name: str, command: list[str], env: dict[str, str] | None = None) -> Service:
        log = self.root / f"{name}.log"
        with log.open("ab") as out:
            process = subprocess.Popen(
                command,
                env=env or self.env,
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.tell_reaper(f"group {process.pid}")
        service = Service(name, process, log)
        self.services[name] = service
        self.started.append(service)
        return service

    def tell_reaper(self, line: str) -> None:
        assert self.reaper.stdin is not None
        self.reaper.stdin.write(line.encode() + b"\n")
        self.reaper.stdin.flush()

    def airflow(self, name: str, *args: str, env: dict[str, str] | None = None) -> Service:
        return self.spawn(name, [str(Path(sys.executable).parent / "airflow"), *args], env)

    def start_redis(self) -> Service:
        redis = shutil.which("redis-server")
        if redis is None:
            raise RuntimeError("redis-server not found: run scripts/ensure-redis.sh (make test does)")
        data = self.root / "redis"
        data.mkdir(exist_ok=True)
        # appendonly + fsync always: queued Celery messages survive a broker restart, as in production.
        service = self.spawn(
            "redis",
            [
                redis,
                "--port", str(self.redis_port),
                "--bind", "127.0.0.1",
                "--dir", str(data),
                "--save", "",
                "--appendonly", "yes",
                "--appendfsync", "always",
                "--protected-mode", "no",
            ],
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.redis_port), 1):
                return service
            if not service.alive:
                break
            time.sleep(0.1)
        raise RuntimeError(f"redis did not start:\n{service.tail()}")

    def start_worker(self, hostname: str) -> Service:
        env = dict(self.env)
        # Each worker reports its own hostname on its task instances (both run on this machine).
        env["AIRFLOW__CORE__HOSTNAME_CALLABLE"] = "tests.distributed.worker_hostname.hostname"
        env["IMAGESEARCH_WORKER_HOSTNAME"] = hostname
        return self.airflow(
            hostname,
            "celery", "worker",
            "--celery-hostname", f"{hostname}@%h",
            "--concurrency", str(WORKER_CONCURRENCY),
            "--skip-serve-logs",
            "--without-mingle",
            "--without-gossip",
            env=env,
        )  # fmt: skip

    def stop(self) -> None:
        # Workers first (they hold task processes), the broker and databases last.
        for service in sorted(self.started, key=lambda s: s.name == "redis"):
            with contextlib.suppress(Exception):
                service.stop()
        with contextlib.suppress(Exception):
            self.emulator.stop()
        with contextlib.suppress(Exception):
            self.postgres.stop()
        with contextlib.suppress(Exception):
            self.tell_reaper("done")
            assert self.reaper.stdin is not None
            self.reaper.stdin.close()
            self.reaper.wait(timeout=10)
        if os.environ.get("IMAGESEARCH_KEEP_DISTRIBUTED_LOGS"):
            print(f"distributed test logs kept in {self.root}", file=sys.stderr)
        else:
            shutil.rmtree(self.root, ignore_errors=True)

    def logs(self) -> str:
        """The last lines of every service's output, for failure messages."""
        return "\n".join(f"--- {s.name} ---\n{s.tail()}" for s in self.services.values())

    # --- REST -----------------------------------------------------------------------------------

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}/api/v2"

    def rest(self, method: str, path: str, body: Any = None, expect: int | tuple[int, ...] = 200) -> Any:
        response = httpx.request(method, self.api + path, json=body, timeout=60)
        expected = (expect,) if isinstance(expect, int) else expect
        assert response.status_code in expected, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else None

    # --- SQL ------------------------------------------------------------------------------------

    def sql(self, database: str, query: str, **params: Any) -> list[dict[str, Any]]:
        import sqlalchemy as sa

        engine = sa.create_engine(self.db_url(database), poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as connection:
                return [dict(row._mapping) for row in connection.execute(sa.text(query), params)]
        finally:
            engine.dispose()

    def db_url(self, database: str) -> str:
        return f"postgresql+psycopg2://airflow@127.0.0.1:{self.postgres.port}/{database}"


def _create_databases(postgres: PostgresServer, names: list[str]) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(
        f"postgresql+psycopg2://airflow@127.0.0.1:{postgres.port}/postgres", isolation_level="AUTOCOMMIT"
    )
    try:
        with engine.connect() as connection:
            for name in names:
                connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()


def _environment(
    root: Path, postgres: PostgresServer, emulator_url: str, redis_port: int, api_port: int
) -> dict[str, str]:
    pg = f"airflow@127.0.0.1:{postgres.port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTEST"))}
    env.update(
        {
            "AIRFLOW_HOME": str(root / "airflow"),
            "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__ALLOWED_DESERIALIZATION_CLASSES": "airflow.* airflow_provider_imagesearch.*",
            "AIRFLOW__CORE__FERNET_KEY": "5Rcgg8cGZz9fXb6JYfv0Mq3F1d5a9NhVoRZ8Kj3lq0E=",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{pg}/airflow",
            "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg2://{pg}/celery_results",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__SECRET_KEY": "distributed-test-secret-key",
            "AIRFLOW__API_AUTH__JWT_SECRET": "distributed-test-jwt-secret-0123456789abcdef",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            # Log servers on free ports: the defaults (8793, 8794) may be taken on a shared machine.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            # A dead worker is noticed in ~HEARTBEAT_TIMEOUT s instead of 5 minutes.
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "3",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_SEC": "3",
            "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "2",
            # A message lost with the broker is sent again after this long in QUEUED.
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "90",
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "10",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "10",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "60",
        }
    )
    # Connections as AIRFLOW_CONN_* variables: every process sees them, workers and triggerer included.
    env[env_name("imagesearch_default")] = json.dumps(connection_fields(emulator_url, "iam_password"))
    env[env_name(ARCHIVE_CONN_ID)] = f"postgres://{pg}/archive"
    return env


@contextlib.contextmanager
def deployment(emulator_seed: dict[str, Any]) -> Iterator[Deployment]:
    """Start everything; yield when the API answers and both workers are up; stop all on exit."""
    root = Path(tempfile.mkdtemp(prefix="imagesearch-distributed-"))
    # Its own session: a kill of the test's process group (timeout -k) does not reach it.
    reaper = subprocess.Popen(
        [sys.executable, "-m", "tests.support.reaper"],
        stdin=subprocess.PIPE, cwd=REPO, start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert reaper.stdin is not None
    reaper.stdin.write(f"rmtree {root}\n".encode())
    reaper.stdin.flush()
    postgres = start_postgres()
    reaper.stdin.write(
        f"pidfile {postgres.root / 'data' / 'postmaster.pid'}\nrmtree {postgres.root}\n".encode()
    )
    reaper.stdin.flush()
    emulator = EmulatorProcess(seed=emulator_seed, creation_seconds=20.0)
    deploy: Deployment | None = None
    try:
        emulator.start()
        _create_databases(postgres, ["airflow", "celery_results", "archive"])
        api_port = free_port()
        redis_port = free_port()
        env = _environment(root, postgres, emulator.url, redis_port, api_port)
        (root / "airflow").mkdir()
        deploy = Deployment(root, postgres, emulator, redis_port, api_port, env, reaper)
        migrate = subprocess.run(
            [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
            env=env, cwd=root, capture_output=True, timeout=240, start_new_session=True,
        )  # fmt: skip
        assert migrate.returncode == 0, migrate.stdout.decode()[-3000:] + migrate.stderr.decode()[-3000:]
        deploy.start_redis()
        deploy.airflow("api-server", "api-server", "--port", str(api_port), "--host", "127.0.0.1")
        deploy.airflow("scheduler", "scheduler")
        deploy.airflow("dag-processor", "dag-processor")
        deploy.airflow("triggerer", "triggerer")
        for hostname in WORKERS:
            deploy.start_worker(hostname)
        yield deploy
    finally:
        if deploy is not None:
            deploy.stop()
        else:
            with contextlib.suppress(Exception):
                emulator.stop()
            postgres.stop()
            shutil.rmtree(root, ignore_errors=True)
            reaper.communicate(b"done\n", timeout=10)
