"""The documented defaults of the instance lifecycle and delete operators, as a task left at its defaults
behaves (the eighth mutation sitting's survivors: no test ran these operators without the arguments).

* A create or delete instance task that defers polls the status every 30 s and gives up after an hour
  (``poke_interval`` and ``timeout``, docs/operators.rst).
* Deleting an instance or an image that is already gone succeeds (``missing_ok=True``): a rerun of a
  delete task whose first try took effect is not a failure.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from airflow_provider_imagesearch.emulator.routes import R_DELETE_IMAGE, R_DELETE_INSTANCE, R_QUERY
from airflow_provider_imagesearch.operators.imagesearch import (
    ImageSearchCreateInstanceOperator,
    ImageSearchDeleteImageOperator,
    ImageSearchDeleteInstanceOperator,
)
from tests.support.deferral import deferral


@pytest.fixture
def conn(imagesearch_conn: Callable[..., str]) -> str:
    return imagesearch_conn("token", conn_id="imagesearch_k8_defaults")


def test_a_deferred_create_polls_every_30_s_for_at_most_an_hour(conn: str, emulator: Emulator) -> None:
    operator = ImageSearchCreateInstanceOperator(
        task_id="create", instance_name="k8-defaults", imagesearch_conn_id=conn, deferrable=True
    )
    try:
        deferred = deferral(operator)
        assert deferred.trigger.poll_interval == 30.0
        assert deferred.timeout == timedelta(hours=1)
    finally:
        emulator.control.delete_instance(DEFAULT_PROJECT_ID, "k8-defaults")


def test_deleting_an_instance_already_gone_succeeds(conn: str, emulator: Emulator) -> None:
    operator = ImageSearchDeleteInstanceOperator(
        task_id="delete", instance_name="k8-never-there", imagesearch_conn_id=conn, deferrable=False
    )
    operator.execute({})
    # Read first: found gone (v1 answers 400), so nothing is deleted and the task succeeds.
    assert [(r["route"], r["status"]) for r in emulator.requests_log()] == [(R_QUERY, 400)]
    assert R_DELETE_INSTANCE not in {r["route"] for r in emulator.requests_log()}


def test_deleting_an_image_already_gone_succeeds(conn: str, emulator: Emulator) -> None:
    emulator.upsert_instance("k8-library", status="NORMAL")
    operator = ImageSearchDeleteImageOperator(
        task_id="delete",
        instance_name="k8-library",
        path="https://img.example/gone.jpg",
        imagesearch_conn_id=conn,
    )
    assert operator.execute({}) is False  # the XCom: the image was not there
    assert [r["status"] for r in emulator.requests_log() if r["route"] == R_DELETE_IMAGE] != []
