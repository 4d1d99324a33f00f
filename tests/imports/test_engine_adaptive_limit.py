"""The import's adaptive limit of requests in flight: a row waiting for a slot takes the one freed while
it waits, and gives up only when its timeout passes with every slot still taken."""

from __future__ import annotations

import threading
import time

from airflow_provider_imagesearch.imports.engine import AdaptiveLimit


def test_a_slot_freed_while_a_row_waits_is_taken_at_once() -> None:
    limit = AdaptiveLimit(1)
    assert limit.acquire(0.01)
    releaser = threading.Timer(0.05, limit.release)
    releaser.start()
    started = time.monotonic()
    try:
        assert limit.acquire(10.0), "the waiting row did not get the freed slot"
    finally:
        releaser.join()
    assert time.monotonic() - started < 10.0
    assert limit.in_flight == 1


def test_a_row_waits_out_its_timeout_when_no_slot_frees() -> None:
    limit = AdaptiveLimit(1)
    assert limit.acquire(0.01)
    started = time.monotonic()
    assert not limit.acquire(0.2)
    assert time.monotonic() - started >= 0.2
    assert limit.in_flight == 1
