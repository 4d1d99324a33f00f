"""The instance-status event trigger's events and stored memory, round by round.

Rounds of readings are handed to ``filter_shared_stream`` as the Airflow 3.3 triggerer hands a shared
stream's rounds to each watcher; the instances' details are what the emulator answers for them (read with
a hook, as the poll loop reads them). The asset's state store is a stand-in with ``aget``/``aset``, as the
triggerer gives it. Protected, as a DAG scheduled on the asset and its user see it:

* the asset event's payload, field by field (event id, instance, project, old and new status and its
  meaning, when it was observed, the details, the connection, the watched statuses);
* what fires: the entry into a watched status, never a baseline, an unwatched status, a disappearance,
  an error or an instance not read that round;
* the memory: stored per instance after the round's events (at once when Airflow confirms them, after
  a delay otherwise), read back when a watcher starts (retried with a backoff, each asset of a trigger
  serving several), an unusable one ignored, a failed store tried again after the next round;
* the arguments a DAG author gives: bounds and the error naming the field.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from airflow_provider_imagesearch.errors import ImageSearchValidationError
from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchHook
from airflow_provider_imagesearch.models import InstanceStatus
from airflow_provider_imagesearch.triggers import events as events_module
from airflow_provider_imagesearch.triggers.events import ImageSearchInstanceStatusEventTrigger
from airflow_provider_imagesearch.triggers.status_polling import (
    DEMAND,
    Reading,
    RoundAcks,
    StatusRound,
    wire_safe,
)

CONN = "imagesearch_status_events"
#: The instances the poll loop was asked to read before each round, and once the watcher stopped.
DEMANDED: list[list[str]] = []
#: 2026-01-01T10:00:00Z
STARTED_AT = 1767261600.0


class Store:
    """An asset's state store as the 3.3 triggerer gives it to a watcher (``aget``/``aset``)."""

    def __init__(self, fail_loads: int = 0, fail_saves: int = 0) -> None:
        self.values: dict[str, Any] = {}
        self.fail_loads = fail_loads
        self.fail_saves = fail_saves
        self.loads: list[str] = []
        self.sets: list[str] = []

    async def aget(self, key: str, default: Any = None) -> Any:
        self.loads.append(key)
        if self.fail_loads:
            self.fail_loads -= 1
            raise RuntimeError("the API server is down")
        value = self.values.get(key, default)
        return json.loads(json.dumps(value)) if value is not None else None

    async def aset(self, key: str, value: Any) -> None:
        self.sets.append(key)
        if self.fail_saves:
            self.fail_saves -= 1
            raise RuntimeError("the API server is down")
        self.values[key] = json.loads(json.dumps(value))


class Sleeps:
    """Stands in for ``asyncio`` in the events module: records each sleep and does not wait."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await asyncio.sleep(0)

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> Sleeps:
    recorded = Sleeps()
    monkeypatch.setattr(events_module, "asyncio", recorded)
    return recorded


@pytest.fixture
def read(imagesearch_conn: Callable[..., str], emulator: Emulator) -> Iterator[Callable[[str], Reading]]:
    """A reading of an instance as the poll loop makes it from the emulator's answer."""
    hook = ImageSearchHook(imagesearch_conn("token", conn_id=CONN))

    def reading(name: str) -> Reading:
        detail = hook.get_instance(name)
        return Reading(status=detail.status.value, instance=wire_safe(detail.to_dict()))

    yield reading
    hook.close()


def _watch(names: list[str], statuses: list[str], **kwargs: Any) -> ImageSearchInstanceStatusEventTrigger:
    kwargs.setdefault("imagesearch_conn_id", CONN)
    return ImageSearchInstanceStatusEventTrigger(instance_names=names, statuses=statuses, **kwargs)


def _round(number: int, readings: dict[str, Reading], acks: RoundAcks | None = None) -> StatusRound:
    return StatusRound(number, STARTED_AT + 60 * (number - 1), readings, acks=acks)


def _events_per_round(
    trigger: ImageSearchInstanceStatusEventTrigger,
    rounds: Sequence[Any],
) -> list[list[dict[str, Any]]]:
    """The payloads the watcher yields for each round, the rounds made as the watcher asks for them."""
    per_round: list[list[dict[str, Any]]] = []
    DEMANDED.clear()

    async def stream() -> AsyncIterator[Any]:
        for item in rounds:
            DEMANDED.append(DEMAND.names(trigger.shared_stream_key()))
            per_round.append([])
            made = item() if callable(item) else item
            yield (await made) if inspect.isawaitable(made) else made
        yield "not a round"  # anything else on a shared stream is ignored

    async def watch() -> None:
        async for event in trigger.filter_shared_stream(stream()):
            per_round[-1].append(dict(event.payload))
        DEMANDED.append(DEMAND.names(trigger.shared_stream_key()))

    asyncio.run(asyncio.wait_for(watch(), 10))
    return per_round


def _set(emulator: Emulator, name: str, status: str, **fields: Any) -> None:
    emulator.upsert_instance(name, status=status, **fields)


def test_entering_a_watched_status_is_one_event_with_every_field(
    emulator: Emulator, read: Callable[[str], Reading]
) -> None:
    _set(emulator, "ev-a", "CREATION")
    trigger = _watch(["ev-a"], ["NORMAL", "ARREARAGE"])
    first = read("ev-a")
    _set(emulator, "ev-a", "NORMAL")
    second = read("ev-a")
    per_round = _events_per_round(trigger, [_round(1, {"ev-a": first}), _round(2, {"ev-a": second})])
    assert per_round[0] == []  # the baseline
    [payload] = per_round[1]
    assert re.fullmatch(rf"{trigger.watch_id}-\d{{13}}-ev-a-1", payload.pop("event_id"))
    assert payload == {
        "instance_name": "ev-a",
        "project_id": DEFAULT_PROJECT_ID,
        "old_status": "CREATION",
        "new_status": "NORMAL",
        "meaning": InstanceStatus.NORMAL.meaning,
        "observed_at": "2026-01-01T10:01:00Z",
        "instance": second.instance,
        "imagesearch_conn_id": CONN,
        "watched_statuses": ["ARREARAGE", "NORMAL"],
    }
    assert DEMANDED == [["ev-a"], ["ev-a"], []]  # asked for while watching, given back when it stops


def test_the_project_of_an_event_is_the_watchers_when_the_details_do_not_say() -> None:
    trigger = _watch(["ev-p"], ["NORMAL"], project_id=DEFAULT_PROJECT_ID)
    rounds = [_round(1, {"ev-p": Reading("CREATION", {})}), _round(2, {"ev-p": Reading("NORMAL", None)})]
    [[], [payload]] = _events_per_round(trigger, rounds)
    assert (payload["project_id"], payload["instance"], payload["old_status"]) == (
        DEFAULT_PROJECT_ID,
        {},
        "CREATION",
    )


def test_only_entries_into_watched_statuses_fire_and_the_rest_only_update_what_is_known() -> None:
    trigger = _watch(["ev-b", "ev-c"], ["NORMAL"])
    rounds = [
        _round(1, {"ev-b": Reading("CREATION"), "ev-c": Reading(None)}),  # baselines
        _round(2, {"ev-b": Reading("ARREARAGE"), "ev-c": Reading("CREATION")}),  # unwatched: nothing
        _round(3, {"ev-b": Reading("NORMAL"), "ev-c": Reading(None, error="500")}),  # ev-b fires
        _round(4, {"ev-b": Reading("NORMAL")}),  # unchanged; ev-c not read
        _round(5, {"ev-b": Reading(None), "ev-c": Reading("NORMAL")}),  # gone: nothing; ev-c fires
        _round(6, {"ev-b": Reading("NORMAL")}),  # back from "does not exist": fires
    ]
    per_round = _events_per_round(trigger, rounds)
    assert [[(p["instance_name"], p["old_status"], p["new_status"]) for p in r] for r in per_round] == [
        [],
        [],
        [("ev-b", "ARREARAGE", "NORMAL")],
        [],
        [("ev-c", "CREATION", "NORMAL")],
        [("ev-b", None, "NORMAL")],
    ]
    assert [p["event_id"].rsplit("-", 1)[1] for r in per_round for p in r] == ["2", "2", "4"]


def test_a_missing_instance_at_the_start_fires_when_it_appears(emulator: Emulator) -> None:
    trigger = _watch(["ev-new"], ["NORMAL"])
    rounds = [_round(1, {"ev-new": Reading(None)}), _round(2, {"ev-new": Reading("NORMAL")})]
    [[], [payload]] = _events_per_round(trigger, rounds)
    assert (payload["old_status"], payload["new_status"]) == (None, "NORMAL")


def test_an_instance_created_again_fires_as_a_new_one() -> None:
    trigger = _watch(["ev-re"], ["NORMAL"])
    rounds = [
        _round(1, {"ev-re": Reading("NORMAL", {"registered_at": "2026-01-01T00:00:00+00:00"})}),
        _round(2, {"ev-re": Reading("NORMAL", {"registered_at": "2026-02-01T00:00:00+00:00"})}),
        _round(3, {"ev-re": Reading("NORMAL", {"registered_at": 5})}),  # not a time: not compared
    ]
    [[], [payload], []] = _events_per_round(trigger, rounds)
    assert (payload["old_status"], payload["new_status"]) == (None, "NORMAL")


def test_with_airflows_confirmation_the_memory_is_stored_only_once_the_events_are(sleeps: Sleeps) -> None:
    store = Store()
    trigger = _watch(["ev-d"], ["NORMAL"])
    trigger.asset_state_store = store  # type: ignore[assignment]
    acks = [RoundAcks(), RoundAcks()]
    stored_before: list[Any] = []

    def second_round() -> StatusRound:
        stored_before.append(store.values.get(trigger.state_key("ev-d")))
        return _round(2, {"ev-d": Reading("NORMAL")}, acks[1])

    per_round = _events_per_round(trigger, [_round(1, {"ev-d": Reading("CREATION")}, acks[0]), second_round])
    assert [len(r) for r in per_round] == [0, 1]
    assert stored_before == [None]  # the baseline waits for its round's confirmation too
    asyncio.run(acks[0].run())
    assert store.values[trigger.state_key("ev-d")]["known"]["ev-d"][:2] == ["CREATION", 0]
    asyncio.run(acks[1].run())
    assert store.values[trigger.state_key("ev-d")]["known"]["ev-d"][:2] == ["NORMAL", 1]
    assert sleeps.sleeps == []


def test_without_a_confirmation_the_memory_is_stored_after_a_delay_when_a_round_fired(sleeps: Sleeps) -> None:
    store = Store()
    trigger = _watch(["ev-e"], ["NORMAL"])
    trigger.asset_state_store = store  # type: ignore[assignment]
    seen: list[Any] = []

    def probe(number: int, status: str) -> Callable[[], StatusRound]:
        def make() -> StatusRound:
            seen.append(store.values.get(trigger.state_key("ev-e"), {}).get("known", {}).get("ev-e"))
            return _round(number, {"ev-e": Reading(status)})

        return make

    per_round = _events_per_round(
        trigger, [probe(1, "CREATION"), probe(2, "CREATION"), probe(3, "NORMAL"), probe(4, "NORMAL")]
    )
    assert [len(r) for r in per_round] == [0, 0, 1, 0]
    assert [entry[:2] if entry else None for entry in seen] == [
        None,
        ["CREATION", 0],
        ["CREATION", 0],
        ["NORMAL", 1],
    ]
    # Only the round that fired waits before storing (the baseline round stores at once).
    assert sleeps.sleeps == [events_module.STORE_DELAY_SECONDS]


def test_a_restarted_watcher_resumes_what_it_stored_and_a_change_meanwhile_fires(sleeps: Sleeps) -> None:
    store = Store()
    first = _watch(["ev-f", "ev-g"], ["NORMAL"])
    first.asset_state_store = store  # type: ignore[assignment]
    _events_per_round(first, [_round(1, {"ev-f": Reading("CREATION"), "ev-g": Reading("NORMAL")})])
    again = _watch(["ev-g", "ev-f"], ["NORMAL"])
    again.asset_state_store = store  # type: ignore[assignment]
    per_round = _events_per_round(again, [_round(2, {"ev-f": Reading("NORMAL"), "ev-g": Reading("NORMAL")})])
    assert [(p["instance_name"], p["old_status"]) for p in per_round[0]] == [("ev-f", "CREATION")]


def test_a_store_that_cannot_be_read_is_retried_with_a_backoff_then_a_new_baseline(sleeps: Sleeps) -> None:
    store = Store()
    store.values = {}
    trigger = _watch(["ev-h"], ["NORMAL"])
    trigger.asset_state_store = store  # type: ignore[assignment]
    store.values[trigger.state_key("ev-h")] = {"format": 2, "known": {"ev-h": ["CREATION", 0, 1, None]}}
    store.fail_loads = 2  # the third attempt reads it
    [[payload]] = _events_per_round(trigger, [_round(1, {"ev-h": Reading("NORMAL")})])
    assert payload["old_status"] == "CREATION"
    assert sleeps.sleeps[:2] == [1, 2]
    assert len(store.loads) == 3

    never = Store(fail_loads=99)
    trigger.asset_state_store = never  # type: ignore[assignment]
    sleeps.sleeps.clear()
    assert _events_per_round(trigger, [_round(1, {"ev-h": Reading("NORMAL")})]) == [[]]  # a new baseline
    assert len(never.loads) == events_module.LOAD_ATTEMPTS
    assert sleeps.sleeps[:2] == [1, 2]


def test_only_the_instances_whose_read_failed_are_read_again(sleeps: Sleeps) -> None:
    store = Store(fail_loads=1)
    trigger = _watch(["ev-i", "ev-j"], ["NORMAL"])
    trigger.asset_state_store = store  # type: ignore[assignment]
    _events_per_round(trigger, [_round(1, {})])
    assert sorted(store.loads) == sorted(
        [trigger.state_key("ev-i"), trigger.state_key("ev-j"), store.loads[0]]
    )


def test_an_unusable_stored_value_is_a_new_baseline(sleeps: Sleeps) -> None:
    store = Store()
    trigger = _watch(["ev-k", "ev-l"], ["NORMAL"])
    trigger.asset_state_store = store  # type: ignore[assignment]
    store.values[trigger.state_key("ev-k")] = {"format": 1, "known": {"ev-k": ["CREATION", 0, 1, None]}}
    store.values[trigger.state_key("ev-l")] = {"format": 2, "known": {"ev-l": ["CREATION", 0, 1, None]}}
    [[payload]] = _events_per_round(
        trigger, [_round(1, {"ev-k": Reading("NORMAL"), "ev-l": Reading("NORMAL")})]
    )
    assert payload["instance_name"] == "ev-l"


def test_a_failed_store_is_tried_again_after_the_next_round(sleeps: Sleeps) -> None:
    store = Store(fail_saves=1)
    trigger = _watch(["ev-m"], ["NORMAL"])
    trigger.asset_state_store = store  # type: ignore[assignment]
    seen: list[bool] = []

    def probe(number: int) -> Callable[[], StatusRound]:
        def make() -> StatusRound:
            seen.append(trigger.state_key("ev-m") in store.values)
            return _round(number, {"ev-m": Reading("CREATION")})

        return make

    _events_per_round(trigger, [probe(1), probe(2), probe(3)])
    assert seen == [False, False, True]


def test_a_trigger_serving_several_assets_stores_in_each_and_reads_the_first_that_has_it(
    sleeps: Sleeps,
) -> None:
    one, two = Store(), Store()

    class Accessors:
        _by_name = {"asset-one": one}
        _by_uri = {"imagesearch://two": two}

    trigger = _watch(["ev-n"], ["NORMAL"])
    trigger.asset_state_store = Accessors()  # type: ignore[assignment]
    _events_per_round(trigger, [_round(1, {"ev-n": Reading("CREATION")})])
    key = trigger.state_key("ev-n")
    assert one.values[key] == two.values[key]
    del one.values[key]
    again = _watch(["ev-n"], ["NORMAL"])
    again.asset_state_store = Accessors()  # type: ignore[assignment]
    [[payload]] = _events_per_round(again, [_round(2, {"ev-n": Reading("NORMAL")})])
    assert payload["old_status"] == "CREATION"


def test_a_trigger_of_one_asset_uses_its_store_directly(sleeps: Sleeps) -> None:
    store = Store()
    store._by_name = {"only": Store()}  # type: ignore[attr-defined]
    trigger = _watch(["ev-o"], ["NORMAL"])
    trigger.asset_state_store = store  # type: ignore[assignment]
    _events_per_round(trigger, [_round(1, {"ev-o": Reading("CREATION")})])
    assert trigger.state_key("ev-o") in store.values


def test_many_instances_are_stored_and_read_back_in_parts(sleeps: Sleeps) -> None:
    names = [f"ev-many-{i}" for i in range(events_module.STORE_CONCURRENCY * 2 + 3)]
    store = Store()
    trigger = _watch(names, ["NORMAL"])
    trigger.asset_state_store = store  # type: ignore[assignment]
    _events_per_round(trigger, [_round(1, dict.fromkeys(names, Reading("CREATION")))])
    assert sorted(store.values) == sorted(trigger.state_key(n) for n in names)
    again = _watch(names, ["NORMAL"])
    again.asset_state_store = store  # type: ignore[assignment]
    [events] = _events_per_round(again, [_round(2, dict.fromkeys(names, Reading("NORMAL")))])
    assert sorted(p["instance_name"] for p in events) == sorted(names)


@pytest.mark.parametrize("value", [1, 1024])
def test_max_concurrency_from_1_to_1024_is_accepted(value: int) -> None:
    assert _watch(["a"], ["NORMAL"], max_concurrency=value).serialize()[1]["max_concurrency"] == value


@pytest.mark.parametrize(
    ("kwargs", "field", "allowed"),
    [
        ({"max_concurrency": 1025}, "max_concurrency", "an integer from 1 to 1024"),
        ({"max_concurrency": True}, "max_concurrency", "an integer from 1 to 1024"),
        ({"poll_interval": -1}, "poll_interval", "a number of seconds > 0"),
        ({"poll_interval": "60"}, "poll_interval", "a number of seconds > 0"),
        ({"imagesearch_conn_id": 5}, "imagesearch_conn_id", "a connection id"),
        ({"instance_names": []}, "instance_names", "an instance name or a non-empty list of them"),
    ],
)
def test_bad_arguments_name_the_field_and_the_allowed_form(
    kwargs: dict[str, Any], field: str, allowed: str | None
) -> None:
    arguments: dict[str, Any] = {"instance_names": ["a"], "statuses": ["NORMAL"], **kwargs}
    with pytest.raises(ImageSearchValidationError) as refused:
        ImageSearchInstanceStatusEventTrigger(**arguments)
    assert refused.value.field == field
    if allowed is not None:
        assert allowed in str(refused.value)


def test_a_small_poll_interval_and_the_defaults_are_kept() -> None:
    trigger = ImageSearchInstanceStatusEventTrigger(
        instance_names="a", statuses=["NORMAL", "ABNORMAL", "NORMAL"]
    )
    _, kwargs = trigger.serialize()
    assert kwargs == {
        "instance_names": ["a"],
        "statuses": ["ABNORMAL", "NORMAL"],
        "imagesearch_conn_id": "imagesearch_default",
        "project_id": None,
        "region": None,
        "poll_interval": 60.0,
        "max_concurrency": 16,
    }
    assert _watch(["a"], ["NORMAL"], poll_interval=0.001).serialize()[1]["poll_interval"] == 0.001
    assert len(trigger.watch_id) == 12
    assert trigger.state_key("a").startswith("imagesearch_instance_status_")
    assert len(trigger.state_key("a")) == len("imagesearch_instance_status_") + 32 + 1 + 1


def test_anything_else_on_the_stream_is_skipped_and_the_next_rounds_are_judged() -> None:
    trigger = _watch(["ev-s"], ["NORMAL"])
    rounds = [_round(1, {"ev-s": Reading("CREATION")}), "noise", _round(2, {"ev-s": Reading("NORMAL")})]
    assert [len(r) for r in _events_per_round(trigger, rounds)] == [0, 0, 1]


def test_an_instance_not_read_this_round_does_not_hide_the_next_ones() -> None:
    trigger = _watch(["ev-t", "ev-u"], ["NORMAL"])
    rounds = [
        _round(1, {"ev-t": Reading("CREATION"), "ev-u": Reading("CREATION")}),
        _round(2, {"ev-u": Reading("NORMAL")}),
        _round(3, {"ev-t": Reading(None, error="500"), "ev-u": Reading("CREATION")}),
        _round(4, {"ev-t": Reading(None, error="500"), "ev-u": Reading("NORMAL")}),
    ]
    per_round = _events_per_round(trigger, rounds)
    assert [[p["instance_name"] for p in r] for r in per_round] == [[], ["ev-u"], [], ["ev-u"]]


def test_what_is_stored_is_not_stored_again_until_it_changes(sleeps: Sleeps) -> None:
    store = Store()
    trigger = _watch(["ev-v"], ["NORMAL"])
    trigger.asset_state_store = store  # type: ignore[assignment]
    _events_per_round(trigger, [_round(n, {"ev-v": Reading("CREATION")}) for n in (1, 2, 3)])
    assert store.sets == [trigger.state_key("ev-v")]


def test_with_confirmations_what_is_stored_is_not_stored_again_until_it_changes(sleeps: Sleeps) -> None:
    store = Store()
    trigger = _watch(["ev-w"], ["NORMAL"])
    trigger.asset_state_store = store  # type: ignore[assignment]
    acks = [RoundAcks() for _ in range(3)]

    def confirmed(number: int) -> Callable[[], Any]:
        async def make() -> StatusRound:
            if number > 1:
                await acks[number - 2].run()  # Airflow confirms the previous round
            return _round(number, {"ev-w": Reading("CREATION")}, acks[number - 1])

        return make

    _events_per_round(trigger, [confirmed(1), confirmed(2), confirmed(3)])
    asyncio.run(acks[2].run())
    assert store.sets == [trigger.state_key("ev-w")]


def test_each_instance_is_stored_once_per_change_however_many_there_are(sleeps: Sleeps) -> None:
    names = [f"ev-x-{i}" for i in range(events_module.STORE_CONCURRENCY + 2)]
    store = Store()
    trigger = _watch(names, ["NORMAL"])
    trigger.asset_state_store = store  # type: ignore[assignment]
    _events_per_round(trigger, [_round(1, dict.fromkeys(names, Reading("CREATION")))])
    assert sorted(store.sets) == sorted(trigger.state_key(n) for n in names)


def test_a_store_that_keeps_failing_is_logged_when_it_starts_every_tenth_round_and_when_it_ends(
    sleeps: Sleeps, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    store = Store(fail_saves=10)
    trigger = _watch(["ev-y"], ["NORMAL"])
    trigger.asset_state_store = store  # type: ignore[assignment]

    def fail_again() -> StatusRound:
        store.fail_saves = 1
        return _round(12, {"ev-y": Reading("ARREARAGE")})

    rounds: list[Any] = [_round(n, {"ev-y": Reading("CREATION")}) for n in range(1, 12)] + [fail_again]
    capsys.readouterr()
    _events_per_round(trigger, rounds)
    # Airflow 3.3 routes a trigger's log through structlog to stdout; 3.1 through logging.
    logged = capsys.readouterr().out + caplog.text
    counts = re.findall(
        r"Could not store what watcher \w+ knows of 1 instance\(s\) \((\d+) time\(s\) in a row\)", logged
    )
    assert counts == ["1", "10", "1"]
    assert logged.count(f"Stored what watcher {trigger.watch_id} knows again") == 1


def test_an_instance_missing_at_the_start_is_logged_as_not_existing_yet(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    trigger = _watch(["ev-z1", "ev-z2"], ["NORMAL"])
    capsys.readouterr()
    rounds = [
        _round(1, {"ev-z1": Reading(None), "ev-z2": Reading("CREATION")}),
        _round(2, {"ev-z1": Reading(None), "ev-z2": Reading("CREATION")}),
    ]
    _events_per_round(trigger, rounds)
    logged = capsys.readouterr().out + caplog.text
    assert logged.count("does not exist (yet)") == 1
    assert "Instance ev-z1 does not exist (yet)" in logged
