"""The archive reports the table it writes as an output to Airflow's hook-level lineage (OpenLineage)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

TABLE = "lineage_archive"


@pytest.fixture
def collector(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A real hook lineage collector, as Airflow builds it when a lineage reader plugin is registered.

    The OpenLineage provider registers this reader only when a transport is configured; this stands in
    for that configuration (the collector itself is Airflow's own).
    """
    from airflow.sdk import lineage, plugins_manager
    from airflow.sdk.lineage import HookLineageReader

    lineage.get_hook_lineage_collector.cache_clear()
    monkeypatch.setattr(plugins_manager, "get_hook_lineage_readers_plugins", lambda: [HookLineageReader])
    from airflow.providers.common.compat.lineage.hook import get_hook_lineage_collector

    yield get_hook_lineage_collector()
    lineage.get_hook_lineage_collector.cache_clear()


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[str, str]:
    """(connection id, the kind of database)."""
    if request.param == "sqlite":
        fields = json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "archive.db")})
        monkeypatch.setenv("AIRFLOW_CONN_LINEAGE_DB", fields)
    else:
        monkeypatch.setenv("AIRFLOW_CONN_LINEAGE_DB", request.getfixturevalue("postgres_uri"))
    return "lineage_db", request.param


def test_archive_reports_its_table_as_an_output(
    collector: Any, db: tuple[str, str], tmp_path: Path, postgres_uri: str
) -> None:
    from airflow.providers.openlineage.extractors.manager import ExtractorManager

    from airflow_provider_imagesearch.archive import archive_details

    conn_id, kind = db
    assert not collector.has_collected
    archive_details(
        [{"instance_name": "shop-main", "status": "NORMAL"}], db_conn_id=conn_id, table=TABLE, run_id="r1"
    )

    collected = collector.collected_assets
    assert collected.inputs == []
    (output,) = collected.outputs
    if kind == "sqlite":
        # The database file's path, then SQLite's one schema; Airflow writes an empty host as ``sqlite:/``.
        assert output.asset.uri == f"sqlite:{tmp_path / 'archive.db'}/main/{TABLE}"
    else:
        from urllib.parse import urlsplit

        server = urlsplit(postgres_uri)
        database = server.path.lstrip("/")
        assert output.asset.uri == f"postgres://{server.hostname}:{server.port}/{database}/public/{TABLE}"
        # What OpenLineage makes of it: its SQL naming (namespace scheme://host:port, name db.schema.table).
        lineage = ExtractorManager().get_hook_lineage()
        assert lineage is not None
        assert [(d.namespace, d.name) for d in lineage.outputs] == [
            (f"postgres://{server.hostname}:{server.port}", f"{database}.public.{TABLE}")
        ]
    assert type(output.context).__name__ == ("SqliteHook" if kind == "sqlite" else "PostgresHook")


def test_a_schema_qualified_table_keeps_its_schema(
    collector: Any, postgres_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlalchemy as sa

    from airflow_provider_imagesearch.archive import archive_details

    monkeypatch.setenv("AIRFLOW_CONN_LINEAGE_DB", postgres_uri)
    engine = sa.create_engine(postgres_uri.replace("postgres://", "postgresql+psycopg2://"))
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE SCHEMA IF NOT EXISTS reporting"))
    engine.dispose()
    archive_details([{"instance_name": "a"}], db_conn_id="lineage_db", table=f"reporting.{TABLE}", run_id="r")
    (output,) = collector.collected_assets.outputs
    assert output.asset.uri.endswith(f"/reporting/{TABLE}")
