"""Fixtures of the ImageSearch page's tests: an archive and a ledger written by the provider's own code.

The archive rows go through ``archive.details_frame``/``write_frame`` and the ledger rows through
``imports.ledger.Ledger``: the page is tested against the tables as the DAGs really write them, on SQLite
and on PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

ARCHIVE = "imagesearch_instance_archive"
LEDGER = "imagesearch_import_ledger"
CONN_ID = "page_test_db"
PROJECT = "0b5e4c3a2f1d4e6a8c7b9d0e1f2a3b4c"


@dataclass
class Database:
    """A SQL connection id the page reads, and an engine the test writes with."""

    conn_id: str
    engine: Any
    dialect: str


@pytest.fixture(params=["sqlite", "postgres"])
def database(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Database]:
    yield from _database(request, request.param, tmp_path, monkeypatch)


@pytest.fixture
def sqlite_database(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Database]:
    yield from _database(request, "sqlite", tmp_path, monkeypatch)


def _database(
    request: pytest.FixtureRequest, dialect: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Database]:
    import sqlalchemy as sa

    from airflow_provider_imagesearch.plugins import storage

    if dialect == "sqlite":
        path = tmp_path / "page.db"
        monkeypatch.setenv(
            "AIRFLOW_CONN_PAGE_TEST_DB", json.dumps({"conn_type": "sqlite", "host": str(path)})
        )
        engine = sa.create_engine(f"sqlite:///{path}")
    else:
        uri = request.getfixturevalue("postgres_uri")
        monkeypatch.setenv("AIRFLOW_CONN_PAGE_TEST_DB", uri)
        engine = sa.create_engine(uri.replace("postgres://", "postgresql+psycopg2://"))
        _drop_tables(engine)
    storage.ENGINES.clear()
    yield Database(CONN_ID, engine, dialect)
    storage.ENGINES.clear()
    if dialect != "sqlite":
        # The PostgreSQL database is the session's, shared with the import tests: a ledger or a lock
        # table of another shape left here (a test builds one) would break their imports.
        _drop_tables(engine)
    engine.dispose()


def _drop_tables(engine: Any) -> None:
    import sqlalchemy as sa

    with engine.begin() as connection:
        for table in (ARCHIVE, LEDGER, f"{LEDGER}_lock"):
            connection.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))


def detail(name: str, status: str = "NORMAL", **fields: Any) -> dict[str, Any]:
    """An ``InstanceDetail.to_dict()``-shaped dict (what the archive task receives)."""
    return {
        "instance_name": name,
        "project_id": PROJECT,
        "status": status,
        "domain": "General image search",
        "description": f"{name} library",
        "level": 30_000_000,
        "tags": ["color"],
        "registered_at": "2026-01-01T00:00:00Z",
        "expires_at": "2027-01-01T00:00:00Z",
        "never_expires": False,
        **fields,
    }


def archive_run(
    database: Database, details: Sequence[dict[str, Any]], run_id: str, fetched_at: datetime
) -> None:
    """One archive run, through the archive's own write path."""
    from airflow_provider_imagesearch.archive import details_frame, write_frame

    frame = details_frame(details, run_id=run_id, logical_date=None, fetched_at=fetched_at)
    write_frame(database.engine, ARCHIVE, frame, run_id)


def path_key(path: str) -> str:
    return hashlib.sha256(path.encode()).hexdigest()[:32]


def ledger_run(
    database: Database,
    instance: str,
    run_id: str,
    rows: Sequence[tuple[str, str, str | None, str | None, int | None]],
    *,
    api: str = "v1",
) -> Any:
    """Record ``(path, outcome, error_code, error_message, row_number)`` rows as one import run does."""
    from airflow_provider_imagesearch.imports.ledger import Ledger, LedgerEntry

    ledger = Ledger(database.engine, LEDGER, instance, run_id, api=api)
    ledger.create_if_missing()
    ledger.record(
        [
            LedgerEntry(
                path_key=path_key(path),
                path=path,
                fingerprint=hashlib.md5(path.encode()).hexdigest(),
                outcome=outcome,
                error_code=code,
                error_message=message,
                row_number=row,
                attempts=1,
            )
            for path, outcome, code, message, row in rows
        ]
    )
    return ledger


def at(day: int, hour: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=UTC)


@pytest.fixture
def page_options(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Set ``[imagesearch]`` options for the page (environment variables, as an operator would)."""

    def set_options(**options: Any) -> None:
        for name, value in options.items():
            monkeypatch.setenv(f"AIRFLOW__IMAGESEARCH__{name.upper()}", str(value))

    return set_options
