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
from airflow_provider_imagesearch.version_compat import AirflowFailException
from tests.support.connections import connection_fields, set_connection

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


def test_a_connection_without_a_region_reports_the_region_as_unknown(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Endpoints given outright, no ``region`` extra: the namespace says the region is unknown."""
    fields = connection_fields(emulator.url, "token")
    del fields["extra"]["region"]
    emulator.upsert_v2_service(SERVICE, items={})
    operator = ImageSearchV2CheckDataOperator(
        task_id="check",
        service_name=SERVICE,
        item_id="absent",
        imagesearch_conn_id=set_connection(monkeypatch, "no_region", **fields),
    )
    operator.execute({})
    assert _inputs(operator) == [(f"mms://unknown/{DEFAULT_PROJECT_ID}", SERVICE)]


def test_a_task_failed_for_want_of_a_project_reports_the_project_as_unknown(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No ``project_id`` anywhere: the task fails naming it, and its lineage (reported on failure too)
    names the service in an unknown project, not in another one."""
    fields = connection_fields(emulator.url, "token")
    del fields["extra"]["project_id"]
    operator = ImageSearchV2CheckDataOperator(
        task_id="check",
        service_name=SERVICE,
        item_id="absent",
        imagesearch_conn_id=set_connection(monkeypatch, "no_project", **fields),
    )
    with pytest.raises(AirflowFailException, match="No project_id: set the 'project_id' extra"):
        operator.execute({})
    assert _inputs(operator) == [(f"mms://{DEFAULT_REGION}/unknown", SERVICE)]


@pytest.mark.parametrize(
    ("project_id", "link_project"),
    [(None, DEFAULT_PROJECT_ID), (OTHER_PROJECT, OTHER_PROJECT)],
    ids=["the-connections-project", "the-operators-project"],
)
def test_the_console_link_fills_the_connections_console_url_with_the_project_in_effect(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, project_id: str | None, link_project: str
) -> None:
    """A ``console_url`` extra of the connection is the link, ``{project_id}`` the project the task used."""
    from airflow_provider_imagesearch.links import ImageSearchConsoleLink

    fields = connection_fields(
        emulator.url, "aksk", console_url="https://console.example/{region}/{project_id}/{instance_name}"
    )
    emulator.upsert_v2_service(SERVICE, project_id=link_project, items={})
    operator = ImageSearchV2CheckDataOperator(
        task_id="check",
        service_name=SERVICE,
        item_id="absent",
        imagesearch_conn_id=set_connection(monkeypatch, "console_url", **fields),
        **({"project_id": project_id} if project_id else {}),
    )
    operator.execute({})
    link = ImageSearchConsoleLink().get_link(operator, ti_key=None)
    assert link == f"https://console.example/{DEFAULT_REGION}/{link_project}/{SERVICE}"
