"""The example archive DAG end to end in real Airflow, against the emulator, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from tests.support.dagrun import states, xcom
from tests.support.waiting import after_first_poll

pytestmark = pytest.mark.usefixtures("airflow_db")

REPO = Path(__file__).resolve().parents[2]
DAG_FILE = REPO / "dags" / "imagesearch_instance_archive.py"
NAMES = ["shop-main", "shop-new", "archive-forever"]
REGISTERED_MS = 1_767_225_600_000
EXPIRES_MS = 1_798_761_600_000


def load_dag(dag_id: str = "imagesearch_instance_archive") -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAG_FILE))
    assert not bag.import_errors, bag.import_errors
    return bag.dags[dag_id]


def seed(emulator: Emulator) -> None:
    emulator.upsert_instance(
        "shop-main",
        status="NORMAL",
        description="main shop",
        tags=["color"],
        register_date_ms=REGISTERED_MS,
        expired_date_ms=EXPIRES_MS,
    )
    # In CREATION until the test moves it on (see grow_shop_new).
    emulator.upsert_instance(
        "shop-new", status="CREATION", register_date_ms=REGISTERED_MS, expired_date_ms=EXPIRES_MS
    )
    emulator.upsert_instance(
        "archive-forever", status="NORMAL", expired_date_ms=-1, register_date_ms=REGISTERED_MS
    )


@pytest.fixture(params=["sqlite", "postgres"])
def db_conn(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[tuple[str, Any]]:
    """An archive database connection id and a SQLAlchemy engine to check it."""
    import sqlalchemy as sa

    if request.param == "sqlite":
        uri = f"sqlite:///{tmp_path / 'archive.db'}"
        monkeypatch.setenv(
            "AIRFLOW_CONN_ARCHIVE_TEST_DB",
            json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "archive.db")}),
        )
        engine = sa.create_engine(uri)
    else:
        pg_uri = request.getfixturevalue("postgres_uri")
        monkeypatch.setenv("AIRFLOW_CONN_ARCHIVE_TEST_DB", pg_uri)
        engine = sa.create_engine(pg_uri.replace("postgres://", "postgresql+psycopg2://"))
        with engine.begin() as connection:
            connection.execute(sa.text("DROP TABLE IF EXISTS imagesearch_instance_archive"))
    yield "archive_test_db", engine
    engine.dispose()


def rows(engine: Any, table: str = "imagesearch_instance_archive") -> list[dict[str, Any]]:
    import sqlalchemy as sa

    with engine.connect() as connection:
        result = connection.execute(sa.text(f"SELECT * FROM {table} ORDER BY instance_name, run_id"))
        return [dict(row._mapping) for row in result]


def _utc(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def test_dag_file_parses_without_pandas_or_http_clients() -> None:
    # Airflow's own task SDK already imports httpx (its API client), so the DAG file is judged by what
    # it adds on top of `airflow.sdk`: no pandas, no requests, no DB driver.
    code = (
        "import sys, runpy; import airflow.sdk; from airflow.sdk import dag, task, Asset, Param;"
        "before = set(sys.modules); runpy.run_path(sys.argv[1]);"
        "added = [m for m in ('pandas', 'requests', 'urllib3', 'httpx', 'psycopg2', 'numpy')"
        " if m in sys.modules and m not in before]; print('ADDED=' + ','.join(added))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", code, str(DAG_FILE)], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    added_line = next(line for line in out.stdout.splitlines() if line.startswith("ADDED="))
    assert added_line == "ADDED="


def test_end_to_end(
    db_conn: tuple[str, Any], imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    conn_id, engine = db_conn
    seed(emulator)
    dag = load_dag()
    conf = {
        "instance_names": NAMES,
        "imagesearch_conn_id": imagesearch_conn("iam_password"),
        "db_conn_id": conn_id,
    }

    # shop-new turns NORMAL 4 s after the sensor first saw it in CREATION: after its synchronous poke
    # and the trigger's first poll, before the trigger's next one (the DAG polls every 5 s).
    def grow_shop_new() -> None:
        emulator.upsert_instance(
            "shop-new",
            status="CREATION",
            transition_after_s=4.0,
            next_status="NORMAL",
            register_date_ms=REGISTERED_MS,
            expired_date_ms=EXPIRES_MS,
        )

    with after_first_poll(emulator, "shop-new", grow_shop_new) as grown:
        dr = dag.test(run_conf=conf)
    assert grown.is_set()
    assert str(dr.state) == "success", states(dr)
    # The CREATION instance made its sensor defer and poll more than once.
    polls = [r for r in emulator.requests_log() if r.get("instance") == "shop-new" and r["method"] == "GET"]
    assert len(polls) >= 3
    archived = rows(engine)
    assert [r["instance_name"] for r in archived] == sorted(NAMES)
    assert {r["run_id"] for r in archived} == {dr.run_id}
    by_name = {r["instance_name"]: r for r in archived}
    api = emulator.control.state()
    for name in NAMES:
        detail = next(
            i for i in api["instances"] if i["name"] == name and i["project_id"] == DEFAULT_PROJECT_ID
        )
        row = by_name[name]
        assert row["project_id"] == DEFAULT_PROJECT_ID
        assert row["status"] == "NORMAL"
        assert row["domain"] == "General image search"  # the display name
        assert row["description"] == detail["description"]
        assert row["level"] == 30000000
        assert json.loads(row["tags"]) == list(detail["tags"])
        assert _utc(row["registered_at"]) == datetime(2026, 1, 1, tzinfo=UTC)
        assert _utc(row["logical_date"]) == _utc(dr.logical_date)
        assert _utc(row["fetched_at"]) is not None
    assert _utc(by_name["shop-main"]["expires_at"]) == datetime(2027, 1, 1, tzinfo=UTC)
    assert by_name["archive-forever"]["expires_at"] is None
    assert bool(by_name["archive-forever"]["never_expires"]) is True
    assert xcom(dr, "archive")["rows_written"] == 3


def test_rerun_of_the_same_run_replaces_rows(
    db_conn: tuple[str, Any], imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    conn_id, engine = db_conn
    for name in NAMES:
        emulator.upsert_instance(name, status="NORMAL")
    dag = load_dag()
    logical_date = datetime(2026, 11, 1, tzinfo=UTC)
    conf = {"instance_names": NAMES, "imagesearch_conn_id": imagesearch_conn("token"), "db_conn_id": conn_id}
    run_ids = set()
    for _ in range(3):
        dr = dag.test(run_conf=conf, logical_date=logical_date, run_after=logical_date)
        assert str(dr.state) == "success"
        run_ids.add(dr.run_id)
    # Same logical date: dag.test clears and re-runs the same DAG run each time.
    assert len(run_ids) == 1
    assert len(rows(engine)) == 3
    assert xcom(dr, "archive")["rows_replaced"] == 3


def test_hostile_table_name_is_refused(
    db_conn: tuple[str, Any], imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    from airflow_provider_imagesearch.archive import archive_details
    from airflow_provider_imagesearch.errors import ImageSearchValidationError

    conn_id, _engine = db_conn
    with pytest.raises(ImageSearchValidationError, match="Invalid table 'x; DROP TABLE y'"):
        archive_details([{"instance_name": "a"}], db_conn_id=conn_id, table="x; DROP TABLE y", run_id="r")
    # Through the DAG the param schema refuses it before any task runs.
    emulator.upsert_instance("shop-main", status="NORMAL")
    dag = load_dag()
    conf = {
        "instance_names": ["shop-main"],
        "imagesearch_conn_id": imagesearch_conn("token"),
        "db_conn_id": conn_id,
        "table": "x; DROP TABLE y",
    }
    with pytest.raises(Exception, match="table"):
        dag.test(run_conf=conf)


def test_failure_half_way_writes_no_row(db_conn: tuple[str, Any]) -> None:
    import pandas as pd

    from airflow_provider_imagesearch.archive import (
        DEFAULT_TABLE,
        archive_details,
        details_frame,
        write_frame,
    )

    conn_id, engine = db_conn
    good = [{"instance_name": f"inst-{i}", "status": "NORMAL"} for i in range(50)]
    archive_details(good[:10], db_conn_id=conn_id, run_id="earlier-run")
    # archive_details refuses duplicate names up front; below it, write_frame gets a frame whose row 26
    # repeats row 25: the primary key stops the insert part-way through, and the transaction rolls back.
    frame = details_frame(good, run_id="failing-run", logical_date=None)
    bad = pd.concat([frame.iloc[:26], frame.iloc[25:26], frame.iloc[26:]], ignore_index=True)
    with pytest.raises(Exception, match=r"(?i)unique|duplicate|integrity"):
        write_frame(engine, DEFAULT_TABLE, bad, "failing-run")
    remaining = rows(engine)
    assert {r["run_id"] for r in remaining} == {"earlier-run"}
    assert len(remaining) == 10
    # The rerun of the failing run then writes the batch exactly once.
    result = archive_details(good, db_conn_id=conn_id, run_id="failing-run")
    assert result.rows_written == 50
    assert sum(1 for r in rows(engine) if r["run_id"] == "failing-run") == 50


def test_reporting_dag_reads_the_latest_snapshot(
    db_conn: tuple[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_imagesearch.archive import archive_details

    conn_id, _ = db_conn
    archive_details([{"instance_name": "a", "status": "CREATION"}], db_conn_id=conn_id, run_id="run-1")
    archive_details(
        [{"instance_name": "a", "status": "NORMAL"}, {"instance_name": "b", "status": "NORMAL"}],
        db_conn_id=conn_id,
        run_id="run-2",
    )
    dag = load_dag("imagesearch_archive_report")
    # Scheduled on exactly the asset the archive task produces.
    (produced,) = load_dag().get_task("archive").outlets
    assert [asset.uri for asset in dag.timetable.asset_condition.objects] == [produced.uri]
    dr = dag.test(run_conf={"db_conn_id": conn_id})
    snapshot = xcom(dr, "latest_snapshot")
    assert [(r["instance_name"], r["status"], r["run_id"]) for r in snapshot] == [
        ("a", "NORMAL", "run-2"),
        ("b", "NORMAL", "run-2"),
    ]
