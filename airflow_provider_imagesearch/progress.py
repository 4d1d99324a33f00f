"""When a long task logs its progress: every 5% of the work or every 30 s, and once at the end."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class ProgressLine:
    """What a progress line reports."""

    done: int
    total: int
    percent: int
    rate: float
    eta: str


class ProgressPacer:
    """Says when a progress line is due and what it reports, for a bulk import or a batch of searches.

    :param total: the units of work (rows, queries, bytes), or None when unknown (a line every
        ``every_seconds`` only).
    :param every_percent: a line each time this much more of the total is done.
    :param every_seconds: a line at least this often while work goes on.
    """

    def __init__(self, total: int | None, *, every_percent: int = 5, every_seconds: float = 30.0) -> None:
        self.total = total
        self.every_percent = every_percent
        self.every_seconds = every_seconds
        self.started = time.monotonic()
        self._next_percent = every_percent
        self._last = self.started
        self._ended = False

    def due(self, done: int) -> ProgressLine | None:
        """The line to log now that ``done`` units are done, or ``None`` when none is due."""
        now = time.monotonic()
        if self.total is None:
            if now - self._last < self.every_seconds:
                return None
            self._last = now
            return ProgressLine(done, 0, 0, done / max(now - self.started, 1e-9), "unknown")
        total = self.total
        percent = 100 * done // total if total else 100
        finished = done >= total
        if finished and self._ended:
            return None
        if not finished and percent < self._next_percent and now - self._last < self.every_seconds:
            return None
        self._ended = finished
        self._next_percent = (percent // self.every_percent + 1) * self.every_percent
        self._last = now
        rate = done / max(now - self.started, 1e-9)
        eta = (total - done) / rate if rate > 0 else math.inf
        return ProgressLine(done, total, percent, rate, f"{eta:.0f}s" if eta != math.inf else "unknown")
