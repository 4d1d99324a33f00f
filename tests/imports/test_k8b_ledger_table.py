"""The ledger table an import creates, as a database shows it (SQLite files; PostgreSQL for its time zone):
its documented columns with their types, lengths and NULLs, its key, its read index, its schema, and the
shortened names of its key and index when the table's name is long."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from airflow_provider_imagesearch.imports.ledger import Ledger

TABLE = "imagesearch_import_ledger"
#: (column, type, length, nullable), in the table's order.
COLUMNS = [
    ("instance_name", "VARCHAR", 64, False),
    ("api", "VARCHAR", 8, False),
    ("path_key", "VARCHAR", 32, False),
    ("path", "TEXT", None, False),
    ("fingerprint", "VARCHAR", 32, False),
    ("held_fingerprint", "VARCHAR", 32, True),
    ("outcome", "VARCHAR", 16, False),
    ("error_code", "VARCHAR", 64, True),
    ("error_message", "TEXT", None, True),
    ("row_number", "BIGINT", None, True),
    ("attempts", "INTEGER", None, False),
    ("run_id", "VARCHAR", 255, False),
    ("updated_at", "DATETIME", None, False),
]
KEY = ["instance_name", "api", "path_key"]
READ_INDEX = ["instance_name", "api", "outcome", "run_id", "updated_at"]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Any]:
    """An engine on a SQLite ledger file with a second database attached as schema ``aux``."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'main.db'}")
    aux = tmp_path / "aux.db"

    @sa.event.listens_for(engine, "connect")
    def attach(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(f"ATTACH DATABASE '{aux}' AS aux")

    yield engine
    engine.dispose()


def _create(engine: Any, table: str) -> None:
    Ledger(engine, table, "catalog", "manual__k8b").create_if_missing()


def _columns(engine: Any, table: str, schema: str | None = None) -> list[tuple[str, str, int | None, bool]]:
    return [
        (
            column["name"],
            type(column["type"]).__name__.upper(),
            getattr(column["type"], "length", None),
            column["nullable"],
        )
        for column in sa.inspect(engine).get_columns(table, schema=schema)
    ]


def _indexes(engine: Any, table: str, schema: str | None = None) -> list[tuple[str, list[str], bool]]:
    return [
        (index["name"], index["column_names"], bool(index["unique"]))
        for index in sa.inspect(engine).get_indexes(table, schema=schema)
    ]


def _shortened(prefix: str, name: str) -> str:
    return f"{prefix}_{name}"[:54] + "_" + hashlib.sha256(name.encode()).hexdigest()[:8]


def test_the_ledger_table_has_the_documented_columns_key_and_read_index(engine: Any) -> None:
    _create(engine, TABLE)
    assert _columns(engine, TABLE) == COLUMNS
    key = sa.inspect(engine).get_pk_constraint(TABLE)
    assert (key["constrained_columns"], key["name"]) == (KEY, f"pk_{TABLE}")
    assert _indexes(engine, TABLE) == [(f"ix_isui_{TABLE}", READ_INDEX, False)]


def test_a_ledger_in_a_schema_is_created_in_that_schema(engine: Any) -> None:
    _create(engine, f"aux.{TABLE}")
    assert sa.inspect(engine).get_table_names(schema="aux") == [TABLE]
    assert sa.inspect(engine).get_table_names() == []
    assert _columns(engine, TABLE, "aux") == COLUMNS
    assert _indexes(engine, TABLE, "aux") == [(f"ix_isui_{TABLE}", READ_INDEX, False)]


def test_a_long_ledger_name_gets_shortened_names_for_its_key_and_index(engine: Any) -> None:
    name = "ledger_" + "l" * 54  # 61 characters: "pk_<name>" would be 64
    _create(engine, name)
    key = sa.inspect(engine).get_pk_constraint(name)
    assert (key["constrained_columns"], key["name"]) == (KEY, _shortened("pk", name))
    assert _indexes(engine, name) == [(_shortened("ix_isui", name), READ_INDEX, False)]
    assert len(_shortened("pk", name)) == len(_shortened("ix_isui", name)) == 63


def test_pg_the_ledger_keeps_its_update_time_with_its_time_zone(postgres_uri: str) -> None:
    engine = sa.create_engine(postgres_uri.replace("postgres://", "postgresql+psycopg2://"))
    table = "k8b_ledger_table"
    try:
        _create(engine, table)
        columns = {column["name"]: column["type"] for column in sa.inspect(engine).get_columns(table)}
        assert getattr(columns["updated_at"], "timezone", None) is True
        assert [name for name, column in columns.items() if type(column).__name__ == "BIGINT"] == [
            "row_number"
        ]
        key = sa.inspect(engine).get_pk_constraint(table)
        assert (key["constrained_columns"], key["name"]) == (KEY, f"pk_{table}")
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
        engine.dispose()


def test_a_ledger_of_an_early_build_is_refused_naming_every_missing_column_and_why(engine: Any) -> None:
    from airflow_provider_imagesearch.errors import ImageSearchValidationError

    with engine.begin() as connection:
        connection.execute(sa.text(f"CREATE TABLE {TABLE} (instance_name VARCHAR(64), path_key VARCHAR(32))"))
    with pytest.raises(ImageSearchValidationError) as refused:
        _create(engine, TABLE)
    assert str(refused.value) == (
        f"Invalid ledger_table '{TABLE}': a ledger table with the 'api' column and the 'held_fingerprint' "
        "column (without 'api' its key cannot keep a v1 instance and a v2 service apart; without "
        "'held_fingerprint' it cannot say what the library may hold after a failed or invalid row); this one "
        "was created by an earlier pre-release build: rename or drop it (the next import recreates it and "
        "sends every row again)"
    )


def test_a_ledger_in_a_schema_with_the_required_columns_is_accepted(engine: Any) -> None:
    """Its columns are read in its own schema (``main`` holds a table of that name without them)."""
    with engine.begin() as connection:
        connection.execute(sa.text(f"CREATE TABLE {TABLE} (instance_name VARCHAR(64))"))
    _create(engine, f"aux.{TABLE}")
    assert _columns(engine, TABLE, "aux") == COLUMNS


def _waiting_on(engine: Any, key: int) -> bool:
    """Whether a session waits for the advisory lock ``key`` (pg_locks: high half, low half)."""
    unsigned = key & (2**64 - 1)
    with engine.connect() as connection:
        return bool(
            connection.execute(
                sa.text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    " AND classid::bigint = :high AND objid::bigint = :low AND objsubid = 1"
                ),
                {"high": unsigned >> 32, "low": unsigned & 0xFFFFFFFF},
            ).scalar_one()
        )


def test_pg_a_first_import_creating_the_ledger_waits_for_another_creating_it(postgres_uri: str) -> None:
    """Creations of one table queue on an advisory lock keyed by its name (SHA-256 of
    ``airflow_provider_imagesearch.archive:<table>``, first 8 bytes, big-endian, signed), whichever
    release creates it: a second creator waits, then finds the table there."""
    engine = sa.create_engine(postgres_uri.replace("postgres://", "postgresql+psycopg2://"))
    table = "k8b_ledger_created_once"
    digest = hashlib.sha256(f"airflow_provider_imagesearch.archive:{table}".encode()).digest()
    key = int.from_bytes(digest[:8], "big", signed=True)
    outcome: list[Any] = []
    try:
        with engine.connect() as blocker:
            blocker.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))  # held until the rollback below

            def create() -> None:
                try:
                    _create(engine, table)
                    outcome.append("created")
                except Exception as error:  # reported by the assertions below
                    outcome.append(error)

            thread = threading.Thread(target=create, daemon=True)
            thread.start()
            deadline = time.monotonic() + 30  # a guard against a hang, not a timing assertion
            waited = False
            while thread.is_alive() and not waited and time.monotonic() < deadline:
                waited = _waiting_on(engine, key)
                time.sleep(0.02)
            assert waited, f"the creation did not wait for the table's key (it ended with {outcome})"
            assert outcome == []
            blocker.rollback()
        thread.join(30)
        assert outcome == ["created"]
        assert table in sa.inspect(engine).get_table_names()
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
        engine.dispose()
