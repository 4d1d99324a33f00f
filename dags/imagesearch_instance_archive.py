"""Archive ImageSearch instance details to a SQL reporting table, and a reporting DAG fed by it.

``imagesearch_instance_archive``: the instance names (a DAG param) are cut into batches of
``batch_size``; for each batch one deferrable sensor waits until all its instances are NORMAL (one
trigger per batch) and one operator reads their details in bulk; then one task archives all of them:
one row per instance per DAG run, in one transaction, replacing the rows of an earlier attempt of the
same run. The table is an Airflow Asset, so ``imagesearch_archive_report`` runs after each archive.

An instance in a failure status (``ABNORMAL``, ``ARREARAGE``, ...) is archived too: that is what a
fleet report is for. Its batch's wait ends at once and is *skipped* (``soft_fail``), and the batch's
details are read and archived all the same, so the skipped wait marks "not every instance was NORMAL"
in the grid while the table records which one and since when. A wait that times out (an instance
still being created after an hour) is skipped the same way and archives the status it is stuck in.

Why mapped batches rather than one task per instance or one task for all: 500 instances are 20 task
instances per step (not 500), each labelled with its first instance and how many more; a batch that
fails is retried alone; batches spread over workers; and each batch's log and XCom still list every
instance's status.

Parsing this file imports no pandas and no HTTP client: those load inside the tasks.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from airflow.sdk import Asset, Param, dag, get_current_context, task

# The archive module imports neither pandas nor a DB driver at module level: cheap to parse.
from airflow_provider_imagesearch.archive import TABLE_NAME_PATTERN
from airflow_provider_imagesearch.operators.imagesearch import InstanceDetailOperator
from airflow_provider_imagesearch.sensors.imagesearch import ImageSearchInstanceStatusSensor

ARCHIVE_TABLE = "imagesearch_instance_archive"
ARCHIVE_ASSET = Asset(
    name="imagesearch_instance_archive",
    uri="x-imagesearch-archive://imagesearch_archive_db/imagesearch_instance_archive",
)


@dag(
    dag_id="imagesearch_instance_archive",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["imagesearch", "example"],
    params={
        "instance_names": Param(
            ["shop-main", "shop-new", "archive-forever"],
            type="array",
            items={"type": "string", "pattern": "^[a-z][a-z0-9_-]{0,15}$"},
            minItems=1,
            # One row per instance per run: a repeated name would break the archive's primary key.
            uniqueItems=True,
            description=(
                "Instances to archive, each once (1-16 chars of a-z, 0-9, '-', '_', starting with a letter)."
            ),
        ),
        "batch_size": Param(
            25,
            type="integer",
            minimum=1,
            maximum=1000,
            description="Instances per mapped wait/read task (one trigger and one bulk read per batch).",
        ),
        "imagesearch_conn_id": Param("imagesearch_default", type="string"),
        "db_conn_id": Param(
            "imagesearch_archive_db", type="string", description="Any SQL connection (SQLite, PostgreSQL)."
        ),
        # The archive's own rule, so the form refuses exactly the names the archive would.
        "table": Param(ARCHIVE_TABLE, type="string", pattern=TABLE_NAME_PATTERN),
    },
    default_args={"retries": 2, "retry_delay": timedelta(seconds=10)},
    doc_md=__doc__,
)
def imagesearch_instance_archive() -> None:
    @task
    def instance_batches() -> list[list[str]]:
        params = get_current_context()["params"]
        names, size = list(params["instance_names"]), int(params["batch_size"])
        return [names[start : start + size] for start in range(0, len(names), size)]

    batches = instance_batches()

    # [START howto_archive_every_status]
    # [START howto_sensor_imagesearch_fleet_status]
    ready = ImageSearchInstanceStatusSensor.partial(
        task_id="wait_until_normal",
        imagesearch_conn_id="{{ params.imagesearch_conn_id }}",
        deferrable=True,
        poke_interval=5,
        timeout=60 * 60,
        not_found_grace=300,
        # A failure status (or a wait that times out) skips the wait instead of failing the run: the
        # archive below still records the statuses, failures included.
        soft_fail=True,
    ).expand(instance_names=batches)
    # [END howto_sensor_imagesearch_fleet_status]

    # [START howto_operator_imagesearch_instance_detail]
    details = InstanceDetailOperator.partial(
        task_id="read_details",
        imagesearch_conn_id="{{ params.imagesearch_conn_id }}",
        # Runs after a skipped wait too; an error that is not a status (a refused token) still fails it.
        trigger_rule="none_failed",
    ).expand(instance_names=batches)
    # [END howto_operator_imagesearch_instance_detail]
    # [END howto_archive_every_status]

    @task(outlets=[ARCHIVE_ASSET])
    def archive(batch_details: list[list[dict[str, Any]]]) -> dict[str, Any]:
        from airflow_provider_imagesearch.archive import archive_details

        context = get_current_context()
        params = context["params"]
        result = archive_details(
            [detail for batch in batch_details for detail in batch],
            db_conn_id=params["db_conn_id"],
            table=params["table"],
            run_id=context["run_id"],
            logical_date=context.get("logical_date"),
        )
        return result.to_dict()

    ready >> details
    # TaskFlow resolves the XComArg to the list of mapped results at run time.
    archive(cast("list[list[dict[str, Any]]]", details.output))


@dag(
    dag_id="imagesearch_archive_report",
    schedule=[ARCHIVE_ASSET],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["imagesearch", "example"],
    params={
        "db_conn_id": Param("imagesearch_archive_db", type="string"),
        "table": Param(ARCHIVE_TABLE, type="string", pattern=TABLE_NAME_PATTERN),
    },
)
def imagesearch_archive_report() -> None:
    @task
    def latest_snapshot() -> list[dict[str, Any]]:
        """Each instance's most recent archived row (what a reporting job would read)."""
        from airflow_provider_imagesearch.archive import latest_snapshot as read_latest

        params = get_current_context()["params"]
        return read_latest(db_conn_id=params["db_conn_id"], table=params["table"])

    latest_snapshot()


imagesearch_instance_archive()
imagesearch_archive_report()
