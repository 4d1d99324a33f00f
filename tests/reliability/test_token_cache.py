"""Items 2 and 3: IAM tokens expiring under load, and one shared token cache under threads.

Item 2: the emulator expires every issued token at each ``token_expiry_interval`` boundary (2 s) while
500 ``get_instance`` calls run, paced over about 6.5 s; no call fails, and the number of IAM token
requests is exactly the number of expiries plus one (the first token): one renewal per expiry, no
renewal storm. The loop is timed to end 1.5 s before the next boundary (room for a stalled CI machine),
so the expiry count read right after it is the number of boundaries the calls actually crossed.

Item 3: 8 threads, each with its own hook on the same connection, released together by a barrier,
make exactly one token request, in every one of several rounds (IAM answers are delayed so the threads
really pile up on the first fetch). The async hooks of one event loop share it the same way.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

from airflow_provider_imagesearch.auth import TOKEN_CACHE
from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.errors import ImageSearchError
from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchAsyncHook, ImageSearchHook
from tests.reliability.support import SecretAudit

CALLS = 500
INTERVAL = 2.0
LOOP_SECONDS = 6.5
THREADS = 8
ROUNDS = 5


def test_token_expiry_under_load_renews_once_per_expiry(
    imagesearch_conn: Callable[..., str],
    emulator: Emulator,
    instance: Callable[..., str],
    audit: SecretAudit,
) -> None:
    instance("tok-load")
    hook = ImageSearchHook(imagesearch_conn("iam_password"))
    hook.settings  # read the connection before the clock starts  # noqa: B018
    before = time.time()
    emulator.set_faults(token_expiry_interval=INTERVAL)
    # The emulator's expiry clock started between `before` and now: boundaries at clock + k * INTERVAL.
    clock_start = time.time()
    failures: list[ImageSearchError] = []
    last_start = clock_start
    for index in range(CALLS):
        due = clock_start + LOOP_SECONDS * index / CALLS
        delay = due - time.time()
        if delay > 0:
            time.sleep(delay)
        last_start = time.time()
        try:
            hook.get_instance("tok-load")
        except ImageSearchError as error:
            audit.exception("call under token expiry", error)
            failures.append(error)
    finished = time.time()
    stats = emulator.stats()
    stats_read = time.time()
    hook.close()
    audit.figure(
        "token expiry under load",
        calls=CALLS,
        failed=len(failures),
        loop_s=finished - clock_start,
        expiry_events=stats["token_expiry_events"],
        token_requests=stats["token_requests"],
        refused_expired=stats["token_expiries"],
        renewals=hook.retry_stats["token_renewal"],
    )
    # The emulator's clock started at some t0 in [before, clock_start]. If these two floors agree, no
    # interval boundary fell between the last call and the stats read, whatever t0 was exactly, so the
    # expiry count is the number of expiries the calls lived through.
    assert int((stats_read - before) // INTERVAL) == int((last_start - clock_start) // INTERVAL)
    assert not failures, [str(f) for f in failures[:3]]
    assert stats["token_expiry_events"] == int(LOOP_SECONDS // INTERVAL) == 3
    assert stats["token_requests"] == stats["token_expiry_events"] + 1
    # Each expiry was noticed by exactly one refused request and repaired by exactly one renewal.
    assert stats["token_expiries"] == stats["token_expiry_events"]
    assert hook.retry_stats["token_renewal"] == stats["token_expiry_events"]
    assert stats["by_status"].get("200") == CALLS


def test_eight_threads_make_one_token_request(
    imagesearch_conn: Callable[..., str],
    emulator: Emulator,
    instance: Callable[..., str],
    audit: SecretAudit,
) -> None:
    instance("shared-1")
    conn_id = imagesearch_conn("iam_password")
    # IAM answers take 0.2 s: every thread arrives while the first fetch is still in flight.
    emulator.set_faults(scope="iam", latency_seconds=0.2)
    per_round: list[int] = []
    for _ in range(ROUNDS):
        TOKEN_CACHE.clear()
        emulator.reset_stats()
        barrier = threading.Barrier(THREADS)
        errors: list[BaseException] = []

        def work(barrier: threading.Barrier = barrier, errors: list[BaseException] = errors) -> None:
            try:
                hook = ImageSearchHook(conn_id)
                hook.settings  # noqa: B018
                barrier.wait(timeout=10)
                hook.get_instance("shared-1")
                hook.close()
            except BaseException as failure:
                errors.append(failure)

        threads = [threading.Thread(target=work) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert not any(thread.is_alive() for thread in threads)
        for error in errors:
            audit.exception("thread", error)
        assert not errors, errors
        stats = emulator.stats()
        per_round.append(stats["token_requests"])
        assert stats["requests_by_auth"]["token"] == THREADS
        assert stats["by_status"] == {"201": 1, "200": THREADS}
    audit.figure("shared token cache", threads=THREADS, rounds=ROUNDS, token_requests_per_round=per_round)
    assert per_round == [1] * ROUNDS


def test_async_hooks_in_one_loop_make_one_token_request(
    imagesearch_conn: Callable[..., str],
    emulator: Emulator,
    instance: Callable[..., str],
    audit: SecretAudit,
) -> None:
    instance("shared-2")
    conn_id = imagesearch_conn("iam_password")
    emulator.set_faults(scope="iam", latency_seconds=0.2)

    async def main() -> None:
        hooks = [ImageSearchAsyncHook(conn_id) for _ in range(THREADS)]
        try:
            await asyncio.gather(*(hook.get_instance("shared-2") for hook in hooks))
        finally:
            await asyncio.gather(*(hook.aclose() for hook in hooks))

    asyncio.run(main())
    stats = emulator.stats()
    audit.figure("shared token cache (async)", hooks=THREADS, token_requests=stats["token_requests"])
    assert stats["token_requests"] == 1
    assert stats["by_status"] == {"201": 1, "200": THREADS}


def test_sync_and_async_hooks_together_make_one_token_request(
    imagesearch_conn: Callable[..., str],
    emulator: Emulator,
    instance: Callable[..., str],
    audit: SecretAudit,
) -> None:
    """The cache's docstring promises single-flight "for threads and event loops alike"."""
    instance("shared-3")
    conn_id = imagesearch_conn("iam_password")
    emulator.set_faults(scope="iam", latency_seconds=0.2)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def sync_work() -> None:
        try:
            hook = ImageSearchHook(conn_id)
            hook.settings  # noqa: B018
            barrier.wait(timeout=10)
            hook.get_instance("shared-3")
        except BaseException as error:
            errors.append(error)

    def async_work() -> None:
        async def main() -> None:
            hook = ImageSearchAsyncHook(conn_id)
            await hook.asettings()
            barrier.wait(timeout=10)
            try:
                await hook.get_instance("shared-3")
            finally:
                await hook.aclose()

        try:
            asyncio.run(main())
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=t) for t in (sync_work, sync_work, async_work, async_work)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    stats = emulator.stats()
    audit.figure("shared token cache (2 threads + 2 event loops)", token_requests=stats["token_requests"])
    assert stats["token_requests"] == 1
