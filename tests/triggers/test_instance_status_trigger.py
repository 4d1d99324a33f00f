"""ImageSearchInstanceStatusTrigger unit tests: no Airflow DB, the emulator over loopback."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from airflow_provider_imagesearch.triggers.imagesearch import ImageSearchInstanceStatusTrigger
from tests.support.waiting import after_first_poll, wait_until


def _trigger(conn_id: str, name: str, **kwargs: Any) -> ImageSearchInstanceStatusTrigger:
    kwargs.setdefault("poll_interval", 0.2)
    kwargs.setdefault("failure_statuses", ["CREATION_FAILD", "ABNORMAL"])
    return ImageSearchInstanceStatusTrigger(instance_name=name, imagesearch_conn_id=conn_id, **kwargs)


def _first_event(trigger: ImageSearchInstanceStatusTrigger) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        generator = trigger.run()
        try:
            event = await anext(generator)
        finally:
            await generator.aclose()
        return dict(event.payload)

    return asyncio.run(run())


def test_serialization_round_trip() -> None:
    trigger = _trigger(
        "conn",
        "shop-1",
        project_id=DEFAULT_PROJECT_ID,
        region="cn-north-4",
        not_found_deadline=12.5,
        timeout_at=99.0,
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_imagesearch.triggers.imagesearch.ImageSearchInstanceStatusTrigger"
    rebuilt = ImageSearchInstanceStatusTrigger(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    import json

    assert json.loads(json.dumps(kwargs)) == kwargs


def test_success_event_carries_the_details(imagesearch_conn: Callable[..., str], emulator: Emulator) -> None:
    # NORMAL a moment after the first poll answered CREATION, however late that poll comes.
    emulator.upsert_instance("shop-1", status="CREATION")

    def grow() -> None:
        emulator.upsert_instance("shop-1", status="CREATION", transition_after_s=0.5, next_status="NORMAL")

    with after_first_poll(emulator, "shop-1", grow):
        event = _first_event(_trigger(imagesearch_conn(), "shop-1"))
    assert event["status"] == "success"
    assert event["instance"]["status"] == "NORMAL"
    assert event["instance"]["instance_name"] == "shop-1"
    assert event["polls"] >= 2


def test_failure_event_names_status_and_reason(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    emulator.upsert_instance("shop-2", status="ABNORMAL")
    event = _first_event(_trigger(imagesearch_conn(), "shop-2"))
    assert event["status"] == "failure"
    assert event["instance_status"] == "ABNORMAL"
    assert "shop-2" in event["message"]
    assert "ABNORMAL" in event["message"]
    assert "manual action" in event["message"]


def test_not_found_after_deadline(imagesearch_conn: Callable[..., str], emulator: Emulator) -> None:
    event = _first_event(_trigger(imagesearch_conn(), "ghost", not_found_deadline=time.time() + 2.0))
    assert event["status"] == "not_found"
    assert event["error_code"] == "IS.0007"
    assert event["polls"] >= 2


def test_timeout_event(imagesearch_conn: Callable[..., str], emulator: Emulator) -> None:
    emulator.upsert_instance("shop-3", status="CREATION", transition_after_s=3600.0)
    started = time.monotonic()
    event = _first_event(
        _trigger(imagesearch_conn(), "shop-3", poll_interval=60.0, timeout_at=time.time() + 0.5)
    )
    assert event["status"] == "timeout"
    # It woke at the timeout, not at the next poll a minute away.
    assert time.monotonic() - started < 30.0


def test_always_500_ends_with_an_error_after_the_cap_without_hot_loop(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    emulator.upsert_instance("shop-4", status="NORMAL")
    emulator.set_faults(error_5xx_rate=1.0, error_5xx_kinds=["500_json"])
    conn_id = imagesearch_conn("token", max_attempts=2)
    started = time.monotonic()
    event = _first_event(_trigger(conn_id, "shop-4", poll_interval=0.1, max_consecutive_errors=3))
    elapsed = time.monotonic() - started
    assert event["status"] == "error"
    assert event["retryable"] is True
    assert event["http_status"] == 500
    requests = sum(1 for r in emulator.requests_log() if r.get("instance") == "shop-4")
    # 3 polls x 2 attempts each, and nothing more.
    assert requests == 6
    # Backoff between polls: 0.1 s then 0.2 s at least.
    assert elapsed >= 0.3


def test_forbidden_ends_after_one_request(imagesearch_conn: Callable[..., str], emulator: Emulator) -> None:
    emulator.upsert_instance("shop-5", status="CREATION", transition_after_s=3600.0)
    emulator.set_faults(forbidden_rate=1.0)
    event = _first_event(_trigger(imagesearch_conn(), "shop-5", poll_interval=0.01))
    assert event["status"] == "error"
    assert event["retryable"] is False
    assert event["http_status"] == 403
    assert sum(1 for r in emulator.requests_log() if r.get("instance") == "shop-5") == 1


def test_token_renewed_during_a_long_wait_with_one_client(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    emulator.upsert_instance("shop-6", status="CREATION", transition_after_s=3.0, next_status="NORMAL")
    stop = threading.Event()

    def expire_after_first_poll() -> None:
        # Expire the token only once the trigger has used it, whatever the machine's speed.
        log = wait_until(
            emulator.requests_log, lambda log: any(r["instance"] == "shop-6" for r in log) or stop.is_set()
        )
        if any(r["instance"] == "shop-6" for r in log):
            emulator.expire_tokens(include_ready=False)

    expiry = threading.Thread(target=expire_after_first_poll)
    expiry.start()
    trigger = _trigger(imagesearch_conn("iam_password"), "shop-6")
    try:
        event = _first_event(trigger)
    finally:
        stop.set()
        expiry.join()
    assert event["status"] == "success"
    assert emulator.stats()["token_expiries"] == 1
    assert emulator.stats()["token_requests"] == 2
    assert trigger._hook is None  # the client was closed on exit


def test_cleanup_closes_the_client(imagesearch_conn: Callable[..., str], emulator: Emulator) -> None:
    emulator.upsert_instance("shop-7", status="CREATION", transition_after_s=3600.0)
    trigger = _trigger(imagesearch_conn(), "shop-7", poll_interval=10.0)

    async def run() -> None:
        generator = trigger.run()
        task = asyncio.ensure_future(anext(generator))
        # Wait (with a deadline) until the first poll has opened the client.
        for _ in range(200):
            if trigger._hook is not None and trigger._hook._client is not None:
                break
            await asyncio.sleep(0.05)
        assert trigger._hook is not None
        assert trigger._hook._client is not None
        client = trigger._hook._client
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await trigger.cleanup()
        assert client.is_closed

    asyncio.run(run())
