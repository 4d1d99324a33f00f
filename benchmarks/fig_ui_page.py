"""Figure "UI page": the ImageSearch page's answer time on a big archive and ledger, vs a plain SELECT.

Data: an archive of N instances x S snapshots written by the archive's own path (``details_frame`` +
``write_frame``, one call per archive run) and an import ledger of L rows in the table the ledger code
creates (``Ledger.create_if_missing``), filled with the driver's bulk insert (``executemany`` on SQLite,
``COPY`` on PostgreSQL; sending a million rows through ``Ledger.record`` would only slow the set-up).
Half the ledger is one library, the rest 99 libraries; 1% of the rows are invalid or failed; 10 runs.

Measured in a child process with its own ``AIRFLOW_HOME`` (a migrated metadata database): Airflow's own
API app (``airflow.api_fastapi.app.create_app``, the plugin mounted as in the api-server) called in
process through Starlette's ``TestClient`` with a viewer's bearer token, so the time includes auth,
SQL, rendering and the response. One untimed first view per page (the tables carry their read indexes
from their creation; the first view warms the engine and the caches, timed separately). Then, interleaved per repetition, each page and its control: the plain ``SELECT`` (through
the same SQLAlchemy engine, every row fetched) of the rows the page's answer depends on:

* Fleet and History: every archive row (the newest snapshot of each instance needs all of them);
* Libraries: ``instance_name, api, outcome, run_id, held_fingerprint, updated_at`` of every ledger row;
* Problem rows: the invalid and failed rows of the biggest library.

Goal (issue 24): each page answers within 1 s (median). The control is reported beside it: what reading
the same rows costs the database and the driver alone, in the same run, so a loaded machine shows in both.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks._env import REPO
from benchmarks.config import Sizes
from benchmarks.results import Result, median

GOAL_SECONDS = 1.0
ARCHIVE = "imagesearch_instance_archive"
LEDGER = "imagesearch_import_ledger"
CONN_ID = "bench_ui_db"
PROJECT_ID = "0b5e4c3a2f1d4e6a8c7b9d0e1f2a3b4c"
BIG_LIBRARY = "big-library"
PAGES = {
    "fleet": "/imagesearch/fleet",
    "history": "/imagesearch/history",
    "libraries": "/imagesearch/libraries",
    "problems": f"/imagesearch/problems?instance={BIG_LIBRARY}&api=v1",
}
CONTROLS = {
    "fleet": f"SELECT * FROM {ARCHIVE}",
    "history": f"SELECT * FROM {ARCHIVE}",
    "libraries": f"SELECT instance_name, api, outcome, run_id, held_fingerprint, updated_at FROM {LEDGER}",
    "problems": (
        f"SELECT path, outcome, error_code, error_message, row_number, run_id, updated_at FROM {LEDGER} "
        f"WHERE instance_name = '{BIG_LIBRARY}' AND api = 'v1' AND outcome IN ('invalid', 'failed')"
    ),
}


# --- data ----------------------------------------------------------------------------------------------


def write_archive(engine: Any, instances: int, snapshots: int) -> None:
    """``snapshots`` archive runs of ``instances`` instances, through the archive's write path."""
    from airflow_provider_imagesearch.archive import details_frame, write_frame

    start = datetime(2026, 1, 1, tzinfo=UTC)
    for snapshot in range(snapshots):
        details = [
            {
                "instance_name": f"inst-{index:05d}",
                "project_id": PROJECT_ID,
                # One instance in 50 turns ABNORMAL for the last fifth of the runs.
                "status": "ABNORMAL" if index % 50 == 0 and snapshot >= snapshots * 4 // 5 else "NORMAL",
                "domain": "General image search",
                "description": f"catalogue {index}",
                "level": 30_000_000,
                "tags": ["color", "size"],
                "registered_at": "2026-01-01T00:00:00Z",
                "expires_at": "2027-01-01T00:00:00Z",
                "never_expires": False,
            }
            for index in range(instances)
        ]
        run_id = f"scheduled__{(start + timedelta(hours=snapshot)).isoformat()}"
        frame = details_frame(
            details, run_id=run_id, logical_date=None, fetched_at=start + timedelta(hours=snapshot)
        )
        write_frame(engine, ARCHIVE, frame, run_id)


LEDGER_COLUMNS = (
    "instance_name, api, path_key, path, fingerprint, held_fingerprint, outcome, error_code, error_message, "
    "row_number, attempts, run_id, updated_at"
)


def ledger_rows(total: int) -> Iterator[tuple[Any, ...]]:
    """``total`` ledger rows: half in one library, the rest in 99; 1% invalid or failed; 10 runs."""
    import hashlib

    libraries = [(BIG_LIBRARY, "v1", total // 2)]
    rest = total - total // 2
    libraries += [
        (f"library-{i:03d}", "v1" if i % 2 else "v2", rest // 99 + (1 if i < rest % 99 else 0))
        for i in range(99)
    ]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for name, api, size in libraries:
        for row in range(size):
            run = row * 10 // max(size, 1)
            problem = row % 100 == 7
            outcome = (
                ("invalid" if row % 200 == 7 else "failed")
                if problem
                else ("added" if run < 5 else "updated")
            )
            fingerprint = hashlib.md5(f"{name}/{row}".encode()).hexdigest()
            path = f"https://shop.obs.cn-north-4.myhuaweicloud.com/{name}/{row:07d}.jpg"
            yield (
                name,
                api,
                hashlib.sha256(path.encode()).hexdigest()[:32],
                path,
                fingerprint,
                None if problem else fingerprint,
                outcome,
                "IS.0002" if problem else None,
                "image could not be downloaded" if problem else None,
                row + 2,
                1,
                f"scheduled__2026-01-{run + 1:02d}T00:00:00+00:00",
                (start + timedelta(days=run, seconds=row % 86_400)).strftime("%Y-%m-%d %H:%M:%S.%f"),
            )


def create_ledger(engine: Any) -> None:
    from airflow_provider_imagesearch.imports.ledger import Ledger

    Ledger(engine, LEDGER, "setup", "setup").create_if_missing()


def fill_ledger_sqlite(path: Path, total: int) -> None:
    import sqlite3

    with sqlite3.connect(path) as connection:
        marks = ", ".join("?" * 13)
        connection.executemany(
            f"INSERT INTO {LEDGER} ({LEDGER_COLUMNS}) VALUES ({marks})", ledger_rows(total)
        )


def fill_ledger_postgres(dsn: dict[str, Any], total: int) -> None:
    import csv
    import io

    import psycopg2

    connection = psycopg2.connect(**dsn)
    try:
        with connection, connection.cursor() as cursor:
            batch = io.StringIO()
            writer = csv.writer(batch)
            for count, row in enumerate(ledger_rows(total), 1):
                writer.writerow(["\\N" if value is None else value for value in row])
                if count % 200_000 == 0 or count == total:
                    batch.seek(0)
                    cursor.copy_expert(
                        f"COPY {LEDGER} ({LEDGER_COLUMNS}) FROM STDIN WITH (FORMAT csv, NULL '\\N')", batch
                    )
                    batch = io.StringIO()
                    writer = csv.writer(batch)
    finally:
        connection.close()


# --- the measuring child ---------------------------------------------------------------------------------

CHILD = r"""
import json, os, sys, time
args = json.loads(sys.argv[1])
from airflow.utils import db
db.resetdb()
from airflow.api_fastapi.app import create_app, get_auth_manager
from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
from fastapi.testclient import TestClient
from airflow_provider_imagesearch.plugins import storage

app = create_app()
client = TestClient(app)
user = SimpleAuthManagerUser(username="bench", role="viewer")
headers = {"Authorization": "Bearer " + get_auth_manager().generate_jwt(user)}
results = {}
for database, conn_id in args["databases"].items():
    # The page reads its options at every request: point it at this database.
    os.environ["AIRFLOW__IMAGESEARCH__ARCHIVE_CONN_ID"] = conn_id
    os.environ["AIRFLOW__IMAGESEARCH__LEDGER_CONN_ID"] = conn_id
    engine = storage.ENGINES.get(conn_id, "bench")
    result = {"first_view_s": {}, "page_s": {}, "control_s": {}, "control_rows": {}, "bytes": {}}
    for name, path in args["pages"].items():
        started = time.perf_counter()
        answer = client.get(path, headers=headers)
        result["first_view_s"][name] = time.perf_counter() - started
        assert answer.status_code == 200, (path, answer.status_code, answer.text[:500])
        # A notice would mean the page did not read its table (a missing connection, a failed query).
        assert 'class="notice"' not in answer.text, answer.text[answer.text.find('class="notice"'):][:500]
        result["bytes"][name] = len(answer.content)
    for repetition in range(args["repeats"]):
        for name, path in args["pages"].items():
            def page():
                started = time.perf_counter()
                answer = client.get(path, headers=headers)
                assert answer.status_code == 200
                return time.perf_counter() - started
            def control():
                started = time.perf_counter()
                with engine.connect() as connection:
                    rows = connection.exec_driver_sql(args["controls"][name]).fetchall()
                result["control_rows"][name] = len(rows)
                return time.perf_counter() - started
            order = (page, control) if repetition % 2 == 0 else (control, page)
            for step in order:
                elapsed = step()
                result["page_s" if step is page else "control_s"].setdefault(name, []).append(elapsed)
    results[database] = result
print("BENCH_UI=" + json.dumps(results))
"""


def _measure(databases: dict[str, str], env: dict[str, str], home: Path, sizes: Sizes) -> dict[str, Any]:
    """Run the measuring child over ``databases`` (name -> connection id); its results per database."""
    child_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))},
        **env,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "AIRFLOW__API_AUTH__JWT_SECRET": "imagesearch-benchmark-jwt-secret",
        "AIRFLOW__IMAGESEARCH__IMAGESEARCH_CONN_ID": "",
        "PYTHONPATH": str(REPO),
    }
    arguments = {"databases": databases, "pages": PAGES, "controls": CONTROLS, "repeats": sizes.ui_repeats}
    home.mkdir(parents=True, exist_ok=True)
    out = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(arguments)],
        capture_output=True,
        text=True,
        env=child_env,
        timeout=1800,
        check=False,
    )
    line = next((x for x in out.stdout.splitlines() if x.startswith("BENCH_UI=")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"the measuring child failed: {out.stderr[-3000:]}")
    measured: dict[str, Any] = json.loads(line.split("=", 1)[1])
    return measured


def _results(database: str, measured: dict[str, Any], sizes: Sizes, setup: dict[str, float]) -> list[Result]:
    results = []
    for name in PAGES:
        page = median(measured["page_s"][name])
        control = median(measured["control_s"][name])
        ok = page <= GOAL_SECONDS
        results.append(
            Result(
                figure=f"UI page: {name}, {database}",
                goal=f"median <= {GOAL_SECONDS:.0f} s (control: a plain SELECT of the same rows)",
                measured=(
                    f"{page * 1000:.0f} ms (plain SELECT of {measured['control_rows'][name]:,} rows: "
                    f"{control * 1000:.0f} ms, {control / page:.1f}x the page)"
                ),
                status="pass" if ok else "fail",
                value=round(page, 4),
                details={
                    "page_s": [round(x, 4) for x in measured["page_s"][name]],
                    "control_s": [round(x, 4) for x in measured["control_s"][name]],
                    "first_view_s": round(measured["first_view_s"][name], 3),
                    "response_bytes": measured["bytes"][name],
                    "instances": sizes.ui_instances,
                    "snapshots": sizes.ui_snapshots,
                    "ledger_rows": sizes.ui_ledger_rows,
                    "setup_s": setup,
                },
                notes=[
                    f"{sizes.ui_instances:,} instances x {sizes.ui_snapshots} snapshots, "
                    f"{sizes.ui_ledger_rows:,} ledger rows; {sizes.ui_repeats} interleaved repetition(s) "
                    "through Airflow's API app with a viewer's token. First view (engine and caches): "
                    f"{measured['first_view_s'][name]:.2f} s."
                ],
            )
        )
    return results


def _load_sqlite(folder: Path, sizes: Sizes) -> tuple[str, dict[str, float]]:
    """Fill a SQLite file; returns its connection (JSON) and the set-up times."""
    import sqlalchemy as sa

    path = folder / "page.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    started = time.perf_counter()
    write_archive(engine, sizes.ui_instances, sizes.ui_snapshots)
    archived = time.perf_counter()
    create_ledger(engine)
    engine.dispose()
    fill_ledger_sqlite(path, sizes.ui_ledger_rows)
    setup = {"archive_s": round(archived - started, 1), "ledger_s": round(time.perf_counter() - archived, 1)}
    return json.dumps({"conn_type": "sqlite", "host": str(path)}), setup


def _load_postgres(server: Any, sizes: Sizes) -> tuple[str, dict[str, float]]:
    import sqlalchemy as sa

    url = f"postgresql+psycopg2://{server.user}@127.0.0.1:{server.port}/postgres"
    engine = sa.create_engine(url)
    started = time.perf_counter()
    write_archive(engine, sizes.ui_instances, sizes.ui_snapshots)
    archived = time.perf_counter()
    create_ledger(engine)
    fill_ledger_postgres(
        {"host": "127.0.0.1", "port": server.port, "user": server.user, "dbname": "postgres"},
        sizes.ui_ledger_rows,
    )
    with engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE")  # what autovacuum does soon after a bulk load
    engine.dispose()
    setup = {"archive_s": round(archived - started, 1), "ledger_s": round(time.perf_counter() - archived, 1)}
    return str(server.uri), setup


def run(sizes: Sizes) -> list[Result]:
    folder = Path(tempfile.mkdtemp(prefix="imagesearch-bench-ui-"))
    connections: dict[str, str] = {}
    setups: dict[str, dict[str, float]] = {}
    skipped: list[Result] = []
    server = None
    try:
        connections["SQLite"], setups["SQLite"] = _load_sqlite(folder, sizes)
        try:
            import psycopg2  # noqa: F401

            from tests.support.postgres import start_postgres

            server = start_postgres()
        except Exception as error:  # no server binaries, no driver, initdb refused...
            skipped.append(_skipped(f"{type(error).__name__}: {error}"))
        else:
            connections["PostgreSQL"], setups["PostgreSQL"] = _load_postgres(server, sizes)
        conn_ids = {name: f"bench_ui_{name.lower()}" for name in connections}
        env = {f"AIRFLOW_CONN_{conn_ids[name].upper()}": value for name, value in connections.items()}
        measured = _measure(conn_ids, env, folder / "home", sizes)
        results = [
            result for name in connections for result in _results(name, measured[name], sizes, setups[name])
        ]
        return results + skipped
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _skipped(reason: str) -> Result:
    return Result(
        figure="UI page: PostgreSQL",
        goal=f"median <= {GOAL_SECONDS:.0f} s (control: a plain SELECT of the same rows)",
        measured=f"skipped: {reason}",
        status="skip",
    )
