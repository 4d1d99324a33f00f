"""``max_rate``: an import's requests paced under a requests-per-second quota, by all its threads together.

ImageSearch sells throughput as a QPS quota; an import that finds the quota through 429s halves its
concurrency and waits out ``Retry-After`` again and again. :class:`RequestRate` is a token bucket of one
token shared by every thread of the import, refilled on a fixed schedule (every ``1 / rate`` seconds,
``rate`` 97% of ``max_rate``). The schedule is kept from slot to slot, not from each wake-up, so a thread
the OS wakes late does not slow every later request; and a request is also held until the one 98% of
``max_rate`` requests before it is a second old, so no one-second window of this clock ever holds more
than 98% of ``max_rate`` requests, however late the wake-ups were. The 2% left is for the service's
clock: it counts requests as they arrive, and arrivals bunch up on the way (the emulator's log, stamped
when each request is answered, showed 204 in one second of a run whose client let 199 through). It sits in front of the session (:func:`paced_adapter`), so every request the import sends waits
for its token: adds, updates, deletes, checks, and the hook's own retries.

A wait ends early when the import stops: ``stop`` is set (a fatal error, a lost lock, the time limit), or
the token's slot falls at or after ``deadline`` (the time limit). The request is then not sent: the wait
raises :class:`RateStopped`. Without that, every thread's row waiting for a token at a slow ``max_rate``
would still be sent after the time limit, one a token, ``max_concurrency / max_rate`` seconds on.
"""

from __future__ import annotations

import collections
import math
import threading
import time
from typing import Any

#: The largest ``max_rate`` accepted (requests per second).
MAX_RATE = 10_000.0
#: The share of ``max_rate`` the schedule runs at, and the most let through in any second of this
#: clock (see the module doc).
SCHEDULE_SHARE = 0.97
WINDOW_SHARE = 0.98
#: How often a thread queued behind another's wait looks at ``stop`` (seconds).
POLL_SECONDS = 0.1


class RateStopped(Exception):
    """The import stopped (or its time limit comes first) while a request waited for its token."""


class RequestRate:
    """Requests per second at most, shared by threads (see the module doc).

    :param per_second: the rate; requests start at least ``1 / per_second`` seconds apart.
    :param stop: set when the import stops: a waiting request is not sent (:class:`RateStopped`).
    :param deadline: ``time.monotonic()`` from which no token is handed out (:class:`RateStopped`).
    """

    def __init__(
        self, per_second: float, stop: threading.Event | None = None, deadline: float | None = None
    ) -> None:
        if not 0 < per_second <= MAX_RATE:
            raise ValueError(f"per_second must be in (0, {MAX_RATE:g}], not {per_second!r}")
        self.per_second = per_second
        self.interval = 1.0 / (per_second * SCHEDULE_SHARE)
        self._next = 0.0
        #: When the last requests of a one-second window were let through.
        self._recent: collections.deque[float] = collections.deque(
            maxlen=max(1, math.floor(per_second * WINDOW_SHARE))
        )
        self.stop = stop
        self.deadline = deadline
        self._lock = threading.Lock()

    def acquire(self) -> None:
        """Wait for the next token (the lock is held while sleeping: the waiters queue in order).

        :raises RateStopped: ``stop`` was set, or the token's slot is at or after ``deadline``.
        """
        while not self._lock.acquire(timeout=POLL_SECONDS):
            self._check_stop()
        try:
            self._check_stop()
            now = time.monotonic()
            slot = max(self._next, now)
            if len(self._recent) == self._recent.maxlen:
                slot = max(slot, self._recent[0] + 1.0)
            if self.deadline is not None and slot >= self.deadline:
                raise RateStopped("the import's time limit comes before this request's turn")
            while (now := time.monotonic()) < slot:
                if self.stop is None:
                    time.sleep(slot - now)
                elif self.stop.wait(slot - now):
                    raise RateStopped("the import stopped while this request waited for its turn")
            self._next = slot + self.interval  # from the slot, not the wake-up: lateness does not add up
            self._recent.append(now)
        finally:
            self._lock.release()

    def _check_stop(self) -> None:
        if self.stop is not None and self.stop.is_set():
            raise RateStopped("the import stopped while this request waited for its turn")
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise RateStopped("the import's time limit came while this request waited for its turn")


def paced_adapter(rate: RequestRate, **kwargs: Any) -> Any:
    """A ``requests`` HTTP adapter whose every send first takes a token of ``rate``."""
    import requests

    class PacedAdapter(requests.adapters.HTTPAdapter):
        def send(self, request: Any, *args: Any, **send_kwargs: Any) -> Any:
            rate.acquire()
            return super().send(request, *args, **send_kwargs)

    return PacedAdapter(max_retries=0, **kwargs)
