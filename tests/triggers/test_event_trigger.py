"""ImageSearchInstanceStatusEventTrigger against the emulator over loopback: each semantic rule of
docs/events.rst, on the installed Airflow (3.3) and on the floor (``make test-compat``, 3.1.8).

The watchers run in the test's event loop through ``run()`` (what a triggerer before 3.3 calls; the
3.3 triggerer's shared stream is exercised at the end). Intervals are 0.2 s; the tests wait for rounds
by counting the emulator's reads, never for a fixed time.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import AsyncGenerator, Callable, Iterable
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from airflow_provider_imagesearch.emulator import DEFAULT_PASSWORD, DEFAULT_PROJECT_ID, Emulator
from airflow_provider_imagesearch.errors import ImageSearchValidationError
from airflow_provider_imagesearch.hooks.imagesearch import SHARED_CLIENTS
from airflow_provider_imagesearch.triggers import events as events_module
from airflow_provider_imagesearch.triggers.events import ImageSearchInstanceStatusEventTrigger
from airflow_provider_imagesearch.triggers.status_polling import DEMAND, LOCAL_STREAMS
from tests.support.connections import connection_fields, set_connection
from tests.support.emulator_instances import remove_instance

CONN = "imagesearch_events"
INSTANCE_ROUTE = "GET /v1/{project_id}/service/{instance_name}"
TOKEN_ROUTE = "POST /v3/auth/tokens"
POLL = 0.2
FAILURES = ["ABNORMAL", "ARREARAGE", "CREATION_FAILD", "DELETING_FAILED"]


@pytest.fixture(autouse=True)
def _quick_store(monkeypatch: pytest.MonkeyPatch) -> None:
    # The memory is stored 3 s after an event in a triggerer; a tenth of that keeps the tests short.
    monkeypatch.setattr(events_module, "STORE_DELAY_SECONDS", 0.3)


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> Callable[[], str]:
    """What was logged so far: Airflow routes the triggers' logs through structlog to stdout (3.3),
    or through logging (3.1)."""
    caplog.set_level(logging.INFO)
    seen: list[str] = []

    def read() -> str:
        seen.append(capsys.readouterr().out)
        return "".join(seen) + caplog.text

    return read


@pytest.fixture
def conn(imagesearch_conn: Callable[..., str]) -> str:
    # A ready token: no IAM request in the emulator's log, only the reads.
    return imagesearch_conn("token", conn_id=CONN)


def _watch(
    names: str | list[str], statuses: list[str], **kwargs: Any
) -> ImageSearchInstanceStatusEventTrigger:
    kwargs.setdefault("poll_interval", POLL)
    kwargs.setdefault("imagesearch_conn_id", CONN)
    return ImageSearchInstanceStatusEventTrigger(instance_names=names, statuses=statuses, **kwargs)


def _set(emulator: Emulator, name: str, status: str) -> None:
    emulator.upsert_instance(name, project_id=DEFAULT_PROJECT_ID, status=status)


class FakeAssetStore:
    """An asset's state store as the 3.3 triggerer gives it to a watcher (``aget``/``aset``)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.saves: list[Any] = []
        self.fail_saves = 0

    async def aget(self, key: str, default: Any = None) -> Any:
        value = self.values.get(key, default)
        return json.loads(json.dumps(value)) if value is not None else None

    async def aset(self, key: str, value: Any) -> None:
        if self.fail_saves:
            self.fail_saves -= 1
            raise RuntimeError("the API server is down")
        json.dumps(value)  # a JSON value, as the store requires
        self.values[key] = value
        self.saves.append(json.loads(json.dumps(value)))


def _stored_status(store: FakeAssetStore, name: str) -> str | None:
    """The status the store holds for ``name`` (one key per instance), None when it holds nothing."""
    for value in store.values.values():
        if name in value.get("known", {}):
            return cast(str | None, value["known"][name][0])
    return None


class Watching:
    """Watchers running in this event loop; their payloads in ``events`` as they come."""

    def __init__(self, emulator: Emulator, *triggers: ImageSearchInstanceStatusEventTrigger) -> None:
        self.emulator = emulator
        self.triggers = triggers
        self.events: list[dict[str, Any]] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Watching:
        async def consume(trigger: ImageSearchInstanceStatusEventTrigger) -> None:
            async for event in trigger.run():
                self.events.append(event.payload)

        self._tasks = [asyncio.create_task(consume(t)) for t in self.triggers]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        results = await asyncio.gather(*self._tasks, return_exceptions=True)
        errors = [r for r in results if not isinstance(r, asyncio.CancelledError | type(None))]
        assert not errors, errors  # a watcher never ends with an error

    def reads(self, name: str) -> int:
        return sum(
            1 for r in self.emulator.requests_log() if r["route"] == INSTANCE_ROUTE and r["instance"] == name
        )

    async def until(self, condition: Callable[[], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, "timed out"
            for task in self._tasks:
                if task.done():
                    task.result()  # a watcher that ended: show why
                    raise AssertionError("a watcher ended")
            await asyncio.sleep(0.05)

    async def rounds(self, name: str, count: int) -> None:
        """Until ``count`` more reads of ``name`` were answered (``count`` rounds that read it)."""
        target = self.reads(name) + count
        await self.until(lambda: self.reads(name) >= target)


def _run(scenario: Callable[[], Any]) -> Any:
    return asyncio.run(scenario())


# --- serialization and arguments -------------------------------------------------------------------


def test_serialization_round_trip() -> None:
    from airflow.serialization.serialized_objects import BaseSerialization
    from airflow.triggers.base import BaseEventTrigger

    trigger = ImageSearchInstanceStatusEventTrigger(
        instance_names=["shop-b", "shop-a", "shop-b"],
        statuses=["NORMAL"],
        imagesearch_conn_id="conn",
        project_id=DEFAULT_PROJECT_ID,
        region="cn-north-4",
        poll_interval=30,
        max_concurrency=8,
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_imagesearch.triggers.events.ImageSearchInstanceStatusEventTrigger"
    assert kwargs == {
        "instance_names": ["shop-b", "shop-a"],
        "statuses": ["NORMAL"],
        "imagesearch_conn_id": "conn",
        "project_id": DEFAULT_PROJECT_ID,
        "region": "cn-north-4",
        "poll_interval": 30.0,
        "max_concurrency": 8,
    }
    # Through Airflow's own encoding, as the watcher's kwargs are stored and read back by the triggerer.
    decoded = BaseSerialization.deserialize(BaseSerialization.serialize(kwargs))
    rebuilt = ImageSearchInstanceStatusEventTrigger(**decoded)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert BaseEventTrigger.hash(*rebuilt.serialize()) == BaseEventTrigger.hash(classpath, kwargs)
    assert (rebuilt.state_key("shop-a"), rebuilt.watch_id) == (trigger.state_key("shop-a"), trigger.watch_id)
    assert rebuilt.shared_stream_key() == trigger.shared_stream_key()


def test_one_instance_may_be_given_as_a_string() -> None:
    assert _watch("shop-a", ["NORMAL"]).instance_names == ["shop-a"]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"instance_names": []}, "instance_names"),
        ({"instance_names": ["Shop"]}, "instance_names"),
        ({"instance_names": 3}, "instance_names"),
        ({"statuses": ["READY"]}, "statuses"),
        ({"statuses": []}, "statuses"),
        ({"statuses": "NORMAL"}, "statuses"),
        ({"poll_interval": 0}, "poll_interval"),
        ({"poll_interval": True}, "poll_interval"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"max_concurrency": 2.5}, "max_concurrency"),
        ({"imagesearch_conn_id": ""}, "imagesearch_conn_id"),
        ({"region": "Europe"}, "region"),
    ],
)
def test_bad_arguments_are_refused_naming_the_field(kwargs: dict[str, Any], field: str) -> None:
    arguments: dict[str, Any] = {"instance_names": ["shop-a"], "statuses": ["NORMAL"], **kwargs}
    with pytest.raises(ImageSearchValidationError) as refused:
        ImageSearchInstanceStatusEventTrigger(**arguments)
    assert refused.value.field == field


def test_the_memory_keys_are_per_instance_and_ignore_cadence_and_the_other_instances() -> None:
    one = _watch(["a1", "b1"], ["NORMAL"], poll_interval=10)
    other = _watch(["b1", "a1"], ["NORMAL"], poll_interval=60, max_concurrency=2)
    assert one.state_key("a1") == other.state_key("a1")  # a new interval resumes the same memory
    assert one.state_key("a1") == _watch(["a1"], ["NORMAL"]).state_key("a1")  # so does an edited fleet
    assert one.state_key("a1") != one.state_key("b1")
    assert one.state_key("a1") != _watch(["a1", "b1"], FAILURES).state_key("a1")
    assert one.state_key("a1") != _watch(["a1"], ["NORMAL"], imagesearch_conn_id="other").state_key("a1")
    assert one.watch_id == _watch(["c1"], ["NORMAL"]).watch_id


# --- what fires ------------------------------------------------------------------------------------


def test_entering_a_watched_status_fires_once_with_the_change_and_the_details(
    conn: str, emulator: Emulator
) -> None:
    _set(emulator, "shop-a", "CREATION")
    _set(emulator, "shop-b", "CREATION")

    async def scenario() -> list[dict[str, Any]]:
        async with Watching(emulator, _watch(["shop-a", "shop-b"], ["NORMAL"])) as watching:
            await watching.rounds("shop-a", 2)  # the baseline is taken
            _set(emulator, "shop-a", "NORMAL")
            await watching.until(lambda: bool(watching.events))
            await watching.rounds("shop-a", 5)  # five more rounds: the same status never fires again
            return watching.events

    events = _run(scenario)
    assert len(events) == 1
    event = events[0]
    assert event["instance_name"] == "shop-a"
    assert (event["old_status"], event["new_status"]) == ("CREATION", "NORMAL")
    assert event["meaning"] == "the instance is ready to use"
    assert event["instance"]["status"] == "NORMAL"
    assert event["instance"]["instance_name"] == "shop-a"
    assert event["project_id"] == DEFAULT_PROJECT_ID
    assert event["watched_statuses"] == ["NORMAL"]
    assert event["imagesearch_conn_id"] == CONN
    assert event["event_id"].endswith("-shop-a-1")
    assert event["observed_at"].endswith("Z")
    json.dumps(event)  # an asset event's extra must be JSON


def test_a_status_held_at_start_is_the_baseline_and_never_fires(conn: str, emulator: Emulator) -> None:
    _set(emulator, "shop-a", "NORMAL")

    async def scenario() -> list[dict[str, Any]]:
        async with Watching(emulator, _watch(["shop-a"], ["NORMAL"])) as watching:
            await watching.rounds("shop-a", 5)
            return watching.events

    assert _run(scenario) == []


def test_leaving_and_entering_again_fires_again_and_unwatched_changes_do_not(
    conn: str, emulator: Emulator
) -> None:
    _set(emulator, "shop-a", "NORMAL")

    async def scenario() -> list[dict[str, Any]]:
        async with Watching(emulator, _watch(["shop-a"], ["NORMAL"])) as watching:
            await watching.rounds("shop-a", 2)
            _set(emulator, "shop-a", "ABNORMAL")
            await watching.rounds("shop-a", 2)
            assert watching.events == []  # ABNORMAL is not watched
            _set(emulator, "shop-a", "NORMAL")
            await watching.until(lambda: bool(watching.events))
            await watching.rounds("shop-a", 2)
            return watching.events

    events = _run(scenario)
    assert [(e["old_status"], e["new_status"]) for e in events] == [("ABNORMAL", "NORMAL")]
    assert events[0]["event_id"].endswith("-shop-a-2")  # the second change of the instance


def test_failure_statuses_each_fire_on_entry(conn: str, emulator: Emulator) -> None:
    for name in ("shop-a", "shop-b"):
        _set(emulator, name, "NORMAL")

    async def scenario() -> list[dict[str, Any]]:
        async with Watching(emulator, _watch(["shop-a", "shop-b"], FAILURES)) as watching:
            await watching.rounds("shop-a", 2)
            _set(emulator, "shop-a", "ARREARAGE")
            _set(emulator, "shop-b", "ABNORMAL")
            await watching.until(lambda: len(watching.events) >= 2)
            await watching.rounds("shop-a", 3)
            return watching.events

    events = _run(scenario)
    assert sorted((e["instance_name"], e["new_status"]) for e in events) == [
        ("shop-a", "ARREARAGE"),
        ("shop-b", "ABNORMAL"),
    ]


def test_a_missing_instance_fires_when_it_appears_and_not_when_it_goes(
    conn: str, emulator: Emulator, logs: Callable[[], str]
) -> None:
    _set(emulator, "shop-b", "NORMAL")

    async def scenario() -> list[dict[str, Any]]:
        async with Watching(emulator, _watch(["ghost-a", "shop-b"], ["NORMAL"])) as watching:
            await watching.rounds("ghost-a", 3)  # missing, round after round
            emulator.control.delete_instance(DEFAULT_PROJECT_ID, "shop-b")
            await watching.rounds("shop-b", 2)  # gone: nothing to enter
            assert watching.events == []
            _set(emulator, "ghost-a", "NORMAL")
            await watching.until(lambda: bool(watching.events))
            await watching.rounds("ghost-a", 2)
            return watching.events

    events = _run(scenario)
    assert [(e["instance_name"], e["old_status"], e["new_status"]) for e in events] == [
        ("ghost-a", None, "NORMAL")
    ]
    # Logged once each, not every round.
    assert logs().count("Instance ghost-a does not exist (yet)") == 1
    assert logs().count("Instance shop-b does not exist any more (it was NORMAL)") == 1


def test_an_instance_created_again_under_its_name_fires_as_a_new_one(conn: str, emulator: Emulator) -> None:
    """Deleted and created again while watched: NORMAL before, NORMAL after, one event (whether a read
    saw it missing in between or not), and a status flip of the same instance is no re-creation."""
    emulator.upsert_instance("shop-a", project_id=DEFAULT_PROJECT_ID, status="NORMAL", register_date_ms=1)

    async def scenario() -> list[dict[str, Any]]:
        async with Watching(emulator, _watch(["shop-a"], ["NORMAL"])) as watching:
            await watching.rounds("shop-a", 2)
            _set(emulator, "shop-a", "NORMAL")  # a seed replaced, same creation time: nothing
            await watching.rounds("shop-a", 2)
            assert watching.events == []
            emulator.control.delete_instance(DEFAULT_PROJECT_ID, "shop-a")
            emulator.upsert_instance(
                "shop-a", project_id=DEFAULT_PROJECT_ID, status="NORMAL", register_date_ms=2_000
            )
            await watching.until(lambda: bool(watching.events))
            await watching.rounds("shop-a", 3)
            return watching.events

    events = _run(scenario)
    assert [(e["old_status"], e["new_status"]) for e in events] == [(None, "NORMAL")]
    assert events[0]["instance"]["registered_at"] == "1970-01-01T00:00:02Z"


# --- restarts: what the watcher knows is kept in the asset's state store ---------------------------


def test_a_restarted_watcher_neither_fires_again_nor_misses_a_change_made_while_it_was_down(
    conn: str, emulator: Emulator
) -> None:
    _set(emulator, "shop-a", "CREATION")
    _set(emulator, "shop-b", "CREATION")
    store = FakeAssetStore()

    def watcher() -> ImageSearchInstanceStatusEventTrigger:
        # Each start rebuilds the trigger from its kwargs, as a triggerer does.
        trigger = _watch(["shop-a", "shop-b"], ["NORMAL"])
        trigger.asset_state_store = cast(Any, store)
        return trigger

    async def first_life() -> list[dict[str, Any]]:
        async with Watching(emulator, watcher()) as watching:
            await watching.rounds("shop-a", 2)
            _set(emulator, "shop-a", "NORMAL")
            await watching.until(lambda: bool(watching.events))
            await watching.until(lambda: _stored_status(store, "shop-a") == "NORMAL")
            return watching.events

    async def second_life() -> list[dict[str, Any]]:
        async with Watching(emulator, watcher()) as watching:
            await watching.until(lambda: bool(watching.events))
            await watching.rounds("shop-a", 4)
            return watching.events

    first = _run(first_life)
    assert [e["instance_name"] for e in first] == ["shop-a"]
    _set(emulator, "shop-b", "NORMAL")  # while no watcher runs
    second = _run(second_life)
    # shop-a, reported before the restart, stays quiet; shop-b's change during the outage fires once.
    assert [(e["instance_name"], e["old_status"]) for e in second] == [("shop-b", "CREATION")]
    assert second[0]["event_id"].split("-")[1] == first[0]["event_id"].split("-")[1]  # the same memory


def test_an_event_not_yet_stored_is_reported_again_after_a_restart_with_the_same_event_id(
    conn: str, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The triggerer stops in the seconds between an event and storing it: the change is reported again
    # (at least once), with the same event_id, so a table keyed on it records it once.
    monkeypatch.setattr(events_module, "STORE_DELAY_SECONDS", 60.0)
    _set(emulator, "shop-a", "CREATION")
    store = FakeAssetStore()

    async def life() -> list[dict[str, Any]]:
        trigger = _watch(["shop-a"], ["NORMAL"])
        trigger.asset_state_store = cast(Any, store)
        async with Watching(emulator, trigger) as watching:
            await watching.until(lambda: bool(store.saves))  # the baseline is stored
            await watching.rounds("shop-a", 1)
            _set(emulator, "shop-a", "NORMAL")
            await watching.until(lambda: bool(watching.events))
            return watching.events

    first = _run(life)
    assert _stored_status(store, "shop-a") == "CREATION"  # stopped before storing the change
    _set(emulator, "shop-a", "CREATION")  # the state the store knows: then NORMAL again
    second = _run(life)
    assert [e["event_id"] for e in second] == [e["event_id"] for e in first]


def test_the_memory_is_stored_after_the_event_not_before(conn: str, emulator: Emulator) -> None:
    _set(emulator, "shop-a", "CREATION")
    store = FakeAssetStore()
    trigger = _watch(["shop-a"], ["NORMAL"])
    trigger.asset_state_store = cast(Any, store)

    async def scenario() -> tuple[str, str]:
        events = cast(AsyncGenerator[Any, None], trigger.run())
        try:
            first = asyncio.ensure_future(anext(events))
            watching = Watching(emulator)
            await watching.until(lambda: bool(store.saves))  # the baseline is stored
            _set(emulator, "shop-a", "NORMAL")
            await first
            at_event = _stored_status(store, "shop-a")  # what the store held at the event
            second = asyncio.ensure_future(anext(events))  # the watcher goes on: then it stores
            await watching.until(lambda: _stored_status(store, "shop-a") == "NORMAL")
            second.cancel()
            await asyncio.gather(second, return_exceptions=True)
            return at_event, _stored_status(store, "shop-a")
        finally:
            await events.aclose()

    assert _run(scenario) == ("CREATION", "NORMAL")


def test_an_instance_added_to_the_watch_leaves_what_is_known_of_the_others(
    conn: str, emulator: Emulator
) -> None:
    """The DAG file adds shop-c to the watched fleet while the triggerer is down, and shop-b became
    NORMAL meanwhile: shop-b's change fires (its memory is its own, not the fleet's), shop-c's first
    reading is its baseline."""
    for name in ("shop-a", "shop-b", "shop-c"):
        _set(emulator, name, "CREATION")
    store = FakeAssetStore()

    async def life(fleet: list[str]) -> list[dict[str, Any]]:
        trigger = _watch(fleet, ["NORMAL"])
        trigger.asset_state_store = cast(Any, store)
        async with Watching(emulator, trigger) as watching:
            await watching.until(lambda: all(_stored_status(store, n) is not None for n in fleet))
            await watching.rounds("shop-a", 3)
            return watching.events

    assert _run(lambda: life(["shop-a", "shop-b"])) == []
    _set(emulator, "shop-b", "NORMAL")
    _set(emulator, "shop-c", "NORMAL")
    events = _run(lambda: life(["shop-a", "shop-b", "shop-c"]))
    assert [(e["instance_name"], e["old_status"]) for e in events] == [("shop-b", "CREATION")]


def test_without_a_state_store_a_restarted_watcher_takes_a_new_baseline(
    conn: str, emulator: Emulator
) -> None:
    # Airflow before 3.3: nothing stored; the change made while it was down is not reported.
    _set(emulator, "shop-a", "CREATION")

    async def life() -> list[dict[str, Any]]:
        async with Watching(emulator, _watch(["shop-a"], ["NORMAL"])) as watching:
            await watching.rounds("shop-a", 3)
            return watching.events

    assert _run(life) == []
    _set(emulator, "shop-a", "NORMAL")
    assert _run(life) == []


def test_a_store_that_fails_is_retried_and_the_watcher_goes_on(
    conn: str, emulator: Emulator, logs: Callable[[], str]
) -> None:
    _set(emulator, "shop-a", "CREATION")
    store = FakeAssetStore()
    store.fail_saves = 2

    async def scenario() -> list[dict[str, Any]]:
        trigger = _watch(["shop-a"], ["NORMAL"])
        trigger.asset_state_store = cast(Any, store)
        async with Watching(emulator, trigger) as watching:
            await watching.rounds("shop-a", 2)
            _set(emulator, "shop-a", "NORMAL")
            await watching.until(lambda: bool(watching.events))
            await watching.until(lambda: _stored_status(store, "shop-a") == "NORMAL")
            return watching.events

    assert len(_run(scenario)) == 1
    assert "Could not store what watcher" in logs()
    assert "Stored what watcher" in logs()


def test_one_trigger_on_two_assets_keeps_its_memory_in_both() -> None:
    class Accessors:  # what the 3.3 triggerer gives a trigger that two assets share
        def __init__(self) -> None:
            self._by_name = {"one": FakeAssetStore(), "two": FakeAssetStore()}
            self._by_uri: dict[str, FakeAssetStore] = {}

    trigger = _watch(["shop-a"], ["NORMAL"])
    accessors = Accessors()
    trigger.asset_state_store = cast(Any, accessors)
    store = events_module._StateStore.of(trigger)
    assert store is not None
    value = {"format": 2, "known": {"shop-a": ["NORMAL", 0, 1]}}

    async def scenario() -> Any:
        assert await store.save({"shop-a": value}) == {}
        return await store.load(["shop-a", "shop-b"])

    assert _run(scenario) == {"shop-a": value, "shop-b": None}
    key = trigger.state_key("shop-a")
    assert all(a.values == {key: value} for a in accessors._by_name.values())


# --- errors: nothing fires, nothing crashes, nothing hammers -----------------------------------------


def test_refused_credentials_fire_nothing_back_off_log_once_and_a_change_meanwhile_fires_after(
    conn: str, emulator: Emulator, logs: Callable[[], str]
) -> None:
    _set(emulator, "shop-a", "CREATION")

    def refusals() -> list[float]:
        return [
            r["ts"] for r in emulator.requests_log() if r["route"] == INSTANCE_ROUTE and r["status"] == 403
        ]

    async def scenario() -> list[dict[str, Any]]:
        async with Watching(emulator, _watch(["shop-a"], ["NORMAL"])) as watching:
            await watching.rounds("shop-a", 2)  # the baseline: CREATION
            emulator.set_faults(forbidden_rate=1.0)  # 403 APIGW.0302 for every call
            _set(emulator, "shop-a", "NORMAL")  # changed while the credentials are refused
            await watching.until(lambda: len(refusals()) >= 5, timeout=30)
            assert watching.events == []
            emulator.control.reset_faults()
            await watching.until(lambda: bool(watching.events))
            await watching.rounds("shop-a", 3)
            return watching.events

    events = _run(scenario)
    assert [(e["old_status"], e["new_status"]) for e in events] == [("CREATION", "NORMAL")]
    # One request per refused round (a refusal is not retried), and the rounds back off: their starts
    # are 0.2, 0.4, 0.8, 1.6 s apart, so five of them span 3.0 s (without backoff: 0.8 s). The margin
    # is for when each request reaches the emulator after its round starts, which load decides.
    stamps = refusals()
    assert stamps[4] - stamps[0] >= 2.0, stamps
    text = logs()
    assert text.count("ImageSearch round failed") == 1  # when it starts, not every round
    assert "Check the connection" in text
    assert "answered again after" in text


def test_a_connection_fixed_while_watching_is_used_without_a_restart(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, logs: Callable[[], str]
) -> None:
    _set(emulator, "shop-a", "CREATION")
    wrong = connection_fields(emulator.url, "iam_password")
    wrong["password"] = "not-the-password"
    set_connection(monkeypatch, CONN, **wrong)

    def token_requests() -> int:
        return sum(1 for r in emulator.requests_log() if r["route"] == TOKEN_ROUTE)

    async def scenario() -> list[dict[str, Any]]:
        async with Watching(emulator, _watch(["shop-a"], ["NORMAL"])) as watching:
            await watching.until(lambda: token_requests() >= 2)  # refused: the password is wrong
            assert watching.reads("shop-a") == 0
            fixed = connection_fields(emulator.url, "iam_password")
            assert fixed["password"] == DEFAULT_PASSWORD
            set_connection(monkeypatch, CONN, **fixed)
            await watching.until(lambda: watching.reads("shop-a") >= 2, timeout=30)  # read again
            _set(emulator, "shop-a", "NORMAL")
            await watching.until(lambda: bool(watching.events))
            return watching.events

    events = _run(scenario)
    assert [(e["old_status"], e["new_status"]) for e in events] == [("CREATION", "NORMAL")]
    text = logs()
    assert "The username or password is wrong" in text
    assert "Closing the ImageSearch hook failed" not in text  # the refused hook was given back
    assert not_a_secret_leak(text, [DEFAULT_PASSWORD, "not-the-password"])


def not_a_secret_leak(text: str, secrets: Iterable[str]) -> bool:
    return not any(secret in text for secret in secrets)


def test_an_outage_fires_nothing_stops_each_round_at_the_first_failure_and_a_change_during_it_fires_after(
    conn: str, emulator: Emulator
) -> None:
    names = ["shop-a", "shop-b", "shop-c"]
    for name in names:
        _set(emulator, name, "CREATION")

    async def scenario() -> tuple[list[dict[str, Any]], Counter[str]]:
        # One read at a time, so that a round can stop before the others.
        async with Watching(emulator, _watch(names, ["NORMAL"], max_concurrency=1)) as watching:
            await watching.rounds("shop-a", 2)
            before = Counter(r["instance"] for r in emulator.requests_log() if r["route"] == INSTANCE_ROUTE)
            emulator.set_faults(drop_rate=1.0)  # every connection dropped: a transport error
            _set(emulator, "shop-b", "NORMAL")
            await asyncio.sleep(2.0)
            assert watching.events == []
            during = Counter(r["instance"] for r in emulator.requests_log() if r["route"] == INSTANCE_ROUTE)
            emulator.control.reset_faults()
            await watching.until(lambda: bool(watching.events))
            await watching.rounds("shop-b", 3)
            return watching.events, during - before

    events, during = _run(scenario)
    assert [(e["instance_name"], e["old_status"]) for e in events] == [("shop-b", "CREATION")]
    # A transport error stops the round: the others are not read in vain. With backoff (0.2, 0.4,
    # 0.8 s ...) 2 s hold at most 5 rounds (and the one in progress when the outage began) of one
    # instance's 5 attempts each (the connection's max_attempts), not 10 rounds of 3 instances. (Each
    # round starts with the instance whose read stopped the last, which was not read.)
    assert sum(during.values()) <= 6 * 5, during


def test_one_instance_that_keeps_failing_does_not_stop_the_others(
    conn: str, emulator: Emulator, logs: Callable[[], str]
) -> None:
    _set(emulator, "shop-a", "CREATION")
    _set(emulator, "shop-b", "CREATION")

    async def scenario() -> list[dict[str, Any]]:
        # One read at a time, shop-a first: each round's first five requests (shop-a's attempts) get
        # a 503, the sixth (shop-b) is answered.
        trigger = _watch(["shop-a", "shop-b"], ["NORMAL"], max_concurrency=1)
        async with Watching(emulator, trigger) as watching:
            await watching.rounds("shop-b", 2)
            emulator.set_faults(sequence=(["503_json"] * 5 + ["ok"]) * 20)
            _set(emulator, "shop-a", "NORMAL")
            _set(emulator, "shop-b", "NORMAL")
            await watching.until(lambda: bool(watching.events))
            await watching.rounds("shop-b", 2)
            return watching.events

    events = _run(scenario)
    assert [e["instance_name"] for e in events] == ["shop-b"]  # shop-a: no reading, no event yet
    text = logs()
    assert text.count("Reading instance shop-a failed") == 1
    assert "ImageSearch round failed" not in text


def test_a_refusal_of_one_instance_after_others_were_read_is_that_instances_error(
    conn: str, emulator: Emulator, logs: Callable[[], str]
) -> None:
    """An IAM policy that denies one instance (403) while the others are readable: each round reads
    the others (no round fails, no backoff), and shop-b's refusal is logged as its own error."""
    for name in ("shop-a", "shop-b", "shop-c"):
        _set(emulator, name, "CREATION")
    # One read at a time in name order: each round is shop-a (ok), shop-b (403), shop-c (ok).
    emulator.set_faults(sequence=["ok", "403", "ok"] * 8)

    async def scenario() -> list[dict[str, Any]]:
        trigger = _watch(["shop-a", "shop-b", "shop-c"], ["NORMAL"], max_concurrency=1)
        async with Watching(emulator, trigger) as watching:
            await watching.rounds("shop-c", 2)
            _set(emulator, "shop-c", "NORMAL")
            await watching.until(lambda: bool(watching.events), timeout=10)
            await watching.until(lambda: not emulator.control.faults()["sequence"])
            return watching.events

    events = _run(scenario)
    assert [e["instance_name"] for e in events] == ["shop-c"]
    refused = [r for r in emulator.requests_log() if r["status"] == 403]
    assert {r["instance"] for r in refused} == {"shop-b"}
    text = logs()
    assert "ImageSearch round failed" not in text
    assert text.count("Reading instance shop-b failed") == 1


def test_every_read_of_a_round_refused_at_the_default_concurrency_is_refused_credentials(
    conn: str, emulator: Emulator, logs: Callable[[], str]
) -> None:
    """The refusals of a round whose reads are all in flight at once (default ``max_concurrency``):
    none of them succeeded, so they are the connection's, not three instances' own refusals."""
    fleet = ["shop-a", "shop-b", "shop-c"]
    for name in fleet:
        _set(emulator, name, "CREATION")

    def refusals() -> list[dict[str, Any]]:
        return [r for r in emulator.requests_log() if r["route"] == INSTANCE_ROUTE and r["status"] == 403]

    async def scenario() -> list[dict[str, Any]]:
        async with Watching(emulator, _watch(fleet, ["NORMAL"])) as watching:
            await watching.rounds("shop-a", 2)
            emulator.set_faults(forbidden_rate=1.0)
            _set(emulator, "shop-b", "NORMAL")
            await watching.until(lambda: len(refusals()) >= 9, timeout=30)
            assert watching.events == []
            emulator.control.reset_faults()
            await watching.until(lambda: bool(watching.events))
            return watching.events

    events = _run(scenario)
    assert [(e["instance_name"], e["new_status"]) for e in events] == [("shop-b", "NORMAL")]
    text = logs()
    assert text.count("ImageSearch round failed") == 1
    assert "Check the connection" in text
    # Not taken for the instances' own refusals: at least three rounds were refused whole, and only a
    # round that the fault's start or end cut through (some reads answered before it, some after) may
    # hold refusals of single instances, at most two of the three in each.
    assert text.count("Reading instance") <= 4, text
    assert "answered again after" in text


def test_a_connection_that_does_not_exist_neither_crashes_nor_spins(
    emulator: Emulator, logs: Callable[[], str]
) -> None:

    async def scenario() -> None:
        trigger = _watch(["shop-a"], ["NORMAL"], imagesearch_conn_id="no_such_connection")
        async with Watching(emulator, trigger):
            await asyncio.sleep(1.0)

    _run(scenario)
    assert logs().count("ImageSearch round failed") == 1
    assert emulator.requests_log() == []


# --- one poll loop for all watchers of a connection -------------------------------------------------


def test_twenty_watchers_of_one_fleet_cost_one_read_per_instance_per_round(
    conn: str, emulator: Emulator
) -> None:
    fleet = [f"fleet-{i}" for i in range(5)]
    for name in fleet:
        _set(emulator, name, "CREATION")
    watchers = [_watch(fleet, ["NORMAL"]) for _ in range(18)]
    watchers += [_watch(fleet[:2], FAILURES), _watch(fleet[3:], ["NORMAL", "ABNORMAL"])]

    async def scenario() -> tuple[int, int, int, list[dict[str, Any]]]:
        async with Watching(emulator, *watchers) as watching:
            await watching.rounds("fleet-0", 3)
            loops, users = LOCAL_STREAMS.groups(), SHARED_CLIENTS.users()
            _set(emulator, "fleet-4", "NORMAL")
            await watching.until(lambda: len(watching.events) >= 19)
            await watching.rounds("fleet-0", 3)
            after = LOCAL_STREAMS.groups()
        return loops, users, after, watching.events

    loops, users, _, events = _run(scenario)
    assert loops == 1  # one poll loop ...
    assert users == 1  # ... on one hook of the shared client
    reads = Counter(r["instance"] for r in emulator.requests_log() if r["route"] == INSTANCE_ROUTE)
    assert set(reads) == set(fleet)
    # Each round reads each instance once, whatever the number of watchers: the counts differ by at
    # most the round in progress when the test stopped.
    assert max(reads.values()) - min(reads.values()) <= 1, reads
    assert len(events) == 19  # 18 NORMAL watchers and the one that also watches fleet-4 for NORMAL
    assert {e["instance_name"] for e in events} == {"fleet-4"}


def test_watchers_with_other_cadences_have_their_own_loops_and_all_loops_end(
    conn: str, emulator: Emulator
) -> None:
    _set(emulator, "shop-a", "CREATION")

    async def scenario() -> tuple[int, int, int]:
        async with Watching(
            emulator, _watch(["shop-a"], ["NORMAL"]), _watch(["shop-a"], ["NORMAL"], poll_interval=0.3)
        ) as w:
            await w.rounds("shop-a", 3)
            during = LOCAL_STREAMS.groups()
        await asyncio.sleep(0)
        return during, LOCAL_STREAMS.groups(), SHARED_CLIENTS.count()

    during, after, clients = _run(scenario)
    assert during == 2
    assert after == 0  # the last watcher to leave stops its loop ...
    assert clients == 0  # ... which gives the shared client back


def test_a_round_reads_at_most_max_concurrency_at_once(conn: str, emulator: Emulator) -> None:
    fleet = [f"fleet-{i}" for i in range(24)]
    for name in fleet:
        _set(emulator, name, "NORMAL")
    emulator.set_faults(latency_seconds=0.1)

    async def scenario() -> None:
        async with Watching(emulator, _watch(fleet, ["NORMAL"], max_concurrency=3, poll_interval=30)) as w:
            await w.until(lambda: all(w.reads(n) >= 1 for n in fleet), timeout=60)

    _run(scenario)
    answered = sorted(r["ts"] for r in emulator.requests_log() if r["route"] == INSTANCE_ROUTE)
    # 24 reads of 0.1 s, 3 at a time, take at least 8 x 0.1 s (24 at once would take 0.1 s).
    assert answered[-1] - answered[0] >= 0.7


def test_the_demand_is_given_back_when_a_watcher_stops(conn: str, emulator: Emulator) -> None:
    _set(emulator, "shop-a", "CREATION")
    trigger = _watch(["shop-a"], ["NORMAL"])

    async def scenario() -> tuple[list[str], list[str]]:
        async with Watching(emulator, trigger) as w:
            await w.rounds("shop-a", 1)
            during = DEMAND.names(trigger.shared_stream_key())
        return during, DEMAND.names(trigger.shared_stream_key())

    assert _run(scenario) == (["shop-a"], [])


def test_airflow_3_3_shared_stream_one_poll_for_the_group(conn: str, emulator: Emulator) -> None:
    shared_stream = pytest.importorskip("airflow.triggers.shared_stream", reason="Airflow 3.3+")
    for name in ("shop-a", "shop-b"):
        _set(emulator, name, "CREATION")
    ready = _watch(["shop-a", "shop-b"], ["NORMAL"])
    failing = _watch(["shop-b"], FAILURES)
    assert ready.shared_stream_key() == failing.shared_stream_key()

    async def scenario() -> list[dict[str, Any]]:
        manager = shared_stream.SharedStreamManager()
        found: list[dict[str, Any]] = []

        async def consume(trigger_id: int, trigger: ImageSearchInstanceStatusEventTrigger) -> None:
            # What the 3.3 triggerer's run_trigger does for a trigger with a shared_stream_key.
            stream = manager.subscribe(
                trigger_id=trigger_id, trigger=trigger, key=trigger.shared_stream_key()
            )
            try:
                async for event in trigger.filter_shared_stream(stream):
                    found.append(event.payload)
            finally:
                await manager.unsubscribe(trigger_id, trigger.shared_stream_key())

        tasks = [asyncio.create_task(consume(1, ready)), asyncio.create_task(consume(2, failing))]
        watching = Watching(emulator)
        await watching.rounds("shop-b", 2)
        assert len(manager._groups) == 1  # one group: one poll loop
        _set(emulator, "shop-a", "NORMAL")
        _set(emulator, "shop-b", "ABNORMAL")
        await watching.until(lambda: len(found) >= 2)
        await watching.rounds("shop-b", 2)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        assert not manager._groups
        return found

    found = _run(scenario)
    assert sorted((e["instance_name"], e["new_status"]) for e in found) == [
        ("shop-a", "NORMAL"),
        ("shop-b", "ABNORMAL"),
    ]
    reads = Counter(r["instance"] for r in emulator.requests_log() if r["route"] == INSTANCE_ROUTE)
    assert abs(reads["shop-a"] - reads["shop-b"]) <= 1  # shop-b, watched twice, is read once a round


# --- what an event may carry ---------------------------------------------------------------------


def test_every_value_an_instance_may_hold_becomes_sendable() -> None:
    """What the service answers reaches the triggerer's msgpack, the asset event's JSON column and
    PostgreSQL: lone surrogates and NUL, NaN, 65-bit integers, bytes, tuples and odd keys all pass."""
    from airflow.sdk.execution_time.comms import _new_encoder

    from airflow_provider_imagesearch.triggers.status_polling import wire_safe

    nasty = {
        "tags": ("cut \ud83d", "pair \ud83d\ude00", "nul \x00 end", "\u202eRTL"),
        "level": 2**70,
        "negative": -(2**70),
        "fits": 2**63,
        "ratio": float("nan"),
        "huge": float("inf"),
        "raw": b"\xff\xfe ok",
        "nested": {1: {"set": frozenset({"x"})}, "\udc00key": None},
        "when": datetime(2026, 1, 1, tzinfo=UTC),
        "flag": True,
    }
    safe = wire_safe(nasty)
    assert safe["tags"] == ["cut \ufffd", "pair \U0001f600", "nul \ufffd end", "\u202eRTL"]
    assert (safe["level"], safe["negative"], safe["fits"]) == (str(2**70), str(-(2**70)), 2**63)
    assert (safe["ratio"], safe["huge"]) == (None, None)
    assert safe["raw"] == "\ufffd\ufffd ok"
    assert safe["nested"] == {"1": {"set": ["x"]}, "\ufffdkey": None}
    assert safe["when"] == "2026-01-01T00:00:00+00:00"
    assert safe["flag"] is True
    text = json.dumps(safe, allow_nan=False)
    text.encode("utf-8")  # strict: no surrogate left
    assert "\\u0000" not in text
    _new_encoder().encode(safe)  # what the triggerer does before sending an event to its supervisor
    assert wire_safe("plain") == "plain"


def test_airflow_3_3_ack_mode_stores_the_memory_only_once_the_events_are_confirmed_stored(
    conn: str, emulator: Emulator
) -> None:
    """On 3.3 the triggerer runs the watchers' shared stream in ack mode: the memory that an event was
    reported is stored after Airflow confirms the event is in its database, not after a guessed
    delay. Driven as the 3.3 triggerer's ``run_trigger`` drives it: each event bound to its round
    (``bind_pending_event``), its storage confirmed by ``confirm_persisted``."""
    shared_stream = pytest.importorskip("airflow.triggers.shared_stream", reason="Airflow 3.3+")
    _set(emulator, "shop-a", "CREATION")
    _set(emulator, "shop-b", "CREATION")
    store = FakeAssetStore()
    trigger = _watch(["shop-a", "shop-b"], ["NORMAL"])
    trigger.asset_state_store = cast(Any, store)
    key = trigger.shared_stream_key()

    async def scenario() -> tuple[str | None, str | None, list[dict[str, Any]]]:
        manager = shared_stream.SharedStreamManager()
        found: list[dict[str, Any]] = []
        seqs: list[int] = []

        async def consume() -> None:
            stream = manager.subscribe(trigger_id=1, trigger=trigger, key=key)
            try:
                async for event in trigger.filter_shared_stream(stream):
                    seq = manager.bind_pending_event(trigger_id=1, key=key)
                    assert seq is not None  # ack mode: the event gates the round's advance
                    seqs.append(seq)
                    found.append(event.payload)
            finally:
                await manager.unsubscribe(1, key)

        task = asyncio.create_task(consume())
        watching = Watching(emulator)
        await watching.until(lambda: _stored_status(store, "shop-b") == "CREATION")  # the baseline
        _set(emulator, "shop-a", "NORMAL")
        await watching.until(lambda: bool(found))
        await watching.rounds("shop-a", 5)  # long after the 0.3 s the delay would have waited
        before = _stored_status(store, "shop-a")
        manager.confirm_persisted(seqs)  # the supervisor stored the asset event
        await watching.until(lambda: _stored_status(store, "shop-a") == "NORMAL")
        after = _stored_status(store, "shop-a")
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return before, after, found

    before, after, found = _run(scenario)
    assert [(e["instance_name"], e["old_status"]) for e in found] == [("shop-a", "CREATION")]
    assert (before, after) == ("CREATION", "NORMAL")


def test_an_instance_that_did_not_exist_is_logged_so_when_it_enters_a_watched_status(
    conn: str, emulator: Emulator, logs: Callable[[], str]
) -> None:
    remove_instance(emulator, "k4ev-appears")

    async def scenario() -> None:
        async with Watching(emulator, _watch("k4ev-appears", ["NORMAL"])) as watching:
            await watching.rounds("k4ev-appears", 1)  # not there: the baseline
            _set(emulator, "k4ev-appears", "NORMAL")
            await watching.until(lambda: len(watching.events) == 1)

    _run(scenario)
    assert "Instance k4ev-appears: (did not exist) -> NORMAL: event" in logs()


def test_a_change_of_a_known_status_is_logged_from_that_status(
    conn: str, emulator: Emulator, logs: Callable[[], str]
) -> None:
    async def scenario() -> None:
        _set(emulator, "k4ev-grown", "CREATION")
        async with Watching(emulator, _watch("k4ev-grown", ["NORMAL"])) as watching:
            await watching.rounds("k4ev-grown", 1)
            _set(emulator, "k4ev-grown", "NORMAL")
            await watching.until(lambda: len(watching.events) == 1)

    _run(scenario)
    assert "Instance k4ev-grown: CREATION -> NORMAL: event" in logs()
