"""What an event watcher says and does as it recalls its memory from the asset state store at start."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, cast

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.triggers import events as events_module
from tests.support.scripted_waits import ScriptedWaits
from tests.triggers.test_event_trigger import FakeAssetStore, Watching, _run, _set, _watch, conn, logs

__all__ = ["conn", "logs"]  # fixtures of the event trigger's tests, used here too


def _started(emulator: Emulator, store: Any, names: list[str], statuses: list[str]) -> list[dict[str, Any]]:
    """Run a watcher until it has read ``names`` once; its events."""

    async def scenario() -> list[dict[str, Any]]:
        trigger = _watch(names, statuses)
        if store is not None:
            trigger.asset_state_store = cast(Any, store)
        async with Watching(emulator, trigger) as watching:
            for name in names:
                await watching.rounds(name, 1)
            return watching.events

    return cast(list[dict[str, Any]], _run(scenario))


@pytest.mark.usefixtures("conn")
def test_a_restarted_watcher_says_which_statuses_it_watches_and_how_many_it_resumed(
    emulator: Emulator, logs: Callable[[], str]
) -> None:
    _set(emulator, "k6e-r1", "CREATION")
    _set(emulator, "k6e-r2", "CREATION")
    store = FakeAssetStore()
    _started(emulator, store, ["k6e-r1", "k6e-r2"], ["NORMAL", "ABNORMAL"])
    logs()
    _started(emulator, store, ["k6e-r1", "k6e-r2"], ["NORMAL", "ABNORMAL"])
    text = logs()
    assert "Watching 2 instance(s) for ABNORMAL/NORMAL; resumed what watcher " in text
    assert " knew of 2 of them from the asset state store" in text
    assert "is not usable" not in text


@pytest.mark.usefixtures("conn")
def test_a_stored_value_the_watcher_cannot_use_is_named_and_a_new_baseline(
    emulator: Emulator, logs: Callable[[], str]
) -> None:
    _set(emulator, "k6e-bad", "CREATION")
    store = FakeAssetStore()
    _started(emulator, store, ["k6e-bad"], ["NORMAL"])
    for key in store.values:
        store.values[key] = {"format": "something else"}
    logs()
    _started(emulator, store, ["k6e-bad"], ["NORMAL"])
    text = logs()
    assert "stored of 1 instance(s) is not usable (e.g. k6e-bad)" in text
    assert " knew of 0 of them from the asset state store" in text


@pytest.mark.usefixtures("conn")
def test_event_ids_carry_the_time_the_watcher_first_started_in_milliseconds(emulator: Emulator) -> None:
    _set(emulator, "k6e-epoch", "CREATION")
    before = time.time() * 1000

    async def scenario() -> list[dict[str, Any]]:
        async with Watching(emulator, _watch(["k6e-epoch"], ["NORMAL"])) as watching:
            await watching.rounds("k6e-epoch", 1)
            _set(emulator, "k6e-epoch", "NORMAL")
            await watching.until(lambda: bool(watching.events))
            return watching.events

    events = cast(list[dict[str, Any]], _run(scenario))
    epoch_ms = int(events[0]["event_id"].split("-")[1])
    assert before - 1000 <= epoch_ms <= time.time() * 1000


class _DownStore(FakeAssetStore):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def aget(self, key: str, default: Any = None) -> Any:
        self.reads += 1
        raise RuntimeError("the API server is down")


@pytest.mark.usefixtures("conn")
def test_a_store_that_cannot_be_read_is_tried_load_attempts_times_then_a_new_baseline(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, logs: Callable[[], str]
) -> None:
    waits = ScriptedWaits()  # the waits between attempts asked for, not waited
    monkeypatch.setattr(events_module, "asyncio", waits)
    _set(emulator, "k6e-down", "CREATION")
    store = _DownStore()
    _started(emulator, store, ["k6e-down"], ["NORMAL"])
    assert store.reads == events_module.LOAD_ATTEMPTS
    assert "Could not read what watcher" in logs()
