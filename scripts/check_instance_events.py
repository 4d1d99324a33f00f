"""Do the instance-status watchers work in a real triggerer of *this* interpreter's Airflow? A check.

``.venv-compat/bin/python scripts/check_instance_events.py`` (Airflow 3.1.8, the floor) or
``.venv/bin/python scripts/check_instance_events.py`` starts the emulator with a fleet in ``CREATION`` and
``airflow standalone`` (its own home, a free port) with ``dags/imagesearch_instance_events.py``, lets the
watchers take their baseline, flips one instance to ``NORMAL`` and one to ``ABNORMAL``, and reads the
metadata database and the emulator's request log:

* each change made one asset event naming its instance, and started one run of its DAG, within two poll
  intervals of the change;
* nothing else fired during five more intervals;
* both watchers together read each instance once per round (one shared poll loop).

It checks the watchers, not the downstream tasks (the compat venv has no SQLite provider for the example's
ledger and incident table; ``tests/events/test_standalone_events.py`` runs those on the main venv). Exit
status 0 when all hold.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator  # noqa: E402
from tests.support.connections import connection_fields, env_name  # noqa: E402
from tests.ui.standalone import run_standalone  # noqa: E402

FLEET = [f"fleet-{index:03d}" for index in range(20)]
POLL = 5.0
INSTANCE_ROUTE = "GET /v1/{project_id}/service/{instance_name}"


def _rounds(reads: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Reads cut into rounds: a gap of more than half an interval starts a new one."""
    rounds: list[list[dict[str, Any]]] = []
    for read in sorted(reads, key=lambda r: r["ts"]):
        if not rounds or read["ts"] - rounds[-1][-1]["ts"] > POLL / 2:
            rounds.append([])
        rounds[-1].append(read)
    return rounds


def _rows(database: Path, query: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(database) as db:
        return db.execute(query).fetchall()


def main() -> int:
    import airflow

    print(f"apache-airflow {airflow.__version__}", flush=True)
    home = Path(tempfile.mkdtemp(prefix="imagesearch-events-check-"))
    dags = home / "dags"
    dags.mkdir()
    shutil.copy(REPO / "dags" / "imagesearch_instance_events.py", dags)
    database = home / "airflow.db"
    failures: list[str] = []
    with Emulator() as emulator:
        for name in FLEET:
            emulator.upsert_instance(name, project_id=DEFAULT_PROJECT_ID, status="CREATION")
        env = {
            env_name("imagesearch_events_check"): json.dumps(connection_fields(emulator.url, "token")),
            "IMAGESEARCH_EVENTS_CONN_ID": "imagesearch_events_check",
            "IMAGESEARCH_EVENTS_INSTANCES": ",".join(FLEET),
            "IMAGESEARCH_EVENTS_POLL_SECONDS": str(POLL),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        }
        with run_standalone(home, dags, env, ready_timeout=240):
            deadline = time.monotonic() + 240
            while (
                time.monotonic() < deadline
                and sum(1 for r in emulator.requests_log() if r["instance"] == "fleet-000") < 2
            ):
                time.sleep(1)
            flipped = time.time()
            emulator.upsert_instance("fleet-003", project_id=DEFAULT_PROJECT_ID, status="NORMAL")
            emulator.upsert_instance("fleet-004", project_id=DEFAULT_PROJECT_ID, status="ABNORMAL")
            time.sleep(7 * POLL)
            runs = _rows(database, "SELECT dag_id, queued_at FROM dag_run ORDER BY id")
            extras = _rows(database, "SELECT extra FROM asset_event ORDER BY id")
            reads = [r for r in emulator.requests_log() if r["route"] == INSTANCE_ROUTE]
    events = [json.loads(str(extra))["payload"] for (extra,) in extras]
    print(f"runs: {runs}\nevents: {[(e['instance_name'], e['new_status']) for e in events]}")
    rounds = _rounds(reads)[1:-1]  # the first and last may be cut by the start and the end
    print(f"{len(rounds)} whole rounds of reads, sizes {sorted({len(r) for r in rounds})}")
    if sorted((e["instance_name"], e["new_status"]) for e in events) != [
        ("fleet-003", "NORMAL"),
        ("fleet-004", "ABNORMAL"),
    ]:
        failures.append("expected one event for each change, and no other")
    if sorted(str(dag_id) for dag_id, _ in runs) != [
        "imagesearch_import_on_ready",
        "imagesearch_record_incident",
    ]:
        failures.append("expected one run of each DAG")
    for dag_id, queued_at in runs:
        queued = datetime.fromisoformat(str(queued_at)).replace(tzinfo=UTC).timestamp()
        if queued - flipped > 2 * POLL:
            failures.append(f"{dag_id} was queued {queued - flipped:.1f} s after the change")
    once = [Counter(r["instance"] for r in reads) == Counter(FLEET) for reads in rounds]
    if len(rounds) < 5 or not all(once):
        failures.append("expected each instance read exactly once a round by both watchers together")
    print("\n".join(f"FAILED: {failure}" for failure in failures) or "OK", f"(home: {home})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
