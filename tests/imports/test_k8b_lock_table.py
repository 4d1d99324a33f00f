"""The import lock's table and its release, on SQLite ledger files: the lock table sits beside the ledger
(in its schema, named ``<table>_lock`` or, past 63 characters, shortened like every derived identifier),
keyed by the holder's slot; a release gives back only the releasing run's row, sends nothing when called
a second time, and waits for a heartbeat stuck in the database at most one beat and five seconds."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from airflow_provider_imagesearch.imports import lock as lock_module
from airflow_provider_imagesearch.imports.lock import ImportLock, ImportLockedError
from tests.support.import_lock import TABLE, holding_run_ids, lock_of, set_holder


@pytest.fixture
def attached(tmp_path: Path) -> Iterator[Any]:
    """An engine on a SQLite ledger file with a second database attached as schema ``aux``."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'main.db'}")
    aux = tmp_path / "aux.db"

    @sa.event.listens_for(engine, "connect")
    def attach(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(f"ATTACH DATABASE '{aux}' AS aux")

    yield engine
    engine.dispose()


def _tables(engine: Any, schema: str | None = None) -> list[str]:
    return sorted(sa.inspect(engine).get_table_names(schema=schema))


def _take(engine: Any, ledger_table: str) -> None:
    lock = ImportLock(engine, ledger_table, "v1", "catalog", "manual__k8b")
    lock.acquire(0)
    lock.release()


def test_the_lock_table_of_a_ledger_in_a_schema_is_created_in_that_schema(attached: Any) -> None:
    _take(attached, "aux.ledger")
    assert _tables(attached, "aux") == ["ledger_lock"]
    assert _tables(attached) == []


def test_a_long_ledger_name_in_a_schema_gets_a_shortened_lock_table_in_that_schema(attached: Any) -> None:
    name = "catalog_" + "l" * 52  # 60 characters: "<name>_lock" would be 65
    _take(attached, f"aux.{name}")
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    shortened = f"lock_{name}"[:54] + "_" + digest
    assert len(shortened) == 63
    assert _tables(attached, "aux") == [shortened]
    assert _tables(attached) == []


def test_a_lock_table_name_of_exactly_63_characters_is_kept_whole(lock_engine: Any) -> None:
    name = "c" * 58
    _take(lock_engine, name)
    assert _tables(lock_engine) == [f"{name}_lock"]


#: The lock table as docs/bulk-import.rst lists it: (column, type, length), every column NOT NULL.
COLUMNS = [
    ("instance_name", "VARCHAR", 64),
    ("api", "VARCHAR", 8),
    ("shard_index", "INTEGER", None),
    ("shard_count", "INTEGER", None),
    ("token", "VARCHAR", 32),
    ("run_id", "VARCHAR", 255),
    ("host", "VARCHAR", 255),
    ("pid", "INTEGER", None),
    ("acquired_at", "DATETIME", None),
    ("heartbeat_at", "DATETIME", None),
]
KEY = ["instance_name", "api", "shard_index", "shard_count"]


def _columns(engine: Any) -> list[tuple[str, str, int | None, bool]]:
    return [
        (
            column["name"],
            type(column["type"]).__name__.upper(),
            getattr(column["type"], "length", None),
            column["nullable"],
        )
        for column in sa.inspect(engine).get_columns(f"{TABLE}_lock")
    ]


def test_the_lock_table_has_the_documented_columns_keyed_by_target_api_and_shard(lock_engine: Any) -> None:
    _take(lock_engine, TABLE)
    assert _columns(lock_engine) == [(name, kind, length, False) for name, kind, length in COLUMNS]
    key = sa.inspect(lock_engine).get_pk_constraint(f"{TABLE}_lock")
    assert key == {"constrained_columns": KEY, "name": f"pk_{TABLE}_lock"}


def test_pg_the_lock_table_keeps_its_times_with_their_time_zone(postgres_uri: str) -> None:
    engine = sa.create_engine(postgres_uri.replace("postgres://", "postgresql+psycopg2://"))
    try:
        _take(engine, TABLE)
        timestamps = {
            column["name"]: getattr(column["type"], "timezone", None)
            for column in sa.inspect(engine).get_columns(f"{TABLE}_lock")
            if column["name"].endswith("_at")
        }
        assert timestamps == {"acquired_at": True, "heartbeat_at": True}
        key = sa.inspect(engine).get_pk_constraint(f"{TABLE}_lock")
        assert (key["constrained_columns"], key["name"]) == (KEY, f"pk_{TABLE}_lock")
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text(f"DROP TABLE IF EXISTS {TABLE}_lock"))
        engine.dispose()


def test_a_run_whose_row_was_taken_over_leaves_the_new_holders_row_when_it_releases(
    lock_engine: Any,
) -> None:
    frozen = lock_of(lock_engine, "scheduled__frozen")
    frozen.acquire(0)
    try:
        # Its heartbeat stopped long enough ago (a frozen VM): the next run takes the target over.
        set_holder(lock_engine, heartbeat_at=datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1))
        taker = lock_of(lock_engine, "manual__taker")
        taker.acquire(0)
        try:
            frozen.release()
            assert holding_run_ids(lock_engine) == ["manual__taker"]
            with pytest.raises(ImportLockedError, match="manual__taker"):
                lock_of(lock_engine, "manual__third").acquire(0)
        finally:
            taker.release()
    finally:
        frozen.release()


def test_a_second_release_sends_nothing_to_the_database(lock_engine: Any) -> None:
    lock = lock_of(lock_engine, "manual__twice")
    lock.acquire(0)
    lock.release()
    statements: list[str] = []

    @sa.event.listens_for(lock_engine, "before_cursor_execute")
    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    lock.release()
    assert statements == []
    assert holding_run_ids(lock_engine) == []


def test_a_release_waits_for_the_heartbeat_at_most_one_beat_and_five_seconds(
    lock_engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A heartbeat stuck in a hung database call cannot hang the end of the task: the release waits
    for its thread at most ``HEARTBEAT_SECONDS + 5`` seconds (what it asks of the thread's join)."""
    joins: list[float | None] = []

    class Heartbeat(threading.Thread):
        def join(self, timeout: float | None = None) -> None:
            joins.append(timeout)
            super().join(timeout)

    monkeypatch.setattr(lock_module, "threading", SimpleNamespace(Thread=Heartbeat, Event=threading.Event))
    lock = lock_of(lock_engine, "manual__beat")
    lock.acquire(0)
    lock.release()
    assert joins == [lock_module.HEARTBEAT_SECONDS + 5] == [15.0]
    assert holding_run_ids(lock_engine) == []
