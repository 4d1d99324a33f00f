"""OpenLineage of the v2 operators: after a real run against the emulator, the service is a dataset in
the namespace ``mms://{region}/{project_id}`` (not v1's ``imagesearch://``: a v1 instance and a v2
service of the same name are different datasets), the project being the operator's own ``project_id``
when it has one, else the connection's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

pytest.importorskip(
    "airflow.providers.openlineage", reason="apache-airflow-providers-openlineage not installed"
)

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, DEFAULT_REGION, Emulator
from airflow_provider_imagesearch.emulator.constants import DEFAULT_SUB_PROJECT_ID
from airflow_provider_imagesearch.operators.imagesearch_v2 import ImageSearchV2CheckDataOperator

SERVICE = "v2-lineage"
#: A second project of the region (AK/SK fits every project).
OTHER_PROJECT = DEFAULT_SUB_PROJECT_ID


def _inputs(operator: Any) -> list[tuple[str, str]]:
    lineage = operator.get_openlineage_facets_on_complete(None)
    assert list(lineage.outputs) == []
    return [(d.namespace, d.name) for d in lineage.inputs]


@pytest.mark.parametrize(
    ("project_id", "namespace_project"),
    [(None, DEFAULT_PROJECT_ID), (OTHER_PROJECT, OTHER_PROJECT)],
    ids=["the-connections-project", "the-operators-project"],
)
def test_a_v2_check_reports_its_service_in_the_mms_namespace_of_its_project(
    emulator: Emulator,
    imagesearch_conn: Callable[..., str],
    project_id: str | None,
    namespace_project: str,
) -> None:
    emulator.upsert_v2_service(SERVICE, project_id=namespace_project, items={})
    operator = ImageSearchV2CheckDataOperator(
        task_id="check",
        service_name=SERVICE,
        item_id="absent",
        imagesearch_conn_id=imagesearch_conn("aksk"),
        **({"project_id": project_id} if project_id else {}),
    )
    operator.execute({})
    assert _inputs(operator) == [(f"mms://{DEFAULT_REGION}/{namespace_project}", SERVICE)]
