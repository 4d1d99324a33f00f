"""Contradicting or ignored arguments are refused before any request, naming them (issue 20, item 5)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from airflow.sdk import DAG

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.operators.imagesearch import (
    InstanceDetailOperator,
)
from airflow_provider_imagesearch.operators.imagesearch_v2 import (
    ImageSearchV2CheckDataOperator,
    ImageSearchV2DeleteDataOperator,
    ImageSearchV2SearchOperator,
)
from tests.support.dagrun import run_dag, states

pytestmark = pytest.mark.usefixtures("airflow_db")

URL = "https://cdn.example/q.jpg"


def _run(dag_id: str, operator: type, **kwargs: Any) -> Any:
    kwargs.setdefault("retries", 2)
    kwargs.setdefault("retry_delay", timedelta(seconds=0))
    with DAG(dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
        operator(task_id="op", **kwargs)
    return run_dag(dag)


# --- item 5: contradicting or ignored arguments -----------------------------------------------------------


@pytest.mark.parametrize(
    ("operator", "kwargs", "named"),
    [
        (ImageSearchV2SearchOperator, {"image_url": URL, "fetch_all": True, "offset": 20}, "offset"),
        (ImageSearchV2SearchOperator, {"image_url": URL, "max_items": 5}, "max_items"),
        (ImageSearchV2CheckDataOperator, {"item_id": "a", "limit": 5}, "limit"),
        (ImageSearchV2CheckDataOperator, {"item_id": "a", "custom_tags": {"c": ["x"]}}, "custom_tags"),
        (ImageSearchV2DeleteDataOperator, {"item_id": "a", "custom_tags": {"c": ["x"]}}, "custom_tags"),
        (ImageSearchV2DeleteDataOperator, {"custom_tags": {"c": ["x"]}, "force": True}, "force"),
    ],
    ids=[
        "search-offset-with-fetch_all",
        "search-max_items-without-fetch_all",
        "check-limit-with-item_id",
        "check-tags-with-item_id",
        "delete-tags-with-item_id",
        "delete-force-with-conditions",
    ],
)
def test_v2_arguments_that_would_be_ignored_are_refused_before_any_request(
    operator: type,
    kwargs: dict[str, Any],
    named: str,
    imagesearch_conn: Callable[..., str],
    emulator: Emulator,
) -> None:
    from airflow_provider_imagesearch.errors import ImageSearchValidationError

    emulator.upsert_v2_service("args", items={})
    conn_id = imagesearch_conn("token")
    op = operator(task_id="x", service_name="args", imagesearch_conn_id=conn_id, **kwargs)
    with pytest.raises(Exception, match=named) as raised:
        op.execute({})  # type: ignore[arg-type]
    assert (
        isinstance(raised.value, ImageSearchValidationError) or "AirflowFail" in type(raised.value).__name__
    )
    dr = _run(
        f"v2_args_{named}_{operator.__name__}",
        operator,
        service_name="args",
        imagesearch_conn_id=conn_id,
        **kwargs,
    )
    assert states(dr) == {("op", -1): ("failed", 1)}  # permanent: no task retry
    assert [r for r in emulator.requests_log() if r["path"].startswith("/v2/")] == []


def test_detail_operator_refuses_missing_without_instance_names(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    emulator.upsert_instance("one-only")
    dr = _run(
        "detail_missing_single",
        InstanceDetailOperator,
        instance_name="one-only",
        missing="skip",
        imagesearch_conn_id=imagesearch_conn("token"),
    )
    assert states(dr) == {("op", -1): ("failed", 1)}
    assert [r for r in emulator.requests_log() if r["path"].startswith("/v1/")] == []
