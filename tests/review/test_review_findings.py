"""Reproductions of defects found in the review of 2d6f231..HEAD. Each test FAILS on the reviewed code."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from airflow.sdk import DAG

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.operators.imagesearch import (
    ImageSearchCreateInstanceOperator,
)
from tests.support.dagrun import run_dag, states

pytestmark = pytest.mark.usefixtures("airflow_db")


def _api_requests(emulator: Emulator) -> list[dict[str, Any]]:
    return [r for r in emulator.requests_log() if r["path"].startswith("/v1/")]


def test_if_exists_fail_adopts_a_foreign_instance_after_a_transient_first_try(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    """F1: an instance that existed BEFORE the task ran is adopted on try 2 despite if_exists='fail'.

    Try 1's existence check meets one 503 (max_attempts=1): a transient failure, retried. Try 2 finds the
    pre-existing instance (created by someone else), try_number > 1 and equal tags -> "adopting it as an
    earlier try created it". The lifecycle DAG would then fill and DELETE an instance it never created.
    """
    emulator.upsert_instance("foreign", tags=["color"])
    emulator.set_faults(sequence=["503_json"])
    with DAG("review_foreign_adopt", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        ImageSearchCreateInstanceOperator(
            task_id="op",
            instance_name="foreign",
            tags=["color"],
            if_exists="fail",
            wait_for_completion=False,
            retries=1,
            retry_delay=timedelta(seconds=0),
            imagesearch_conn_id=imagesearch_conn("token", max_attempts=1),
        )
    dr = run_dag(dag)
    creates = [r for r in _api_requests(emulator) if r["method"] == "POST" and r["path"].endswith("/service")]
    assert creates == [], "nothing was created by this task"
    # The instance predates the task: if_exists='fail' must fail the task, not adopt it.
    assert states(dr) == {("op", -1): ("failed", 2)}


def test_a_negative_poke_interval_is_refused_before_the_delete_is_sent(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    """F4: README "Every argument is checked before the first request, naming the field" is false.

    ``poke_interval=-1`` is accepted; the DELETE goes out, then the worker wait dies in ``time.sleep(-1)``
    with a bare ValueError that names no field (deferred, the trigger would poll in a tight loop).
    """
    from airflow_provider_imagesearch.operators.imagesearch import ImageSearchDeleteInstanceOperator

    emulator.upsert_instance("neg-poke", status="NORMAL")
    op = ImageSearchDeleteInstanceOperator(
        task_id="op",
        instance_name="neg-poke",
        poke_interval=-1,
        deferrable=False,
        imagesearch_conn_id=imagesearch_conn("token"),
    )
    try:
        op.execute({})  # type: ignore[arg-type]
        outcome = "returned"
    except Exception as error:
        outcome = f"{type(error).__name__}: {error}"
    deletes = [r for r in _api_requests(emulator) if r["method"] == "DELETE"]
    assert not deletes, (len(deletes), outcome)
    assert "poke_interval" in outcome, outcome
