"""What an archive row holds, read back from SQLite and PostgreSQL: each detail's registration and expiry
in UTC whatever offset the API gave (rows of different offsets in one run), its level as an integer (NULL
when unknown), ``never_expires`` as a boolean (false when unknown or absent) and the run's logical date in
UTC (one given without a zone taken to be UTC)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas  # noqa: F401  (its one-time import at collection, not in a test's call time)
import pytest
import sqlalchemy as sa

from airflow_provider_imagesearch.archive import details_frame, write_frame

DETAILS = [
    {
        "instance_name": "shop-a",
        "level": 2,
        "never_expires": True,
        "registered_at": "2026-01-02T03:04:05+08:00",
        "expires_at": "2027-01-02T03:04:05+08:00",
    },
    {
        "instance_name": "shop-b",
        "level": None,
        "never_expires": None,
        "registered_at": "2026-01-02T03:04:05+00:00",
        "expires_at": None,
    },
    {"instance_name": "shop-c", "level": 30000000, "never_expires": False},
    {"instance_name": "shop-d"},
]
REGISTERED_A = datetime(2026, 1, 1, 19, 4, 5, tzinfo=UTC)
EXPIRES_A = datetime(2027, 1, 1, 19, 4, 5, tzinfo=UTC)
REGISTERED_B = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
LOGICAL = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.engine.Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'archive.db'}"
    else:
        url = request.getfixturevalue("postgres_uri").replace("postgres://", "postgresql+psycopg2://", 1)
    engine = sa.create_engine(url)
    yield engine
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE IF EXISTS archive")
    engine.dispose()


def _utc(value: Any) -> Any:
    """A stored timestamp as an aware UTC datetime (SQLite keeps UTC text without a zone)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _archived(engine: sa.engine.Engine, **kwargs: Any) -> list[tuple[Any, ...]]:
    write_frame(engine, "archive", details_frame(DETAILS, run_id="run-1", **kwargs), "run-1")
    query = (
        "SELECT instance_name, level, never_expires, registered_at, expires_at, logical_date"
        " FROM archive ORDER BY instance_name"
    )
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(query).all()
    return [
        (name, level, None if never is None else bool(never), _utc(registered), _utc(expires), _utc(logical))
        for name, level, never, registered, expires, logical in rows
    ]


def test_each_rows_values_are_stored_typed_and_in_utc(engine: sa.engine.Engine) -> None:
    logical_date = datetime(2026, 3, 4, 7, 6, 7, tzinfo=timezone(timedelta(hours=2)))
    rows = _archived(engine, logical_date=logical_date)
    assert rows == [
        ("shop-a", 2, True, REGISTERED_A, EXPIRES_A, LOGICAL),
        ("shop-b", None, False, REGISTERED_B, None, LOGICAL),
        ("shop-c", 30000000, False, None, None, LOGICAL),
        ("shop-d", None, False, None, None, LOGICAL),
    ]
    assert all(isinstance(level, int) for _, level, *_ in rows if level is not None)


def test_a_logical_date_without_a_zone_is_stored_as_utc(engine: sa.engine.Engine) -> None:
    """Airflow's logical dates carry a zone; one given without (a direct call of the archive) is taken to
    be UTC."""
    rows = _archived(engine, logical_date=datetime(2026, 3, 4, 5, 6, 7))
    assert [row[-1] for row in rows] == [LOGICAL] * 4


def test_a_run_without_a_logical_date_stores_none(engine: sa.engine.Engine) -> None:
    assert [row[-1] for row in _archived(engine, logical_date=None)] == [None] * 4


def test_sqlite_stores_each_timestamp_as_sqlalchemys_utc_text(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'archive.db'}")
    try:
        write_frame(engine, "archive", details_frame(DETAILS[:1], run_id="r", logical_date=LOGICAL), "r")
        with engine.connect() as connection:
            stored = connection.exec_driver_sql(
                "SELECT registered_at, logical_date, typeof(level) FROM archive"
            ).one()
    finally:
        engine.dispose()
    assert tuple(stored) == ("2026-01-01 19:04:05.000000", "2026-03-04 05:06:07.000000", "integer")
