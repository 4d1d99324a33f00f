"""Figure "deferral at scale": N ``ImageSearchInstanceStatusTrigger`` runs at once in one asyncio loop.

Each trigger has its own hook, borrows the loop's shared pooled ``httpx.AsyncClient`` (one per event
loop and connection settings, as in a triggerer), reads the connection with ``BaseHook.aget_connection``
(an IAM-password connection in an ``AIRFLOW_CONN_*`` variable) and polls the emulator every
``poll_interval`` seconds until its instance is NORMAL.

"NORMAL after 2 polls" is made exact with two child processes (fresh interpreters, so peak RSS and
open descriptors belong to the figure alone):

1. calibration: N triggers on instances that are already NORMAL; the emulator's request log tells
   when the first polls land (``first_min``..``first_max`` seconds after the start: starting N
   triggers is CPU work, so they do not all land at t ~ 0);
2. measurement: N instances seeded in CREATION that turn NORMAL at ``T``, the middle of
   [``first_max``, ``first_min + poll_interval``] from calibration, so every first poll sees CREATION
   and every second poll sees NORMAL. The poll histogram in the output checks it.

Ideal time = ``poll_interval + one uncontended poll`` (a single trigger on an idle loop, incl. client
creation): what the last event would take if starting N triggers cost nothing. Goal: the last event
within twice that, peak RSS growth <= 50 MB, no descriptor left open afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import subprocess
import sys
import time
import traceback
from collections import Counter
from typing import Any

from benchmarks._env import REPO
from benchmarks.config import Sizes
from benchmarks.emulator import BENCH_INSTANCE, REQUEST_LOG_SIZE, Meter, peak_rate
from benchmarks.results import Result, median, percentile, verdict

CONN_ID = "bench_imagesearch_defer"
RESULT_PREFIX = "BENCH_DEFERRAL_RESULT="
TIME_GOAL = 2.0
RSS_GOAL_MB = 50.0
SAMPLE_EVERY_S = 0.05


# --- child side -------------------------------------------------------------------------------------


def _proc_status_kb(key: str) -> int:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False when the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


async def _watch(name: str, interval: float, started: float, out: list[dict[str, Any]]) -> None:
    from airflow_provider_imagesearch.triggers.imagesearch import ImageSearchInstanceStatusTrigger

    trigger = ImageSearchInstanceStatusTrigger(
        instance_name=name, imagesearch_conn_id=CONN_ID, poll_interval=interval
    )
    async for event in trigger.run():
        # Timed at the yield; the loop then lets run() finish, which closes the hook's client.
        out.append({"t": time.perf_counter() - started, **event.payload})


async def _watch_bare(
    name: str, interval: float, started: float, out: list[dict[str, Any]], url: str
) -> None:
    """The floor: what any trigger built on one httpx.AsyncClient per wait pays, with no provider code."""
    import httpx

    from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, DEFAULT_READY_TOKEN

    headers = {"X-Auth-Token": DEFAULT_READY_TOKEN, "X-Project-Id": DEFAULT_PROJECT_ID}
    async with httpx.AsyncClient(verify=_bare_tls(), limits=httpx.Limits(max_connections=4)) as client:
        polls = 0
        while True:
            polls += 1
            body = (await client.get(f"{url}/v1/{DEFAULT_PROJECT_ID}/service/{name}", headers=headers)).json()
            if body["status"] == "NORMAL":
                out.append({"t": time.perf_counter() - started, "status": "success", "polls": polls})
                return
            await asyncio.sleep(interval)


_TLS: list[Any] = []


def _bare_tls() -> Any:
    if not _TLS:
        import ssl

        _TLS.append(ssl.create_default_context())
    return _TLS[0]


async def _sample(peaks: dict[str, int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        peaks["fds"] = max(peaks["fds"], _open_fds())
        peaks["rss_kb"] = max(peaks["rss_kb"], _proc_status_kb("VmRSS"))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SAMPLE_EVERY_S)


async def _run_all(
    names: list[str], interval: float, timeout: float, bare_url: str | None = None
) -> dict[str, Any]:
    events: list[dict[str, Any]] = []
    peaks = {"fds": 0, "rss_kb": 0}
    stop = asyncio.Event()
    sampler = asyncio.create_task(_sample(peaks, stop))
    epoch = time.time()
    started = time.perf_counter()
    tasks = [
        asyncio.create_task(
            _watch_bare(name, interval, started, events, bare_url)
            if bare_url
            else _watch(name, interval, started, events)
        )
        for name in names
    ]
    timed_out = False
    try:
        await asyncio.wait_for(asyncio.gather(*tasks), timeout)
    except TimeoutError:
        timed_out = True
    wall = time.perf_counter() - started
    stop.set()
    await sampler
    return {"events": events, "wall_s": wall, "timed_out": timed_out, "peaks": peaks, "epoch": epoch}


def _poll_waves(log: list[dict[str, Any]], prefix: str, epoch: float) -> dict[str, list[float]]:
    """[min, max] seconds after the start at which the emulator saw each trigger's 1st, 2nd... poll."""
    seen: dict[str, list[float]] = {}
    for entry in log:
        instance = entry.get("instance") or ""
        if instance.startswith(prefix):
            seen.setdefault(instance, []).append(entry["ts"] - epoch)
    waves: dict[str, list[float]] = {}
    for times in seen.values():
        for index, moment in enumerate(sorted(times), start=1):
            span = waves.setdefault(str(index), [moment, moment])
            span[0], span[1] = min(span[0], moment), max(span[1], moment)
    return {key: [round(low, 3), round(high, 3)] for key, (low, high) in sorted(waves.items())}


def _one_run(
    control: Any, prefix: str, seed: dict[str, Any], args: dict[str, Any], bare_url: str | None = None
) -> dict[str, Any]:
    """Seed ``triggers`` instances, run that many watchers at once, and measure time, memory and fds."""
    count, interval, timeout = int(args["triggers"]), float(args["poll_interval"]), float(args["timeout_s"])
    names = [f"{prefix}{index:05d}" for index in range(count)]
    control.reset_stats()
    gc.collect()
    fds_before = _open_fds()
    hwm_reset = _reset_peak_rss()
    rss_before_kb = _proc_status_kb("VmRSS")
    hwm_before_kb = _proc_status_kb("VmHWM")
    # Seeded last, so the transition clock starts right before the watchers do.
    control.upsert_instances([{**seed, "name": name} for name in names])
    seeded = time.time()
    outcome = asyncio.run(_run_all(names, interval, timeout, bare_url))
    gc.collect()
    fds_after = _open_fds()
    hwm_after_kb = _proc_status_kb("VmHWM")
    stats = control.stats()
    log = control.requests_log() if stats["requests_total"] <= REQUEST_LOG_SIZE else []
    baseline_kb = hwm_before_kb if hwm_reset else rss_before_kb
    events = outcome["events"]
    return {
        "triggers": count,
        "poll_interval_s": interval,
        "transition_after_s": seed.get("transition_after_s"),
        "start_lag_s": round(outcome["epoch"] - seeded, 4),
        "wall_s": round(outcome["wall_s"], 3),
        "timed_out": outcome["timed_out"],
        "event_times_s": [round(e["t"], 4) for e in events],
        "statuses": dict(Counter(str(e["status"]) for e in events)),
        "polls": {str(k): v for k, v in sorted(Counter(int(e["polls"]) for e in events).items())},
        "poll_waves_s": _poll_waves(log, prefix, outcome["epoch"]),
        "rss_before_mb": round(rss_before_kb / 1024, 1),
        "peak_rss_growth_mb": round((hwm_after_kb - baseline_kb) / 1024, 1),
        "peak_rss_growth_source": "VmHWM reset via clear_refs" if hwm_reset else "VmHWM - VmRSS before",
        "sampled_rss_peak_mb": round(outcome["peaks"]["rss_kb"] / 1024, 1),
        "fds_before": fds_before,
        "fds_peak_sampled": outcome["peaks"]["fds"],
        "fds_after": fds_after,
        "emulator": {
            "requests": stats["requests_total"],
            "rps": stats["requests_per_second"],
            "window_s": stats["since_reset_s"],
            "by_status": stats["by_status"],
            "token_requests": stats["token_requests"],
            "peak_rps": peak_rate([entry["ts"] for entry in log]) if log else None,
        },
    }


def child_main(args: dict[str, Any]) -> dict[str, Any]:
    from benchmarks._env import prepare_environment, raise_fd_limit

    prepare_environment()
    fd_limit = raise_fd_limit()
    url, interval, phase = args["url"], float(args["poll_interval"]), args["phase"]

    from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID
    from airflow_provider_imagesearch.emulator.client import EmulatorClient
    from tests.support.connections import connection_fields, install

    install(CONN_ID, connection_fields(url, "iam_password"))
    # What a triggerer has loaded once it has run one of these triggers.
    import airflow_provider_imagesearch.hooks.imagesearch
    import airflow_provider_imagesearch.triggers.imagesearch  # noqa: F401

    control = EmulatorClient(url, timeout=60.0)
    bare_url = url if phase == "floor" else None

    async def warm_up() -> float:
        events: list[dict[str, Any]] = []
        if bare_url:
            await _watch_bare(BENCH_INSTANCE, interval, time.perf_counter(), events, bare_url)
        else:
            await _watch(BENCH_INSTANCE, interval, time.perf_counter(), events)
        if len(events) != 1 or events[0]["status"] != "success":
            raise RuntimeError(f"warm-up trigger failed: {events}")
        return float(events[0]["t"])

    warm = [asyncio.run(warm_up()) for _ in range(3)]
    normal: dict[str, Any] = {"project_id": DEFAULT_PROJECT_ID, "status": "NORMAL"}
    creation = {**normal, "status": "CREATION", "next_status": "NORMAL"}
    calibration_waves = None
    if phase == "calibrate":
        data = _one_run(control, "calib-", normal, args)
    elif phase == "measure":
        data = _one_run(
            control, "measu-", {**creation, "transition_after_s": args["transition_after_s"]}, args
        )
    else:  # the bare-httpx floor calibrates itself: its first polls land earlier than the provider's
        calibration_waves = _one_run(control, "flcal-", normal, args, bare_url)["poll_waves_s"]
        first = calibration_waves["1"]
        transition = round(transition_time(first[0], first[1], interval), 3)
        data = _one_run(control, "floor-", {**creation, "transition_after_s": transition}, args, bare_url)
    return {
        "phase": phase,
        **data,
        "first_poll_uncontended_s": round(min(warm[1:]), 4),  # the first one also fetched the IAM token
        "warm_up_s": [round(w, 4) for w in warm],
        "fd_limit": fd_limit,
        "calibration_waves_s": calibration_waves,
    }


def main() -> int:
    try:
        payload = child_main(json.loads(sys.argv[1]))
    except BaseException:
        traceback.print_exc()
        return 1
    print(RESULT_PREFIX + json.dumps(payload), flush=True)
    return 0


# --- parent side ------------------------------------------------------------------------------------


def _child(args: dict[str, Any]) -> dict[str, Any]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    # The trigger logs every poll at INFO; 2,000 console lines would measure the console, not the trigger.
    env["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
    env.pop("AIRFLOW_HOME", None)  # the child makes its own throwaway home
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.fig_deferral", json.dumps(args)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=float(args["timeout_s"]) + 120,
        check=False,
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if completed.returncode != 0 or not lines:
        tail = (completed.stderr or completed.stdout).strip().splitlines()[-15:]
        raise RuntimeError(f"deferral child exited with {completed.returncode}:\n" + "\n".join(tail))
    result: dict[str, Any] = json.loads(lines[-1][len(RESULT_PREFIX) :])
    return result


def transition_time(first_min: float, first_max: float, interval: float) -> float:
    """When instances should turn NORMAL so that first polls see CREATION and second polls NORMAL.

    No second poll starts before ``interval`` after the start (the triggers start at 0 and poll at most
    every ``interval``), nor before ``first_min + interval`` if a trigger waits a full interval after its
    first answer: the midpoint between the last first poll and ``interval`` suits both.
    """
    earliest_second = min(interval, first_min + interval)
    if first_max < earliest_second:
        return (first_max + earliest_second) / 2
    return first_max + 0.1 * interval  # no such moment: the later triggers will need a third poll


def run(url: str, meter: Meter, sizes: Sizes) -> Result:
    args: dict[str, Any] = {
        "url": url,
        "triggers": sizes.triggers,
        "poll_interval": sizes.poll_interval,
        "timeout_s": max(60.0, 20 * sizes.poll_interval + 0.2 * sizes.triggers),
    }
    calibration = _child({**args, "phase": "calibrate"})
    first = calibration["poll_waves_s"].get("1")
    if not first or calibration["statuses"].get("success") != sizes.triggers:
        raise RuntimeError(
            f"calibration run failed: {calibration['statuses']}, waves {calibration['poll_waves_s']}"
        )
    transition = transition_time(first[0], first[1], sizes.poll_interval)
    measured = _child({**args, "phase": "measure", "transition_after_s": round(transition, 3)})
    floor = _child({**args, "phase": "floor"})
    return _result(measured, calibration, floor, meter)


def _result(data: dict[str, Any], calibration: dict[str, Any], floor: dict[str, Any], meter: Meter) -> Result:
    interval = data["poll_interval_s"]
    ideal = interval + data["first_poll_uncontended_s"]
    times = data["event_times_s"]
    count = data["triggers"]
    successes = data["statuses"].get("success", 0)
    last = max(times) if times else float("inf")
    ratio = last / ideal
    growth = data["peak_rss_growth_mb"]
    leaked = data["fds_after"] - data["fds_before"]
    checks = {
        "all events": successes == count and not data["timed_out"],
        "time": ratio <= TIME_GOAL,
        "rss": growth <= RSS_GOAL_MB,
        "fds": leaked <= 0,
    }
    emulator = dict(data["emulator"])
    if meter.capacity is not None:
        emulator["capacity"] = meter.capacity.to_dict()
    failed = [name for name, ok in checks.items() if not ok]
    waves = data["poll_waves_s"]
    cal_first = calibration["poll_waves_s"]["1"]
    wave_text = "; ".join(f"poll {k} at {lo:.2f}-{hi:.2f} s" for k, (lo, hi) in waves.items())
    notes = [
        f"Ideal = poll interval {interval:g} s + one uncontended poll {data['first_poll_uncontended_s'] * 1000:.1f} ms "
        f"(one trigger on an idle loop, incl. client creation) = {ideal:.3f} s.",
        f"Calibration run ({count} triggers on NORMAL instances): first polls reached the emulator "
        f"{cal_first[0]:.2f}-{cal_first[1]:.2f} s after the start, all events by {calibration['wall_s']:.2f} s "
        f"(~{calibration['wall_s'] / count * 1000:.2f} ms of loop time per trigger for its start and one poll). So the instances "
        f"were seeded to turn NORMAL {data['transition_after_s']:.2f} s after the start.",
        f"Measured run: {wave_text} (emulator log); polls per trigger {data['polls']}; events p50 "
        f"{median(times):.2f} s, p95 {percentile(times, 95):.2f} s, last {last:.2f} s.",
        f"Peak RSS growth {growth:.1f} MB ({data['peak_rss_growth_source']}; sampled RSS peak "
        f"{data['sampled_rss_peak_mb']:.0f} MB from {data['rss_before_mb']:.0f} MB). Open fds {data['fds_before']} "
        f"before, {data['fds_peak_sampled']} peak (sampled), {data['fds_after']} after.",
        "IAM password auth (token fetched during the warm-up); trigger INFO logging off (WARNING level).",
    ]
    floor_last = max(floor["event_times_s"]) if floor["event_times_s"] else float("inf")
    floor_waves = "; ".join(
        f"poll {k} at {lo:.2f}-{hi:.2f} s" for k, (lo, hi) in floor["poll_waves_s"].items()
    )
    notes.append(
        f"Floor, same scenario without the provider: {count} bare httpx.AsyncClient waits (one client per "
        f"wait, ready token, no Airflow connection lookup, no retries/parsing): last event {floor_last:.2f} s = "
        f"{floor_last / ideal:.2f}x ideal; {floor_waves}; polls {floor['polls']}. The provider, Airflow's "
        f"aget_connection and the trigger add {last - floor_last:.2f} s to that."
    )
    if data["polls"] != {"2": count}:
        notes.insert(
            0, "Not every trigger needed exactly 2 polls (see the histogram): the start is too slow."
        )
    if failed:
        notes.insert(0, "Missed: " + ", ".join(failed) + ".")
    return Result(
        figure="deferral at scale",
        goal=f"last event <= {TIME_GOAL:g}x ideal; peak RSS growth <= {RSS_GOAL_MB:g} MB; no fd leak",
        measured=(
            f"{successes}/{count} events, last at {last:.2f} s = {ratio:.2f}x ideal ({ideal:.2f} s; bare-httpx "
            f"floor {floor_last / ideal:.2f}x); RSS +{growth:.0f} MB; fds {data['fds_before']}->{data['fds_after']}"
        ),
        status=verdict(not failed),
        value=round(ratio, 3),
        details={key: value for key, value in data.items() if key not in ("emulator", "event_times_s")}
        | {
            "ideal_s": round(ideal, 4),
            "last_event_s": last,
            "checks": checks,
            "calibration": {k: v for k, v in calibration.items() if k not in ("emulator", "event_times_s")},
            "floor": {k: v for k, v in floor.items() if k != "event_times_s"} | {"last_event_s": floor_last},
        },
        emulator=emulator,
        notes=notes,
    )


if __name__ == "__main__":
    sys.exit(main())
