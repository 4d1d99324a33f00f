"""The event-driven example DAGs (dags/imagesearch_instance_events.py): parsed, configured, and their
incident table on real SQLite. ``test_standalone_events.py`` runs them in a real deployment."""

from __future__ import annotations

import importlib.util
import json
import sqlite3
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from airflow_provider_imagesearch.errors import ImageSearchValidationError
from airflow_provider_imagesearch.triggers.events import ImageSearchInstanceStatusEventTrigger

REPO = Path(__file__).resolve().parents[2]
DAG_FILE = REPO / "dags" / "imagesearch_instance_events.py"


def _module(monkeypatch: pytest.MonkeyPatch, **env: str) -> ModuleType:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    spec = importlib.util.spec_from_file_location("imagesearch_instance_events_under_test", DAG_FILE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _watcher(asset: Any) -> ImageSearchInstanceStatusEventTrigger:
    (watcher,) = asset.watchers
    assert isinstance(watcher.trigger, ImageSearchInstanceStatusEventTrigger)
    return watcher.trigger


def test_the_file_parses_into_two_dags_scheduled_on_watched_assets() -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAG_FILE))
    assert not bag.import_errors, bag.import_errors
    assert sorted(bag.dags) == ["imagesearch_import_on_ready", "imagesearch_record_incident"]
    ready = bag.dags["imagesearch_import_on_ready"]
    incident = bag.dags["imagesearch_record_incident"]
    assert [task.task_id for task in ready.tasks] == ["instances_that_became_ready", "import_catalog"]
    assert [task.task_id for task in incident.tasks] == ["record"]
    assert ready.params["db_conn_id"] == incident.params["db_conn_id"] == "imagesearch_archive_db"


def test_watchers_come_from_the_environment_and_share_one_poll_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    module = _module(
        monkeypatch,
        IMAGESEARCH_EVENTS_INSTANCES="shop-a, shop-b,,shop-c",
        IMAGESEARCH_EVENTS_CONN_ID="my_conn",
        IMAGESEARCH_EVENTS_POLL_SECONDS="15",
    )
    ready, incident = _watcher(module.INSTANCE_READY), _watcher(module.INSTANCE_INCIDENT)
    assert ready.instance_names == incident.instance_names == ["shop-a", "shop-b", "shop-c"]
    assert ready.statuses == ["NORMAL"]
    assert incident.statuses == ["ABNORMAL", "ARREARAGE", "CREATION_FAILD", "DELETING_FAILED"]
    assert ready.imagesearch_conn_id == "my_conn"
    assert ready.poll_interval == 15.0
    # Same connection and cadence: the triggerer reads each instance once per interval for both.
    assert ready.shared_stream_key() == incident.shared_stream_key()


def test_a_bad_instance_name_in_the_environment_fails_the_parse_naming_the_field(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ImageSearchValidationError, match="instance_names"):
        _module(monkeypatch, IMAGESEARCH_EVENTS_INSTANCES="Shop_A")


def _event(payload: dict[str, Any] | None, **extra: Any) -> SimpleNamespace:
    return SimpleNamespace(extra={**extra, **({"from_trigger": True, "payload": payload} if payload else {})})


def _payload(event_id: str, name: str, new: str, old: str | None = "NORMAL") -> dict[str, Any]:
    return {
        "event_id": event_id,
        "instance_name": name,
        "project_id": "p1",
        "old_status": old,
        "new_status": new,
        "meaning": "needs manual action",
        "observed_at": "2026-01-02T03:04:05Z",
    }


def test_event_payloads_takes_every_watcher_event_once(monkeypatch: pytest.MonkeyPatch) -> None:
    module = _module(monkeypatch)
    one, two = _payload("w-1-shop-a-1", "shop-a", "ABNORMAL"), _payload("w-1-shop-b-1", "shop-b", "ARREARAGE")
    events = {
        "asset": [_event(one), _event(None, note="posted by hand"), _event(two), _event(one)],
    }
    assert module.event_payloads(events) == [one, two]
    assert module.event_payloads(None) == []


def test_incidents_are_one_row_per_event_and_a_rerun_writes_none(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    database = tmp_path / "reporting.db"
    monkeypatch.setenv(
        "AIRFLOW_CONN_REPORTING_DB", json.dumps({"conn_type": "sqlite", "host": str(database)})
    )
    module = _module(monkeypatch)
    first = [_payload("w-1-shop-a-1", "shop-a", "ABNORMAL"), _payload("w-1-shop-b-1", "shop-b", "ARREARAGE")]

    def record(payloads: list[dict[str, Any]], run_id: str) -> dict[str, int]:
        result: dict[str, int] = module.record_incidents(
            payloads, db_conn_id="reporting_db", table="incidents", run_id=run_id
        )
        return result

    assert record(first, "run-1") == {"events": 2, "recorded": 2, "already_recorded": 0}
    assert record(first, "run-1") == {"events": 2, "recorded": 0, "already_recorded": 2}  # a retry
    # The same event reported again (a restarted triggerer), beside a new one: only the new one.
    again = [first[0], _payload("w-1-shop-a-2", "shop-a", "DELETING_FAILED", old="ABNORMAL")]
    assert record(again, "run-2") == {"events": 2, "recorded": 1, "already_recorded": 1}
    assert record([], "run-3") == {"events": 0, "recorded": 0, "already_recorded": 0}
    with sqlite3.connect(database) as db:
        rows = db.execute(
            "SELECT event_id, instance_name, old_status, new_status, dag_run_id FROM incidents ORDER BY event_id"
        ).fetchall()
    assert rows == [
        ("w-1-shop-a-1", "shop-a", "NORMAL", "ABNORMAL", "run-1"),
        ("w-1-shop-a-2", "shop-a", "ABNORMAL", "DELETING_FAILED", "run-2"),
        ("w-1-shop-b-1", "shop-b", "NORMAL", "ARREARAGE", "run-1"),
    ]


def test_a_run_with_thousands_of_events_records_them_all(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """4,000 events (a fleet going wrong at once, or a long triggerer backlog): 36,000 values, more than
    one SQLite statement may bind (32,766 since 3.32, 999 before). Distributions may build SQLite with a
    higher limit (Debian's: 250,000): every connection here gets the stock one."""
    import sqlalchemy as sa

    def stock_limit(dbapi_connection: Any, _record: Any) -> None:
        if isinstance(dbapi_connection, sqlite3.Connection):
            dbapi_connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 32_766)

    sa.event.listen(sa.engine.Engine, "connect", stock_limit)
    try:
        _record_thousands(monkeypatch, tmp_path)
    finally:
        sa.event.remove(sa.engine.Engine, "connect", stock_limit)


def _record_thousands(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    database = tmp_path / "reporting.db"
    monkeypatch.setenv(
        "AIRFLOW_CONN_REPORTING_DB", json.dumps({"conn_type": "sqlite", "host": str(database)})
    )
    module = _module(monkeypatch)
    many = [_payload(f"w-1-shop-{n}-1", f"shop-{n}", "ABNORMAL") for n in range(4000)]
    first = module.record_incidents(many[:10], db_conn_id="reporting_db", table="incidents", run_id="run-1")
    assert first == {"events": 10, "recorded": 10, "already_recorded": 0}
    result = module.record_incidents(many, db_conn_id="reporting_db", table="incidents", run_id="run-2")
    assert result == {"events": 4000, "recorded": 3990, "already_recorded": 10}
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT count(*), count(DISTINCT event_id) FROM incidents").fetchone() == (
            4000,
            4000,
        )
        assert db.execute("SELECT count(*) FROM incidents WHERE dag_run_id = 'run-1'").fetchone() == (10,)


def test_a_bad_incident_table_name_is_refused_before_any_write(monkeypatch: pytest.MonkeyPatch) -> None:
    module = _module(monkeypatch)
    with pytest.raises(ImageSearchValidationError, match="table"):
        module.record_incidents(
            [_payload("e", "shop-a", "ABNORMAL")], db_conn_id="unused", table="x; DROP TABLE y", run_id="r"
        )


def test_a_run_without_events_imports_into_the_named_instances_that_are_ready_now(
    monkeypatch: pytest.MonkeyPatch, emulator: Any, imagesearch_conn: Any
) -> None:
    """A run started by hand has no triggering event: it acts on the instances of its
    ``instance_names`` param that are NORMAL now (the watcher never fires for those that were ready
    before it started); a run the watcher started acts on its events' instances, whatever the param."""
    from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID

    conn_id = imagesearch_conn("token", conn_id="imagesearch_manual")
    module = _module(monkeypatch)
    emulator.upsert_instance("shop-a", project_id=DEFAULT_PROJECT_ID, status="NORMAL")
    emulator.upsert_instance("shop-b", project_id=DEFAULT_PROJECT_ID, status="CREATION")
    emulator.upsert_instance("shop-c", project_id=DEFAULT_PROJECT_ID, status="ABNORMAL")
    fleet = ["shop-a", "shop-b", "ghost-d", "shop-c", "shop-a"]
    assert module.instances_to_import([], fleet, conn_id=conn_id) == ["shop-a"]
    events = [_payload("w-1-shop-c-1", "shop-c", "NORMAL"), _payload("w-1-shop-b-1", "shop-b", "NORMAL")]
    assert module.instances_to_import(events, fleet, conn_id=conn_id) == ["shop-c", "shop-b"]


def test_the_manual_run_param_defaults_to_the_watched_fleet(monkeypatch: pytest.MonkeyPatch) -> None:
    module = _module(monkeypatch, IMAGESEARCH_EVENTS_INSTANCES="shop-a,shop-b")
    dag = module.imagesearch_import_on_ready()
    assert dag.params["instance_names"] == ["shop-a", "shop-b"]
