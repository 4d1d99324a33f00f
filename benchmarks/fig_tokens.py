"""Figure "token reuse": many calls over many hook instances in one process make one IAM token request.

The hooks use IAM password auth. They are spread over threads that start together behind a barrier,
so the first calls race for the token (the cache is single-flight per credential). The count comes
from the emulator (``token_requests``) and is cross-checked with the provider's own cache counter.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from benchmarks.config import Sizes
from benchmarks.emulator import BENCH_INSTANCE, Meter, public
from benchmarks.results import Result, verdict

IAM_CONN_ID = "bench_imagesearch_iam"


def run(url: str, meter: Meter, sizes: Sizes) -> Result:
    from airflow_provider_imagesearch.auth import TOKEN_CACHE
    from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchHook
    from tests.support.connections import connection_fields, install

    install(IAM_CONN_ID, connection_fields(url, "iam_password"))
    TOKEN_CACHE.clear()
    fetches_before = TOKEN_CACHE.fetches
    hooks = [ImageSearchHook(IAM_CONN_ID) for _ in range(sizes.token_hooks)]
    per_hook = max(sizes.token_calls // sizes.token_hooks, 1)
    threads = min(sizes.token_threads, len(hooks))
    barrier = threading.Barrier(threads)

    def work(worker: int) -> int:
        mine = hooks[worker::threads]
        barrier.wait()
        done = 0
        for _ in range(per_hook):
            for hook in mine:
                if hook.get_instance(BENCH_INSTANCE).instance_name != BENCH_INSTANCE:
                    raise RuntimeError("unexpected instance")
                done += 1
        return done

    meter.start()
    started = time.perf_counter()
    try:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            calls = sum(pool.map(work, range(threads)))
    finally:
        for hook in hooks:
            hook.close()
    elapsed = time.perf_counter() - started
    emulator = public(meter.read())
    token_requests = int(emulator["token_requests"])
    cache_fetches = TOKEN_CACHE.fetches - fetches_before
    ok = token_requests == 1 and cache_fetches == 1 and calls == per_hook * len(hooks)
    return Result(
        figure="token reuse",
        goal="exactly 1 IAM token request",
        measured=(
            f"{token_requests} token request(s) for {calls} calls over {len(hooks)} hooks "
            f"({threads} threads, {elapsed:.2f} s)"
        ),
        status=verdict(ok),
        value=float(token_requests),
        details={
            "calls": calls,
            "hooks": len(hooks),
            "threads": threads,
            "token_requests_seen_by_emulator": token_requests,
            "token_cache_fetches": cache_fetches,
            "elapsed_s": round(elapsed, 3),
        },
        emulator=emulator,
        notes=[
            f"IAM password auth; each hook makes {per_hook} calls; the threads start together behind a "
            f"barrier so their first calls race for the token. Provider cache counter: {cache_fetches} fetch(es).",
        ],
    )
