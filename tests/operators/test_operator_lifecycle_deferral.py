"""What the instance lifecycle operators (create and delete, ``deferrable=True``) hand the triggerer, and
what they make of its event.

Run with ``execute`` against the emulator, without a DAG run: after its call, the operator defers to the
status trigger with the wait's rule (``NORMAL`` for a create, gone for a delete), its ``poke_interval``, how
long a missing instance is waited for (a new instance may show up late: two intervals, at least a minute; a
deleted one not at all), the wait's deadline and the task's deferral timeout (none with ``timeout=None``).
The real trigger then answers on its own event loop, and ``execute_complete`` turns its event into the XCom:
the created instance's details, None for a delete; a failure event fails the task at once.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from airflow_provider_imagesearch.models import TERMINAL_FAILURE_STATUSES
from airflow_provider_imagesearch.operators.imagesearch import (
    ImageSearchCreateInstanceOperator,
    ImageSearchDeleteInstanceOperator,
)
from airflow_provider_imagesearch.version_compat import AirflowFailException
from tests.support.deferral import deferral
from tests.support.triggers import first_event


def _new_name() -> str:
    """A name no other test used: the emulator lives for the whole session."""
    return f"new-{uuid.uuid4().hex[:8]}"


def _create(conn_id: str, name: str, **kwargs: Any) -> ImageSearchCreateInstanceOperator:
    return ImageSearchCreateInstanceOperator(
        task_id="create",
        instance_name=name,
        tags=["color"],
        imagesearch_conn_id=conn_id,
        deferrable=True,
        **kwargs,
    )


def test_a_deferred_create_waits_for_normal_and_gives_a_new_instance_time_to_show_up(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    name = _new_name()
    before = time.time()
    deferred = deferral(_create(imagesearch_conn("aksk"), name, poke_interval=40, timeout=900))
    after = time.time()
    classpath, kwargs = deferred.trigger.serialize()
    assert classpath.endswith(".ImageSearchInstanceStatusTrigger")
    assert kwargs["instance_name"] == name
    assert kwargs["target_statuses"] == ["NORMAL"]
    assert kwargs["failure_statuses"] == sorted(s.value for s in TERMINAL_FAILURE_STATUSES)
    assert kwargs["wait_for_gone"] is False
    assert kwargs["poll_interval"] == 40
    assert before + 80 <= kwargs["not_found_deadline"] <= after + 80  # two intervals: more than a minute
    assert before + 900 <= kwargs["timeout_at"] <= after + 900
    assert deferred.method_name == "execute_complete"
    assert deferred.timeout == timedelta(seconds=900)


def test_a_new_instance_is_waited_for_at_least_a_minute(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    name = _new_name()
    before = time.time()
    deferred = deferral(_create(imagesearch_conn("aksk"), name, poke_interval=5, timeout=None))
    after = time.time()
    kwargs = deferred.trigger.serialize()[1]
    assert before + 60 <= kwargs["not_found_deadline"] <= after + 60
    assert kwargs["timeout_at"] is None, "timeout=None: no limit"
    assert deferred.timeout is None


def test_the_triggers_event_makes_the_created_instances_details_the_xcom(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    name = _new_name()
    operator = _create(imagesearch_conn("aksk"), name, poke_interval=0.05, timeout=60)
    deferred = deferral(operator)
    emulator.upsert_instance(name, project_id=DEFAULT_PROJECT_ID, tags=["color"], status="NORMAL")
    result = operator.execute_complete({}, first_event(deferred.trigger))
    assert (result["instance_name"], result["status"], result["tags"]) == (name, "NORMAL", ["color"])


def test_a_failure_event_fails_the_create_at_once(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    name = _new_name()
    operator = _create(imagesearch_conn("aksk"), name, poke_interval=0.05, timeout=60)
    deferred = deferral(operator)
    emulator.upsert_instance(name, project_id=DEFAULT_PROJECT_ID, tags=["color"], status="CREATION_FAILD")
    with pytest.raises(AirflowFailException, match=name):
        operator.execute_complete({}, first_event(deferred.trigger))


def test_a_deferred_delete_waits_for_the_instance_to_be_gone(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    name = _new_name()
    emulator.upsert_instance(name, project_id=DEFAULT_PROJECT_ID, status="NORMAL")
    operator = ImageSearchDeleteInstanceOperator(
        task_id="delete",
        instance_name=name,
        imagesearch_conn_id=imagesearch_conn("aksk"),
        deferrable=True,
        poke_interval=0.05,
        timeout=120,
    )
    before = time.time()
    deferred = deferral(operator)
    after = time.time()
    kwargs = deferred.trigger.serialize()[1]
    assert kwargs["wait_for_gone"] is True
    assert kwargs["poll_interval"] == 0.05
    assert before <= kwargs["not_found_deadline"] <= after  # gone is the goal: no grace
    assert before + 120 <= kwargs["timeout_at"] <= after + 120
    assert deferred.timeout == timedelta(seconds=120)
    emulator.control.delete_instance(DEFAULT_PROJECT_ID, name)
    assert operator.execute_complete({}, first_event(deferred.trigger)) is None


def test_a_trigger_that_ended_without_an_event_fails_naming_the_instance(
    imagesearch_conn: Callable[..., str],
) -> None:
    from airflow_provider_imagesearch.version_compat import AirflowException

    operator = _create(imagesearch_conn("aksk"), "named-here")
    with pytest.raises(AirflowException, match=r"^Trigger for named-here ended without an event$"):
        operator.execute_complete({}, None)
