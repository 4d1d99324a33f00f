"""A throwaway PostgreSQL server on loopback for the tests: started once, always stopped.

Runs initdb/pg_ctl as the ``postgres`` user when the tests run as root (initdb refuses root), in a
temporary folder that also holds the socket, on a free port, so it clashes with nothing else.

The postmaster is a daemon (``pg_ctl`` detaches it) and :meth:`PostgresServer.stop` runs from a
``finally``, which a SIGKILLed owner (the OOM killer, ``timeout -k``, a cancelled CI job) never reaches:
each server is watched by a reaper (tests/support/reaper.py) that stops it and removes its folder when
the owner dies without stopping it.

Where many short pytest sessions need PostgreSQL (the mutation run: one per mutant), starting a server
for each would cost seconds a time: the run starts one server and names it in :data:`SHARED_SERVER_ENV`,
and each session then works in a database of its own on it (:func:`private_database`).
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.reaper import Reaper

#: The URI of a running server's ``postgres`` database; when set, the ``postgres_uri`` fixture gives
#: each pytest session a fresh database on that server instead of starting a server.
SHARED_SERVER_ENV = "IMAGESEARCH_TEST_POSTGRES_SERVER"


def server_bindir() -> Path | None:
    """The folder of PostgreSQL's server programs (initdb, pg_ctl), or None when it is not installed."""
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.access(os.path.join(candidate, "initdb"), os.X_OK):
            return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresServer:
    """A running server; ``uri`` is an Airflow connection URI for it."""

    bindir: Path
    root: Path
    port: int
    user: str = "airflow"
    #: Stops the server and removes ``root`` should this process die before :meth:`stop`.
    watchdog: Reaper | None = field(default=None, repr=False, compare=False)

    @property
    def uri(self) -> str:
        return f"postgres://{self.user}@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(_quote(a) for a in command)]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)

    def init(self) -> None:
        self._run("initdb", "-D", str(self.root / "data"), "-A", "trust", "-U", self.user, "-E", "UTF8")

    def start(self) -> None:
        data = self.root / "data"
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl", "-D", str(data), "-l", str(self.root / "log"), "-w", "-t", "60", "-o", options, "start"
        )

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")
        except BaseException:
            # The server may still run: the watchdog stops it (by its pid file) and removes the folder.
            if self.watchdog is not None:
                self.watchdog.abandon()
            shutil.rmtree(self.root, ignore_errors=True)
            raise
        shutil.rmtree(self.root, ignore_errors=True)
        if self.watchdog is not None:
            self.watchdog.release()


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


def start_postgres() -> PostgresServer:
    bindir = server_bindir()
    if bindir is None:
        raise RuntimeError(
            "PostgreSQL server binaries not found: run scripts/ensure-postgres.sh (make test does)"
        )
    root = Path(tempfile.mkdtemp(prefix="imagesearch-pg-"))
    os.chmod(root, 0o755)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    # Watched from before initdb: a kill during the seconds initdb and the start take leaks nothing either.
    watchdog = Reaper()
    watchdog.tell("pidfile", root / "data" / "postmaster.pid")
    watchdog.tell("rmtree", root)
    server = PostgresServer(bindir=bindir, root=root, port=_free_port(), watchdog=watchdog)
    try:
        server.init()
        # The port is free when picked but bound only later by the server: another process may take it
        # in between, so a failed start gets a fresh port.
        for attempt in range(1, 4):
            try:
                server.start()
                break
            except subprocess.CalledProcessError:
                if attempt == 3:
                    raise
                server.port = _free_port()
    except BaseException:
        # pg_ctl may have forked the postmaster before it failed or was interrupted: "done" would leave
        # it running; the watchdog stops it by its pid file and removes the folder.
        watchdog.abandon()
        shutil.rmtree(root, ignore_errors=True)
        raise
    return server


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """A server for the duration of the block, stopped (and its folder removed) after it."""
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def private_database(server_uri: str) -> Iterator[str]:
    """A fresh database on the server of ``server_uri`` for the block, dropped after it: its URI.

    Advisory locks and tables are per database, so sessions on one server do not see each other's.
    """
    import sqlalchemy as sa

    name = f"session_{os.getpid()}_{secrets.token_hex(4)}"
    admin = sa.create_engine(
        server_uri.replace("postgres://", "postgresql+psycopg2://"),
        isolation_level="AUTOCOMMIT",
        poolclass=sa.pool.NullPool,
    )
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            yield f"{server_uri.rsplit('/', 1)[0]}/{name}"
        finally:
            with admin.connect() as connection:
                # A session's leftover connections (a child process killed mid-test): ended first, as
                # DROP DATABASE ... WITH (FORCE) would, which PostgreSQL before 13 lacks.
                connection.execute(
                    sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"),
                    {"name": name},
                )
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
    finally:
        admin.dispose()
