"""What the archive's SQLite insert stores: UTC timestamps, in a table whose name is an SQLite keyword.

On SQLite the archive inserts prepared values itself (not through SQLAlchemy's per-row binding):

* a ``fetched_at`` given in another zone (+02:00) is stored converted to UTC, as on PostgreSQL
  (``timestamptz``) and as ``latest_snapshot`` reads it back; SQLAlchemy's SQLite DateTime would store
  the local wall time, two hours off;
* the INSERT is compiled for SQLite, so a valid table name that is an SQLite keyword
  (``transaction``) is quoted there as in the CREATE TABLE, and the archive succeeds.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas  # noqa: F401  (its one-time import at collection, not in a test's call time)
import sqlalchemy as sa

from airflow_provider_imagesearch.archive import details_frame, write_frame

PLUS_TWO = timezone(timedelta(hours=2))


def test_a_fetched_at_in_another_zone_is_stored_as_utc(tmp_path: Path) -> None:
    fetched = datetime(2026, 3, 4, 7, 6, 7, 123456, tzinfo=PLUS_TWO)
    frame = details_frame([{"instance_name": "a"}], run_id="run-1", logical_date=None, fetched_at=fetched)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'archive.db'}")
    try:
        write_frame(engine, "archive", frame, "run-1")
        with engine.connect() as connection:
            stored = connection.exec_driver_sql("SELECT fetched_at FROM archive").scalar()
    finally:
        engine.dispose()
    assert stored == "2026-03-04 05:06:07.123456"


def test_a_table_named_by_an_sqlite_keyword_is_archived(tmp_path: Path) -> None:
    frame = details_frame([{"instance_name": "a"}, {"instance_name": "b"}], run_id="run-1", logical_date=None)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'archive.db'}")
    try:
        result = write_frame(engine, "transaction", frame, "run-1")
        with engine.connect() as connection:
            names = connection.exec_driver_sql('SELECT instance_name FROM "transaction" ORDER BY 1').scalars()
            assert list(names) == ["a", "b"]
    finally:
        engine.dispose()
    assert result.to_dict() == {
        "table": "transaction",
        "run_id": "run-1",
        "rows_written": 2,
        "rows_replaced": 0,
    }
