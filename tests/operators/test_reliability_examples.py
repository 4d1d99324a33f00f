"""The examples of ``docs/operators-reliability.rst``, run against the emulator so that they cannot rot.

The documentation includes the code between the ``[START howto_reliability_...]`` / ``[END ...]`` markers.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from airflow.sdk import DAG

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from tests.support.dagrun import run_dag, states, xcom

pytestmark = pytest.mark.usefixtures("airflow_db")


def writes_dag(conn_id: str) -> DAG:
    # [START howto_reliability_writes]
    from airflow_provider_imagesearch.operators.imagesearch import ImageSearchCreateInstanceOperator
    from airflow_provider_imagesearch.operators.imagesearch_v2 import (
        ImageSearchV2AddDataOperator,
        ImageSearchV2DeleteDataOperator,
    )

    with DAG(
        "imagesearch_reliable_writes", schedule=None, start_date=datetime(2026, 1, 1), catchup=False
    ) as dag:
        # Task retries are safe: a retry (or a rerun after a clear) meets its earlier try's effect and
        # succeeds. The instance is adopted by its marker; another instance of the name fails the task.
        create = ImageSearchCreateInstanceOperator(
            task_id="create",
            instance_name="catalog-2026",
            description="spring catalogue",
            tags=["color"],
            retries=2,
            retry_delay=timedelta(seconds=30),
            imagesearch_conn_id=conn_id,
        )
        # Without force, an existing item is not overwritten; the item this task added is recognised.
        add = ImageSearchV2AddDataOperator(
            task_id="add",
            service_name="shop",
            item_id="shoe-1",
            image_url="https://cdn.example/shoe-1.jpg",
            custom_tags={"season": "old"},
            retries=2,
            imagesearch_conn_id=conn_id,
        )
        # Deletes every item matching, in batches of 100; a retry only finishes the job.
        purge = ImageSearchV2DeleteDataOperator(
            task_id="purge",
            service_name="shop",
            custom_tags={"season": ["old"]},
            retries=2,
            imagesearch_conn_id=conn_id,
        )
        create >> add >> purge
    # [END howto_reliability_writes]
    return dag


def fleet_dag(conn_id: str) -> DAG:
    # [START howto_reliability_fleet]
    from airflow_provider_imagesearch.sensors.imagesearch import ImageSearchInstanceStatusSensor

    with DAG("imagesearch_fleet_ready", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
        # "shop-a" twice: one instance, read once per round; the XCom has one entry per position.
        ImageSearchInstanceStatusSensor(
            task_id="ready",
            instance_names=["shop-a", "shop-b", "shop-a"],
            mode="reschedule",
            poke_interval=30,
            timeout=3600,
            imagesearch_conn_id=conn_id,
        )
    # [END howto_reliability_fleet]
    return dag


def test_the_writes_example_runs_through_lost_answers(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    emulator.upsert_v2_service("shop", items={})
    dag = writes_dag(imagesearch_conn("token"))
    for task_id in ("create", "add", "purge"):
        dag.get_task(task_id).retry_delay = timedelta(seconds=0)
    dag.get_task("create").wait_timeout = 60  # type: ignore[attr-defined]
    dag.get_task("create").poke_interval = 0.2  # type: ignore[attr-defined]
    # The existence check, then the create: its answer is lost (the instance is created all the same).
    emulator.set_faults(sequence=["ok", "drop_after"])
    try:
        dr = run_dag(dag)
        assert {key: state for key, (state, _) in states(dr).items()} == {
            ("create", -1): "success",
            ("add", -1): "success",
            ("purge", -1): "success",
        }
        assert xcom(dr, "create")["status"] == "NORMAL"
        creates = [
            r for r in emulator.requests_log() if r["method"] == "POST" and r["path"].endswith("/service")
        ]
        assert len(creates) == 1
        assert xcom(dr, "purge")["delete_num"] == 1
    finally:
        emulator.control.delete_instance(DEFAULT_PROJECT_ID, "catalog-2026")


def test_the_fleet_example_waits_for_each_instance_once(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    emulator.upsert_instance("shop-a")
    emulator.upsert_instance("shop-b")
    dr = run_dag(fleet_dag(imagesearch_conn("token")))
    assert states(dr) == {("ready", -1): ("success", 1)}
    assert [d["instance_name"] for d in xcom(dr, "ready")] == ["shop-a", "shop-b", "shop-a"]
