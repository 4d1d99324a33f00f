"""On SQLite the archive stores its timestamps as the text SQLAlchemy's own DateTime type stores.

SQLite has no timestamp type: a SQL query of the table (``WHERE fetched_at >= '...'``, ``ORDER BY``) compares
the stored text. Rows the archive writes must carry the same ``YYYY-MM-DD HH:MM:SS.ffffff`` UTC text a row
written through SQLAlchemy carries, not the driver's own rendering of a datetime (``...+00:00``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from airflow_provider_imagesearch.archive import details_frame, write_frame

FETCHED = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
LOGICAL = datetime(2026, 3, 4, 0, 0, 0, 250000, tzinfo=UTC)


def test_archived_timestamps_are_stored_as_sqlalchemy_sqlite_text(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'archive.db'}")
    details: list[dict[str, Any]] = [
        {"instance_name": "a", "status": "NORMAL", "registered_at": "2026-01-02T03:04:05.123456+08:00"},
        {"instance_name": "b", "status": "NORMAL", "registered_at": None},
    ]
    frame = details_frame(details, run_id="run-1", logical_date=LOGICAL, fetched_at=FETCHED)
    result = write_frame(engine, "archive", frame, "run-1")
    assert result.rows_written == 2

    with engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT instance_name, registered_at, fetched_at, logical_date FROM archive ORDER BY instance_name"
        ).all()
        assert [tuple(row) for row in rows] == [
            ("a", "2026-01-01 19:04:05.123456", "2026-03-04 05:06:07.000000", "2026-03-04 00:00:00.250000"),
            ("b", None, "2026-03-04 05:06:07.000000", "2026-03-04 00:00:00.250000"),
        ]
        # A query bound through SQLAlchemy's DateTime compares its text with the stored text.
        since = connection.execute(
            sa.text("SELECT count(*) FROM archive WHERE fetched_at >= :since").bindparams(
                sa.bindparam("since", FETCHED, type_=sa.DateTime())
            )
        ).scalar()
        assert since == 2, "every row fetched at FETCHED is found by a query from FETCHED"
    engine.dispose()
