"""The ledger's own reads and writes: rows replaced on any database, read back whole in key order, in UTC."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_imagesearch.imports.ledger import Ledger, LedgerEntry

TABLE = "imagesearch_import_ledger"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Any]:
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield engine
    engine.dispose()


def _ledger(engine: Any, instance: str = "k6e-ledger") -> Ledger:
    ledger = Ledger(engine, TABLE, instance, "run-1")
    ledger.create_if_missing()
    return ledger


def _entry(key: str, fingerprint: str = "1" * 32, outcome: str = "added", **fields: Any) -> LedgerEntry:
    values: dict[str, Any] = {
        "path_key": key,
        "path": f"{key}.jpg",
        "fingerprint": fingerprint,
        "outcome": outcome,
        "error_code": None,
        "error_message": None,
        "row_number": 1,
        "attempts": 1,
        **fields,
    }
    return LedgerEntry(**values)


def test_a_database_without_an_upsert_gets_its_rows_replaced_too(
    engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database other than SQLite and PostgreSQL (here SQLite under another dialect name): rows are
    replaced by a delete and an insert, one row per path with the last values."""
    monkeypatch.setattr(type(engine.dialect), "name", "other")
    ledger = _ledger(engine)
    ledger.record([_entry("k1"), _entry("k2")])
    ledger.record([_entry("k1", "2" * 32, "failed", error_code="IS.0009", error_message="busy")])
    rows = {row["path_key"]: row for row in ledger.rows()}
    assert sorted(rows) == ["k1", "k2"]
    assert (rows["k1"]["fingerprint"], rows["k1"]["outcome"], rows["k1"]["error_code"]) == (
        "2" * 32,
        "failed",
        "IS.0009",
    )
    assert rows["k2"]["outcome"] == "added"


def test_the_stream_reads_every_row_once_in_key_order_whatever_order_they_were_written(
    ledger_conn: dict[str, Any],
) -> None:
    """On PostgreSQL a small table is read in the order written unless the query orders it: the chunks
    would repeat and skip keys."""
    ledger = _ledger(ledger_conn["engine"])
    keys = [f"k{i}" for i in (5, 3, 9, 1, 7, 2, 8)]
    for key in keys:  # one transaction each: the table's own order is the order written
        ledger.record([_entry(key)])
    chunks = list(ledger.stream(chunk_rows=2))
    assert [len(chunk) for chunk in chunks] == [2, 2, 2, 1]
    assert [row[0] for chunk in chunks for row in chunk] == sorted(keys)


def test_the_stream_says_equal_for_content_the_library_holds_as_recorded(engine: Any) -> None:
    """``=`` when the library holds what the row lists, ``?`` when unknown, else what it holds."""
    ledger = _ledger(engine)
    ledger.record(
        [
            _entry("same", "1" * 32, held="1" * 32),
            _entry("unknown", "1" * 32, "failed", held="?"),
            _entry("older", "1" * 32, "invalid", held="0" * 32),
        ]
    )
    held = {row[0]: row[4] for chunk in ledger.stream() for row in chunk}
    assert held == {"same": "=", "unknown": "?", "older": "0" * 32}


@pytest.fixture
def far_from_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local time zone eight hours east of UTC."""
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("far_from_utc")
def test_rows_are_stamped_in_utc_whatever_the_local_time_zone(engine: Any) -> None:
    ledger = _ledger(engine)
    ledger.intend([_entry("intent")])
    ledger.record([_entry("answer")])
    now = datetime.now(UTC)
    for row in ledger.rows():
        stamp = row["updated_at"]
        stamp = stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
        assert abs(stamp - now) < timedelta(minutes=5), (row["path_key"], stamp, now)
