"""The archive table's DDL, as a user finds it in their database after the first archive run.

Documented in docs/example-dags.rst (primary key ``(instance name, run id)`` named ``pk_<table>``,
``[schema.]table``) and docs/ui-page.rst (the read index ``ix_isui_<table>`` on
``(instance_name, fetched_at)``). Written through ``write_frame`` on a plain SQLite engine; the schema case
uses an attached database, SQLite's form of a second schema.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from airflow_provider_imagesearch.archive import COLUMN_NAMES, archive_details, details_frame, write_frame

DETAILS = [{"instance_name": "shop-a", "status": "NORMAL"}]


def _archive(engine: sa.engine.Engine, table: str) -> None:
    write_frame(engine, table, details_frame(DETAILS, run_id="run-1", logical_date=None), "run-1")


def test_the_archive_table_has_bounded_not_null_keys_a_named_primary_key_and_the_read_index(
    tmp_path: Path,
) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'archive.db'}")
    try:
        _archive(engine, "reports")
        inspector = sa.inspect(engine)
        columns = {column["name"]: column for column in inspector.get_columns("reports")}
        assert list(columns) == list(COLUMN_NAMES)
        for key in ("instance_name", "run_id"):
            key_type = columns[key]["type"]
            assert isinstance(key_type, sa.String)
            assert key_type.length == 255
            assert columns[key]["nullable"] is False
        assert [name for name, column in columns.items() if not column["nullable"]] == [
            "instance_name",
            "run_id",
        ]
        pk = inspector.get_pk_constraint("reports")
        assert pk["name"] == "pk_reports"
        assert pk["constrained_columns"] == ["instance_name", "run_id"]
        indexes = [(index["name"], index["column_names"]) for index in inspector.get_indexes("reports")]
        assert indexes == [("ix_isui_reports", ["instance_name", "fetched_at"])]
    finally:
        engine.dispose()


def _with_attached_schema(engine: sa.engine.Engine, schema: str, path: Path) -> None:
    @sa.event.listens_for(engine, "connect")
    def attach(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(f"ATTACH DATABASE '{path}' AS {schema}")


def test_a_schema_qualified_table_is_created_in_that_schema_under_its_own_name(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'main.db'}")
    _with_attached_schema(engine, "reporting", tmp_path / "reporting.db")
    try:
        _archive(engine, "reporting.reports")
        inspector = sa.inspect(engine)
        assert inspector.get_table_names(schema="reporting") == ["reports"]
        assert inspector.get_table_names() == []
        assert inspector.get_pk_constraint("reports", schema="reporting")["name"] == "pk_reports"
        assert [index["name"] for index in inspector.get_indexes("reports", schema="reporting")] == [
            "ix_isui_reports"
        ]
    finally:
        engine.dispose()


def test_main_dot_table_on_sqlite_creates_the_table_not_a_dotted_name(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'archive.db'}")
    try:
        _archive(engine, "main.reports")
        assert sa.inspect(engine).get_table_names() == ["reports"]
    finally:
        engine.dispose()


def test_archive_details_writes_the_runs_logical_date_into_every_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "archive.db"
    fields = json.dumps({"conn_type": "sqlite", "host": str(database)})
    monkeypatch.setenv("AIRFLOW_CONN_K3G_ARCHIVE_DB", fields)
    logical_date = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    archive_details(
        [{"instance_name": "shop-a"}, {"instance_name": "shop-b"}],
        db_conn_id="k3g_archive_db",
        table="reports",
        run_id="run-1",
        logical_date=logical_date,
    )
    engine = sa.create_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as connection:
            table = sa.Table("reports", sa.MetaData(), autoload_with=connection)
            rows = connection.execute(sa.select(table.c.instance_name, table.c.logical_date)).all()
    finally:
        engine.dispose()
    assert sorted((name, str(value)) for name, value in rows) == [
        ("shop-a", "2026-03-04 05:06:07"),
        ("shop-b", "2026-03-04 05:06:07"),
    ]
