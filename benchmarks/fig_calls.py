"""Figures "call overhead" and "vs the generic way": one ``get_instance`` call, four ways, interleaved.

Every iteration makes one call of each variant, in an order rotated per iteration, so drift on a noisy
machine hits all variants alike:

* ``hook``: ``ImageSearchHook.get_instance`` (token auth with the emulator's ready token), typed result.
* ``raw``: ``requests.Session().get(url, headers={token...}).json()``, as a user would write it.
* ``raw_no_env``: the same with ``session.trust_env = False`` (what the hook sets; info only: the hook's
  own overhead over an identical transport).
* ``http_hook``: ``HttpHook(method="GET").run(endpoint).json()`` (apache-airflow-providers-http), the
  connection's extras carrying the same headers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from benchmarks.config import Sizes
from benchmarks.emulator import BENCH_INSTANCE, Meter, instance_path, public
from benchmarks.results import Result, median, percentile, verdict

OVERHEAD_GOAL = 1.15
GENERIC_GOAL = 1.5
TOKEN_CONN_ID = "bench_imagesearch_token"
HTTP_CONN_ID = "bench_http"


def _variants(url: str) -> tuple[dict[str, Callable[[], Any]], Callable[[], None]]:
    """The call variants (``http_hook`` only when apache-airflow-providers-http is installed)."""
    import requests

    from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, DEFAULT_READY_TOKEN
    from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchHook
    from tests.support.connections import connection_fields, install

    headers = {
        "X-Auth-Token": DEFAULT_READY_TOKEN,
        "X-Project-Id": DEFAULT_PROJECT_ID,
        "Accept": "application/json",
    }
    install(TOKEN_CONN_ID, connection_fields(url, "token"))
    install(HTTP_CONN_ID, {"conn_type": "http", "host": url, "extra": headers})
    path = instance_path()
    full_url = url + path

    hook = ImageSearchHook(TOKEN_CONN_ID)
    raw = requests.Session()
    raw_no_env = requests.Session()
    raw_no_env.trust_env = False

    def close() -> None:
        hook.close()
        raw.close()
        raw_no_env.close()

    variants: dict[str, Callable[[], Any]] = {
        "hook": lambda: hook.get_instance(BENCH_INSTANCE),
        "raw": lambda: raw.get(full_url, headers=headers).json(),
        "raw_no_env": lambda: raw_no_env.get(full_url, headers=headers).json(),
    }
    try:
        from airflow.providers.http.hooks.http import HttpHook
    except ImportError:  # a bench-only dependency
        return variants, close
    http_hook = HttpHook(method="GET", http_conn_id=HTTP_CONN_ID)
    variants["http_hook"] = lambda: http_hook.run(endpoint=path).json()
    return variants, close


def _check(name: str, value: Any) -> None:
    status = value.status.value if name == "hook" else value.get("status")
    instance = value.instance_name if name == "hook" else value.get("instanceName")
    if status != "NORMAL" or instance != BENCH_INSTANCE:
        raise RuntimeError(f"{name} returned an unexpected result: {value!r}")


def run(url: str, meter: Meter, sizes: Sizes) -> list[Result]:
    variants, close = _variants(url)
    names = list(variants)
    try:
        for name, call in variants.items():
            _check(name, call())
            for _ in range(sizes.warmup_calls):
                call()
        samples: dict[str, list[float]] = {name: [] for name in names}
        clock = time.perf_counter
        meter.start()
        started = clock()
        for iteration in range(sizes.calls):
            shift = iteration % len(names)
            for name in names[shift:] + names[:shift]:
                call = variants[name]
                before = clock()
                call()
                samples[name].append(clock() - before)
        elapsed = clock() - started
        emulator = public(meter.read())
    finally:
        close()

    us = {
        name: {
            "p50_us": round(median(values) * 1e6, 1),
            "p95_us": round(percentile(values, 95) * 1e6, 1),
            "mean_us": round(sum(values) / len(values) * 1e6, 1),
        }
        for name, values in samples.items()
    }
    hook, raw, raw_no_env = (us[n] for n in ("hook", "raw", "raw_no_env"))
    overhead = hook["p50_us"] / raw["p50_us"]
    overhead_p95 = hook["p95_us"] / raw["p95_us"]
    own = hook["p50_us"] / raw_no_env["p50_us"]
    details = {"calls_per_variant": sizes.calls, "elapsed_s": round(elapsed, 2), "latency": us}
    capacity = emulator.get("capacity", {})
    emulator_share = ""
    if capacity.get("sequential_rps"):
        floor_us = 1e6 / capacity["sequential_rps"]
        emulator_share = (
            f" The emulator answers one-at-a-time requests from a raw socket client in ~{floor_us:.0f} us "
            f"({capacity['sequential_rps']:.0f} req/s), so that much of every call is emulator + loopback."
        )
    common_note = (
        f"{sizes.calls} calls per variant after {sizes.warmup_calls} warm-up calls, one call of each variant "
        f"per iteration in rotated order ({len(names)} variants, {elapsed:.1f} s)." + emulator_share
    )
    overhead_result = Result(
        figure="call overhead",
        goal=f"p50(hook) / p50(raw requests.Session) <= {OVERHEAD_GOAL}",
        measured=(
            f"p50 ratio {overhead:.2f} (hook {hook['p50_us']:.0f} us, raw {raw['p50_us']:.0f} us); "
            f"p95 ratio {overhead_p95:.2f} ({hook['p95_us']:.0f} / {raw['p95_us']:.0f} us)"
        ),
        status=verdict(overhead <= OVERHEAD_GOAL),
        value=round(overhead, 3),
        details={**details, "p50_ratio": round(overhead, 3), "p95_ratio": round(overhead_p95, 3)},
        emulator=emulator,
        notes=[
            common_note,
            "Hook: token auth (ready token), typed InstanceDetail result, retry policy and validation "
            "included. Raw: default requests.Session + .json(), as a user would write it.",
            f"Info: a raw session with trust_env=False (what the hook sets) has p50 {raw_no_env['p50_us']:.0f} us; "
            f"hook / that = {own:.2f}, i.e. the hook's own per-call work over an identical transport. The default "
            "session pays a proxy/netrc environment lookup on every request, which the hook avoids.",
        ],
    )
    return [overhead_result, _generic(us, details, emulator, common_note)]


def _generic(
    us: dict[str, dict[str, float]], details: dict[str, Any], emulator: dict[str, Any], common_note: str
) -> Result:
    goal = f"p50(HttpHook.run) / p50(hook) >= {GENERIC_GOAL}"
    if "http_hook" not in us:
        return Result(
            figure="vs the generic way",
            goal=goal,
            measured="skipped: apache-airflow-providers-http is not installed (pip install -e '.[bench]')",
            status="skip",
        )
    hook, http = us["hook"], us["http_hook"]
    generic = http["p50_us"] / hook["p50_us"]
    return Result(
        figure="vs the generic way",
        goal=goal,
        measured=(
            f"{generic:.2f}x faster (HttpHook p50 {http['p50_us']:.0f} us vs hook {hook['p50_us']:.0f} us; "
            f"p95 {http['p95_us']:.0f} vs {hook['p95_us']:.0f} us)"
        ),
        status=verdict(generic >= GENERIC_GOAL),
        value=round(generic, 3),
        details={**details, "p50_speedup": round(generic, 3)},
        emulator=emulator,
        notes=[
            common_note,
            "HttpHook(method='GET').run(endpoint).json() with the token headers in the http connection's "
            "extras; it builds a new requests.Session, reads the connection again and opens a new TCP "
            "connection on every run().",
        ],
    )
