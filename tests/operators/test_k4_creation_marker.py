"""The creation marker a create-instance task appends to the description (docs/operators-reliability.rst):
a digest of the DAG id, the run id, the task id and the map index. Another DAG, run, task or map index
computes another (two DAGs scheduled at the same logical date share a run id, and often a task id); every
try of one task instance computes the same; and it is the same from one release to the next, so a retry
after an upgrade still recognises the instance its earlier try created."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_imagesearch.operators.imagesearch import creation_marker

TI = {
    "dag_id": "catalog_refresh",
    "run_id": "scheduled__2026-12-01T00:00:00+00:00",
    "task_id": "create_instance",
    "map_index": -1,
}


def _marker(**fields: Any) -> str | None:
    return creation_marker({"ti": SimpleNamespace(**{**TI, "try_number": 1, **fields})})  # type: ignore[typeddict-item]


def test_a_task_instances_marker_is_fixed_across_releases() -> None:
    assert _marker() == "[airflow:de97fff68bb0]"


def test_every_try_of_a_task_instance_has_its_marker() -> None:
    assert _marker(try_number=3) == _marker()


@pytest.mark.parametrize(
    "other",
    [
        {"dag_id": "catalog_refresh_eu"},
        {"run_id": "scheduled__2026-12-02T00:00:00+00:00"},
        {"task_id": "create_instance_eu"},
        {"map_index": 0},
    ],
    ids=["another-dag", "another-run", "another-task", "a-mapped-copy"],
)
def test_another_dag_run_task_or_map_index_has_another_marker(other: dict[str, Any]) -> None:
    assert _marker(**other) != _marker()


def test_no_task_instance_no_marker() -> None:
    assert creation_marker({}) is None
