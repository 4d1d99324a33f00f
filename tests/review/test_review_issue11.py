"""Review of issue #11 (bulk reads, fleet waits, shared async client) and the import engine's ``_call``.

Every test here FAILS on the code as reviewed: each reproduces one defect (see the report).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from tests.imports.conftest import catalog, ledger_conn, obs, run_import  # noqa: F401  (fixtures)
from tests.support.waiting import wait_until


@pytest.mark.parametrize("ledger_conn", ["sqlite"], indirect=True)
def test_import_throttling_burst_does_not_deadlock_the_engine(
    run_import: Callable[..., dict[str, Any]],  # noqa: F811
    emulator: Emulator,
    ledger_conn: dict[str, Any],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A burst of 429s (every request throttled for ~2 s) must not wedge the import for good.

    Throttled rows give their slot back while they sleep; the submitting thread takes it for a new row,
    which is queued in the pool because every worker thread is asleep; the sleepers then wait forever for
    a slot held by rows that can never start.
    """
    from airflow_provider_imagesearch.imports import engine as engine_module

    limits: list[Any] = []
    original_init = engine_module.AdaptiveLimit.__init__

    def spy_init(self: Any, cap: int) -> None:
        original_init(self, cap)
        limits.append(self)

    monkeypatch.setattr(engine_module.AdaptiveLimit, "__init__", spy_init)
    emulator.set_faults(throttle_429_rate=1.0, retry_after="0.5")
    manifest = [{"path": obs(f"burst/{i}.jpg"), "tags": {"color": "red"}} for i in range(40)]
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["result"] = run_import(manifest, max_concurrency=2)
        except BaseException as error:  # reported below
            outcome["error"] = error

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    time.sleep(2.0)
    emulator.set_faults(reset=True)  # the throttling episode is over
    finished = wait_until(lambda: not thread.is_alive(), bool, timeout=60.0)
    if not finished:
        # Unwedge the engine so that this process can exit (the pool's threads are joined at exit).
        for limit in limits:
            with limit._cond:
                limit.limit = limit.cap = 10**6
                limit._cond.notify_all()
        thread.join(60)
    assert finished, (
        "the import is still running 60 s after the throttling stopped (deadlocked); requests answered "
        f"since: {sum(1 for r in emulator.requests_log() if r['status'] == 200)}"
    )
    assert "error" not in outcome, outcome.get("error")
    assert outcome["result"]["added"] + outcome["result"]["failed"] == len(manifest)


def test_an_unresponsive_endpoint_does_not_stall_other_connections_triggers(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator
) -> None:
    """The shared client's request gate (4 in flight) is shared by every connection of the loop.

    Its key is (verify, timeouts, proxies), not the endpoint: four waits on a connection whose endpoint
    accepts but never answers hold all four places for ``read_timeout`` (x the retries), and every other
    ImageSearch trigger of the triggerer, on a healthy endpoint, waits behind them.
    """
    import asyncio
    import socket

    from airflow_provider_imagesearch.triggers.imagesearch import (
        ImageSearchFleetStatusTrigger,
        ImageSearchInstanceStatusTrigger,
    )
    from tests.support.connections import connection_fields, set_connection

    black_hole = socket.socket()
    black_hole.bind(("127.0.0.1", 0))
    black_hole.listen(64)  # accepts (the kernel does), never answers
    port = black_hole.getsockname()[1]
    try:
        slow = connection_fields(f"http://127.0.0.1:{port}", "aksk", read_timeout=120)
        set_connection(monkeypatch, "is_slow_region", **slow)
        set_connection(monkeypatch, "is_healthy", **connection_fields(emulator.url, "aksk", read_timeout=120))
        emulator.upsert_instance("healthy-1", status="NORMAL")

        async def scenario() -> dict[str, Any]:
            stuck = ImageSearchFleetStatusTrigger(
                instance_names=[f"far-{i}" for i in range(8)],
                imagesearch_conn_id="is_slow_region",
                poll_interval=5,
            )
            stuck_task = asyncio.create_task(anext(stuck.run()))
            await asyncio.sleep(1.0)  # the slow region's reads are in flight
            healthy = ImageSearchInstanceStatusTrigger(
                instance_name="healthy-1", imagesearch_conn_id="is_healthy", poll_interval=1
            )
            generator = healthy.run()
            try:
                event = await asyncio.wait_for(anext(generator), timeout=30)
                return dict(event.payload)
            except TimeoutError:
                return {"status": "stalled behind the other connection's requests for 30 s"}
            finally:
                stuck_task.cancel()
                await asyncio.gather(stuck_task, return_exceptions=True)
                await generator.aclose()

        payload = asyncio.run(scenario())
    finally:
        black_hole.close()
    assert payload["status"] == "success", payload["status"]


def test_bulk_read_stops_reading_when_the_task_is_interrupted(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    """``execution_timeout`` (SIGALRM -> exception in the main thread) or a SIGTERM must stop a bulk read.

    ``read_instances`` only sets its stop flag when a *read* fails: an exception raised in the main thread
    while it waits leaves the ``with ThreadPoolExecutor`` block, whose exit waits for every queued read.
    """
    import signal

    from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID
    from airflow_provider_imagesearch.operators.imagesearch import InstanceDetailOperator

    names = [f"intr-{index:03d}" for index in range(60)]
    emulator.control.upsert_instances(
        [{"name": name, "status": "NORMAL", "project_id": DEFAULT_PROJECT_ID} for name in names]
    )
    emulator.set_faults(latency_seconds=0.1)
    operator = InstanceDetailOperator(
        task_id="read", imagesearch_conn_id=imagesearch_conn("aksk"), instance_names=names, max_concurrency=2
    )

    class Interrupted(Exception):
        pass

    def interrupt(signum: int, frame: Any) -> None:
        raise Interrupted

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.6)  # as the Task SDK's execution_timeout does
    try:
        with pytest.raises(Interrupted):
            operator.execute({})  # type: ignore[arg-type]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    emulator.set_faults(reset=True)
    reads = [r for r in emulator.requests_log() if str(r.get("instance") or "").startswith("intr-")]
    # ~0.6 s / 0.1 s x 2 threads ~ 12 reads before the interrupt; the rest must not be sent.
    assert len(reads) < 30, f"{len(reads)} of {len(names)} instances were still read after the interrupt"


def test_fleet_trigger_reads_max_concurrency_at_a_time_as_documented(
    imagesearch_conn: Callable[..., str], emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README: "one ImageSearchFleetStatusTrigger polls all of them, max_concurrency at a time".

    The shared client's gate admits 4 requests for the whole triggerer, so ``max_concurrency=16`` (the
    default) silently means 4: a round of 1,000 reads at 50 ms takes 12.5 s, not 3.1 s.
    """
    import asyncio

    import httpx

    from airflow_provider_imagesearch.triggers.imagesearch import ImageSearchFleetStatusTrigger

    names = [f"conc-{index:02d}" for index in range(16)]
    for name in names:
        emulator.upsert_instance(name, status="NORMAL")
    emulator.set_faults(latency_seconds=0.3)
    in_flight = {"now": 0, "peak": 0}
    original_send = httpx.AsyncClient.send

    async def counting_send(self: httpx.AsyncClient, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        in_flight["now"] += 1
        in_flight["peak"] = max(in_flight["peak"], in_flight["now"])
        try:
            return await original_send(self, request, **kwargs)
        finally:
            in_flight["now"] -= 1

    monkeypatch.setattr(httpx.AsyncClient, "send", counting_send)
    trigger = ImageSearchFleetStatusTrigger(
        instance_names=names, imagesearch_conn_id=imagesearch_conn("aksk"), max_concurrency=16
    )

    async def first() -> dict[str, Any]:
        generator = trigger.run()
        try:
            return dict((await anext(generator)).payload)
        finally:
            await generator.aclose()

    try:
        event = asyncio.run(first())
    finally:
        emulator.set_faults(reset=True)
    assert event["status"] == "success"
    assert in_flight["peak"] >= 8, f"max_concurrency=16 but at most {in_flight['peak']} reads were in flight"


def test_bulk_read_with_a_repeated_name_keeps_the_result_aligned_with_the_input(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    """README: "both return the list of detail dicts, in the order of instance_names".

    A repeated name (two upstream batches naming the same instance) is dropped silently: the result is
    shorter than the input, so ``zip(instance_names, details)`` pairs names with the wrong instance. Either
    keep one entry per input position or refuse the repeat naming it.
    """
    from airflow_provider_imagesearch.operators.imagesearch import InstanceDetailOperator

    for name in ("dup-a", "dup-b"):
        emulator.upsert_instance(name, status="NORMAL")
    names = ["dup-a", "dup-b", "dup-a", "dup-b"]
    operator = InstanceDetailOperator(
        task_id="read", imagesearch_conn_id=imagesearch_conn("aksk"), instance_names=names
    )
    refusal: Exception | None = None
    result: Any = None
    try:
        result = operator.execute({})  # type: ignore[arg-type]
    except Exception as error:  # a clear refusal naming the repeat is an acceptable answer too
        refusal = error
    if refusal is not None:
        assert "dup-a" in str(refusal), refusal
        assert "instance_names" in str(refusal), refusal
    else:
        assert [d["instance_name"] for d in result] == names
