"""The single-instance wait trigger's one event, exactly, and the reads the emulator saw for it.

Each test drives ``ImageSearchInstanceStatusTrigger.run()`` on an asyncio loop against the emulator
(ready-token auth, the hook's own retries off, so one injected fault is one failed poll). The waits
between polls are scripted: the trigger module's ``asyncio.sleep`` records the wait the trigger asks
for and, instead of waiting, applies the next change of the instance's status, so every scenario is
deterministic and fast. What is protected, as a sensor's ``execute_complete`` and its user see it:

* the event's kind, message, instance, project, poll count and error fields, for success, a failure
  status, a missing instance (at once, after a grace period, or the goal of a deletion), a timeout, a
  permanent error and too many transient errors in a row;
* that a transient error is retried after a backoff of ``interval * 2**(n-1)`` (capped) and that a
  successful read resets the count of errors in a row;
* that each poll is one read of that instance in the given (or the connection's) project.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from typing import Any, cast

import pytest
from airflow.triggers.base import TriggerEvent

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from airflow_provider_imagesearch.emulator.constants import DEFAULT_SUB_PROJECT_ID
from airflow_provider_imagesearch.hooks.imagesearch import SHARED_CLIENTS, ImageSearchHook
from airflow_provider_imagesearch.models import InstanceStatus
from airflow_provider_imagesearch.outcomes import failure_status_message, not_found_message
from airflow_provider_imagesearch.triggers import imagesearch as trigger_module
from airflow_provider_imagesearch.triggers.imagesearch import ImageSearchInstanceStatusTrigger
from tests.support.clocks import ScriptedClock
from tests.support.emulator_instances import remove_instance, status_change
from tests.support.scripted_waits import ScriptedWaits, script_waits
from tests.support.triggers import first_event

OTHER_PROJECT = DEFAULT_SUB_PROJECT_ID
FAILURES = ["ABNORMAL", "CREATION_FAILD"]


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> ScriptedWaits:
    return script_waits(monkeypatch, trigger_module)


@pytest.fixture
def conn(imagesearch_conn: Callable[..., str]) -> str:
    return imagesearch_conn("token", conn_id="imagesearch_wait", max_attempts=1)


@pytest.fixture
def details(conn: str) -> Iterator[Callable[[str], dict[str, Any]]]:
    """What the API says of an instance now (``InstanceDetail.to_dict()``), read with a sync hook."""
    hook = ImageSearchHook(conn)
    yield lambda name: hook.get_instance(name).to_dict()
    hook.close()


def _wait(conn_id: str, name: str, **kwargs: Any) -> ImageSearchInstanceStatusTrigger:
    kwargs.setdefault("poll_interval", 10.0)
    kwargs.setdefault("failure_statuses", FAILURES)
    return ImageSearchInstanceStatusTrigger(instance_name=name, imagesearch_conn_id=conn_id, **kwargs)


def _event(trigger: ImageSearchInstanceStatusTrigger) -> dict[str, Any]:
    """Its first event, within ten seconds: its waits are scripted, it needs none of them."""
    return first_event(trigger, timeout=10)


def _reads(emulator: Emulator, name: str) -> list[str]:
    """The project of each read of ``name`` the emulator answered or refused, in order."""
    return [r["path"].split("/")[2] for r in emulator.requests_log() if r.get("instance") == name]


def test_a_ready_instance_is_a_success_at_the_first_poll_with_its_details(
    conn: str, emulator: Emulator, waits: ScriptedWaits, details: Callable[[str], dict[str, Any]]
) -> None:
    emulator.upsert_instance("w-ok", status="NORMAL")
    event = _event(_wait(conn, "w-ok"))
    assert _reads(emulator, "w-ok") == [DEFAULT_PROJECT_ID]
    assert event == {
        "status": "success",
        "message": "Instance w-ok is NORMAL",
        "instance_name": "w-ok",
        "project_id": DEFAULT_PROJECT_ID,
        "polls": 1,
        "instance": details("w-ok"),
    }
    assert waits.sleeps == []


def test_the_wait_polls_every_interval_until_a_target_status_and_counts_its_polls(
    conn: str, emulator: Emulator, waits: ScriptedWaits
) -> None:
    emulator.upsert_instance("w-grow", status="CREATION")
    waits.changes = [lambda: None, status_change(emulator, "w-grow", "NORMAL")]
    event = _event(_wait(conn, "w-grow", poll_interval=7.0))
    assert (event["status"], event["polls"], event["instance"]["status"]) == ("success", 3, "NORMAL")
    assert len(_reads(emulator, "w-grow")) == 3
    assert waits.sleeps == [7.0] * 2


def test_any_of_several_target_statuses_ends_the_wait(
    conn: str, emulator: Emulator, waits: ScriptedWaits
) -> None:
    emulator.upsert_instance("w-arrears", status="ARREARAGE")
    event = _event(_wait(conn, "w-arrears", target_statuses=["NORMAL", "ARREARAGE"]))
    assert (event["status"], event["message"]) == ("success", "Instance w-arrears is ARREARAGE")


def test_the_project_given_to_the_trigger_is_read_and_named(
    conn: str, emulator: Emulator, waits: ScriptedWaits
) -> None:
    emulator.upsert_instance("w-proj", project_id=OTHER_PROJECT, status="NORMAL")
    event = _event(_wait(conn, "w-proj", project_id=OTHER_PROJECT))
    assert _reads(emulator, "w-proj") == [OTHER_PROJECT]
    assert (event["status"], event["project_id"]) == ("success", OTHER_PROJECT)


def test_a_failure_status_ends_the_wait_at_once_naming_it(
    conn: str, emulator: Emulator, waits: ScriptedWaits, details: Callable[[str], dict[str, Any]]
) -> None:
    emulator.upsert_instance("w-bad", status="CREATION")
    waits.changes = [status_change(emulator, "w-bad", "ABNORMAL")]
    event = _event(_wait(conn, "w-bad"))
    assert event == {
        "status": "failure",
        "message": failure_status_message("w-bad", InstanceStatus.ABNORMAL),
        "instance_name": "w-bad",
        "project_id": DEFAULT_PROJECT_ID,
        "polls": 2,
        "instance_status": "ABNORMAL",
        "instance": details("w-bad"),
    }


def test_a_status_that_is_neither_target_nor_failure_keeps_waiting(
    conn: str, emulator: Emulator, waits: ScriptedWaits
) -> None:
    emulator.upsert_instance("w-other", status="ABNORMAL")
    waits.changes = [status_change(emulator, "w-other", "NORMAL")]
    event = _event(_wait(conn, "w-other", failure_statuses=["CREATION_FAILD"]))
    assert (event["status"], event["polls"]) == ("success", 2)


def test_a_missing_instance_without_a_grace_period_is_not_found_at_once_with_the_apis_error(
    conn: str, emulator: Emulator, waits: ScriptedWaits
) -> None:
    event = _event(_wait(conn, "w-ghost"))
    request_id = event.pop("request_id")
    assert isinstance(request_id, str)
    assert request_id
    error_msg = event.pop("error_msg")
    assert isinstance(error_msg, str)
    assert error_msg
    assert event == {
        "status": "not_found",
        "message": not_found_message("w-ghost", DEFAULT_PROJECT_ID),
        "instance_name": "w-ghost",
        "project_id": DEFAULT_PROJECT_ID,
        "polls": 1,
        "error_type": "ImageSearchNotFoundError",
        "http_status": 400,
        "error_code": "IS.0007",
    }
    assert len(_reads(emulator, "w-ghost")) == 1


def test_a_missing_instance_is_waited_for_until_the_grace_period_ends(
    conn: str, emulator: Emulator, waits: ScriptedWaits
) -> None:
    remove_instance(emulator, "w-late")
    waits.changes = [lambda: None, lambda: emulator.upsert_instance("w-late", status="NORMAL")]
    event = _event(_wait(conn, "w-late", not_found_deadline=time.time() + 3600))
    assert (event["status"], event["polls"]) == ("success", 3)
    assert len(_reads(emulator, "w-late")) == 3


def test_a_missing_instance_past_its_grace_period_is_not_found(
    conn: str, emulator: Emulator, waits: ScriptedWaits
) -> None:
    event = _event(_wait(conn, "w-never", not_found_deadline=time.time() - 1))
    assert (event["status"], event["polls"], event["error_code"]) == ("not_found", 1, "IS.0007")


def test_waiting_for_a_deleted_instance_ends_with_success_once_it_is_gone(
    conn: str, emulator: Emulator, waits: ScriptedWaits
) -> None:
    emulator.upsert_instance("w-del", status="DELETING")
    waits.changes = [lambda: emulator.control.delete_instance(DEFAULT_PROJECT_ID, "w-del")]
    event = _event(
        _wait(conn, "w-del", target_statuses=[], failure_statuses=["DELETING_FAILED"], wait_for_gone=True)
    )
    assert event == {
        "status": "success",
        "message": "Instance w-del is gone",
        "instance_name": "w-del",
        "project_id": DEFAULT_PROJECT_ID,
        "polls": 2,
        "instance": None,
    }


def test_transient_errors_back_off_doubling_and_a_good_read_resets_the_count(
    conn: str, emulator: Emulator, waits: ScriptedWaits
) -> None:
    emulator.upsert_instance("w-flaky", status="CREATION")
    # 2 failures, a good read, 2 failures, then NORMAL: never 3 in a row, so the wait goes on.
    emulator.set_faults(sequence=["500_json", "500_json", "ok", "500_json", "500_json"])
    waits.changes = [lambda: None] * 4 + [status_change(emulator, "w-flaky", "NORMAL")]
    event = _event(_wait(conn, "w-flaky", poll_interval=4.0, max_consecutive_errors=3))
    assert (event["status"], event["polls"]) == ("success", 6)
    assert len(_reads(emulator, "w-flaky")) == 6
    assert waits.sleeps == [4.0, 8.0, 4.0, 4.0, 8.0]


def test_the_backoff_is_capped_at_five_minutes_or_the_interval_if_longer(
    conn: str, emulator: Emulator, waits: ScriptedWaits
) -> None:
    emulator.upsert_instance("w-cap", status="NORMAL")
    emulator.set_faults(sequence=["500_json"] * 4)
    event = _event(_wait(conn, "w-cap", poll_interval=100.0, max_consecutive_errors=9))
    assert (event["status"], event["polls"]) == ("success", 5)
    assert waits.sleeps == [100.0, 200.0, 300.0, 300.0]
    emulator.set_faults(sequence=["500_json"] * 2)
    waits.sleeps.clear()
    event = _event(_wait(conn, "w-cap", poll_interval=400.0, max_consecutive_errors=9))
    assert waits.sleeps == [400.0, 400.0]


def test_too_many_transient_errors_in_a_row_end_with_a_retryable_error(
    conn: str, emulator: Emulator, waits: ScriptedWaits
) -> None:
    emulator.upsert_instance("w-down", status="NORMAL")
    emulator.set_faults(error_5xx_rate=1.0, error_5xx_kinds=["500_json"])
    event = _event(_wait(conn, "w-down", max_consecutive_errors=3))
    assert len(_reads(emulator, "w-down")) == 3
    assert (event.pop("request_id"), event.pop("error_msg")) != (None, None)
    message = event.pop("message")
    assert "500" in message
    assert event == {
        "status": "error",
        "instance_name": "w-down",
        "project_id": DEFAULT_PROJECT_ID,
        "polls": 3,
        "error_type": "ImageSearchServerError",
        "http_status": 500,
        "error_code": event["error_code"],
        "retryable": True,
    }


def test_a_permanent_error_ends_at_once_with_a_final_error(
    conn: str, emulator: Emulator, waits: ScriptedWaits
) -> None:
    emulator.upsert_instance("w-denied", status="NORMAL")
    emulator.set_faults(sequence=["403"])
    event = _event(_wait(conn, "w-denied", max_consecutive_errors=3))
    assert len(_reads(emulator, "w-denied")) == 1
    assert (event["status"], event["http_status"], event["retryable"], event["polls"]) == (
        "error",
        403,
        False,
        1,
    )
    assert event["error_type"] == "ImageSearchAuthError"
    assert waits.sleeps == []


def test_the_wait_times_out_at_timeout_at_naming_the_goal(
    conn: str, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = ScriptedWaits(real=True)
    monkeypatch.setattr(trigger_module, "asyncio", real)
    emulator.upsert_instance("w-slow", status="CREATION")
    # Three seconds: on a loaded machine the first round alone may take more than a fraction of one.
    event = _event(_wait(conn, "w-slow", poll_interval=60.0, timeout_at=time.time() + 3.0))
    assert event == {
        "status": "timeout",
        "message": "Instance w-slow did not become NORMAL in time",
        "instance_name": "w-slow",
        "project_id": DEFAULT_PROJECT_ID,
        "polls": event["polls"],
    }
    assert event["polls"] >= 1
    assert real.sleeps
    assert max(real.sleeps) <= 3.0


def test_a_past_timeout_reads_nothing(conn: str, emulator: Emulator, waits: ScriptedWaits) -> None:
    emulator.upsert_instance("w-late2", status="CREATION")
    event = _event(_wait(conn, "w-late2", timeout_at=time.time() - 1))
    assert (event["status"], event["polls"]) == ("timeout", 1)
    assert _reads(emulator, "w-late2") == []


def test_the_first_poll_waits_for_first_poll_at(
    conn: str, emulator: Emulator, waits: ScriptedWaits, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator.upsert_instance("w-later", status="NORMAL")
    monkeypatch.setattr(trigger_module, "time", ScriptedClock([NOW]))
    event = _event(_wait(conn, "w-later", first_poll_at=NOW + 50.0))
    assert event["status"] == "success"
    assert waits.sleeps == [50.0]


def test_a_first_poll_at_past_the_timeout_waits_only_until_the_timeout(
    conn: str, emulator: Emulator, waits: ScriptedWaits, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator.upsert_instance("w-cut", status="NORMAL")
    monkeypatch.setattr(trigger_module, "time", ScriptedClock([NOW]))
    event = _event(_wait(conn, "w-cut", first_poll_at=NOW + 50.0, timeout_at=NOW + 20.0))
    assert event["status"] == "success"
    assert waits.sleeps == [20.0]


def test_a_first_poll_at_in_the_past_polls_at_once(
    conn: str, emulator: Emulator, waits: ScriptedWaits
) -> None:
    emulator.upsert_instance("w-now", status="NORMAL")
    assert _event(_wait(conn, "w-now", first_poll_at=time.time() - 5.0))["status"] == "success"
    assert waits.sleeps == []


NOW = 1_800_000_000.0


def test_serialize_gives_every_argument_back_and_the_defaults(conn: str) -> None:
    trigger = _wait(
        conn,
        "w-ser",
        project_id=DEFAULT_PROJECT_ID,
        region="cn-north-4",
        target_statuses=["NORMAL", "ARREARAGE"],
        failure_statuses=["CREATION_FAILD", "ABNORMAL"],
        wait_for_gone=1,
        poll_interval=7,
        first_poll_at=1.5,
        not_found_deadline=2.5,
        timeout_at=3.5,
        max_consecutive_errors=2.0,
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_imagesearch.triggers.imagesearch.ImageSearchInstanceStatusTrigger"
    assert kwargs == {
        "instance_name": "w-ser",
        "imagesearch_conn_id": conn,
        "project_id": DEFAULT_PROJECT_ID,
        "region": "cn-north-4",
        "target_statuses": ["ARREARAGE", "NORMAL"],
        "failure_statuses": ["ABNORMAL", "CREATION_FAILD"],
        "wait_for_gone": True,
        "poll_interval": 7.0,
        "first_poll_at": 1.5,
        "not_found_deadline": 2.5,
        "timeout_at": 3.5,
        "max_consecutive_errors": 2,
    }
    assert ImageSearchInstanceStatusTrigger(**kwargs).serialize() == (classpath, kwargs)
    _, defaults = ImageSearchInstanceStatusTrigger(instance_name="w-d", imagesearch_conn_id="c").serialize()
    assert defaults == {
        "instance_name": "w-d",
        "imagesearch_conn_id": "c",
        "project_id": None,
        "region": None,
        "target_statuses": ["NORMAL"],
        "failure_statuses": [],
        "wait_for_gone": False,
        "poll_interval": 60.0,
        "first_poll_at": None,
        "not_found_deadline": None,
        "timeout_at": None,
        "max_consecutive_errors": 5,
    }


def test_a_trigger_that_never_ran_cleans_up_without_error() -> None:
    asyncio.run(_wait("c", "w-never-ran").cleanup())


def test_the_wait_reads_on_the_loops_shared_client_and_gives_it_back(
    conn: str, emulator: Emulator, waits: ScriptedWaits
) -> None:
    emulator.upsert_instance("w-shared", status="CREATION")
    users: list[int] = []

    def ready() -> None:
        users.append(SHARED_CLIENTS.users())
        emulator.upsert_instance("w-shared", status="NORMAL")

    waits.changes = [ready]

    async def scenario() -> tuple[str, int, int]:
        generator = cast(AsyncGenerator[TriggerEvent, None], _wait(conn, "w-shared").run())
        event = await asyncio.wait_for(anext(generator), 10)
        await generator.aclose()
        return event.payload["status"], SHARED_CLIENTS.users(), SHARED_CLIENTS.count()

    assert asyncio.run(scenario()) == ("success", 0, 0)
    assert users == [1]


def test_the_first_poll_waits_exactly_the_time_left_until_first_poll_at(
    conn: str, emulator: Emulator, waits: ScriptedWaits, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator.upsert_instance("w-soon", status="NORMAL")
    monkeypatch.setattr(trigger_module, "time", ScriptedClock([NOW]))
    assert _event(_wait(conn, "w-soon", first_poll_at=NOW + 0.5))["status"] == "success"
    assert _event(_wait(conn, "w-soon", first_poll_at=NOW))["status"] == "success"
    assert waits.sleeps == [0.5]  # and no wait at all when the time has come


def test_a_missing_instance_at_its_grace_deadline_is_not_found(
    conn: str, emulator: Emulator, waits: ScriptedWaits, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trigger_module, "time", ScriptedClock([NOW]))
    event = _event(_wait(conn, "w-deadline", not_found_deadline=NOW))
    assert (event["status"], event["polls"]) == ("not_found", 1)


def test_a_read_that_ends_at_timeout_at_ends_the_wait_without_another_poll(
    conn: str, emulator: Emulator, waits: ScriptedWaits, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator.upsert_instance("w-edge", status="CREATION")
    monkeypatch.setattr(trigger_module, "time", ScriptedClock([NOW, NOW + 5.0]))
    event = _event(_wait(conn, "w-edge", timeout_at=NOW + 5.0))
    assert (event["status"], event["polls"]) == ("timeout", 1)
    assert event["message"] == "Instance w-edge did not become NORMAL in time"
    assert len(_reads(emulator, "w-edge")) == 1


def test_polls_start_every_interval_however_long_an_answer_took(
    conn: str, emulator: Emulator, waits: ScriptedWaits, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator.upsert_instance("w-pace", status="CREATION")
    # The first answer took 3 s by the monotonic clock: the next poll is 7 s later, not 10.
    monkeypatch.setattr(trigger_module, "time", ScriptedClock([NOW], monotonic=[100.0, 103.0]))
    waits.changes = [status_change(emulator, "w-pace", "NORMAL")]
    assert _event(_wait(conn, "w-pace", poll_interval=10.0))["polls"] == 2
    assert waits.sleeps == [7.0]
