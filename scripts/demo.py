"""``make demo``: the example archive DAG end to end against the local emulator, on SQLite.

1. Start the ImageSearch + IAM emulator (own process) with three instances: one NORMAL, one in
   CREATION that turns NORMAL a few seconds later, one that never expires.
2. Run ``airflow dags test imagesearch_instance_archive`` in real Airflow (fresh AIRFLOW_HOME), with
   the ImageSearch connection (IAM password auth) and the archive database in AIRFLOW_CONN_* variables.
3. Print the archived rows and where the full ``airflow dags test`` log is. Exit 0 only if this run's
   three rows are there. No process is left running.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / ".demo"
sys.path.insert(0, str(REPO))

from airflow_provider_imagesearch.emulator import (  # noqa: E402
    DEFAULT_DOMAIN,
    DEFAULT_PASSWORD,
    DEFAULT_PROJECT_ID,
    DEFAULT_REGION,
    DEFAULT_USER,
    EmulatorProcess,
)

INSTANCES = ["shop-main", "shop-new", "archive-forever"]
TABLE = "imagesearch_instance_archive"
DAY_MS = 86_400_000


def seed() -> dict[str, object]:
    now_ms = int(time.time() * 1000)
    common = {"project_id": DEFAULT_PROJECT_ID, "model": "common-search", "level": 30_000_000}
    return {
        "instances": [
            {
                **common,
                "name": "shop-main",
                "description": "Main shop catalogue",
                "tags": ["color", "brand"],
                "status": "NORMAL",
                "register_date_ms": now_ms - 90 * DAY_MS,
                "expired_date_ms": now_ms + 275 * DAY_MS,
            },
            {
                **common,
                "name": "shop-new",
                "description": "New catalogue, still being created",
                "tags": ["color"],
                "status": "CREATION",
                # Stays CREATION until the sensor has seen it (see grow_after_first_read).
                "transition_after_s": 3600,
                "next_status": "NORMAL",
                "register_date_ms": now_ms,
                "expired_date_ms": now_ms + 365 * DAY_MS,
            },
            {
                **common,
                "name": "archive-forever",
                "description": "Reference images, never expires",
                "tags": [],
                "status": "NORMAL",
                "register_date_ms": now_ms - 400 * DAY_MS,
                "expired_date_ms": -1,
            },
        ]
    }


def airflow_env(emulator_url: str, database: Path) -> dict[str, str]:
    connection = {
        "conn_type": "imagesearch",
        "host": emulator_url,
        "login": DEFAULT_USER,
        "password": DEFAULT_PASSWORD,
        "extra": {
            "region": DEFAULT_REGION,
            "project_id": DEFAULT_PROJECT_ID,
            "domain_name": DEFAULT_DOMAIN,
            "iam_endpoint": emulator_url,
        },
    }
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(WORK / "airflow-home"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "AIRFLOW_CONN_IMAGESEARCH_DEFAULT": json.dumps(connection),
        "AIRFLOW_CONN_IMAGESEARCH_ARCHIVE_DB": json.dumps({"conn_type": "sqlite", "host": str(database)}),
        "PYTHONPATH": str(REPO),
    }
    return env


def run(command: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    print(f"$ {' '.join(command)}", flush=True)
    return subprocess.run(command, env=env, text=True, capture_output=True, timeout=timeout, check=False)


def print_rows(database: Path) -> list[sqlite3.Row]:
    with sqlite3.connect(database) as connection:
        connection.row_factory = sqlite3.Row
        latest = connection.execute(f"SELECT run_id FROM {TABLE} ORDER BY fetched_at DESC LIMIT 1").fetchone()
        if latest is None:
            return []
        rows = connection.execute(
            f"SELECT instance_name, status, description, tags, registered_at, expires_at, never_expires, run_id "
            f"FROM {TABLE} WHERE run_id = ? ORDER BY instance_name",
            (latest["run_id"],),
        ).fetchall()
    columns = ["instance_name", "status", "tags", "registered_at", "expires_at", "never_expires"]
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    print("\nArchived rows of run", rows[0]["run_id"] if rows else "-")
    print("  ".join(c.ljust(widths[c]) for c in columns))
    print("  ".join("-" * widths[c] for c in columns))
    for row in rows:
        print("  ".join(str(row[c]).ljust(widths[c]) for c in columns))
    return rows


DEFERRALS_TABLE = "demo_deferrals"


def record_deferrals(airflow_db: Path) -> None:
    """Make the demo's throwaway Airflow database record every task instance that enters ``deferred``.

    ``airflow dags test`` runs a deferred task's trigger in line; the task instance is ``deferred`` for
    only a few milliseconds (then queued while the trigger runs), too briefly to be seen by polling, and
    log lines change between Airflow versions. A SQLite trigger on ``task_instance`` is the exact record.
    """
    with sqlite3.connect(airflow_db) as connection:
        connection.executescript(
            f"""
            CREATE TABLE IF NOT EXISTS {DEFERRALS_TABLE} (task_id TEXT, map_index INTEGER, at TEXT);
            CREATE TRIGGER IF NOT EXISTS {DEFERRALS_TABLE}_on_update AFTER UPDATE OF state ON task_instance
            WHEN NEW.state = 'deferred' AND (OLD.state IS NULL OR OLD.state != 'deferred')
            BEGIN
                INSERT INTO {DEFERRALS_TABLE} VALUES (NEW.task_id, NEW.map_index, datetime('now'));
            END;
            """
        )


def deferrals(airflow_db: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(airflow_db) as connection:
        rows = connection.execute(
            f"SELECT task_id, map_index FROM {DEFERRALS_TABLE} ORDER BY rowid"
        ).fetchall()
    return [(str(task_id), int(map_index)) for task_id, map_index in rows]


def grow_after_first_read(emulator: EmulatorProcess, stop: threading.Event) -> threading.Thread:
    """Turn shop-new NORMAL 8 s after the sensor first read it: so the sensor defers however slowly
    Airflow starts (a fixed delay from the start raced with a slow machine's DAG start)."""

    def watch() -> None:
        while not stop.wait(0.2):
            if any(r.get("instance") == "shop-new" for r in emulator.requests_log()):
                emulator.upsert_instance(
                    "shop-new",
                    description="New catalogue, still being created",
                    tags=["color"],
                    status="CREATION",
                    register_date_ms=int(time.time() * 1000),
                    expired_date_ms=int(time.time() * 1000) + 365 * DAY_MS,
                    transition_after_s=8,
                    next_status="NORMAL",
                )
                return

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def main() -> int:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    database = WORK / "archive.db"
    airflow = str(Path(sys.executable).with_name("airflow"))

    migrated = run([airflow, "db", "migrate"], airflow_env("http://127.0.0.1:1", database), timeout=300)
    if migrated.returncode != 0:
        print(migrated.stdout[-3000:], migrated.stderr[-3000:], sep="\n")
        return 1
    airflow_db = WORK / "airflow-home" / "airflow.db"
    record_deferrals(airflow_db)
    with EmulatorProcess(seed=seed(), creation_seconds=10.0) as emulator:
        print(f"Emulator at {emulator.url} with instances {', '.join(INSTANCES)} (shop-new is CREATION)")
        env = airflow_env(emulator.url, database)
        started = time.monotonic()
        stop = threading.Event()
        grow_after_first_read(emulator, stop)
        try:
            result = run([airflow, "dags", "test", "imagesearch_instance_archive"], env, timeout=600)
        finally:
            stop.set()
        elapsed = time.monotonic() - started
        output = result.stdout + result.stderr
        log_path = WORK / "dags-test.log"
        log_path.write_text(output, encoding="utf-8")
        stats = emulator.stats()
        polls = sum(
            1 for r in emulator.requests_log() if r.get("instance") == "shop-new" and r["method"] == "GET"
        )
    deferred_tasks = deferrals(airflow_db)
    deferred = len(deferred_tasks)
    print(
        f"airflow dags test exited {result.returncode} after {elapsed:.1f}s; sensors deferred to triggers: {deferred} "
        f"({', '.join(f'{task}[{index}]' for task, index in deferred_tasks) or 'none'}: task instances that "
        "entered state deferred in the Airflow database)"
    )
    print(
        f"Emulator saw {stats['requests_total']} requests, {stats['token_requests']} IAM token request(s); "
        f"shop-new was read {polls} times while it turned NORMAL"
    )
    print(f"Full log of airflow dags test: {log_path}")
    if result.returncode != 0:
        print(output[-6000:])
        return 1
    rows = print_rows(database) if database.exists() else []
    names = sorted(row["instance_name"] for row in rows)
    if names != sorted(INSTANCES) or any(row["status"] != "NORMAL" for row in rows):
        print(f"\nFAILED: expected one NORMAL row for each of {sorted(INSTANCES)}, got {names}")
        return 1
    print(f"\nOK: {len(rows)} rows archived to {database}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
