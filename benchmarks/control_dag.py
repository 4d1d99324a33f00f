"""Control for the DAG-parse figure: the example DAG's exact shape with no provider code.

``dags/imagesearch_instance_archive.py`` with the provider's operator and sensor replaced by trivial
stand-ins defined here on ``airflow.sdk`` base classes: same two DAGs, params, asset (the example's URI), mapped
tasks and TaskFlow tasks. Its parse time is what Airflow itself charges for a DAG file like the example;
the example's time minus this one is the provider's share. Not in any DAG folder: parsed only by the
benchmark.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

from airflow.sdk import Asset, BaseOperator, BaseSensorOperator, Param, dag, get_current_context, task


class StandInDetailOperator(BaseOperator):
    template_fields: Sequence[str] = ("instance_name", "imagesearch_conn_id")

    def __init__(self, *, instance_name: str, imagesearch_conn_id: str = "x", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.instance_name = instance_name
        self.imagesearch_conn_id = imagesearch_conn_id

    def execute(self, context: Any) -> dict[str, Any]:
        return {}


class StandInStatusSensor(BaseSensorOperator):
    template_fields: Sequence[str] = ("instance_name", "imagesearch_conn_id")

    def __init__(
        self,
        *,
        instance_name: str,
        imagesearch_conn_id: str = "x",
        deferrable: bool = False,
        not_found_grace: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.instance_name = instance_name
        self.imagesearch_conn_id = imagesearch_conn_id
        self.deferrable = deferrable
        self.not_found_grace = not_found_grace

    def poke(self, context: Any) -> bool:
        return True


EXAMPLE_DAG = Path(__file__).resolve().parent.parent / "dags" / "imagesearch_instance_archive.py"


def _example_asset_uri() -> str:
    """The example DAG's asset URI: its scheme decides whether Airflow loads every provider's URI
    normalisers while parsing (``x-`` schemes skip that), so the control must use the same one."""
    found = re.search(r'uri="([^"]+)"', EXAMPLE_DAG.read_text(encoding="utf-8"))
    return (
        found.group(1)
        if found
        else "imagesearch-archive://imagesearch_archive_db/imagesearch_instance_archive"
    )


ARCHIVE_TABLE = "imagesearch_instance_archive"
ARCHIVE_ASSET = Asset(name="imagesearch_instance_archive", uri=_example_asset_uri())


@dag(
    dag_id="control_instance_archive",
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
            description="Instances to archive.",
        ),
        "imagesearch_conn_id": Param("imagesearch_default", type="string"),
        "db_conn_id": Param("imagesearch_archive_db", type="string", description="Any SQL connection."),
        "table": Param(
            ARCHIVE_TABLE,
            type="string",
            pattern="^[A-Za-z_][A-Za-z0-9_]{0,62}(\\.[A-Za-z_][A-Za-z0-9_]{0,62})?$",
        ),
    },
    default_args={"retries": 2, "retry_delay": timedelta(seconds=10)},
    doc_md=__doc__,
)
def control_instance_archive() -> None:
    @task
    def instance_names() -> list[str]:
        return list(get_current_context()["params"]["instance_names"])

    names = instance_names()

    ready = StandInStatusSensor.partial(
        task_id="wait_until_normal",
        imagesearch_conn_id="{{ params.imagesearch_conn_id }}",
        deferrable=True,
        poke_interval=5,
        timeout=60 * 60,
        not_found_grace=300,
    ).expand(instance_name=names)

    details = StandInDetailOperator.partial(
        task_id="read_details",
        imagesearch_conn_id="{{ params.imagesearch_conn_id }}",
    ).expand(instance_name=names)

    @task(outlets=[ARCHIVE_ASSET])
    def archive(all_details: list[dict[str, Any]]) -> dict[str, Any]:
        return {"rows": len(all_details), "run_id": get_current_context()["run_id"]}

    ready >> details
    archive(cast("list[dict[str, Any]]", details.output))


@dag(
    dag_id="control_archive_report",
    schedule=[ARCHIVE_ASSET],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["imagesearch", "example"],
    params={
        "db_conn_id": Param("imagesearch_archive_db", type="string"),
        "table": Param(ARCHIVE_TABLE, type="string"),
    },
)
def control_archive_report() -> None:
    @task
    def latest_snapshot() -> list[dict[str, Any]]:
        return [dict(get_current_context()["params"])]

    latest_snapshot()


control_instance_archive()
control_archive_report()
