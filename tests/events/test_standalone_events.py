"""The event-driven example DAGs in a real ``airflow standalone``, against the emulator.

``dags/imagesearch_instance_events.py`` (copied, with its sample manifest, into a DAG folder of its own)
watches a 100-instance fleet twice: for ``NORMAL`` and for the failure statuses, on one connection at
one interval. The scenario, in one deployment (scheduler, triggerer, dag-processor, api-server):

1. flip one instance to ``NORMAL`` and another to ``ABNORMAL``: each downstream DAG run starts within two
   poll intervals, its triggering asset event names the instance; the import succeeds, the incident is
   one row of the SQLite table;
2. five quiet intervals: no second run, no second asset event; the emulator's request log shows one read
   per instance per interval for both watchers together (they share one poll loop);
3. stop the triggerer, flip two more instances while it is down, start it again: each of those changes
   starts one run (on Airflow 3.3+ the watchers resume what they knew from the asset state store), and
   the changes reported before the restart start none;
4. no "async thread was blocked" line whose time the triggerer's loop itself took: waiting for a CPU on
   an overloaded machine and the process's garbage collections are told apart (``tests/events/stalls.py``).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from tests.events.stalls import recorder_path, stalls
from tests.support.connections import connection_fields, env_name
from tests.support.reaper import alive, descendants
from tests.support.waiting import wait_until
from tests.ui.standalone import Standalone, run_standalone

REPO = Path(__file__).resolve().parents[2]
DAG_FILE = REPO / "dags" / "imagesearch_instance_events.py"
CONN_ID = "imagesearch_events_check"
IMPORT_DAG = "imagesearch_import_on_ready"
INCIDENT_DAG = "imagesearch_record_incident"
FLEET = [f"fleet-{index:03d}" for index in range(100)]
POLL = 6.0
INSTANCE_ROUTE = "GET /v1/{project_id}/service/{instance_name}"
pytestmark = pytest.mark.timeout(900)


def _at(text: str | None) -> float:
    assert text, "no timestamp"
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _quoted(run_id: str) -> str:
    return urllib.parse.quote(run_id, safe="")


def _dag_status(airflow: Standalone, dag_id: str) -> int:
    return airflow.api("GET", f"/api/v2/dags/{dag_id}")[0]


def _runs(airflow: Standalone, dag_id: str) -> list[dict[str, Any]]:
    status, body = airflow.api("GET", f"/api/v2/dags/{dag_id}/dagRuns?order_by=run_after")
    assert status == 200, body
    return list(body["dag_runs"])


def _run_events(airflow: Standalone, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    status, body = airflow.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{_quoted(run_id)}/upstreamAssetEvents")
    assert status == 200, body
    return [event["extra"]["payload"] for event in body["asset_events"]]


def _asset_events(airflow: Standalone, asset_name: str) -> list[dict[str, Any]]:
    status, body = airflow.api("GET", "/api/v2/assets/events?limit=100")
    assert status == 200, body
    return [
        event["extra"]["payload"]
        for event in body["asset_events"]
        if event.get("name") == asset_name or event.get("uri") == asset_name
    ]


def _wait_runs(airflow: Standalone, dag_id: str, count: int, timeout: float) -> list[dict[str, Any]]:
    """``count`` runs, each started (Airflow 3.3.2 answers 500 for the asset events of a run that is
    still queued: its asset-event serializer requires the run's ``start_date``)."""
    return wait_until(
        lambda: _runs(airflow, dag_id),
        lambda runs: len(runs) >= count and all(run.get("start_date") for run in runs),
        timeout,
        every=0.5,
    )


def _wait_done(airflow: Standalone, dag_id: str, run_id: str, timeout: float = 240) -> str:
    state: str = wait_until(
        lambda: airflow.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{_quoted(run_id)}")[1].get("state"),
        lambda s: s in ("success", "failed"),
        timeout,
        every=1,
    )
    return state


def _flip(emulator: Emulator, name: str, status: str) -> float:
    emulator.upsert_instance(name, project_id=DEFAULT_PROJECT_ID, status=status, tags=["color", "size"])
    return time.time()


def _rounds(entries: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Reads of the fleet cut into rounds: a gap of more than half an interval starts a new one."""
    rounds: list[list[dict[str, Any]]] = []
    for entry in sorted(entries, key=lambda e: e["ts"]):
        if not rounds or entry["ts"] - rounds[-1][-1]["ts"] > POLL / 2:
            rounds.append([])
        rounds[-1].append(entry)
    return rounds


def _fleet_reads(emulator: Emulator, since: float, until: float) -> list[dict[str, Any]]:
    return [
        entry
        for entry in emulator.requests_log()
        if entry["route"] == INSTANCE_ROUTE
        and str(entry.get("instance", "")).startswith("fleet-")
        and since <= entry["ts"] <= until
    ]


def _triggerer_pid(airflow: Standalone) -> int:
    for pid in descendants(airflow.process.pid):
        with contextlib.suppress(OSError):
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if len(argv) >= 2 and argv[-2].endswith(b"airflow") and argv[-1] == b"triggerer":
                return pid
            if b"triggerer" in argv and any(a.endswith(b"airflow") for a in argv):
                return pid
    raise AssertionError("no airflow triggerer process under airflow standalone")


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.decode().split("=", 1) for item in raw.split(b"\0") if b"=" in item)


@contextlib.contextmanager
def _reaper() -> Iterator[subprocess.Popen[bytes]]:
    """Kills what it is told about if this test process dies without cleaning up."""
    reaper = subprocess.Popen(
        [sys.executable, "-m", "tests.support.reaper"],
        cwd=REPO,
        stdin=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        yield reaper
    finally:
        assert reaper.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            reaper.stdin.write(b"done\n")
            reaper.stdin.close()
        reaper.wait(timeout=30)


def _tell(reaper: subprocess.Popen[bytes], line: str) -> None:
    assert reaper.stdin is not None
    reaper.stdin.write(line.encode() + b"\n")
    reaper.stdin.flush()


def _stop(process: subprocess.Popen[bytes]) -> None:
    family = [process.pid, *descendants(process.pid)]
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=20)
    for pid in family:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def test_watchers_start_runs_once_per_change_across_a_triggerer_restart(tmp_path: Path) -> None:
    began = time.monotonic()
    home = tmp_path / "home"
    dags = home / "dags"
    (dags / "data").mkdir(parents=True)
    shutil.copy(DAG_FILE, dags / DAG_FILE.name)
    shutil.copy(REPO / "dags" / "data" / "sample_catalog.csv", dags / "data" / "sample_catalog.csv")
    database = home / "imagesearch.db"
    stall_logs = home / "stall-logs"
    stall_logs.mkdir(parents=True)
    triggerer_log = home / "triggerer-restarted.log"

    with _reaper() as reaper, Emulator() as emulator:
        for name in FLEET:
            emulator.upsert_instance(
                name, project_id=DEFAULT_PROJECT_ID, status="CREATION", tags=["color", "size"]
            )
        env = {
            env_name(CONN_ID): json.dumps(connection_fields(emulator.url, "token")),
            env_name("imagesearch_archive_db"): json.dumps({"conn_type": "sqlite", "host": str(database)}),
            "IMAGESEARCH_EVENTS_CONN_ID": CONN_ID,
            "IMAGESEARCH_EVENTS_INSTANCES": ",".join(FLEET),
            "IMAGESEARCH_EVENTS_POLL_SECONDS": str(POLL),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            # Records where the trigger runner's time goes, to tell machine load from a blocking trigger.
            "PYTHONPATH": os.pathsep.join(
                [str(recorder_path(home / "stall-recorder")), *filter(None, [os.environ.get("PYTHONPATH")])]
            ),
            "IMAGESEARCH_STALL_LOG": str(stall_logs),
        }
        restarted: subprocess.Popen[bytes] | None = None
        try:
            with run_standalone(home, dags, env, ready_timeout=180) as airflow:
                _tell(reaper, f"group {airflow.process.pid}")
                for dag_id in (IMPORT_DAG, INCIDENT_DAG):
                    status = wait_until(
                        partial(_dag_status, airflow, dag_id), lambda s: s == 200, 120, every=0.5
                    )
                    assert status == 200, airflow.tail()
                assert airflow.api("GET", "/api/v2/importErrors")[1]["total_entries"] == 0

                # The watchers' first rounds are their baseline: every instance is CREATION.
                baseline = wait_until(
                    lambda: _rounds(_fleet_reads(emulator, 0, time.time())),
                    lambda rounds: len(rounds) >= 2,
                    timeout=180,
                    every=1,
                )
                assert len(baseline) >= 2, f"the triggerer never polled the fleet:\n{airflow.tail()}"

                print(f"deployment up, baseline taken: {time.monotonic() - began:.0f} s", flush=True)

                # 1. Two changes: one into NORMAL, one into a failure status.
                flipped_at = _flip(emulator, "fleet-007", "NORMAL")
                _flip(emulator, "fleet-011", "ABNORMAL")
                first_import = _wait_runs(airflow, IMPORT_DAG, 1, timeout=120)[0]
                first_incident = _wait_runs(airflow, INCIDENT_DAG, 1, timeout=120)[0]
                for run in (first_import, first_incident):
                    assert _at(run["start_date"]) - flipped_at <= 2 * POLL, (run, flipped_at)
                import_events = _run_events(airflow, IMPORT_DAG, first_import["dag_run_id"])
                assert [e["instance_name"] for e in import_events] == ["fleet-007"]
                assert import_events[0]["old_status"] == "CREATION"
                assert import_events[0]["new_status"] == "NORMAL"
                incident_events = _run_events(airflow, INCIDENT_DAG, first_incident["dag_run_id"])
                assert [(e["instance_name"], e["new_status"]) for e in incident_events] == [
                    ("fleet-011", "ABNORMAL")
                ]
                assert _wait_done(airflow, IMPORT_DAG, first_import["dag_run_id"]) == "success", (
                    airflow.tail()
                )
                assert _wait_done(airflow, INCIDENT_DAG, first_incident["dag_run_id"]) == "success", (
                    airflow.tail()
                )
                images = emulator.control.state()["images"].get(f"{DEFAULT_PROJECT_ID}/fleet-007", {})
                assert len(images) == 282  # the sample's 300 rows less its 18 invalid ones

                print(f"runs started and succeeded: {time.monotonic() - began:.0f} s", flush=True)

                # 2. Five quiet intervals: nothing fires again, and the fleet costs one read per
                # instance per interval for both watchers together.
                quiet_from = time.time()
                time.sleep(5 * POLL)
                quiet_to = time.time()
                assert len(_runs(airflow, IMPORT_DAG)) == 1
                assert len(_runs(airflow, INCIDENT_DAG)) == 1
                assert len(_asset_events(airflow, "imagesearch_instance_ready")) == 1
                assert len(_asset_events(airflow, "imagesearch_instance_incident")) == 1
                rounds = _rounds(_fleet_reads(emulator, quiet_from, quiet_to))
                whole = rounds[1:-1]  # the window may cut the first and the last round
                assert len(whole) >= 3, [len(r) for r in rounds]
                for reads in whole:
                    per_instance = Counter(entry["instance"] for entry in reads)
                    assert set(per_instance) == set(FLEET), len(per_instance)
                    assert set(per_instance.values()) == {1}, per_instance.most_common(3)
                starts = [reads[0]["ts"] for reads in rounds]
                gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
                assert all(gap >= 0.8 * POLL for gap in gaps), gaps

                print(f"quiet window: {len(whole)} whole rounds of 100 reads, gaps {gaps}", flush=True)

                # 3. Restart the triggerer, with two changes while it is down.
                old_pid = _triggerer_pid(airflow)
                triggerer_env = _environ(old_pid)
                os.kill(old_pid, signal.SIGTERM)
                assert not wait_until(lambda: alive(old_pid), lambda alive: not alive, 60, every=0.5)
                _flip(emulator, "fleet-023", "NORMAL")
                _flip(emulator, "fleet-031", "ARREARAGE")
                with triggerer_log.open("wb") as sink:
                    restarted = subprocess.Popen(
                        [str(Path(sys.executable).with_name("airflow")), "triggerer"],
                        env=triggerer_env,
                        cwd=home,
                        stdout=sink,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        start_new_session=True,
                    )
                _tell(reaper, f"group {restarted.pid}")
                second_imports = _wait_runs(airflow, IMPORT_DAG, 2, timeout=180)
                second_incidents = _wait_runs(airflow, INCIDENT_DAG, 2, timeout=180)
                assert len(second_imports) == 2, triggerer_log.read_text()[-3000:]
                assert len(second_incidents) == 2, triggerer_log.read_text()[-3000:]
                events = _run_events(airflow, IMPORT_DAG, second_imports[1]["dag_run_id"])
                assert [(e["instance_name"], e["old_status"]) for e in events] == [("fleet-023", "CREATION")]
                events = _run_events(airflow, INCIDENT_DAG, second_incidents[1]["dag_run_id"])
                assert [(e["instance_name"], e["new_status"]) for e in events] == [("fleet-031", "ARREARAGE")]
                # Three more intervals: what was reported before the restart does not fire again.
                time.sleep(3 * POLL)
                assert len(_runs(airflow, IMPORT_DAG)) == 2
                assert len(_runs(airflow, INCIDENT_DAG)) == 2
                ready = [e["instance_name"] for e in _asset_events(airflow, "imagesearch_instance_ready")]
                assert sorted(ready) == ["fleet-007", "fleet-023"]
                assert _wait_done(airflow, INCIDENT_DAG, second_incidents[1]["dag_run_id"]) == "success"
                with sqlite3.connect(database) as db:
                    rows = db.execute(
                        "SELECT instance_name, old_status, new_status FROM imagesearch_instance_incidents "
                        "ORDER BY instance_name"
                    ).fetchall()
                assert rows == [("fleet-011", "CREATION", "ABNORMAL"), ("fleet-031", "CREATION", "ARREARAGE")]
                print(f"restart checked: {time.monotonic() - began:.0f} s", flush=True)
                output = airflow.output.read_text(errors="replace").splitlines()
        finally:
            if restarted is not None:
                _stop(restarted)

    # The triggerer's lines (standalone prefixes each line with its component), the restarted one's too.
    output = [line for line in output if line.startswith("triggerer")]
    output += triggerer_log.read_text(errors="replace").splitlines()
    assert not [line for line in output if "Trigger exited with error" in line or "Traceback" in line]
    assert list(stall_logs.glob("sched-*.log")), "the recorder did not run in the trigger runner"
    found = stalls(output, stall_logs)
    for stall in found:
        print(f"stall of {stall.seconds:.2f} s: {stall.cause or 'the loop itself'}")
    assert not [stall.line for stall in found if stall.cause is None]
