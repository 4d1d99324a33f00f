"""Does the triggerer's event loop stall while ImageSearch triggers run? A check in real Airflow.

``make check-triggerer`` (or ``.venv/bin/python scripts/check_triggerer_blocking.py``) starts the
emulator and ``airflow standalone`` (its own home, a free port), runs a DAG of deferrable ImageSearch
sensors (``SENSORS`` single-instance waits and one fleet wait for ``FLEET`` instances, all in
``CREATION`` until ``TRANSITION_S`` seconds after the run starts), and reads the standalone output:

* every sensor was deferred to the triggerer (the task runner's "Pausing task as DEFERRED" lines), and
* no line "Triggerer's async thread was blocked" appeared between the first deferral and the run's
  end that the machine does not explain. A line before that belongs to the triggerer's own start. The
  control: the triggerer's watchdog loop (sleep 0.1 s, report > 0.2 s) alone in its own process beside
  it; on a 2-core box, every sensor that resumes starts a Python process, and both loops then wait for a
  CPU. A triggerer stall within 1.5 s of a control stall is the machine's; any other fails the check.

With ``--asyncio-debug`` every Airflow process runs with ``PYTHONASYNCIODEBUG=1``: asyncio then names
each callback that held a loop over 0.1 s (slower; for finding the cause of a stall).

Exit status 0 when both hold, 1 otherwise; the lines found are printed. dag.test() cannot show this: it
runs triggers in the task's process, without the triggerer's watchdog.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from airflow_provider_imagesearch.emulator import Emulator  # noqa: E402
from tests.support.connections import connection_fields, env_name  # noqa: E402
from tests.support.waiting import wait_until  # noqa: E402
from tests.ui.standalone import run_standalone  # noqa: E402

DAG_ID = "imagesearch_triggerer_blocking_check"
CONN_ID = "imagesearch_blocking_check"
SENSORS = 10
FLEET = 200
TRANSITION_S = 25.0
BLOCKED = "async thread was blocked"
#: The triggerer's watchdog, run alone in its own process beside it: a stall it sees too is the machine's.
CONTROL_WATCHDOG = r"""
import asyncio, sys, time
async def main():
    while True:
        started = time.monotonic()
        await asyncio.sleep(0.1)
        elapsed = time.monotonic() - started
        if elapsed > 0.2:
            print(f"{time.time():.3f} {elapsed:.3f}", flush=True)
asyncio.run(main())
"""

DAG_SOURCE = textwrap.dedent(
    f"""
    from __future__ import annotations

    from datetime import datetime

    from airflow.sdk import DAG

    from airflow_provider_imagesearch.sensors.imagesearch import ImageSearchInstanceStatusSensor

    with DAG("{DAG_ID}", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
        for index in range({SENSORS}):
            ImageSearchInstanceStatusSensor(
                task_id=f"wait_{{index}}",
                imagesearch_conn_id="{CONN_ID}",
                instance_name=f"check-{{index}}",
                deferrable=True,
                poke_interval=2,
                timeout=600,
            )
        ImageSearchInstanceStatusSensor(
            task_id="wait_fleet",
            imagesearch_conn_id="{CONN_ID}",
            instance_names=[f"fleet-{{index}}" for index in range({FLEET})],
            deferrable=True,
            poke_interval=2,
            timeout=600,
        )
    """
)


def main() -> int:
    home = Path(tempfile.mkdtemp(prefix="imagesearch-blocking-"))
    dags = home / "dags"
    dags.mkdir()
    (dags / f"{DAG_ID}.py").write_text(DAG_SOURCE)
    control_log = home / "control-watchdog.log"
    with control_log.open("w") as sink:
        control = subprocess.Popen(
            [sys.executable, "-c", CONTROL_WATCHDOG], stdout=sink, start_new_session=True
        )
    try:
        state, output = _run(home, dags)
    finally:
        control.terminate()
        control.wait(10)
    stalls = [
        tuple(map(float, line.split())) for line in control_log.read_text().splitlines() if line.strip()
    ]
    return _verdict(output, state, SENSORS + 1, stalls)


def _run(home: Path, dags: Path) -> tuple[str, list[str]]:
    with Emulator() as emulator:
        names = [f"check-{i}" for i in range(SENSORS)] + [f"fleet-{i}" for i in range(FLEET)]
        env = {env_name(CONN_ID): json.dumps(connection_fields(emulator.url))}
        if "--asyncio-debug" in sys.argv:
            # asyncio then logs every callback that held the loop over slow_callback_duration (0.1 s).
            env["PYTHONASYNCIODEBUG"] = "1"
        with run_standalone(home, dags, env, ready_timeout=180) as airflow:
            print(f"airflow standalone at {airflow.base_url}, output in {airflow.output}", flush=True)
            wait_until(
                lambda: airflow.api("GET", f"/api/v2/dags/{DAG_ID}")[0], lambda s: s == 200, timeout=120
            )
            for name in names:
                emulator.upsert_instance(name, status="CREATION", transition_after_s=TRANSITION_S)
            assert airflow.api("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})[0] == 200
            status, run = airflow.api("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {"logical_date": None})
            assert status == 200, run
            run_id = run["dag_run_id"]
            started = time.monotonic()
            state = wait_until(
                lambda: airflow.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")[1].get("state"),
                lambda s: s in ("success", "failed"),
                timeout=600,
                every=2,
            )
            print(f"run {run_id}: {state} after {time.monotonic() - started:.0f} s", flush=True)
            print(f"load average (1, 5 min): {os.getloadavg()[0]:.2f}, {os.getloadavg()[1]:.2f}")
            output = airflow.output.read_text(errors="replace").splitlines()
    return state, output


def _stamp(line: str) -> float | None:
    match = re.search(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z", line)
    if match is None:
        return None
    return datetime.fromisoformat(match.group(1)).replace(tzinfo=UTC).timestamp()


def _verdict(output: list[str], state: str, sensors: int, stalls: list[tuple[float, ...]]) -> int:
    # The task runner prints "Pausing task as DEFERRED" as a sensor hands its wait to the triggerer.
    deferred = [i for i, line in enumerate(output) if "Pausing task as DEFERRED" in line and DAG_ID in line]
    first = deferred[0] if deferred else None
    blocked_all = [(i, line) for i, line in enumerate(output) if BLOCKED in line]
    during = [line for i, line in blocked_all if first is not None and i > first]
    print(f"sensors deferred to the triggerer: {len(deferred)} (of {sensors})")
    print(f"'{BLOCKED}' lines: {len(blocked_all)} in all, {len(during)} after the first deferral")
    longest = max((s[1] for s in stalls), default=0.0)
    print(
        f"control watchdog (an idle asyncio loop in its own process): {len(stalls)} stalls over 0.2 s, longest {longest:.2f} s"
    )
    unexplained = []
    for line in during:
        # The triggerer logs a stall when it ends: the control's stall overlaps it if the machine was busy.
        at = _stamp(line)
        shared = at is not None and any(at - 1.5 <= stamp <= at + 1.5 for stamp, _ in stalls)
        if not shared:
            unexplained.append(line)
        tag = "the control stalled too: machine load" if shared else "the control did not stall"
        print(f"  [{tag}] " + re.sub(r"\s+", " ", line)[:300])
    # With --asyncio-debug: asyncio's own account of each step over 0.1 s, by task.
    for line in output:
        if "Executing <" in line and " took " in line:
            took = re.search(r"took ([0-9.]+) seconds", line)
            task = re.search(r"name='([^']+)'", line)
            owner = task.group(1) if task else "a callback"
            print(f"  asyncio: {owner[:100]} took {took.group(1) if took else '?'} s")
    ok = state == "success" and len(deferred) >= sensors and not unexplained
    print("OK: no stall of the triggerer's loop that the machine does not explain" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
