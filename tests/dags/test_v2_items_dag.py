"""The v2 items example DAG (each v2 data operator once) in Airflow, against the emulator."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from tests.support.dagrun import states, xcom

pytestmark = pytest.mark.usefixtures("airflow_db")

REPO = Path(__file__).resolve().parents[2]
DAG_FILE = REPO / "dags" / "imagesearch_v2_items.py"


@pytest.mark.parametrize("auth", ["iam_password", "aksk"])
def test_v2_items_end_to_end(auth: str, imagesearch_conn: Callable[..., str], emulator: Emulator) -> None:
    from airflow.dag_processing.dagbag import DagBag

    from airflow_provider_imagesearch.emulator.routes_v2 import R2_ADD, R2_CHECK, R2_DELETE, R2_UPDATE

    emulator.upsert_v2_service("catalog", custom_tags=["color"], custom_num_tags=["price"], items={})
    bag = DagBag(dag_folder=str(DAG_FILE))
    assert not bag.import_errors, bag.import_errors
    dag = bag.dags["imagesearch_v2_items"]
    emulator.reset_stats()
    dr = dag.test(run_conf={"imagesearch_conn_id": imagesearch_conn(auth)})
    assert str(dr.state) == "success", states(dr)
    assert xcom(dr, "add_item")["item_id"] == "sku-red-shirt"
    assert xcom(dr, "check_item")["existed"] is True
    hits = xcom(dr, "search_similar")
    assert hits[0]["id"] == "sku-red-shirt"
    assert hits[0]["desc"] == "Red shirt, organic cotton"  # the update took effect before the search
    assert xcom(dr, "delete_item")["deleted_ids"] == ["sku-red-shirt"]
    routes = [
        r["route"] for r in emulator.requests_log() if r["route"] in (R2_ADD, R2_CHECK, R2_UPDATE, R2_DELETE)
    ]
    assert routes == [R2_ADD, R2_CHECK, R2_UPDATE, R2_DELETE]
    assert emulator.stats()["auth_failures"] == 0
