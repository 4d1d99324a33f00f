"""A bulk import SIGKILLed half-way resumes: the library equals the manifest, the ledger never lies.

The import runs in a child process against the emulator (20 ms of latency per request, so it takes a
few seconds), its ledger on SQLite or PostgreSQL. Once the child reports that about half the rows are
in the ledger it is SIGKILLed. Then: every image the library holds has a ledger row (the write-ahead
intents), every ledger row claiming success names an image the emulator holds; the rerun (in this
process, which also takes over the dead child's lock) imports the rest, sending no add for a path the
ledger recorded as done; afterwards the library equals the manifest exactly.

Invariants only, no count the scheduler decides: the child's requests still in flight when it was
killed may reach the emulator's log after the kill, so the rerun's requests are told apart by their
authentication (the rerun signs with a token, the child with AK/SK).
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
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.emulator.routes import R_ADD
from tests.imports.conftest import ledger_rows, library, obs
from tests.reliability.support import SecretAudit
from tests.reliability.test_killed_write import Child
from tests.support.connections import connection_fields, env_name

REPO = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("_import_child.py")
ROWS = 400
INSTANCE = "killed"


@pytest.fixture(params=["sqlite", "postgres"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    import sqlalchemy as sa

    if request.param == "sqlite":
        path = tmp_path / "ledger.db"
        conn = json.dumps({"conn_type": "sqlite", "host": str(path)})
        engine = sa.create_engine(f"sqlite:///{path}")
    else:
        conn = request.getfixturevalue("postgres_uri")
        engine = sa.create_engine(conn.replace("postgres://", "postgresql+psycopg2://"))
        with engine.begin() as connection:
            connection.execute(sa.text("DROP TABLE IF EXISTS imagesearch_import_ledger"))
    monkeypatch.setenv(env_name("imagesearch_archive_db"), conn)
    yield engine
    engine.dispose()


class ImportChild(Child):
    """The import child, its stderr kept in a file (shown when it fails)."""

    def __init__(self, env: dict[str, str], stderr: Path) -> None:
        self.stderr = stderr.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, str(CHILD)], stdout=subprocess.PIPE, stderr=self.stderr, env=env
        )
        self.lines: list[str] = []
        self._buffer = b""
        self._stderr_path = Path(self.stderr.name)

    def _read(self, timeout: float) -> bool:
        """Read what the child printed within ``timeout``; False once its output has ended."""
        assert self.process.stdout is not None
        if self.process.stdout.closed:
            return False
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            if not selector.select(timeout=timeout):
                return True
        chunk = os.read(self.process.stdout.fileno(), 65536)
        if not chunk:
            return False
        self._buffer += chunk
        *complete, self._buffer = self._buffer.split(b"\n")
        self.lines += [c.decode() for c in complete]
        return True

    def poll_line(self, prefix: str, timeout: float = 0.05) -> str | None:
        """The latest line starting with ``prefix`` printed so far (earlier ones are dropped), or None."""
        if not self._read(timeout) and self.process.poll() is not None:
            raise AssertionError(f"child exited ({self.process.returncode}): {self.stderr_text()[-2000:]}")
        found = [line for line in self.lines if line.startswith(prefix)]
        self.lines = [line for line in self.lines if not line.startswith(prefix)]
        return found[-1] if found else None

    def wait_done(self, timeout: float) -> dict[str, Any] | None:
        """The child's XCom (its ``DONE`` line) once it exits, or None when it exits without one."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._read(0.5):
            self.lines = [line for line in self.lines if not line.startswith("FLUSHED")]
        self.process.wait(timeout=max(deadline - time.monotonic(), 1))
        done = [line for line in self.lines if line.startswith("DONE ")]
        return json.loads(done[-1].split(" ", 1)[1]) if done else None

    def stderr_text(self) -> str:
        self.stderr.flush()
        return self._stderr_path.read_text("utf-8", "replace")


def test_sigkill_half_way_then_rerun(
    ledger: Any, emulator: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, audit: SecretAudit
) -> None:
    from airflow_provider_imagesearch.operators.import_images import ImageSearchImportImagesOperator

    emulator.upsert_instance(INSTANCE, tags=["color"], images={})
    manifest = tmp_path / "manifest.csv"
    paths = [obs(f"k/{i:04d}.jpg") for i in range(ROWS)]
    manifest.write_text("path,tag.color\n" + "".join(f"{p},red\n" for p in paths), "utf-8")
    conn = connection_fields(emulator.url, "aksk")
    monkeypatch.setenv(env_name("imagesearch_default"), json.dumps(conn))
    emulator.set_faults(latency_seconds=0.02)
    env = {
        **os.environ,
        "AIRFLOW_HOME": tempfile.mkdtemp(prefix="imagesearch-import-kill-"),
        "PYTHONPATH": str(REPO),
        "IMPORT_MANIFEST": str(manifest),
        "IMPORT_INSTANCE": INSTANCE,
        "IMPORT_RUN_ID": "killed-run",
    }
    child = ImportChild(env, tmp_path / "child.err")
    try:
        while True:
            line = child.wait_for("FLUSHED", timeout=120)
            child.lines.remove(line)
            if int(line.split()[1]) >= ROWS // 2:
                break
        code = child.kill()
    finally:
        child.kill()
    assert code == -signal.SIGKILL
    assert not any(line.startswith("DONE") for line in child.lines)

    recorded = ledger_rows(ledger, INSTANCE)
    done = {path for path, row in recorded.items() if row["outcome"] in ("added", "retried", "updated")}
    assert len(done) >= ROWS // 2
    assert done <= set(library(emulator, INSTANCE)), "a ledger row claims an image the library does not hold"

    emulator.set_faults(reset=True)
    # Write-ahead: every image the child sent (even an add still in flight at the kill) has its row.
    assert set(library(emulator, INSTANCE)) <= set(recorded), "an image the ledger does not know"

    monkeypatch.setenv(env_name("imagesearch_rerun"), json.dumps(connection_fields(emulator.url, "token")))
    emulator.reset_stats()
    op = ImageSearchImportImagesOperator(
        task_id="rerun",
        instance_name=INSTANCE,
        manifest=str(manifest),
        max_concurrency=8,
        imagesearch_conn_id="imagesearch_rerun",
        lock_timeout=0,  # the dead child's lock is taken over at once
    )
    result = op.execute({"run_id": "rerun"})  # type: ignore[arg-type]
    audit.xcom("import xcom", result)
    assert result["unchanged"] == len(done)
    assert result["added"] + result["updated"] + result["reconciled"] == ROWS - len(done)
    assert result["failed"] == result["invalid"] == 0
    rerun_adds = [r for r in emulator.requests_log() if r["route"] == R_ADD and r["auth"] == "token"]
    assert len(rerun_adds) == ROWS - len(done)  # no add for a path recorded as done
    final = library(emulator, INSTANCE)
    assert final == {path: {"color": "red"} for path in paths}
    rows = ledger_rows(ledger, INSTANCE)
    assert set(rows) == set(paths)
    assert {row["outcome"] for row in rows.values()} <= {"added", "updated"}
