"""Scripted waits for a poll loop: each ``asyncio.sleep`` is recorded and, instead of waiting, applies the
next scripted change (an instance's new status, a fault), so a scenario runs round by round, fast and
deterministic."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from tests.support.clocks import FrozenMonotonic


class ScriptedWaits:
    """Stands in for ``asyncio`` in the module under test: ``sleep`` records the wait asked for and runs
    the next of ``changes`` instead of waiting (``real=True``: it also waits). Anything else is asyncio's.
    """

    def __init__(self, real: bool = False) -> None:
        self.sleeps: list[float] = []
        self.changes: list[Callable[[], object]] = []
        self.real = real

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.changes:
            self.changes.pop(0)()
        await asyncio.sleep(seconds if self.real else 0)

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)


def script_waits(monkeypatch: pytest.MonkeyPatch, module: ModuleType) -> ScriptedWaits:
    """Script the waits of ``module`` (its ``asyncio``) and freeze its monotonic clock (its ``time``).

    With the clock frozen a read takes no time, so the wait the loop asks for is the whole interval,
    whatever the machine's load: ``sleeps`` can be compared exactly.
    """
    scripted = ScriptedWaits()
    monkeypatch.setattr(module, "asyncio", scripted)
    monkeypatch.setattr(module, "time", FrozenMonotonic())
    return scripted
