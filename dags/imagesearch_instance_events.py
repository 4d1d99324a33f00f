"""Event-driven ImageSearch DAGs: import when an instance becomes ready, record an incident when one fails.

Two assets are watched in the triggerer by ``ImageSearchInstanceStatusEventTrigger`` (no DAG run and no
sensor waits for anything):

* ``imagesearch_instance_ready`` gets an event each time an instance of the fleet **enters** ``NORMAL``.
  It schedules ``imagesearch_import_on_ready``, which imports the sample catalogue
  (``data/sample_catalog.csv``, the manifest of ``imagesearch_catalog_import``) into each instance the
  triggering events name, through the import ledger (a second import of the same instance sends nothing).
  Run by hand (no triggering event), it imports into those of its ``instance_names`` param (the watched
  fleet by default) that are ``NORMAL`` now: the watcher fires only on a change, not for instances that
  were ready before it started.
* ``imagesearch_instance_incident`` gets an event each time an instance enters a failure status
  (``ARREARAGE``, ``ABNORMAL``, ``DELETING_FAILED``, ``CREATION_FAILD``). It schedules
  ``imagesearch_record_incident``, which writes one row per event into a reporting table (SQLite by
  default, any SQL connection), keyed by the event's ``event_id``: a rerun of the DAG run, or the same
  event reported twice, writes no second row.

Several events can start one DAG run (the scheduler gathers the events that arrived since the last run):
both DAGs act on every triggering event, not only the first.

Both watchers poll the same fleet on the same connection at the same interval, so the triggerer reads
each instance once per interval for the two of them. Configure them with environment variables
(read when the file is parsed; the defaults watch the instance of ``imagesearch_catalog_import``):

| variable | default | meaning |
|---|---|---|
| ``IMAGESEARCH_EVENTS_INSTANCES`` | ``catalog-demo`` | comma-separated instance names to watch |
| ``IMAGESEARCH_EVENTS_CONN_ID`` | ``imagesearch_default`` | the ImageSearch connection |
| ``IMAGESEARCH_EVENTS_POLL_SECONDS`` | ``60`` | seconds between two reads of each instance |

**Params** (both DAGs): ``db_conn_id`` (any common-sql connection: the import ledger, the incident table);
``instance_names`` for the first (manual runs only), and ``incident_table`` for the second.

Parsing this file imports no HTTP client, no pandas and no SQLAlchemy ORM: the tasks load them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import Asset, AssetWatcher, Param, dag, get_current_context, task

from airflow_provider_imagesearch.archive import TABLE_NAME_PATTERN
from airflow_provider_imagesearch.operators.import_images import ImageSearchImportImagesOperator
from airflow_provider_imagesearch.triggers.events import ImageSearchInstanceStatusEventTrigger

log = logging.getLogger(__name__)
DATA = Path(__file__).resolve().parent / "data"
#: Rows of ``data/sample_catalog.csv`` that are invalid on purpose (see ``imagesearch_catalog_import``).
SAMPLE_INVALID_ROWS = 18
INCIDENT_TABLE = "imagesearch_instance_incidents"
FAILURE_STATUSES = ["ARREARAGE", "ABNORMAL", "DELETING_FAILED", "CREATION_FAILD"]

CONN_ID = os.environ.get("IMAGESEARCH_EVENTS_CONN_ID", "imagesearch_default")
FLEET = [
    n.strip() for n in os.environ.get("IMAGESEARCH_EVENTS_INSTANCES", "catalog-demo").split(",") if n.strip()
]
POLL_SECONDS = float(os.environ.get("IMAGESEARCH_EVENTS_POLL_SECONDS", "60"))

# [START howto_trigger_imagesearch_instance_events]
INSTANCE_READY = Asset(
    name="imagesearch_instance_ready",
    watchers=[
        AssetWatcher(
            name="imagesearch_fleet_ready",
            trigger=ImageSearchInstanceStatusEventTrigger(
                instance_names=FLEET,
                statuses=["NORMAL"],
                imagesearch_conn_id=CONN_ID,
                poll_interval=POLL_SECONDS,
            ),
        )
    ],
)

INSTANCE_INCIDENT = Asset(
    name="imagesearch_instance_incident",
    watchers=[
        AssetWatcher(
            name="imagesearch_fleet_incidents",
            trigger=ImageSearchInstanceStatusEventTrigger(
                instance_names=FLEET,
                statuses=FAILURE_STATUSES,
                imagesearch_conn_id=CONN_ID,
                poll_interval=POLL_SECONDS,
            ),
        )
    ],
)
# [END howto_trigger_imagesearch_instance_events]


def event_payloads(triggering_asset_events: Mapping[Any, Iterable[Any]] | None) -> list[dict[str, Any]]:
    """The watcher payloads of a run's triggering asset events, oldest first, each event once."""
    payloads: dict[str, dict[str, Any]] = {}
    for events in (triggering_asset_events or {}).values():
        for event in events:
            payload = (getattr(event, "extra", None) or {}).get("payload")
            if isinstance(payload, dict) and isinstance(payload.get("event_id"), str):
                payloads.setdefault(payload["event_id"], payload)
    return list(payloads.values())


def record_incidents(
    payloads: Iterable[Mapping[str, Any]], *, db_conn_id: str, table: str, run_id: str
) -> dict[str, int]:
    """Write one row per event into ``table`` (created if missing), in one transaction.

    Keyed by ``event_id``: an event already recorded (a rerun, the same event reported twice, or
    another run recording it at the same moment) is left as it is. Returns ``{"events": ..., "recorded": ..., "already_recorded": ...}``.
    """
    import sqlalchemy as sa

    from airflow_provider_imagesearch.archive import create_table_if_missing, sql_engine, validate_table_name

    schema, _, name = validate_table_name(table).rpartition(".")
    target = sa.Table(
        name,
        sa.MetaData(),
        sa.Column("event_id", sa.String(200), primary_key=True),
        sa.Column("instance_name", sa.String(16), nullable=False),
        sa.Column("project_id", sa.String(64)),
        sa.Column("old_status", sa.String(32)),
        sa.Column("new_status", sa.String(32), nullable=False),
        sa.Column("meaning", sa.String(200)),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dag_run_id", sa.String(250), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        schema=schema or None,
    )
    now = datetime.now().astimezone()
    rows: dict[str, dict[str, Any]] = {
        p["event_id"]: {
            "event_id": p["event_id"],
            "instance_name": p["instance_name"],
            "project_id": p.get("project_id"),
            "old_status": p.get("old_status"),
            "new_status": p["new_status"],
            "meaning": p.get("meaning"),
            "observed_at": datetime.fromisoformat(str(p["observed_at"]).replace("Z", "+00:00")),
            "dag_run_id": run_id,
            "recorded_at": now,
        }
        for p in payloads
    }
    if not rows:
        return {"events": 0, "recorded": 0, "already_recorded": 0}
    engine = sql_engine(db_conn_id)
    with engine.begin() as connection:
        create_table_if_missing(connection, table, target)
        recorded = _insert_new(connection, target, list(rows.values()))
    return {"events": len(rows), "recorded": recorded, "already_recorded": len(rows) - recorded}


#: Values one INSERT binds at most: SQLite before 3.32 allows 999 (32,766 since), PostgreSQL 65,535.
MAX_BOUND_PARAMETERS = 999


def _insert_new(connection: Any, target: Any, rows: list[dict[str, Any]]) -> int:
    """Insert the rows whose ``event_id`` is not in ``target`` yet; how many were inserted.

    Multi-row statements that skip a conflict where the database has one (SQLite, PostgreSQL: ``ON
    CONFLICT DO NOTHING``), so two runs recording the same event at once never fail: the second waits
    for the first's row and leaves it as it is. Each statement binds at most
    :data:`MAX_BOUND_PARAMETERS` values (SQLite refuses a statement with more: a run with thousands of
    events would fail). Elsewhere, each row in a savepoint, a duplicate key skipped.
    """
    import sqlalchemy as sa

    dialect = connection.dialect.name
    if dialect in ("sqlite", "postgresql"):
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert  # type: ignore[assignment]
        per_statement = max(1, MAX_BOUND_PARAMETERS // len(target.columns))
        recorded = 0
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            statement = insert(target).values(chunk).on_conflict_do_nothing(index_elements=["event_id"])
            recorded += len(connection.execute(statement.returning(target.c.event_id)).all())
        return recorded
    recorded = 0
    for row in rows:
        try:
            with connection.begin_nested():
                connection.execute(sa.insert(target), [row])
            recorded += 1
        except sa.exc.IntegrityError:
            pass  # recorded already, by an earlier run or one running now
    return recorded


DB_CONN_PARAM = Param(
    "imagesearch_archive_db",
    type="string",
    description="SQL connection (SQLite, PostgreSQL) of the import ledger and of the incident table.",
)


def instances_to_import(
    payloads: Iterable[Mapping[str, Any]], instance_names: Iterable[str], *, conn_id: str
) -> list[str]:
    """The instance of each event, once each; without events (a run started by hand), those of
    ``instance_names`` that are ``NORMAL`` now."""
    named = list(dict.fromkeys(str(p["instance_name"]) for p in payloads))
    return named if named else instances_ready_now(instance_names, conn_id=conn_id)


def instances_ready_now(instance_names: Iterable[str], *, conn_id: str) -> list[str]:
    """Those of ``instance_names`` that are ``NORMAL`` now, read once each (a manual run's instances)."""
    from airflow_provider_imagesearch.errors import ImageSearchNotFoundError
    from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchHook
    from airflow_provider_imagesearch.models import InstanceStatus

    hook = ImageSearchHook(conn_id)
    ready: list[str] = []
    for name in dict.fromkeys(instance_names):
        try:
            status = hook.get_instance(name).status
        except ImageSearchNotFoundError:
            log.warning("Instance %s does not exist: not imported", name)
            continue
        if status == InstanceStatus.NORMAL:
            ready.append(name)
        else:
            log.warning("Instance %s is %s, not NORMAL: not imported", name, status.value)
    return ready


# [START howto_dag_imagesearch_import_on_ready]
@dag(
    dag_id="imagesearch_import_on_ready",
    schedule=[INSTANCE_READY],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["imagesearch", "example", "event-driven"],
    params={
        "db_conn_id": DB_CONN_PARAM,
        "instance_names": Param(
            FLEET,
            type="array",
            items={"type": "string", "pattern": "^[a-z][a-z0-9_-]{0,15}$"},
            uniqueItems=True,
            description=(
                "Manual runs only (a run without triggering events): import into those of these "
                "instances that are NORMAL now. Runs the watcher starts import into the instances "
                "their events name."
            ),
        ),
    },
    default_args={"retries": 2, "retry_delay": timedelta(seconds=10)},
    doc_md=__doc__,
)
def imagesearch_import_on_ready() -> None:
    @task
    def instances_that_became_ready() -> list[str]:
        """The instance of each triggering event, once each (the event says which became ready); in a
        run without events (started by hand), those of the ``instance_names`` param NORMAL now."""
        context = get_current_context()
        return instances_to_import(
            event_payloads(context["triggering_asset_events"]),
            context["params"]["instance_names"],
            conn_id=CONN_ID,
        )

    ImageSearchImportImagesOperator.partial(
        task_id="import_catalog",
        imagesearch_conn_id=CONN_ID,
        manifest=str(DATA / "sample_catalog.csv"),
        ledger_conn_id="{{ params.db_conn_id }}",
        max_concurrency=8,
        # The sample's invalid rows are known and recorded as invalid: they must not fail the run.
        max_failed=SAMPLE_INVALID_ROWS,
    ).expand(instance_name=instances_that_became_ready())


# [END howto_dag_imagesearch_import_on_ready]


# [START howto_dag_imagesearch_record_incident]
@dag(
    dag_id="imagesearch_record_incident",
    schedule=[INSTANCE_INCIDENT],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    # Incidents are recorded in the order they came; two runs recording one event at once (a run
    # cleared by hand) are safe too: the second leaves the first one's row as it is.
    max_active_runs=1,
    tags=["imagesearch", "example", "event-driven"],
    params={
        "db_conn_id": DB_CONN_PARAM,
        "incident_table": Param(INCIDENT_TABLE, type="string", pattern=TABLE_NAME_PATTERN),
    },
    default_args={"retries": 2, "retry_delay": timedelta(seconds=10)},
    doc_md=__doc__,
)
def imagesearch_record_incident() -> None:
    @task
    def record() -> dict[str, int]:
        """One row per triggering event in the incident table; an event already there is kept as is."""
        context = get_current_context()
        params = context["params"]
        return record_incidents(
            event_payloads(context["triggering_asset_events"]),
            db_conn_id=params["db_conn_id"],
            table=params["incident_table"],
            run_id=context["run_id"],
        )

    record()


# [END howto_dag_imagesearch_record_incident]

imagesearch_import_on_ready()
imagesearch_record_incident()
