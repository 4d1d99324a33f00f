"""An async token read never blocks its event loop, even while a sync fetch in another thread holds the
token's lock: the loop's other tasks keep running while it waits."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta

from airflow_provider_imagesearch.auth import IssuedToken, TokenCache


def _token(value: str) -> IssuedToken:
    return IssuedToken(
        value=value,
        expires_at=datetime.now(UTC) + timedelta(hours=1),
        renew_after=time.monotonic() + 3600,
        expires_monotonic=time.monotonic() + 3600,
    )


def test_an_async_read_waiting_for_a_sync_fetch_leaves_the_loop_free() -> None:
    cache = TokenCache()
    fetching = threading.Event()

    def slow_fetch() -> IssuedToken:
        fetching.set()
        time.sleep(1.0)
        return _token("from-the-thread")

    holder = threading.Thread(target=cache.get, args=("key", slow_fetch))
    holder.start()
    assert fetching.wait(5)

    async def scenario() -> tuple[str, float]:
        gaps: list[float] = []

        async def tick() -> None:
            last = time.monotonic()
            while True:
                await asyncio.sleep(0.01)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        ticker = asyncio.create_task(tick())
        await asyncio.sleep(0.05)  # the ticker is running before the read starts

        async def never_called() -> IssuedToken:
            raise AssertionError("the token fetched by the thread is used")

        value = await cache.aget("key", never_called)
        await asyncio.sleep(0.05)  # the ticker sees the time the read took
        ticker.cancel()
        return value, max(gaps, default=0.0)

    value, longest_gap = asyncio.run(scenario())
    holder.join()
    assert value == "from-the-thread"
    assert longest_gap < 0.5, longest_gap  # the thread held the lock for a second
