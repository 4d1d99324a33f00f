"""What the deferrable status sensors hand the triggerer, and what they make of its event.

Run with ``execute`` against the emulator, without a DAG run: a deferred wait first looks once itself, then
defers to the trigger with the wait's rule (targets, failure statuses, ``wait_for_gone``), its poll interval,
the deadline of a missing instance and of the whole wait (counted from the start of the wait), and the
task's own deferral timeout; a wait already past its ``timeout`` does not defer but times out (a skip
under ``soft_fail``). The trigger, run on its own event loop against the emulator, then answers with an
event: the sensor turns it into the task's XCom (and one log line per instance of a fleet), a retryable
error into a skip under ``never_fail`` only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.errors import ImageSearchWaitError
from airflow_provider_imagesearch.models import TERMINAL_FAILURE_STATUSES
from airflow_provider_imagesearch.sensors.imagesearch import (
    ImageSearchInstanceDeletedSensor,
    ImageSearchInstanceStatusSensor,
)
from airflow_provider_imagesearch.version_compat import AirflowSensorTimeout, AirflowSkipException
from tests.support.deferral import deferral
from tests.support.triggers import first_event


def _reads(emulator: Emulator, name: str) -> int:
    return sum(1 for r in emulator.requests_log() if r.get("instance") == name and r["method"] == "GET")


def _growing(emulator: Emulator, conn_id: str, **kwargs: Any) -> ImageSearchInstanceStatusSensor:
    """A deferrable sensor waiting for ``growing``, an instance that stays in CREATION for an hour."""
    emulator.upsert_instance("growing", status="CREATION", transition_after_s=3600.0, next_status="NORMAL")
    return ImageSearchInstanceStatusSensor(
        task_id="wait", instance_name="growing", imagesearch_conn_id=conn_id, deferrable=True, **kwargs
    )


def test_a_deferred_wait_looks_once_then_hands_the_trigger_its_rule_and_deadlines(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    sensor = _growing(
        emulator,
        imagesearch_conn("aksk"),
        poke_interval=7,
        timeout=600,
        not_found_grace=45,
        max_consecutive_errors=3,
    )
    before = time.time()
    deferred = deferral(sensor)
    after = time.time()
    assert _reads(emulator, "growing") == 1, "one synchronous look before deferring"
    classpath, kwargs = deferred.trigger.serialize()
    assert classpath.endswith(".ImageSearchInstanceStatusTrigger")
    assert kwargs["instance_name"] == "growing"
    assert kwargs["target_statuses"] == ["NORMAL"]
    assert kwargs["failure_statuses"] == sorted(s.value for s in TERMINAL_FAILURE_STATUSES)
    assert kwargs["wait_for_gone"] is False
    assert kwargs["poll_interval"] == 7
    assert kwargs["max_consecutive_errors"] == 3
    assert before + 45 <= kwargs["not_found_deadline"] <= after + 45
    assert before + 600 <= kwargs["timeout_at"] <= after + 600
    assert deferred.method_name == "execute_complete"
    assert 600 - (after - before) - 1 <= deferred.timeout.total_seconds() <= 600


def test_a_deferred_wait_with_timeout_none_uses_airflows_default_sensor_timeout(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    from airflow import __version__ as airflow_version
    from packaging.version import Version

    from airflow_provider_imagesearch.version_compat import conf

    emulator.upsert_instance("growing", status="CREATION", transition_after_s=3600.0, next_status="NORMAL")
    arguments: dict[str, Any] = {
        "task_id": "wait",
        "instance_name": "growing",
        "imagesearch_conn_id": imagesearch_conn("aksk"),
        "deferrable": True,
        "timeout": None,
    }
    if Version(airflow_version).release < (3, 3):
        # Airflow before 3.3 refuses a sensor without a timeout when the DAG is parsed: nothing defers.
        with pytest.raises(Exception, match="timeout"):
            ImageSearchInstanceStatusSensor(**arguments)
        return
    sensor = ImageSearchInstanceStatusSensor(**arguments)
    default = conf.getfloat("sensors", "default_timeout")  # 7 days unless configured
    before = time.time()
    deferred = deferral(sensor)
    after = time.time()
    assert before + default <= deferred.trigger.serialize()[1]["timeout_at"] <= after + default
    assert default - (after - before) - 1 <= deferred.timeout.total_seconds() <= default


def test_a_deferred_fleet_wait_hands_one_trigger_every_instance(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    for name in ("fleet-a", "fleet-b"):
        emulator.upsert_instance(name, status="DELETING", transition_after_s=3600.0, next_status=None)
    sensor = ImageSearchInstanceDeletedSensor(
        task_id="wait",
        instance_names=["fleet-a", "fleet-b"],
        max_concurrency=2,
        imagesearch_conn_id=imagesearch_conn("aksk"),
        deferrable=True,
        poke_interval=5,
    )
    classpath, kwargs = deferral(sensor).trigger.serialize()
    assert classpath.endswith(".ImageSearchFleetStatusTrigger")
    assert (kwargs["instance_names"], kwargs["max_concurrency"]) == (["fleet-a", "fleet-b"], 2)
    assert kwargs["wait_for_gone"] is True
    assert kwargs["poll_interval"] == 5


@pytest.mark.parametrize("soft_fail", [False, True])
def test_a_deferred_wait_past_its_timeout_times_out_instead_of_deferring(
    emulator: Emulator, imagesearch_conn: Callable[..., str], soft_fail: bool
) -> None:
    sensor = _growing(emulator, imagesearch_conn("aksk"), timeout=0, soft_fail=soft_fail)
    expected = AirflowSkipException if soft_fail else AirflowSensorTimeout
    with pytest.raises(expected, match="Sensor has timed out waiting for growing"):
        sensor.execute({})


def test_the_triggers_success_event_becomes_the_xcom_and_a_log_line_per_instance(
    emulator: Emulator, imagesearch_conn: Callable[..., str], capfd: pytest.CaptureFixture[str]
) -> None:
    for name in ("ready-a", "ready-b"):
        emulator.upsert_instance(name, status="CREATION", transition_after_s=3600.0, next_status="NORMAL")
    sensor = ImageSearchInstanceStatusSensor(
        task_id="wait",
        instance_names=["ready-a", "ready-b", "ready-a"],
        imagesearch_conn_id=imagesearch_conn("aksk"),
        deferrable=True,
        poke_interval=0.05,
        timeout=60,
    )
    deferred = deferral(sensor)
    for name in ("ready-a", "ready-b"):
        emulator.upsert_instance(name, status="NORMAL")
    event = first_event(deferred.trigger)
    capfd.readouterr()
    result = sensor.execute_complete({}, event)
    assert [(d["instance_name"], d["status"]) for d in result] == [
        ("ready-a", "NORMAL"),
        ("ready-b", "NORMAL"),
        ("ready-a", "NORMAL"),
    ]
    out = capfd.readouterr().out
    assert "Instance ready-a is NORMAL" in out
    assert "Instance ready-b is NORMAL" in out
    assert f"(after {event['polls']} polls)" in out


@pytest.mark.parametrize(
    ("flag", "outcome"), [("never_fail", AirflowSkipException), ("soft_fail", ImageSearchWaitError)]
)
def test_an_outage_the_trigger_gave_up_on_skips_only_under_never_fail(
    emulator: Emulator, imagesearch_conn: Callable[..., str], flag: str, outcome: type[Exception]
) -> None:
    emulator.upsert_instance("outage", status="CREATION", transition_after_s=3600.0, next_status="NORMAL")
    sensor = ImageSearchInstanceStatusSensor(
        task_id="wait",
        instance_name="outage",
        imagesearch_conn_id=imagesearch_conn("aksk", max_attempts=1),
        deferrable=True,
        poke_interval=0.05,
        timeout=60,
        max_consecutive_errors=1,
        never_fail=flag == "never_fail",
        soft_fail=flag == "soft_fail",
    )
    deferred = deferral(sensor)
    emulator.set_faults(error_5xx_rate=1.0, error_5xx_kinds=["503_json"])
    event = first_event(deferred.trigger)
    assert (event["status"], event["retryable"]) == ("error", True)
    with pytest.raises(outcome) as raised:
        sensor.execute_complete({}, event)
    if outcome is AirflowSkipException:
        assert str(raised.value) == f"Skipping (never_fail): {event['message']}"


def test_the_deadlines_count_from_the_start_of_the_wait_not_from_the_deferral(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    sensor = _growing(emulator, imagesearch_conn("aksk"), timeout=600, not_found_grace=45)
    emulator.set_faults(sequence=["slow"], slow_seconds=2.0)  # the first look takes two seconds
    before = time.time()
    kwargs = deferral(sensor).trigger.serialize()[1]
    assert time.time() - before >= 2.0
    # The wait started before the slow look: deadlines counted from the deferral would be at least two
    # seconds later (the margin is for a loaded machine's start-up, not the look).
    assert before + 600 <= kwargs["timeout_at"] < before + 602
    assert before + 45 <= kwargs["not_found_deadline"] < before + 47


def test_a_trigger_that_ended_without_an_event_fails_naming_the_instance(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    from airflow_provider_imagesearch.version_compat import AirflowException

    sensor = ImageSearchInstanceStatusSensor(
        task_id="wait", instance_name="growing", imagesearch_conn_id=imagesearch_conn("aksk"), deferrable=True
    )
    with pytest.raises(AirflowException, match=r"^Trigger for growing ended without an event$"):
        sensor.execute_complete({}, None)
