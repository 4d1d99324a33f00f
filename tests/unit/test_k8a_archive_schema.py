"""An archive into a table of a named schema on PostgreSQL (``ledger_table``/``table`` take
``schema.name``): the first run creates the table there, the next finds it and appends."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.connections import env_name

CONN_ID = "k8a_schema_db"
SCHEMA = "k8a_reports"


def test_a_second_archive_into_a_schemas_table_finds_it_and_appends(
    postgres_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlalchemy as sa

    from airflow_provider_imagesearch.archive import archive_details

    monkeypatch.setenv(env_name(CONN_ID), postgres_uri)
    engine: Any = sa.create_engine(postgres_uri.replace("postgres://", "postgresql+psycopg2://"))
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
            connection.execute(sa.text(f"CREATE SCHEMA {SCHEMA}"))
        table = f"{SCHEMA}.details"
        for run in ("run-1", "run-2"):
            result = archive_details([{"instance_name": "a"}], db_conn_id=CONN_ID, table=table, run_id=run)
            assert result.rows_written == 1
        with engine.connect() as connection:
            runs = connection.execute(sa.text(f"SELECT run_id FROM {table} ORDER BY run_id")).scalars().all()
        assert runs == ["run-1", "run-2"]
    finally:
        engine.dispose()
