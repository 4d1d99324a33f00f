"""What an archive run returns as a dict: the example archive task's XCom (``archive_details(...).to_dict()``).

``{"table", "run_id", "rows_written", "rows_replaced"}``: the table written, the DAG run the rows belong
to, the rows inserted, and the rows of an earlier try of that run replaced. ``archive_details`` returns
``write_frame``'s result as is; it is written here through ``write_frame`` on a SQLite engine, without
the Airflow connection lookup.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from airflow_provider_imagesearch.archive import details_frame, write_frame

DETAILS = [
    {"instance_name": "shop-a", "status": "NORMAL"},
    {"instance_name": "shop-b", "status": "CREATION"},
]


def test_an_archive_returns_the_table_run_and_row_counts(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'archive.db'}")
    try:
        frame = details_frame(DETAILS, run_id="run-1", logical_date=None)
        first = write_frame(engine, "fleet_archive", frame, "run-1")
        assert first.to_dict() == {
            "table": "fleet_archive",
            "run_id": "run-1",
            "rows_written": 2,
            "rows_replaced": 0,
        }
        again = write_frame(engine, "fleet_archive", frame, "run-1")
        assert again.to_dict() == {
            "table": "fleet_archive",
            "run_id": "run-1",
            "rows_written": 2,
            "rows_replaced": 2,
        }
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT count(*) FROM fleet_archive").scalar() == 2
    finally:
        engine.dispose()
