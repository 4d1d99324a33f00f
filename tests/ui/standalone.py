"""``airflow standalone`` in its own process group, with its own Airflow home, for the browser test.

Everything the test starts is stopped here, also when the test fails: the whole process group gets
SIGTERM, then SIGKILL for whatever is left (a task runner that ignores SIGTERM after ``dag.test()``-like
supervision, a gunicorn worker).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.waiting import wait_until

#: Environment the pytest session sets for in-process Airflow (tests/conftest.py); the child must not
#: inherit it, it gets its own home, DAG folder and connections.
_SESSION_PREFIXES = ("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Standalone:
    """A running ``airflow standalone``: its API base URL, home and combined output file."""

    base_url: str
    home: Path
    output: Path
    process: subprocess.Popen[bytes]

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One REST call (``/api/v2/...``); returns (status, parsed JSON or text)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base_url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        except OSError as error:  # not listening yet, reset during start
            return 0, str(error)
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")

    def tail(self, lines: int = 60) -> str:
        """The last lines of the standalone output, for assertion messages."""
        text = self.output.read_text(errors="replace") if self.output.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=20)
    # The group outlives its leader when a child is slow to stop: SIGKILL whatever is left.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


@contextlib.contextmanager
def run_standalone(
    home: Path, dags_folder: Path, extra_env: Mapping[str, str], ready_timeout: float = 120.0
) -> Iterator[Standalone]:
    """Start ``airflow standalone`` and yield once the API answers and the scheduler is healthy."""
    port = free_port()
    airflow = Path(sys.executable).with_name("airflow")
    assert airflow.exists(), f"{airflow} is missing: run make install"
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SESSION_PREFIXES)}
    # standalone starts its components as `airflow ...` from PATH: they must be this venv's.
    env["PATH"] = f"{airflow.parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__ALLOWED_DESERIALIZATION_CLASSES": "airflow.* airflow_provider_imagesearch.*",
            # Parse the test's one DAG at once instead of on the default intervals.
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            **extra_env,
        }
    )
    output = home / "standalone.log"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [str(airflow), "standalone"],
            env=env,
            cwd=home,
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    standalone = Standalone(f"http://127.0.0.1:{port}", home, output, process)
    try:

        def health() -> Any:
            status, body = standalone.api("GET", "/api/v2/monitor/health")
            return body if status == 200 else None

        def ready(body: Any) -> bool:
            return process.poll() is not None or (
                isinstance(body, dict)
                and all(
                    (body.get(part) or {}).get("status") == "healthy"
                    for part in ("metadatabase", "scheduler", "dag_processor")
                )
            )

        state = wait_until(health, ready, timeout=ready_timeout, every=0.5)
        assert process.poll() is None, f"airflow standalone exited:\n{standalone.tail()}"
        assert ready(state), f"airflow standalone not healthy: {state}\n{standalone.tail()}"
        yield standalone
    finally:
        _stop_group(process)
