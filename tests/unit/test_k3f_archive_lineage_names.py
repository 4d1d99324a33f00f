"""The archive table's lineage name, built from the database URL: exact strings per kind of URL.

``report_table_lineage`` (what ``archive_details`` calls after writing) names the table from the engine's
URL alone, without opening the database, except for the default schema of a non-SQLite table without a
schema. The Asset's ``uri`` is Airflow's normalised form (the postgres provider adds the default port 5432
and turns ``postgresql`` into ``postgres``); its ``name`` is the URI as the archive wrote it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from tests.dags.test_archive_lineage import collector  # noqa: F401 (the fixture)

PG_CONN = "postgres://archiver@db.example:5433/shop"


def report(url: str, table: str, **engine_kwargs: Any) -> None:
    import sqlalchemy as sa

    from airflow_provider_imagesearch.archive import report_table_lineage

    engine = sa.create_engine(url, **engine_kwargs)
    try:
        report_table_lineage("lineage_db", engine, table)
    finally:
        engine.dispose()


@pytest.fixture
def sqlite_conn(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fields = json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "archive.db")})
    monkeypatch.setenv("AIRFLOW_CONN_LINEAGE_DB", fields)


@pytest.fixture
def postgres_conn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_LINEAGE_DB", PG_CONN)


def outputs(collector: Any) -> list[tuple[str, str]]:  # noqa: F811
    return [(output.asset.uri, output.asset.name) for output in collector.collected_assets.outputs]


def test_a_sqlite_file_is_named_from_its_path_without_opening_it(
    collector: Any,  # noqa: F811
    sqlite_conn: None,
    tmp_path: Path,
) -> None:
    """SQLite: the database file's path and the schema ``main``, even for a file that cannot be opened."""
    path = tmp_path / "no-such-dir" / "archive.db"
    report(f"sqlite:///{path}", "lineage_archive")
    assert outputs(collector) == [
        (f"sqlite:{path}/main/lineage_archive", f"sqlite:///{str(path).lstrip('/')}/main/lineage_archive")
    ]


def test_an_in_memory_sqlite_database_has_an_empty_database_part(
    collector: Any,  # noqa: F811
    sqlite_conn: None,
) -> None:
    report("sqlite://", "lineage_archive")
    assert outputs(collector) == [("sqlite://main/lineage_archive", "sqlite:////main/lineage_archive")]


def test_postgresql_with_host_and_port_is_reported_as_postgres(
    collector: Any,  # noqa: F811
    postgres_conn: None,
) -> None:
    """The ``postgresql`` backend is written with OpenLineage's scheme ``postgres``, host:port as given."""
    report("postgresql+psycopg2://archiver@db.example:5433/shop", "public.lineage_archive")
    uri = "postgres://db.example:5433/shop/public/lineage_archive"
    assert outputs(collector) == [(uri, uri)]


def test_a_database_whose_name_starts_with_x_keeps_its_whole_name(
    collector: Any,  # noqa: F811
    postgres_conn: None,
) -> None:
    """Only the slashes before the database's name are dropped, never a letter of it."""
    report("postgresql+psycopg2://archiver@db.example:5433/Xmas", "public.lineage_archive")
    uri = "postgres://db.example:5433/Xmas/public/lineage_archive"
    assert outputs(collector) == [(uri, uri)]


def test_postgresql_without_port_names_the_host_alone(
    collector: Any,  # noqa: F811
    postgres_conn: None,
) -> None:
    """No port in the URL: the host alone (Airflow's normalised URI then adds PostgreSQL's 5432)."""
    report("postgresql+psycopg2://archiver@db.example/shop", "public.lineage_archive")
    assert outputs(collector) == [
        (
            "postgres://db.example:5432/shop/public/lineage_archive",
            "postgres://db.example/shop/public/lineage_archive",
        )
    ]


def test_postgresql_with_a_port_but_no_host_keeps_the_host_empty(
    collector: Any,  # noqa: F811
    postgres_conn: None,
) -> None:
    report("postgresql+psycopg2://archiver@:5433/shop", "public.lineage_archive")
    uri = "postgres://:5433/shop/public/lineage_archive"
    assert outputs(collector) == [(uri, uri)]


def test_postgresql_over_a_unix_socket_reports_no_made_up_host(
    collector: Any,  # noqa: F811
    postgres_conn: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No host and no port (a Unix socket): PostgreSQL assets need a host, so nothing is reported and
    the archive logs that it could not report the lineage (rather than naming an invented host)."""
    with caplog.at_level(logging.WARNING):
        report("postgresql+psycopg2:///shop", "public.lineage_archive")
    assert outputs(collector) == []
    [warning] = [r for r in caplog.records if r.name == "airflow_provider_imagesearch.archive"]
    assert warning.getMessage() == "Could not report the lineage of public.lineage_archive"
    # the task log shows why (the traceback), not only that it failed
    assert isinstance(warning.exc_info, tuple)
    assert warning.exc_info[0] is not None


def test_postgresql_without_a_database_leaves_the_database_part_empty(
    collector: Any,  # noqa: F811
    postgres_conn: None,
) -> None:
    report("postgresql+psycopg2://archiver@db.example:5433", "public.lineage_archive")
    uri = "postgres://db.example:5433//public/lineage_archive"
    assert outputs(collector) == [(uri, uri)]


def test_a_connection_without_a_current_schema_leaves_the_schema_empty(
    collector: Any,  # noqa: F811
    postgres_conn: None,
    postgres_uri: str,
) -> None:
    """A table without a schema takes the engine's default schema; a search_path naming no existing
    schema has none, so the schema part stays empty (Airflow's normalised URI shows ``default``)."""
    from urllib.parse import urlsplit

    server = urlsplit(postgres_uri)
    database = server.path.lstrip("/")
    report(
        postgres_uri.replace("postgres://", "postgresql+psycopg2://", 1),
        "lineage_archive",
        connect_args={"options": "-c search_path=k3f_no_such_schema"},
    )
    netloc = f"{server.hostname}:{server.port}"
    assert outputs(collector) == [
        (
            f"postgres://{netloc}/{database}/default/lineage_archive",
            f"postgres://{netloc}/{database}//lineage_archive",
        )
    ]
