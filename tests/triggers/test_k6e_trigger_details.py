"""Details of the status triggers: what the status memory keeps of a recreated instance and stores, the
wait event's log line, and a single wait's timing against its timeout (waits scripted, clock frozen)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.triggers import imagesearch as trigger_module
from airflow_provider_imagesearch.triggers.imagesearch import (
    ImageSearchInstanceStatusTrigger,
    ImageSearchWaitEvent,
)
from airflow_provider_imagesearch.triggers.status_memory import StatusMemory
from tests.support.emulator_instances import status_change
from tests.support.scripted_waits import ScriptedWaits, script_waits
from tests.support.triggers import first_event


def _memory() -> StatusMemory:
    return StatusMemory(["NORMAL"], epoch_ms=1_000)


def test_a_learnt_creation_time_once_stored_leaves_nothing_to_store() -> None:
    memory = _memory()
    memory.observe("a", "NORMAL")
    for name, (version, _) in memory.unstored().items():
        memory.mark_stored(name, version)
    assert not memory.dirty
    memory.observe("a", "NORMAL", registered_at="2026-12-01T00:00:00Z")  # learnt, no change
    assert memory.dirty
    for name, (version, _) in memory.unstored().items():
        memory.mark_stored(name, version)
    assert not memory.dirty
    assert memory.unstored() == {}


def test_a_gone_instance_is_stored_without_a_creation_time() -> None:
    memory = _memory()
    memory.observe("a", "NORMAL", registered_at="2026-12-01T00:00:00Z")
    memory.observe("a", None)
    assert memory.to_stored(["a"])["known"]["a"][3] is None


def test_a_reading_without_a_creation_time_keeps_the_one_known() -> None:
    """CREATING (created at t1), then NORMAL without a time, then NORMAL created at t2: a recreation."""
    memory = _memory()
    memory.observe("a", "CREATING", registered_at="t1")
    change = memory.observe("a", "NORMAL")
    assert change is not None
    assert change.new_status == "NORMAL"
    recreated = memory.observe("a", "NORMAL", registered_at="t2")
    assert recreated is not None
    assert recreated.recreated


def test_an_instance_seen_again_after_it_was_gone_learns_its_creation_time() -> None:
    memory = _memory()
    memory.observe("a", None)
    memory.observe("a", "NORMAL", registered_at="t1")
    recreated = memory.observe("a", "NORMAL", registered_at="t2")
    assert recreated is not None
    assert recreated.recreated


def test_the_event_log_line_sums_up_the_instances_details() -> None:
    event = ImageSearchWaitEvent({"status": "success", "instances": [{"a": 1}, {"b": 2}, None]})
    assert repr(event) == "TriggerEvent<{'status': 'success', 'instances': '<details of 3 instances>'}>"


def test_the_event_log_line_leaves_out_instances_that_are_no_list() -> None:
    event = ImageSearchWaitEvent({"status": "error", "instances": None})
    assert repr(event) == "TriggerEvent<{'status': 'error'}>"


def test_an_event_whose_payload_is_no_dict_logs_an_empty_summary() -> None:
    assert repr(ImageSearchWaitEvent("not a dict")) == "TriggerEvent<{}>"


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> ScriptedWaits:
    return script_waits(monkeypatch, trigger_module)


@pytest.fixture
def conn(imagesearch_conn: Callable[..., str]) -> str:
    return imagesearch_conn("token", conn_id="imagesearch_k6e_wait", max_attempts=1)


def _wait(conn_id: str, name: str, **kwargs: object) -> ImageSearchInstanceStatusTrigger:
    return ImageSearchInstanceStatusTrigger(instance_name=name, imagesearch_conn_id=conn_id, **kwargs)  # type: ignore[arg-type]


def test_polls_start_every_interval_even_under_a_second(
    conn: str, emulator: Emulator, waits: ScriptedWaits
) -> None:
    emulator.upsert_instance("k6e-fast", status="CREATION")
    waits.changes = [lambda: None, status_change(emulator, "k6e-fast", "NORMAL")]
    event = first_event(_wait(conn, "k6e-fast", poll_interval=0.25), timeout=10)
    assert (event["status"], event["polls"]) == ("success", 3)
    assert waits.sleeps == [0.25, 0.25]


def test_half_a_second_before_the_timeout_the_wait_still_polls_once_more(
    conn: str, emulator: Emulator, waits: ScriptedWaits
) -> None:
    """The next poll is brought forward to the timeout (0.5 s away), and it finds the goal."""
    emulator.upsert_instance("k6e-close", status="CREATION")
    waits.changes = [status_change(emulator, "k6e-close", "NORMAL")]
    event = first_event(
        _wait(conn, "k6e-close", poll_interval=60.0, timeout_at=time.time() + 0.5), timeout=10
    )
    assert (event["status"], event["polls"]) == ("success", 2)
    assert len(waits.sleeps) == 1
    assert 0 < waits.sleeps[0] <= 0.5
