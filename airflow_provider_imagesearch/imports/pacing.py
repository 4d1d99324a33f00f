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


class RequestRate:
    """Requests per second at most, shared by threads (see the module doc).

    :param per_second: the rate; requests start at least ``1 / per_second`` seconds apart.
    """

    def __init__(self, per_second: float) -> None:
        if not 0 < per_second <= MAX_RATE:
            raise ValueError(f"per_second must be in (0, {MAX_RATE:g}], not {per_second!r}")
        self.per_second = per_second
        self.interval = 1.0 / (per_second * SCHEDULE_SHARE)
        self._next = 0.0
        #: When the last requests of a one-second window were let through.
        self._recent: collections.deque[float] = collections.deque(
            maxlen=max(1, math.floor(per_second * WINDOW_SHARE))
        )
        self._lock = threading.Lock()

    def acquire(self) -> None:
        """Wait for the next token (the lock is held while sleeping: the waiters queue in order)."""
        with self._lock:
            now = time.monotonic()
            slot = max(self._next, now)
            if len(self._recent) == self._recent.maxlen:
                slot = max(slot, self._recent[0] + 1.0)
            while (now := time.monotonic()) < slot:
                time.sleep(slot - now)
            self._next = slot + self.interval  # from the slot, not the wake-up: lateness does not add up
            self._recent.append(now)


def paced_adapter(rate: RequestRate, **kwargs: Any) -> Any:
    """A ``requests`` HTTP adapter whose every send first takes a token of ``rate``."""
    import requests

    class PacedAdapter(requests.adapters.HTTPAdapter):
        def send(self, request: Any, *args: Any, **send_kwargs: Any) -> Any:
            rate.acquire()
            return super().send(request, *args, **send_kwargs)

    return PacedAdapter(max_retries=0, **kwargs)
