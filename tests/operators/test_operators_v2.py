"""The v2 (MMS) operators in real Airflow (dag.test()) against the emulator."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from airflow.sdk import DAG

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from airflow_provider_imagesearch.operators.imagesearch_v2 import (
    ImageSearchV2AddDataOperator,
    ImageSearchV2CheckDataOperator,
    ImageSearchV2DeleteDataOperator,
    ImageSearchV2SearchOperator,
    ImageSearchV2UpdateDataOperator,
)
from tests.support.airflow_version import PARTIAL_TAKES_OPERATOR_DEFAULTS
from tests.support.dagrun import run_dag, states, task_instances, xcom

pytestmark = pytest.mark.usefixtures("airflow_db")

LINK_KEY = "_link_ImageSearchConsoleLink"


def url(n: int) -> str:
    return f"https://cdn.example/shoe-{n}.jpg"


def test_v2_operators_end_to_end(imagesearch_conn: Callable[..., str], emulator: Emulator) -> None:
    emulator.upsert_v2_service("shop", custom_tags=["color"], custom_num_tags=["price"], items={})
    conn_id = imagesearch_conn("aksk")
    with DAG("v2_ops", schedule=None, start_date=datetime(2026, 1, 1), params={"svc": "shop"}) as dag:
        add = ImageSearchV2AddDataOperator.partial(
            task_id="add",
            service_name="{{ params.svc }}",
            imagesearch_conn_id=conn_id,
            custom_tags={"color": "red"},
            keywords=["shoe"],
            **({} if PARTIAL_TAKES_OPERATOR_DEFAULTS else {"map_index_template": "{{ task.instance_name }}"}),
        ).expand_kwargs(
            [
                {"item_id": f"s{n}", "image_url": url(n), "custom_num_tags": {"price": 10 * n}}
                for n in range(3)
            ]
        )
        update = ImageSearchV2UpdateDataOperator(
            task_id="update",
            service_name="shop",
            item_id="s2",
            custom_tags={"color": "blue"},
            imagesearch_conn_id=conn_id,
        )
        check = ImageSearchV2CheckDataOperator(
            task_id="check", service_name="shop", item_id="s2", imagesearch_conn_id=conn_id
        )
        search = ImageSearchV2SearchOperator(
            task_id="search",
            service_name="shop",
            image_url=url(1),
            custom_num_tags={"price": {"from": 5}},
            imagesearch_conn_id=conn_id,
        )
        by_keyword = ImageSearchV2SearchOperator(
            task_id="by_keyword",
            service_name="shop",
            search_type="KEYWORD",
            keywords=["shoe"],
            limit=1,
            fetch_all=True,
            imagesearch_conn_id=conn_id,
        )
        delete = ImageSearchV2DeleteDataOperator(
            task_id="delete", service_name="shop", custom_tags={"color": ["red"]}, imagesearch_conn_id=conn_id
        )
        add >> update >> [check, search, by_keyword] >> delete
    dr = run_dag(dag)
    assert {key: state for key, (state, _) in states(dr).items()} == {
        **{("add", i): "success" for i in range(3)},
        **{(t, -1): "success" for t in ("update", "check", "search", "by_keyword", "delete")},
    }
    tis = task_instances(dr)
    assert [tis[("add", i)].rendered_map_index for i in range(3)] == ["shop"] * 3  # the service labels
    assert [xcom(dr, "add", i)["item_id"] for i in range(3)] == ["s0", "s1", "s2"]
    assert xcom(dr, "update") == {"item_id": "s2", "result": "success"}
    assert xcom(dr, "check")["existed"] is True
    assert xcom(dr, "check")["item"]["custom_tags"] == {"color": "blue"}
    hits = xcom(dr, "search")
    assert hits[0]["id"] == "s1"  # the query image itself, and s0 (price 0) filtered out
    assert {h["id"] for h in hits} == {"s1", "s2"}
    assert sorted(h["id"] for h in xcom(dr, "by_keyword")) == ["s0", "s1", "s2"]  # paged by 1
    assert sorted(xcom(dr, "delete")["deleted_ids"]) == ["s0", "s1"]
    services = emulator.control.state()["v2_services"]
    (shop,) = [s for s in services if s["name"] == "shop" and s["project_id"] == DEFAULT_PROJECT_ID]
    items = shop["items"]
    assert sorted(items) == ["s2"]
    # v2 services have no known console page: the link opens the region's ImageSearch console, not the
    # v1 instance page (see test_arguments_and_messages.py).
    link = xcom(dr, "check", key=LINK_KEY)
    assert link == "https://console.huaweicloud.com/imagesearch/?region=cn-north-4&locale=en-us"


def _run(dag_id: str, operator: type, **kwargs: Any) -> Any:
    kwargs.setdefault("retries", 2)
    kwargs.setdefault("retry_delay", timedelta(seconds=0))
    with DAG(dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
        operator(task_id="op", **kwargs)
    return run_dag(dag)


@pytest.mark.parametrize(
    ("operator", "kwargs"),
    [
        (ImageSearchV2AddDataOperator, {"item_id": "x" * 257, "image_url": url(0)}),
        (ImageSearchV2AddDataOperator, {"item_id": "a"}),
        (ImageSearchV2SearchOperator, {"image_url": url(0), "limit": 1001}),
        (ImageSearchV2SearchOperator, {"image_url": url(0), "limit": 500, "offset": 501}),
        (ImageSearchV2DeleteDataOperator, {"item_id": "missing"}),
    ],
)
def test_bad_input_and_missing_items_fail_without_retries(
    operator: type, kwargs: dict[str, Any], imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    emulator.upsert_v2_service("strict", items={})
    dr = _run(
        f"v2_bad_{operator.__name__}",
        operator,
        service_name="strict",
        imagesearch_conn_id=imagesearch_conn("token"),
        **kwargs,
    )
    assert states(dr) == {("op", -1): ("failed", 1)}  # permanent: no task retry
