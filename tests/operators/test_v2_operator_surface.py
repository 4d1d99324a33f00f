"""The v2 operators' ``instance_name`` alias and console link (issue 20, suspicions settled).

The README called ``instance_name`` an alias of ``service_name`` on the v2 operators, but passing it raised
``TypeError``; and the v2 operators' console link opened the v1 instance page.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from airflow.sdk import DAG

from airflow_provider_imagesearch.emulator import DEFAULT_REGION, Emulator
from airflow_provider_imagesearch.operators.imagesearch import (
    InstanceDetailOperator,
)
from airflow_provider_imagesearch.operators.imagesearch_v2 import (
    ImageSearchV2CheckDataOperator,
)
from tests.support.dagrun import run_dag, xcom

pytestmark = pytest.mark.usefixtures("airflow_db")

LINK_KEY = "_link_ImageSearchConsoleLink"


def _run(dag_id: str, operator: type, **kwargs: Any) -> Any:
    kwargs.setdefault("retries", 2)
    kwargs.setdefault("retry_delay", timedelta(seconds=0))
    with DAG(dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
        operator(task_id="op", **kwargs)
    return run_dag(dag)


# --- suspicions: the v2 operators' instance_name alias and console link -------------------------------------


def test_v2_operators_take_instance_name_as_an_alias_of_service_name() -> None:
    op = ImageSearchV2CheckDataOperator(task_id="x", instance_name="shop", item_id="a")
    assert op.service_name == "shop"
    assert op.instance_name == "shop"
    with pytest.raises(ValueError, match="service_name"):
        ImageSearchV2CheckDataOperator(task_id="y", instance_name="shop", service_name="other", item_id="a")
    with pytest.raises(ValueError, match="service_name"):
        ImageSearchV2CheckDataOperator(task_id="z", item_id="a")


def test_v2_console_link_is_not_the_v1_instance_page(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    emulator.upsert_v2_service("linked", items={})
    emulator.upsert_instance("linked")
    conn_id = imagesearch_conn("token")
    v2 = _run(
        "v2_link",
        ImageSearchV2CheckDataOperator,
        service_name="linked",
        item_id="a",
        imagesearch_conn_id=conn_id,
    )
    v1 = _run("v1_link", InstanceDetailOperator, instance_name="linked", imagesearch_conn_id=conn_id)
    v1_link, v2_link = xcom(v1, "op", key=LINK_KEY), xcom(v2, "op", key=LINK_KEY)
    assert "#/imagesearch/instance" in v1_link
    assert "#/imagesearch/instance" not in v2_link
    assert v2_link.startswith("https://console.huaweicloud.com/")
    assert f"region={DEFAULT_REGION}" in v2_link
