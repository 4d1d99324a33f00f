"""Stand-ins for the ``time`` module of the code under test, so that waits and deadlines are exact.

Patch one in where the module under test looks ``time`` up (``monkeypatch.setattr(module, "time", ...)``).
"""

from __future__ import annotations

import time


class FrozenMonotonic:
    """The wall clock as it is, and a monotonic clock that does not move.

    A read then takes no time by the monotonic clock: a poll loop's wait is the whole interval it asks
    for, whatever the machine's load.
    """

    @staticmethod
    def time() -> float:
        return time.time()

    @staticmethod
    def monotonic() -> float:
        return 1000.0


class StillWallClock:
    """A wall clock that does not move: no time passes between two readings of ``time()``."""

    @staticmethod
    def time() -> float:
        return 1_800_000_000.0


class ScriptedClock:
    """Each reading of ``time()`` is the next scripted value, the last one repeating; ``monotonic()`` is
    likewise scripted when given, else the real monotonic clock."""

    def __init__(self, times: list[float], monotonic: list[float] | None = None) -> None:
        self.times = list(times)
        self.monotonics = list(monotonic or [])

    def time(self) -> float:
        return self.times.pop(0) if len(self.times) > 1 else self.times[0]

    def monotonic(self) -> float:
        if not self.monotonics:
            return time.monotonic()
        return self.monotonics.pop(0) if len(self.monotonics) > 1 else self.monotonics[0]


class LateMonotonic:
    """The real clocks, except that the monotonic one is an hour later once ``late`` is set: a time limit
    passes at the exact step a test sets it (a ledger write, an answer), whatever the machine's speed."""

    def __init__(self) -> None:
        self.late = False

    @staticmethod
    def time() -> float:
        return time.time()

    @staticmethod
    def sleep(seconds: float) -> None:
        time.sleep(seconds)

    def monotonic(self) -> float:
        return time.monotonic() + (3600.0 if self.late else 0.0)
