"""The example archive DAG records instances in a failure status: the ImageSearch page's history needs them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from tests.support.dagrun import states

pytestmark = pytest.mark.usefixtures("airflow_db")

REPO = Path(__file__).resolve().parents[2]
DAG_FILE = REPO / "dags" / "imagesearch_instance_archive.py"


def load_dag() -> Any:
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.1 (make test-compat)
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

    bag = DagBag(dag_folder=str(DAG_FILE))
    assert not bag.import_errors, bag.import_errors
    return bag.dags["imagesearch_instance_archive"]


def test_an_abnormal_instance_is_archived_with_its_status_and_the_run_fails_after(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    imagesearch_conn: Callable[..., str],
    emulator: Emulator,
) -> None:
    import sqlalchemy as sa

    emulator.upsert_instance("fleet-ok", status="NORMAL")
    emulator.upsert_instance("fleet-sick", status="ABNORMAL")
    emulator.upsert_instance("fleet-owing", status="ARREARAGE")
    emulator.upsert_instance("fleet-new", status="CREATION")
    database = tmp_path / "archive.db"
    monkeypatch.setenv(
        "AIRFLOW_CONN_FAILURES_ARCHIVE_DB", json.dumps({"conn_type": "sqlite", "host": str(database)})
    )
    dr = load_dag().test(
        run_conf={
            "instance_names": ["fleet-ok", "fleet-sick", "fleet-owing", "fleet-new"],
            "imagesearch_conn_id": imagesearch_conn("token"),
            "db_conn_id": "failures_archive_db",
            "batch_size": 2,
        }
    )
    run_states = states(dr)
    # Each batch's wait is skipped (not every instance is NORMAL), every status is archived, and then
    # check_fleet fails the run: it is red, naming the instances in a failure status (not CREATION).
    assert run_states[("wait_until_normal", 0)][0] == "skipped", run_states
    assert run_states[("archive", -1)][0] == "success", run_states
    assert run_states[("check_fleet", -1)] == ("failed", 1), run_states  # not retried
    assert str(dr.state) == "failed", run_states
    engine = sa.create_engine(f"sqlite:///{database}")
    with engine.connect() as connection:
        archived = dict(
            connection.execute(
                sa.text("SELECT instance_name, status FROM imagesearch_instance_archive")
            ).all()
        )
    engine.dispose()
    assert archived == {
        "fleet-ok": "NORMAL",
        "fleet-sick": "ABNORMAL",
        "fleet-owing": "ARREARAGE",
        "fleet-new": "CREATION",
    }
