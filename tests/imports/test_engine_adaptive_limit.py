"""The import's adaptive limit of requests in flight: a row waiting for a slot takes the one freed while
it waits, and gives up only when its timeout passes with every slot still taken."""

from __future__ import annotations

import threading
import time

from airflow_provider_imagesearch.imports.engine import AdaptiveLimit


def test_a_slot_freed_while_a_row_waits_is_taken_at_once() -> None:
    limit = AdaptiveLimit(1)
    assert limit.acquire(0.01)
    taken: list[bool] = []
    # The row would wait an hour: within the ten seconds it is given below, only the freed slot (not its
    # own timeout) can end its wait.
    row = threading.Thread(target=lambda: taken.append(limit.acquire(3600.0)), daemon=True)
    row.start()
    releaser = threading.Timer(0.05, limit.release)
    releaser.start()
    releaser.join()
    row.join(timeout=10.0)
    assert taken == [True], "the waiting row did not get the freed slot"
    assert limit.in_flight == 1


def test_a_row_waits_out_its_timeout_when_no_slot_frees() -> None:
    limit = AdaptiveLimit(1)
    assert limit.acquire(0.01)
    releaser = threading.Timer(2.0, limit.release)
    releaser.start()
    try:
        # Its timeout passes long before the slot frees: it gives up, holding nothing.
        assert not limit.acquire(0.2)
        assert limit.in_flight == 1
        # A row whose timeout lasts past the release is still waiting then, not given up: it takes the slot.
        assert limit.acquire(10.0), "the row gave up before its timeout passed"
    finally:
        releaser.join()
    assert limit.in_flight == 1


def test_a_429_halves_the_limit_once_per_retry_after_window_down_to_one() -> None:
    """One throttling episode lasts the 429's ``Retry-After`` (1 s when it gives none): further 429s
    within it do not halve again; the limit never drops below one request in flight."""
    floor = AdaptiveLimit(2)
    floor.throttled(0.05)
    default_window = AdaptiveLimit(8)
    default_window.throttled(None)
    default_window.throttled(None)  # at once: the same episode
    long_window = AdaptiveLimit(8)
    long_window.throttled(5.0)
    assert (default_window.limit, default_window.cuts) == (4, 1)
    time.sleep(1.2)
    floor.throttled(None)  # a new episode, at one already
    default_window.throttled(None)  # past the default 1 s
    long_window.throttled(None)  # within the 5 s the first 429 asked for
    assert (floor.limit, floor.cuts) == (1, 2)
    assert (default_window.limit, default_window.cuts) == (2, 2)
    assert (long_window.limit, long_window.cuts) == (4, 1)


def _slots(limit: AdaptiveLimit) -> int:
    """How many requests may start now (each slot taken, then all given back)."""
    taken = 0
    while limit.acquire(0.01):
        taken += 1
    for _ in range(taken):
        limit.release()
    return taken


def test_an_odd_limit_halves_to_whole_requests_and_each_success_gives_back_one() -> None:
    limit = AdaptiveLimit(5)
    limit.throttled(5.0)
    assert _slots(limit) == 2  # 5 // 2: never two and a half
    limit.succeeded()
    assert _slots(limit) == 3
    for _ in range(10):
        limit.succeeded()
    assert _slots(limit) == 5  # back to the cap, never above it
