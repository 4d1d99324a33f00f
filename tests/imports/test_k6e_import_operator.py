"""The import operator's defaults and its patience with a SQLite ledger another writer holds."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from tests.imports.conftest import RunImport, library, obs, sqlite_ledger_rows

INSTANCE = "k6e-operator"


def test_an_import_runs_eight_requests_at_once_by_default(
    import_into: Callable[..., RunImport], capfd: pytest.CaptureFixture[str]
) -> None:
    run = import_into(INSTANCE)
    assert run([{"path": obs("k6e/default.jpg")}])["added"] == 1
    assert "1 to send, 0 to prune, concurrency 8" in "".join(capfd.readouterr())


def test_an_import_waits_for_a_sqlite_ledger_another_writer_holds_for_seconds(
    import_into: Callable[..., RunImport], emulator: Emulator, sqlite_ledger: Path
) -> None:
    """Several imports and shards may share one SQLite file: a writer holding it for six seconds (past
    sqlite3's own five-second default) is waited for, not an error."""
    run = import_into(INSTANCE)
    first = {"path": obs("k6e/first.jpg")}
    run([first])  # the ledger table exists
    holder = sqlite3.connect(sqlite_ledger, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    released = threading.Timer(6.0, lambda: holder.execute("COMMIT"))
    released.start()
    try:
        second = {"path": obs("k6e/second.jpg")}
        assert run([first, second])["added"] == 1
    finally:
        released.join()
        holder.close()
    assert set(sqlite_ledger_rows(sqlite_ledger, INSTANCE)) == {first["path"], second["path"]}
    assert set(library(emulator, INSTANCE)) == {first["path"], second["path"]}
