"""Item 8: an archive write killed with SIGKILL mid-INSERT leaves no row behind; the rerun writes once.

The archive (``archive.archive_details``) of 50,000 rows runs in a child process (its connection from an
``AIRFLOW_CONN_*`` variable, its own ``AIRFLOW_HOME``, no metadata DB) on SQLite and on PostgreSQL. The
child reports when the INSERT begins and pauses once it is well inside it (SQLite: after 400,000 VM
instructions of ``executemany``; PostgreSQL: after the driver sent the first 10,000 rows). The parent
proves the write is in flight (SQLite: the rollback journal exists; PostgreSQL: ``pg_stat_activity``
shows the child's backend idle in a transaction that holds a transaction id, last statement an INSERT
into the table, and the table's heap grew), then SIGKILLs the child.

Afterwards: the run's 3 rows from an earlier attempt are still there untouched (the DELETE was rolled
back too), no row of the killed attempt exists, another run's rows are intact; the rerun of the same run
replaces the 3 rows and writes exactly 50,000 rows, once each.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.reliability._archive_child import make_details
from tests.reliability.support import SecretAudit
from tests.support.connections import env_name

REPO = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("_archive_child.py")
ROWS = 50_000
TABLE = "reliability_killed_write"
CONN_ID = "reliability_kill_db"
RUN = "manual__killed-run"


@pytest.fixture(params=["sqlite", "postgres"])
def backend(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    import sqlalchemy as sa

    if request.param == "sqlite":
        path = tmp_path / "archive.db"
        conn = json.dumps({"conn_type": "sqlite", "host": str(path)})
        engine = sa.create_engine(f"sqlite:///{path}")
        info: dict[str, Any] = {"name": "sqlite", "conn": conn, "engine": engine, "path": path}
    else:
        uri = request.getfixturevalue("postgres_uri")
        engine = sa.create_engine(uri.replace("postgres://", "postgresql+psycopg2://"))
        with engine.begin() as connection:
            connection.execute(sa.text(f"DROP TABLE IF EXISTS {TABLE}"))
        info = {"name": "postgres", "conn": uri, "engine": engine}
    monkeypatch.setenv(env_name(CONN_ID), info["conn"])
    yield info
    engine.dispose()


def _count(engine: Any, where: str = "1=1", **params: Any) -> int:
    import sqlalchemy as sa

    with engine.connect() as connection:
        return int(
            connection.execute(sa.text(f"SELECT COUNT(*) FROM {TABLE} WHERE {where}"), params).scalar_one()
        )


class Child:
    """The archive child process, with a line reader that never blocks past its deadline."""

    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(CHILD)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
        )
        self.lines: list[str] = []
        self._buffer = b""

    def wait_for(self, prefix: str, timeout: float) -> str:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            while True:
                for line in self.lines:
                    if line.startswith(prefix):
                        return line
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"child did not print {prefix!r} in {timeout}s: {self.lines}")
                if selector.select(timeout=min(remaining, 0.5)):
                    chunk = os.read(self.process.stdout.fileno(), 4096)
                    if not chunk:
                        raise AssertionError(
                            f"child exited ({self.process.wait()}) before {prefix!r}: {self.lines}"
                        )
                    self._buffer += chunk
                    *complete, self._buffer = self._buffer.split(b"\n")
                    self.lines += [c.decode() for c in complete]

    def kill(self) -> int:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        code = self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return code


def _in_flight_proof(backend: dict[str, Any]) -> str:
    """Evidence that the child's transaction is open and has written: raises if there is none."""
    import sqlalchemy as sa

    if backend["name"] == "sqlite":
        journal = Path(str(backend["path"]) + "-journal")
        assert journal.exists(), "no rollback journal: not mid-write"
        assert journal.stat().st_size > 0, "empty rollback journal: not mid-write"
        return f"journal {journal.stat().st_size} bytes"
    with backend["engine"].connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT pid, state, backend_xid IS NOT NULL AS wrote, query FROM pg_stat_activity "
                "WHERE query LIKE :insert AND pid <> pg_backend_pid() AND datname = current_database()"
            ),
            {"insert": f"INSERT INTO {TABLE}%"},
        ).all()
    assert len(rows) == 1, rows
    pid, state, wrote, _query = rows[0]
    assert state == "idle in transaction", rows[0]
    assert wrote, rows[0]
    backend["backend_pid"] = pid
    grown = _heap_bytes(backend) - backend["heap_before"]
    assert grown > 500_000, f"heap grew by {grown} bytes only"
    return f"backend {pid} {state}, xid assigned, heap +{grown} bytes"


def _heap_bytes(backend: dict[str, Any]) -> int:
    import sqlalchemy as sa

    with backend["engine"].connect() as connection:
        return int(connection.execute(sa.text(f"SELECT pg_relation_size('{TABLE}')")).scalar_one())


def _backend_gone(backend: dict[str, Any]) -> None:
    import sqlalchemy as sa

    if backend["name"] != "postgres":
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with backend["engine"].connect() as connection:
            alive = connection.execute(
                sa.text("SELECT COUNT(*) FROM pg_stat_activity WHERE pid = :pid"),
                {"pid": backend["backend_pid"]},
            ).scalar_one()
        if not alive:
            return
        time.sleep(0.1)
    raise AssertionError("the killed client's PostgreSQL backend is still there after 10 s")


def test_sigkill_mid_insert_leaves_no_row_and_rerun_writes_once(
    backend: dict[str, Any], audit: SecretAudit
) -> None:
    from airflow_provider_imagesearch.archive import archive_details

    engine = backend["engine"]
    archive_details(
        [{"instance_name": f"other-{i}"} for i in range(10)],
        db_conn_id=CONN_ID,
        table=TABLE,
        run_id="other-run",
    )
    archive_details(
        [{"instance_name": f"old-{i}"} for i in range(3)], db_conn_id=CONN_ID, table=TABLE, run_id=RUN
    )
    if backend["name"] == "postgres":
        backend["heap_before"] = _heap_bytes(backend)
    home = tempfile.mkdtemp(prefix="imagesearch-kill-home-")
    env = {
        **os.environ,
        "AIRFLOW_HOME": home,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PYTHONPATH": str(REPO),
        "ARCHIVE_ROWS": str(ROWS),
        "ARCHIVE_RUN_ID": RUN,
        "ARCHIVE_TABLE": TABLE,
        "ARCHIVE_DB_CONN_ID": CONN_ID,
        "PAUSE_IN_INSERT": "1",
    }
    started = time.monotonic()
    child = Child(env)
    try:
        child.wait_for("INSERT_BEGIN", timeout=60)
        paused = child.wait_for("PAUSED", timeout=60)
        proof = _in_flight_proof(backend)
        code = child.kill()
    finally:
        child.kill()
    killed_after = time.monotonic() - started
    assert code == -signal.SIGKILL
    assert not any(line.startswith("DONE") for line in child.lines)
    _backend_gone(backend)

    killed_rows = _count(engine, "instance_name LIKE 'inst-%'")
    earlier_rows = _count(engine, "run_id = :run", run=RUN)
    other_rows = _count(engine, "run_id = 'other-run'")
    if backend["name"] == "sqlite":
        assert not Path(str(backend["path"]) + "-journal").exists(), "hot journal was not rolled back"

    rerun_started = time.monotonic()
    result = archive_details(make_details(ROWS), db_conn_id=CONN_ID, table=TABLE, run_id=RUN)
    rerun_s = time.monotonic() - rerun_started
    audit.figure(
        f"killed write ({backend['name']})",
        child_output=" | ".join(child.lines),
        proof=proof,
        killed_after_s=killed_after,
        rows_of_killed_attempt=killed_rows,
        rerun_rows_written=result.rows_written,
        rerun_rows_replaced=result.rows_replaced,
        rerun_s=rerun_s,
    )
    assert "PAUSED" in paused
    assert killed_rows == 0
    assert earlier_rows == 3
    assert other_rows == 10
    assert (result.rows_written, result.rows_replaced) == (ROWS, 3)
    assert _count(engine, "run_id = :run", run=RUN) == ROWS
    assert _count(engine, "run_id = :run AND instance_name LIKE 'inst-%'", run=RUN) == ROWS
    assert _count(engine, "instance_name LIKE 'old-%'") == 0
    assert _count(engine) == ROWS + 10
