"""OpenLineage: each operator reports its instance as a dataset after a real run against the emulator.

The namespace is ``imagesearch://{region}/{project_id}`` of the connection the task ran with (no operator
here overrides either, so a namespace built from anything but the connection shows up as ``unknown``),
the name is the instance. Reads and searches report it as an input, writes as an output.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# The compatibility run (make test-compat, Airflow 3.1.8) installs the provider without OpenLineage.
pytest.importorskip(
    "airflow.providers.openlineage", reason="apache-airflow-providers-openlineage not installed"
)

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, DEFAULT_REGION, Emulator
from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchHook
from airflow_provider_imagesearch.operators.imagesearch import (
    ImageSearchAddImageOperator,
    ImageSearchCheckImageOperator,
    ImageSearchCreateInstanceOperator,
    ImageSearchDeleteImageOperator,
    ImageSearchDeleteInstanceOperator,
    ImageSearchSearchImagesOperator,
    ImageSearchUpdateImageTagsOperator,
    InstanceDetailOperator,
)
from airflow_provider_imagesearch.sensors.imagesearch import (
    ImageSearchInstanceDeletedSensor,
    ImageSearchInstanceStatusSensor,
)

REPO = Path(__file__).resolve().parents[2]
NAMESPACE = f"imagesearch://{DEFAULT_REGION}/{DEFAULT_PROJECT_ID}"
IMAGE = "https://shop-images.obs.cn-north-4.myhuaweicloud.com/red-shirt.jpg"
CONN_ID = "lineage_conn"

#: case -> (operator factory taking the instance name, role of the instance)
CASES: dict[str, tuple[Callable[[str], Any], str]] = {
    "detail": (lambda n: InstanceDetailOperator(task_id="t", instance_name=n), "input"),
    "create": (
        lambda n: ImageSearchCreateInstanceOperator(
            task_id="t", instance_name=n, tags=["color"], deferrable=False, poke_interval=0.2
        ),
        "output",
    ),
    "delete_instance": (
        lambda n: ImageSearchDeleteInstanceOperator(
            task_id="t", instance_name=n, deferrable=False, poke_interval=0.2
        ),
        "output",
    ),
    "add_image": (
        lambda n: ImageSearchAddImageOperator(
            task_id="t", instance_name=n, path=IMAGE.replace("red", "blue"), tags={"color": "blue"}
        ),
        "output",
    ),
    "update_tags": (
        lambda n: ImageSearchUpdateImageTagsOperator(
            task_id="t", instance_name=n, path=IMAGE, tags={"color": "crimson"}
        ),
        "output",
    ),
    "delete_image": (
        lambda n: ImageSearchDeleteImageOperator(task_id="t", instance_name=n, path=IMAGE, missing_ok=False),
        "output",
    ),
    "check_image": (
        lambda n: ImageSearchCheckImageOperator(task_id="t", instance_name=n, path=IMAGE),
        "input",
    ),
    "search": (lambda n: ImageSearchSearchImagesOperator(task_id="t", instance_name=n, path=IMAGE), "input"),
    "status_sensor": (
        lambda n: ImageSearchInstanceStatusSensor(task_id="t", instance_name=n, poke_interval=0.2),
        "input",
    ),
}


def datasets(lineage: Any) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    return (
        [(d.namespace, d.name) for d in lineage.inputs],
        [(d.namespace, d.name) for d in lineage.outputs],
    )


def expected(role: str, name: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    dataset = [(NAMESPACE, name)]
    return (dataset, []) if role == "input" else ([], dataset)


@pytest.fixture
def library(imagesearch_conn: Callable[..., str], emulator: Emulator) -> Callable[[str], str]:
    """``library(name)``: a NORMAL instance with one image (IMAGE), removed after the test."""
    imagesearch_conn("token", conn_id=CONN_ID)
    made: list[str] = []

    def make(name: str) -> str:
        emulator.upsert_instance(name, status="NORMAL", tags=["color"])
        made.append(name)
        with ImageSearchHook(CONN_ID) as hook:
            hook.add_image(name, path=IMAGE, tags={"color": "red"})
        return name

    yield make  # type: ignore[misc]
    for name in made:
        if any(i["name"] == name for i in emulator.control.state()["instances"]):
            emulator.control.delete_instance(DEFAULT_PROJECT_ID, name)


@pytest.mark.parametrize("case", list(CASES))
def test_facets_after_a_real_run(case: str, library: Callable[[str], str], emulator: Emulator) -> None:
    factory, role = CASES[case]
    name = f"ol-{case.replace('_', '-')}"[:16]
    if case != "create":
        library(name)
    operator = factory(name)
    operator.imagesearch_conn_id = CONN_ID

    operator.execute({})

    assert datasets(operator.get_openlineage_facets_on_complete(None)) == expected(role, name)
    # The run really happened against the service.
    present = any(i["name"] == name for i in emulator.control.state()["instances"])
    assert present is (case != "delete_instance")
    if case == "create":
        emulator.control.delete_instance(DEFAULT_PROJECT_ID, name)


def test_every_operator_class_is_covered() -> None:
    from airflow_provider_imagesearch.operators import imagesearch

    classes = {
        obj
        for obj in vars(imagesearch).values()
        if isinstance(obj, type)
        and obj.__module__ == imagesearch.__name__
        and hasattr(obj, "run")
        and not obj.__name__.startswith("_")  # private intermediate bases are never instantiated
    }
    covered = {type(factory("x")) for factory, _ in CASES.values()}
    assert classes <= covered, classes - covered


@pytest.mark.parametrize("case", ["create", "delete_instance", "status_sensor", "deleted_sensor"])
def test_facets_after_a_deferred_wait_resumed_in_a_fresh_task(
    case: str, library: Callable[[str], str], emulator: Emulator
) -> None:
    """After a deferral the task resumes in a new process: the lineage must not depend on the first half."""
    from airflow.sdk.exceptions import TaskDeferred

    name = f"olx-{case.replace('_', '-')}"[:16]

    def build() -> Any:
        kwargs: dict[str, Any] = {
            "task_id": "t",
            "instance_name": name,
            "imagesearch_conn_id": CONN_ID,
            "deferrable": True,
            "poke_interval": 0.2,
        }
        if case == "create":
            return ImageSearchCreateInstanceOperator(tags=["color"], **kwargs), "output"
        if case == "delete_instance":
            return ImageSearchDeleteInstanceOperator(**kwargs), "output"
        if case == "status_sensor":
            return ImageSearchInstanceStatusSensor(**kwargs), "input"
        return ImageSearchInstanceDeletedSensor(**kwargs), "input"

    if case != "create":
        library(name)
    if case == "status_sensor":
        emulator.upsert_instance(
            name, status="CREATION", tags=["color"], transition_after_s=1.0, next_status="NORMAL"
        )
    if case == "deleted_sensor":
        with ImageSearchHook(CONN_ID) as hook:
            hook.delete_instance(name)

    first, role = build()
    with pytest.raises(TaskDeferred) as deferred:
        first.execute({})
    event = asyncio.run(_first_event(deferred.value.trigger))

    resumed, _ = build()
    resumed.execute_complete({}, event=event.payload)

    assert datasets(resumed.get_openlineage_facets_on_complete(None)) == expected(role, name)
    if case == "create":
        emulator.control.delete_instance(DEFAULT_PROJECT_ID, name)


async def _first_event(trigger: Any) -> Any:
    events = trigger.run()
    try:
        return await anext(events)
    finally:
        await events.aclose()


def test_openlineage_provider_reads_the_facets(library: Callable[[str], str]) -> None:
    """The OpenLineage provider's own extractor takes what the operator reports."""
    from airflow.providers.openlineage.extractors.manager import ExtractorManager

    name = library("ol-extractor")
    operator = ImageSearchAddImageOperator(
        task_id="t", instance_name=name, path=IMAGE, imagesearch_conn_id=CONN_ID
    )
    operator.execute({})
    extractor = ExtractorManager()._get_extractor(operator)
    assert extractor is not None
    lineage = extractor.extract_on_complete(None)
    assert lineage is not None
    assert datasets(lineage) == expected("output", name)


def test_parsing_imports_no_openlineage() -> None:
    """Operators, sensors and the example DAGs cost nothing for OpenLineage at parse time."""
    code = (
        "import sys, runpy, importlib, airflow.sdk; before = set(sys.modules);"
        "[importlib.import_module(m) for m in ('airflow_provider_imagesearch.operators.imagesearch',"
        " 'airflow_provider_imagesearch.sensors.imagesearch')];"
        "[runpy.run_path(p) for p in sys.argv[1:]];"
        "print('ADDED=' + ','.join(sorted(m for m in set(sys.modules) - before if 'openlineage' in m)));"
        "print('CLIENT=' + str('openlineage' in sys.modules))"
    )
    dag_files = [
        str(REPO / "dags" / f)
        for f in ("imagesearch_instance_lifecycle.py", "imagesearch_instance_archive.py")
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", code, *dag_files],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    # Airflow itself reads every provider's get_provider_info when `airflow.sdk` loads; nothing beyond.
    assert lines["ADDED"] == ""
    assert lines["CLIENT"] == "False"
