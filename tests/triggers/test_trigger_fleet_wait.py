"""The fleet wait trigger's one event, exactly, and the reads the emulator saw for it.

Each test drives ``ImageSearchFleetStatusTrigger.run()`` on an asyncio loop against the emulator
(ready-token auth, the hook's own retries off, so one injected fault is one failed read). The waits
between rounds are scripted (``tests.support.scripted_waits``): the trigger module's
``asyncio.sleep`` records the wait asked for and applies the next change instead of waiting. What is
protected, as the fleet sensor and its user see it:

* success: every instance's details in the order of ``instance_names`` (a repeated name repeated, a
  gone one ``None``), each instance read until it is done and never after;
* a failure status ends the wait at once naming the first failed instance in input order, and every
  other one that failed in that round;
* missing instances: named in input order, at once or after the grace period;
* errors: a permanent one ends the wait at once (and starts no further read); transient ones are
  retried the next round after a doubling backoff, a round stops after ``max_consecutive_errors``
  failed reads in a row, and that many failed rounds in a row end the wait with a retryable error;
* timeout: the pending instances with their last seen status, the first five named;
* every event's ``statuses``, ``polls``, ``instance_names`` and ``project_id``.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchHook
from airflow_provider_imagesearch.models import InstanceStatus
from airflow_provider_imagesearch.outcomes import failure_status_message, missing_message
from airflow_provider_imagesearch.triggers import imagesearch as trigger_module
from airflow_provider_imagesearch.triggers.imagesearch import ImageSearchFleetStatusTrigger
from tests.support.clocks import ScriptedClock
from tests.support.emulator_instances import remove_instance, status_change
from tests.support.scripted_waits import ScriptedWaits, script_waits
from tests.support.triggers import first_event

FAILURES = ["ABNORMAL", "CREATION_FAILD"]


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> ScriptedWaits:
    return script_waits(monkeypatch, trigger_module)


@pytest.fixture
def conn(imagesearch_conn: Callable[..., str]) -> str:
    return imagesearch_conn("token", conn_id="imagesearch_fleet_wait", max_attempts=1)


@pytest.fixture
def details(conn: str) -> Iterator[Callable[[str], dict[str, Any]]]:
    """What the API says of an instance now (``InstanceDetail.to_dict()``), read with a sync hook."""
    hook = ImageSearchHook(conn)
    yield lambda name: hook.get_instance(name).to_dict()
    hook.close()


def _fleet(conn_id: str, names: list[str], **kwargs: Any) -> ImageSearchFleetStatusTrigger:
    kwargs.setdefault("poll_interval", 10.0)
    kwargs.setdefault("failure_statuses", FAILURES)
    return ImageSearchFleetStatusTrigger(instance_names=names, imagesearch_conn_id=conn_id, **kwargs)


def _event(trigger: ImageSearchFleetStatusTrigger) -> dict[str, Any]:
    """Its first event, within ten seconds: its waits are scripted, it needs none of them."""
    return first_event(trigger, timeout=10)


def _reads(emulator: Emulator) -> Counter[str]:
    return Counter(r["instance"] for r in emulator.requests_log() if r.get("instance"))


def _seed(emulator: Emulator, **statuses: str) -> None:
    for name, status in statuses.items():
        emulator.upsert_instance(name.replace("_", "-"), status=status)


def test_serialize_round_trips_with_max_concurrency_at_least_one() -> None:
    trigger = ImageSearchFleetStatusTrigger(
        instance_names=("b", "a"), imagesearch_conn_id="c", max_concurrency=0, poll_interval=5
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_imagesearch.triggers.imagesearch.ImageSearchFleetStatusTrigger"
    assert kwargs == {
        "instance_names": ["b", "a"],
        "imagesearch_conn_id": "c",
        "project_id": None,
        "region": None,
        "target_statuses": ["NORMAL"],
        "failure_statuses": [],
        "wait_for_gone": False,
        "poll_interval": 5.0,
        "first_poll_at": None,
        "not_found_deadline": None,
        "timeout_at": None,
        "max_consecutive_errors": 5,
        "max_concurrency": 1,
    }
    assert ImageSearchFleetStatusTrigger(**kwargs).serialize() == (classpath, kwargs)


def test_a_ready_fleet_succeeds_in_one_round_with_every_detail_in_input_order(
    conn: str, emulator: Emulator, waits: ScriptedWaits, details: Callable[[str], dict[str, Any]]
) -> None:
    _seed(emulator, f_c="NORMAL", f_a="NORMAL", f_b="NORMAL")
    event = _event(_fleet(conn, ["f-c", "f-a", "f-b", "f-a"]))
    assert _reads(emulator) == {"f-a": 1, "f-b": 1, "f-c": 1}  # a repeated name is read once
    assert event == {
        "status": "success",
        "message": "All 3 instances are NORMAL",
        "instance_names": ["f-c", "f-a", "f-b", "f-a"],
        "project_id": DEFAULT_PROJECT_ID,
        "polls": 1,
        "statuses": {"f-c": "NORMAL", "f-a": "NORMAL", "f-b": "NORMAL"},
        "instances": [details("f-c"), details("f-a"), details("f-b"), details("f-a")],
    }
    assert waits.sleeps == []


def test_an_instance_that_is_done_is_not_read_again(
    conn: str, emulator: Emulator, waits: ScriptedWaits
) -> None:
    _seed(emulator, g_a="NORMAL", g_b="CREATION", g_c="CREATION")
    waits.changes = [status_change(emulator, "g-b", "NORMAL"), status_change(emulator, "g-c", "NORMAL")]
    event = _event(_fleet(conn, ["g-a", "g-b", "g-c"], poll_interval=6.0))
    assert _reads(emulator) == {"g-a": 1, "g-b": 2, "g-c": 3}
    assert (event["status"], event["polls"]) == ("success", 3)
    assert [i["instance_name"] for i in event["instances"]] == ["g-a", "g-b", "g-c"]
    assert waits.sleeps == [6.0] * 2


def test_a_failure_status_ends_the_wait_naming_the_first_and_every_other_failed_instance(
    conn: str, emulator: Emulator, waits: ScriptedWaits, details: Callable[[str], dict[str, Any]]
) -> None:
    _seed(emulator, h_ok="NORMAL", h_x="CREATION_FAILD", h_y="ABNORMAL", h_w="CREATION", h_z="ABNORMAL")
    event = _event(_fleet(conn, ["h-ok", "h-y", "h-w", "h-x", "h-z"]))
    assert event == {
        "status": "failure",
        "message": failure_status_message("h-y", InstanceStatus.ABNORMAL)
        + " Also in a failure status: h-x (CREATION_FAILD), h-z (ABNORMAL)",
        "instance_names": ["h-ok", "h-y", "h-w", "h-x", "h-z"],
        "project_id": DEFAULT_PROJECT_ID,
        "polls": 1,
        "statuses": {
            "h-ok": "NORMAL",
            "h-y": "ABNORMAL",
            "h-w": "CREATION",
            "h-x": "CREATION_FAILD",
            "h-z": "ABNORMAL",
        },
        "instance_name": "h-y",
        "instance_status": "ABNORMAL",
        "instance": details("h-y"),
        "failed": {"h-y": "ABNORMAL", "h-x": "CREATION_FAILD", "h-z": "ABNORMAL"},
    }


def test_two_failed_instances_name_the_second_as_also_failed(
    conn: str, emulator: Emulator, waits: ScriptedWaits
) -> None:
    _seed(emulator, j_a="ABNORMAL", j_b="CREATION_FAILD")
    event = _event(_fleet(conn, ["j-a", "j-b"]))
    assert event["message"] == (
        failure_status_message("j-a", InstanceStatus.ABNORMAL)
        + " Also in a failure status: j-b (CREATION_FAILD)"
    )


def test_one_failed_instance_is_named_alone(conn: str, emulator: Emulator, waits: ScriptedWaits) -> None:
    _seed(emulator, i_a="CREATION", i_b="CREATION")
    waits.changes = [status_change(emulator, "i-b", "ABNORMAL")]
    event = _event(_fleet(conn, ["i-a", "i-b"]))
    assert event["message"] == failure_status_message("i-b", InstanceStatus.ABNORMAL)
    assert (event["polls"], event["failed"], event["instance_name"]) == (2, {"i-b": "ABNORMAL"}, "i-b")


def test_missing_instances_are_not_found_at_once_named_in_input_order(
    conn: str, emulator: Emulator, waits: ScriptedWaits
) -> None:
    _seed(emulator, j_here="CREATION")
    event = _event(_fleet(conn, ["j-z", "j-here", "j-y"]))
    assert event == {
        "status": "not_found",
        "message": missing_message(["j-z", "j-y"], DEFAULT_PROJECT_ID),
        "instance_names": ["j-z", "j-here", "j-y"],
        "project_id": DEFAULT_PROJECT_ID,
        "polls": 1,
        "statuses": {"j-z": None, "j-here": "CREATION", "j-y": None},
        "missing": ["j-z", "j-y"],
    }


def test_missing_instances_are_waited_for_during_the_grace_period(
    conn: str, emulator: Emulator, waits: ScriptedWaits
) -> None:
    _seed(emulator, k_a="NORMAL")
    remove_instance(emulator, "k-b")
    waits.changes = [lambda: None, status_change(emulator, "k-b", "NORMAL")]
    event = _event(_fleet(conn, ["k-a", "k-b"], not_found_deadline=time.time() + 3600))
    assert (event["status"], event["polls"]) == ("success", 3)
    assert _reads(emulator) == {"k-a": 1, "k-b": 3}


def test_missing_instances_past_the_grace_period_are_not_found(
    conn: str, emulator: Emulator, waits: ScriptedWaits
) -> None:
    event = _event(_fleet(conn, ["l-a"], not_found_deadline=time.time() - 1))
    assert (event["status"], event["missing"], event["polls"]) == ("not_found", ["l-a"], 1)


def test_waiting_for_a_deleted_fleet_succeeds_once_all_are_gone(
    conn: str, emulator: Emulator, waits: ScriptedWaits
) -> None:
    _seed(emulator, m_a="DELETING")
    waits.changes = [lambda: emulator.control.delete_instance(DEFAULT_PROJECT_ID, "m-a")]
    event = _event(
        _fleet(
            conn, ["m-a", "m-b"], target_statuses=[], failure_statuses=["DELETING_FAILED"], wait_for_gone=True
        )
    )
    assert (event["status"], event["message"], event["polls"]) == ("success", "All 2 instances are gone", 2)
    assert (event["instances"], event["statuses"]) == ([None, None], {"m-a": None, "m-b": None})


def test_a_permanent_error_ends_the_wait_at_once_and_starts_no_further_read(
    conn: str, emulator: Emulator, waits: ScriptedWaits
) -> None:
    _seed(emulator, n_a="CREATION", n_b="NORMAL", n_c="NORMAL")
    emulator.set_faults(sequence=["403"])
    event = _event(_fleet(conn, ["n-a", "n-b", "n-c"], max_concurrency=1))
    assert sum(_reads(emulator).values()) == 1
    assert event["message"].startswith("Reading instance 'n-a' failed: ")
    assert (event["status"], event["instance_name"], event["retryable"], event["http_status"]) == (
        "error",
        "n-a",
        False,
        403,
    )
    assert (event["error_type"], event["polls"]) == ("ImageSearchAuthError", 1)
    assert event["statuses"] == {"n-a": None, "n-b": None, "n-c": None}


def test_a_failed_read_is_retried_next_round_after_a_doubling_backoff_and_a_clean_round_resets_it(
    conn: str, emulator: Emulator, waits: ScriptedWaits
) -> None:
    _seed(emulator, o_a="CREATION", o_b="CREATION")
    # Rounds 1 and 2: o-a fails; round 3: clean; round 4: o-a fails; round 5: both NORMAL. Never 3
    # failed rounds in a row, so the wait goes on.
    emulator.set_faults(sequence=["500_json", "ok", "500_json", "ok", "ok", "ok", "500_json"])
    both_ready = [status_change(emulator, "o-a", "NORMAL"), status_change(emulator, "o-b", "NORMAL")]
    waits.changes = [
        lambda: None,
        lambda: None,
        lambda: None,
        lambda: [change() for change in both_ready] and None,
    ]
    event = _event(
        _fleet(conn, ["o-a", "o-b"], poll_interval=3.0, max_concurrency=1, max_consecutive_errors=3)
    )
    assert (event["status"], event["polls"]) == ("success", 5)
    assert waits.sleeps == [3.0, 6.0, 3.0, 3.0]


def test_the_backoff_is_capped_at_five_minutes_or_the_interval_if_longer(
    conn: str, emulator: Emulator, waits: ScriptedWaits
) -> None:
    _seed(emulator, p_a="NORMAL")
    emulator.set_faults(sequence=["500_json"] * 4)
    assert _event(_fleet(conn, ["p-a"], poll_interval=100.0, max_consecutive_errors=9))["polls"] == 5
    assert waits.sleeps == [100.0, 200.0, 300.0, 300.0]
    emulator.set_faults(sequence=["500_json"] * 2)
    waits.sleeps.clear()
    _event(_fleet(conn, ["p-a"], poll_interval=400.0, max_consecutive_errors=9))
    assert waits.sleeps == [400.0, 400.0]


def test_failed_rounds_in_a_row_end_with_a_retryable_error_and_a_round_stops_after_that_many_failed_reads(
    conn: str, emulator: Emulator, waits: ScriptedWaits
) -> None:
    _seed(emulator, q_a="NORMAL", q_b="NORMAL", q_c="NORMAL", q_d="NORMAL")
    emulator.set_faults(error_5xx_rate=1.0, error_5xx_kinds=["500_json"])
    event = _event(_fleet(conn, ["q-a", "q-b", "q-c", "q-d"], max_concurrency=1, max_consecutive_errors=2))
    # Each round stops after 2 failed reads in a row; 2 such rounds end the wait.
    assert _reads(emulator) == {"q-a": 2, "q-b": 2}
    assert event["message"].startswith("Reading instance 'q-a' failed: ")
    assert (event["status"], event["instance_name"], event["retryable"], event["http_status"]) == (
        "error",
        "q-a",
        True,
        500,
    )
    assert (event["error_type"], event["polls"]) == ("ImageSearchServerError", 2)
    assert waits.sleeps == [10.0]


def test_a_good_read_between_failures_lets_the_round_go_on(
    conn: str, emulator: Emulator, waits: ScriptedWaits
) -> None:
    _seed(emulator, r_a="NORMAL", r_b="NORMAL", r_c="NORMAL", r_d="NORMAL")
    emulator.set_faults(sequence=["500_json", "ok", "500_json", "ok"])
    event = _event(_fleet(conn, ["r-a", "r-b", "r-c", "r-d"], max_concurrency=1, max_consecutive_errors=2))
    assert _reads(emulator) == {"r-a": 2, "r-b": 1, "r-c": 2, "r-d": 1}
    assert (event["status"], event["polls"]) == ("success", 2)


def test_a_missing_instance_between_failures_lets_the_round_go_on(
    conn: str, emulator: Emulator, waits: ScriptedWaits
) -> None:
    _seed(emulator, s_a="NORMAL", s_c="NORMAL", s_d="NORMAL")
    remove_instance(emulator, "s-b")
    emulator.set_faults(sequence=["500_json", "ok", "500_json"])
    waits.changes = [status_change(emulator, "s-b", "NORMAL")]
    names = ["s-a", "s-b", "s-c", "s-d"]
    event = _event(
        _fleet(
            conn, names, max_concurrency=1, max_consecutive_errors=2, not_found_deadline=time.time() + 3600
        )
    )
    # Round 1 reads all four: the missing s-b is an answer, so s-a's and s-c's failures are not in a row.
    assert [r["instance"] for r in emulator.requests_log()] == [*names, "s-a", "s-b", "s-c"]
    assert (event["status"], event["polls"]) == ("success", 2)


def test_a_timeout_names_the_pending_instances_with_their_last_status(
    conn: str, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = ScriptedWaits(real=True)
    monkeypatch.setattr(trigger_module, "asyncio", real)
    names = [f"t-{i}" for i in range(7)]
    for name in names[:6]:
        emulator.upsert_instance(name, status="CREATION")
    emulator.upsert_instance("t-6", status="NORMAL")
    # Three seconds: on a loaded machine the first round alone may take more than a fraction of one.
    event = _event(_fleet(conn, names, poll_interval=60.0, timeout_at=time.time() + 3.0))
    shown = ", ".join(f"t-{i} (CREATION)" for i in range(5))
    assert event == {
        "status": "timeout",
        "message": f"6 of 7 instances did not become NORMAL in time: {shown} +1 more",
        "instance_names": names,
        "project_id": DEFAULT_PROJECT_ID,
        "polls": event["polls"],
        "statuses": {**dict.fromkeys(names[:6], "CREATION"), "t-6": "NORMAL"},
        "pending": names[:6],
    }
    assert event["polls"] >= 1
    assert real.sleeps
    assert max(real.sleeps) <= 3.0


def test_a_past_timeout_names_every_instance_not_found_yet(
    conn: str, emulator: Emulator, waits: ScriptedWaits
) -> None:
    event = _event(_fleet(conn, ["u-a", "u-b", "u-a"], timeout_at=time.time() - 1))
    assert (
        event["message"]
        == "2 of 2 instances did not become NORMAL in time: u-a (not found yet), u-b (not found yet)"
    )
    assert (event["pending"], event["polls"]) == (["u-a", "u-b"], 1)
    assert sum(_reads(emulator).values()) == 0


def test_the_first_round_waits_for_first_poll_at(
    conn: str, emulator: Emulator, waits: ScriptedWaits, monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed(emulator, v_a="NORMAL")
    monkeypatch.setattr(trigger_module, "time", ScriptedClock([NOW]))
    assert _event(_fleet(conn, ["v-a"], first_poll_at=NOW + 50.0))["status"] == "success"
    assert waits.sleeps == [50.0]


NOW = 1_800_000_000.0


def test_a_first_poll_at_past_the_timeout_waits_only_until_the_timeout(
    conn: str, emulator: Emulator, waits: ScriptedWaits, monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed(emulator, w_a="NORMAL")
    monkeypatch.setattr(trigger_module, "time", ScriptedClock([NOW]))
    _event(_fleet(conn, ["w-a"], first_poll_at=NOW + 50.0, timeout_at=NOW + 20.0))
    assert waits.sleeps[0] == 20.0


def test_missing_instances_at_the_grace_deadline_are_not_found(
    conn: str, emulator: Emulator, waits: ScriptedWaits, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trigger_module, "time", ScriptedClock([NOW]))
    event = _event(_fleet(conn, ["x-gone"], not_found_deadline=NOW))
    assert (event["status"], event["polls"], event["missing"]) == ("not_found", 1, ["x-gone"])


def test_a_round_that_ends_at_timeout_at_ends_the_wait_with_exactly_five_pending_named(
    conn: str, emulator: Emulator, waits: ScriptedWaits, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = [f"y-{i}" for i in range(5)]
    for name in names:
        emulator.upsert_instance(name, status="CREATION")
    monkeypatch.setattr(trigger_module, "time", ScriptedClock([NOW, NOW + 5.0]))
    event = _event(_fleet(conn, names, timeout_at=NOW + 5.0))
    shown = ", ".join(f"{name} (CREATION)" for name in names)
    assert (event["status"], event["polls"], event["pending"]) == ("timeout", 1, names)
    assert event["message"] == f"5 of 5 instances did not become NORMAL in time: {shown}"
    assert sum(_reads(emulator).values()) == 5


def test_less_than_a_second_before_the_timeout_the_wait_sleeps_that_long_and_reads_again(
    conn: str, emulator: Emulator, waits: ScriptedWaits, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Half a second is left after a round: the next round starts in half a second (not at once, not
    after a second) and may still succeed."""
    _seed(emulator, za_a="CREATION")
    monkeypatch.setattr(trigger_module, "time", ScriptedClock([NOW + 4.5], monotonic=[100.0]))
    waits.changes = [status_change(emulator, "za-a", "NORMAL")]
    event = _event(_fleet(conn, ["za-a"], poll_interval=10.0, timeout_at=NOW + 5.0))
    assert (event["status"], event["polls"]) == ("success", 2)
    assert waits.sleeps == [0.5]


def test_rounds_start_every_interval_however_long_a_round_took(
    conn: str, emulator: Emulator, waits: ScriptedWaits, monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed(emulator, z_a="CREATION")
    monkeypatch.setattr(trigger_module, "time", ScriptedClock([NOW], monotonic=[100.0, 103.0]))
    waits.changes = [status_change(emulator, "z-a", "NORMAL")]
    assert _event(_fleet(conn, ["z-a"], poll_interval=10.0))["polls"] == 2
    assert waits.sleeps == [7.0]


@pytest.mark.parametrize(
    ("slow", "count", "first"), [(5, 6, None), (6, 7, "slow")], ids=["all-six-at-once", "no-seventh"]
)
def test_reads_of_a_round_run_max_concurrency_at_once(
    conn: str, emulator: Emulator, waits: ScriptedWaits, slow: int, count: int, first: str | None
) -> None:
    names = [f"cc-{i}" for i in range(count)]
    for name in names:
        emulator.upsert_instance(name, status="NORMAL")
    # The first reads to arrive are slow, the rest fast. With a gate of six: of six names (five slow) all
    # six run at once, so a fast one answers first (a gate of five would hold the sixth behind a slow
    # one); of seven names (six slow) the seventh waits for a slow one to end, so a slow one answers
    # first (a gate of seven would let it through). Which instance arrives first is the event loop's
    # choice, so the log is read for faults, not names.
    emulator.set_faults(sequence=["slow"] * slow, slow_seconds=1.0)
    event = _event(_fleet(conn, names, max_concurrency=6))
    assert event["status"] == "success"
    answered = [r for r in emulator.requests_log() if r.get("instance")]
    assert sorted(r["instance"] for r in answered) == names
    assert answered[0]["fault"] == first


def test_a_round_cut_off_at_timeout_at_is_a_timeout_even_if_an_instance_it_read_is_missing(
    conn: str, emulator: Emulator, waits: ScriptedWaits
) -> None:
    emulator.upsert_instance("to-b", status="NORMAL")
    # One read at a time, in input order: the missing to-a answers at once, the read of to-b is slow. With
    # two at once, which of them the slow answer held was the order they reached the emulator in.
    emulator.set_faults(sequence=["ok", "slow"], slow_seconds=2.0)
    event = _event(_fleet(conn, ["to-a", "to-b"], max_concurrency=1, timeout_at=time.time() + 0.5))
    assert (event["status"], event["pending"], event["statuses"]) == (
        "timeout",
        ["to-a", "to-b"],
        {"to-a": None, "to-b": None},
    )
    assert [(r["instance"], r["fault"]) for r in emulator.requests_log() if r.get("instance")][:1] == [
        ("to-a", None)
    ]
