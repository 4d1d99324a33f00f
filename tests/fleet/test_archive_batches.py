"""The example archive DAG in batches: one wait and one bulk read per batch of instances."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from tests.dags.test_archive_dag import load_dag
from tests.support.dagrun import task_instances, xcom

pytestmark = pytest.mark.usefixtures("airflow_db")


def test_seven_instances_in_batches_of_three(
    imagesearch_conn: Callable[..., str],
    emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    import sqlalchemy as sa

    database = tmp_path / "archive.db"
    monkeypatch.setenv("AIRFLOW_CONN_BATCH_DB", json.dumps({"conn_type": "sqlite", "host": str(database)}))
    names = [f"batch-{index}" for index in range(7)]
    emulator.control.upsert_instances(
        [{"name": name, "project_id": DEFAULT_PROJECT_ID, "status": "NORMAL"} for name in names]
    )
    conf = {
        "instance_names": names,
        "batch_size": 3,
        "imagesearch_conn_id": imagesearch_conn("token"),
        "db_conn_id": "batch_db",
    }
    dr = load_dag().test(run_conf=conf)
    assert str(dr.state) == "success"
    tis = task_instances(dr)
    for task_id in ("wait_until_normal", "read_details"):
        assert [tis[(task_id, i)].rendered_map_index for i in range(3)] == [
            "batch-0 +2 more",
            "batch-3 +2 more",
            "batch-6",
        ]
        assert (task_id, 3) not in tis
    # Each batch's XCom lists every one of its instances with its status.
    assert [[d["instance_name"] for d in xcom(dr, "read_details", i)] for i in range(3)] == [
        names[0:3],
        names[3:6],
        names[6:],
    ]
    assert xcom(dr, "archive")["rows_written"] == 7
    engine = sa.create_engine(f"sqlite:///{database}")
    with engine.connect() as connection:
        archived = connection.execute(sa.text("SELECT instance_name FROM imagesearch_instance_archive")).all()
    engine.dispose()
    assert sorted(row[0] for row in archived) == names
