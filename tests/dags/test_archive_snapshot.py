"""``latest_snapshot``: each instance's newest archived row, one per instance, in name order (whatever
order the rows were written in), with its timestamps as UTC ISO-8601 strings whatever the worker's local
time zone. On SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.connections import env_name, set_connection

CONN_ID = "archive_snapshot_db"
TABLE = "snapshot_archive"
START = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def archive_db(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    import sqlalchemy as sa

    from airflow_provider_imagesearch.archive import sql_engine

    if request.param == "sqlite":
        set_connection(monkeypatch, CONN_ID, conn_type="sqlite", host=str(tmp_path / "archive.db"))
    else:
        monkeypatch.setenv(env_name(CONN_ID), request.getfixturevalue("postgres_uri"))
    engine = sql_engine(CONN_ID)
    with engine.begin() as connection:
        connection.execute(sa.text(f"DROP TABLE IF EXISTS {TABLE}"))
    yield engine
    engine.dispose()


@pytest.fixture
def shanghai_local_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A worker whose local time zone is not UTC (UTC+8)."""
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def _archive(engine: Any, run_id: str, names: list[str], fetched_at: datetime) -> None:
    from airflow_provider_imagesearch.archive import details_frame, write_frame

    details = [
        {"instance_name": name, "status": f"{run_id}:{name}", "registered_at": "2026-01-01T12:34:56.5+00:00"}
        for name in names
    ]
    frame = details_frame(details, run_id=run_id, logical_date=fetched_at, fetched_at=fetched_at)
    write_frame(engine, TABLE, frame, run_id)


def _snapshot() -> list[dict[str, Any]]:
    from airflow_provider_imagesearch.archive import latest_snapshot

    return latest_snapshot(db_conn_id=CONN_ID, table=TABLE)


def test_each_instance_is_read_from_its_own_newest_run_in_name_order(archive_db: Any) -> None:
    """Instances archived by different runs: each comes from the newest run that archived it, not only
    those of the newest run overall, and none from an older run of it."""
    _archive(archive_db, "run-1", ["zeta", "alpha", "mid"], START)
    _archive(archive_db, "run-2", ["mid", "zeta"], START + timedelta(hours=1))
    _archive(archive_db, "run-3", ["zeta"], START + timedelta(hours=2))

    snapshot = _snapshot()

    assert [(row["instance_name"], row["run_id"], row["status"]) for row in snapshot] == [
        ("alpha", "run-1", "run-1:alpha"),
        ("mid", "run-2", "run-2:mid"),
        ("zeta", "run-3", "run-3:zeta"),
    ]


def test_timestamps_are_utc_iso_strings_on_a_worker_outside_utc(
    archive_db: Any, shanghai_local_time: None
) -> None:
    _archive(archive_db, "run-1", ["a"], START)

    (row,) = _snapshot()

    assert row["fetched_at"] == "2026-03-04T05:06:07.890123+00:00"
    assert row["logical_date"] == "2026-03-04T05:06:07.890123+00:00"
    assert row["registered_at"] == "2026-01-01T12:34:56.500000+00:00"
    assert row["expires_at"] is None


def test_fifty_instances_come_in_name_order_whatever_order_they_were_written_in(archive_db: Any) -> None:
    """Written in reverse name order, every other one archived again later: PostgreSQL's join returns
    them out of order unless the query orders them."""
    names = [f"instance-{i:02d}" for i in range(50)][::-1]
    _archive(archive_db, "run-1", names, START)
    _archive(archive_db, "run-2", names[::2], START + timedelta(hours=1))

    snapshot = _snapshot()

    assert [row["instance_name"] for row in snapshot] == sorted(names)
    assert {row["instance_name"]: row["run_id"] for row in snapshot} == {
        name: "run-2" if index % 2 == 0 else "run-1" for index, name in enumerate(names)
    }
