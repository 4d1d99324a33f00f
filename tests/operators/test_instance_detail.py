"""InstanceDetailOperator in real Airflow (dag.test()) against the emulator."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest
from airflow.sdk import DAG

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from airflow_provider_imagesearch.operators.imagesearch import InstanceDetailOperator
from tests.support.airflow_version import PARTIAL_TAKES_OPERATOR_DEFAULTS
from tests.support.dagrun import run_dag, states, task_instances, xcom

pytestmark = pytest.mark.usefixtures("airflow_db")

REGISTERED_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
EXPIRES_MS = 1_798_761_600_000  # 2027-01-01T00:00:00Z


def _dag(dag_id: str, **task_kwargs: object) -> DAG:
    with DAG(dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
        InstanceDetailOperator(task_id="details", **task_kwargs)  # type: ignore[arg-type]
    return dag


def test_xcom_for_a_normal_instance(imagesearch_conn: Callable[..., str], emulator: Emulator) -> None:
    emulator.upsert_instance(
        "shop-main",
        status="NORMAL",
        description="main shop",
        tags=["color", "size"],
        register_date_ms=REGISTERED_MS,
        expired_date_ms=EXPIRES_MS,
    )
    dag = _dag("op_normal", instance_name="shop-main", imagesearch_conn_id=imagesearch_conn("iam_password"))
    dr = run_dag(dag)
    assert states(dr) == {("details", -1): ("success", 1)}
    assert xcom(dr, "details") == {
        "instance_name": "shop-main",
        "project_id": DEFAULT_PROJECT_ID,
        "status": "NORMAL",
        "domain": "General image search",
        "description": "main shop",
        "level": 30000000,
        "tags": ["color", "size"],
        "registered_at": "2026-01-01T00:00:00Z",
        "expires_at": "2027-01-01T00:00:00Z",
        "never_expires": False,
    }


def test_xcom_for_a_never_expiring_instance(imagesearch_conn: Callable[..., str], emulator: Emulator) -> None:
    emulator.upsert_instance("forever", status="NORMAL", expired_date_ms=-1)
    dr = run_dag(_dag("op_forever", instance_name="forever", imagesearch_conn_id=imagesearch_conn("aksk")))
    value = xcom(dr, "details")
    assert value["expires_at"] is None
    assert value["never_expires"] is True


def test_templated_fields_and_mapping_over_three_instances(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    names = ["map-a", "map-b", "map-c"]
    for name in names:
        emulator.upsert_instance(name, status="NORMAL")
    conn_id = imagesearch_conn("token", conn_id="mapped_conn")
    # Airflow 3.1-3.2 label mapped tasks by the operator's default template only when it is passed to
    # partial() (the README says so); from 3.3 the default alone must do it.
    label = {} if PARTIAL_TAKES_OPERATOR_DEFAULTS else {"map_index_template": "{{ task.instance_name }}"}
    with DAG("op_mapped", schedule=None, start_date=datetime(2026, 1, 1), params={"conn": conn_id}) as dag:
        InstanceDetailOperator.partial(
            task_id="details",
            imagesearch_conn_id="{{ params.conn }}",
            project_id="{{ '" + DEFAULT_PROJECT_ID + "' }}",
            **label,
        ).expand(instance_name=names)
    dr = run_dag(dag)
    tis = task_instances(dr)
    assert {key: str(ti.state) for key, ti in tis.items()} == {("details", i): "success" for i in range(3)}
    assert [xcom(dr, "details", i)["instance_name"] for i in range(3)] == names
    # The map index shows the instance name in the UI.
    assert [tis[("details", i)].rendered_map_index for i in range(3)] == names


def test_missing_instance_fails_without_retries(imagesearch_conn: Callable[..., str]) -> None:
    dag = _dag("op_missing", instance_name="ghost", imagesearch_conn_id=imagesearch_conn("token"), retries=3)
    dr = run_dag(dag)
    assert states(dr) == {("details", -1): ("failed", 1)}


def test_auth_failure_fails_without_retries(monkeypatch: pytest.MonkeyPatch, emulator: Emulator) -> None:
    from tests.support.connections import connection_fields, set_connection

    emulator.upsert_instance("shop-main", status="NORMAL")
    fields = connection_fields(emulator.url, "iam_password")
    fields["password"] = "not-the-password"
    conn_id = set_connection(monkeypatch, "bad_password", **fields)
    dr = run_dag(_dag("op_auth", instance_name="shop-main", imagesearch_conn_id=conn_id, retries=3))
    assert states(dr) == {("details", -1): ("failed", 1)}
    assert emulator.stats()["token_requests"] == 1


def test_transient_errors_use_task_retries(imagesearch_conn: Callable[..., str], emulator: Emulator) -> None:
    from datetime import timedelta

    emulator.upsert_instance("shop-main", status="NORMAL")
    emulator.set_faults(sequence=["503_json"] * 5)
    dag = _dag(
        "op_transient",
        instance_name="shop-main",
        imagesearch_conn_id=imagesearch_conn("token", max_attempts=5),
        retries=1,
        retry_delay=timedelta(seconds=0),
    )
    dr = run_dag(dag)
    # Five 503s exhaust the hook's budget on try 1; try 2 succeeds.
    assert states(dr) == {("details", -1): ("success", 2)}


def test_invalid_instance_name_fails_before_any_request(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    dr = run_dag(
        _dag("op_invalid", instance_name="Bad/Name", imagesearch_conn_id=imagesearch_conn("token"), retries=2)
    )
    assert states(dr) == {("details", -1): ("failed", 1)}
    assert emulator.stats()["requests_total"] == 0
