"""A hung endpoint does not hold a fleet trigger's round past its timeout or its error limit (issue 20).

Suspected by the review, confirmed here: ``timeout_at`` and ``max_consecutive_errors`` were checked only
between rounds, and a round read every pending instance, so with an endpoint that answers nothing a round of
1,000 instances took 1,000 read timeouts (times the hook's attempts) / ``max_concurrency`` before either
limit was looked at. Both tests count the instances the trigger asked for (each read of a hung endpoint is
logged by the emulator once its delay has passed), not the time it took.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from airflow_provider_imagesearch.triggers.imagesearch import (
    ImageSearchFleetStatusTrigger,
    ImageSearchInstanceStatusTrigger,
)
from tests.support.waiting import wait_until

NAMES = [f"hung-{index:02d}" for index in range(40)]
#: How long the "hung" endpoint sits on each request; the client gives up after READ_TIMEOUT.
SLOW_SECONDS = 2.0
READ_TIMEOUT = 0.3


def _hang(emulator: Emulator) -> None:
    emulator.control.upsert_instances(
        [
            {"name": name, "project_id": DEFAULT_PROJECT_ID, "status": "CREATION", "transition_after_s": 3600}
            for name in NAMES
        ]
    )
    emulator.set_faults(slow_rate=1.0, slow_seconds=SLOW_SECONDS)


async def _first(trigger: Any) -> dict[str, Any]:
    generator = trigger.run()
    try:
        event = await anext(generator)
    finally:
        await generator.aclose()
    return dict(event.payload)


def _instances_asked(emulator: Emulator) -> set[str]:
    """The instances read so far, once the hung requests in flight have been logged."""
    logged = wait_until(
        lambda: len(emulator.requests_log()), lambda _: False, timeout=SLOW_SECONDS + 1.0, every=0.25
    )
    assert logged >= 0
    return {r["instance"] for r in emulator.requests_log() if r["method"] == "GET" and r.get("instance")}


def _conn(imagesearch_conn: Callable[..., str]) -> str:
    return imagesearch_conn("token", read_timeout=READ_TIMEOUT, max_attempts=2)


def test_timeout_ends_a_round_of_a_hung_endpoint(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    _hang(emulator)
    trigger = ImageSearchFleetStatusTrigger(
        instance_names=NAMES,
        imagesearch_conn_id=_conn(imagesearch_conn),
        poll_interval=0.2,
        max_concurrency=2,
        max_consecutive_errors=1000,
        timeout_at=time.time() + 1.5,
    )
    event = asyncio.run(_first(trigger))
    assert event["status"] == "timeout"
    assert event["pending"] == NAMES
    # 40 reads two at a time, each >= 2 x 0.3 s, is >= 12 s: the round was cut at the timeout.
    assert len(_instances_asked(emulator)) < len(NAMES)


def test_consecutive_errors_end_a_round_of_a_hung_endpoint(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    _hang(emulator)
    trigger = ImageSearchFleetStatusTrigger(
        instance_names=NAMES,
        imagesearch_conn_id=_conn(imagesearch_conn),
        poll_interval=0.05,
        max_concurrency=2,
        max_consecutive_errors=2,
    )
    event = asyncio.run(_first(trigger))
    assert event["status"] == "error"
    assert event["retryable"] is True
    assert event["error_code"] == "READ_TIMEOUT"
    # Two failed rounds, each stopped after two failed reads in a row (plus the one in flight beside them).
    assert len(_instances_asked(emulator)) < len(NAMES)


def test_timeout_ends_a_single_wait_on_a_hung_endpoint(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    _hang(emulator)
    trigger = ImageSearchInstanceStatusTrigger(
        instance_name=NAMES[0],
        # The read would wait out the endpoint's delay: only the trigger's timeout can end it first.
        imagesearch_conn_id=imagesearch_conn("token", read_timeout=SLOW_SECONDS * 5, max_attempts=1),
        poll_interval=0.2,
        timeout_at=time.time() + 0.5,
    )
    event = asyncio.run(_first(trigger))
    assert event["status"] == "timeout"
    # The event came while the read was still in flight: the emulator had not answered (logged) it yet.
    assert not [r for r in emulator.requests_log() if r.get("instance") == NAMES[0]]
    # The abandoned read is logged once its delay has passed, unanswered (waited for so that it does not
    # land in the next test's log; under load the emulator may log it later than that, or not at all).
    logged = wait_until(
        lambda: [r for r in emulator.requests_log() if r.get("instance") == NAMES[0]], bool, timeout=30.0
    )
    assert all(r["status"] is None for r in logged), logged
