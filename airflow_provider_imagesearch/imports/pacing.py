"""``max_rate``: an import's requests paced under a requests-per-second quota, by all its threads together.

ImageSearch sells throughput as a QPS quota; an import that finds the quota through 429s halves its
concurrency and waits out ``Retry-After`` again and again. :class:`RequestRate` is a token bucket of one
token, refilled every ``1 / max_rate`` seconds and shared by every thread of the import: two requests
never start closer than that, so no one-second window ever holds more than ``max_rate`` of them (a
larger bucket would allow a burst of its size on top of the rate in some window). It sits in front of
the session (:func:`paced_adapter`), so every request the import sends waits for its token: adds,
updates, deletes, checks, and the hook's own retries.
"""

from __future__ import annotations

import threading
import time
from typing import Any

#: The largest ``max_rate`` accepted (requests per second).
MAX_RATE = 10_000.0


class RequestRate:
    """Requests per second at most, shared by threads (see the module doc).

    :param per_second: the rate; requests start at least ``1 / per_second`` seconds apart.
    """

    def __init__(self, per_second: float) -> None:
        if not 0 < per_second <= MAX_RATE:
            raise ValueError(f"per_second must be in (0, {MAX_RATE:g}], not {per_second!r}")
        self.per_second = per_second
        self.interval = 1.0 / per_second
        self._next = 0.0
        self._lock = threading.Lock()
        self.waited = 0.0

    def acquire(self) -> None:
        """Wait for the next token (the lock is held while sleeping: the waiters queue in order)."""
        with self._lock:
            now = time.monotonic()
            if now < self._next:
                time.sleep(self._next - now)
                self.waited += self._next - now
                now = time.monotonic()
            self._next = now + self.interval


def paced_adapter(rate: RequestRate, **kwargs: Any) -> Any:
    """A ``requests`` HTTP adapter whose every send first takes a token of ``rate``."""
    import requests

    class PacedAdapter(requests.adapters.HTTPAdapter):
        def send(self, request: Any, *args: Any, **send_kwargs: Any) -> Any:
            rate.acquire()
            return super().send(request, *args, **send_kwargs)

    return PacedAdapter(max_retries=0, **kwargs)
