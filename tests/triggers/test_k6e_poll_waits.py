"""An event watcher's rounds start every ``poll_interval`` from the start of the last one: the wait after a
round is the interval less the round's own time (waits scripted, the loop's clock ticking 10 ms a read)."""

from __future__ import annotations

import time
from typing import Any, cast

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.triggers import status_polling
from tests.support.scripted_waits import ScriptedWaits
from tests.triggers.test_event_trigger import Watching, _run, _set, _watch, conn

__all__ = ["conn"]  # the event trigger tests' connection fixture, used here too


class _TickingMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        self.now += 0.01
        return self.now

    @staticmethod
    def time() -> float:
        return time.time()


@pytest.mark.usefixtures("conn")
def test_each_wait_is_the_interval_less_the_rounds_own_time(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits = ScriptedWaits(real=True)
    monkeypatch.setattr(status_polling, "asyncio", waits)
    monkeypatch.setattr(status_polling, "time", _TickingMonotonic())
    _set(emulator, "k6e-waits", "CREATION")

    async def scenario() -> None:
        async with Watching(emulator, _watch(["k6e-waits"], ["NORMAL"], poll_interval=0.5)) as watching:
            await watching.rounds("k6e-waits", 3)

    _run(cast(Any, scenario))
    assert len(waits.sleeps) >= 2, waits.sleeps
    assert all(0 < seconds < 0.5 for seconds in waits.sleeps), waits.sleeps
