"""The example lifecycle DAG end to end in real Airflow, against the emulator, waiting both ways."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from tests.support.dagrun import states, xcom

pytestmark = pytest.mark.usefixtures("airflow_db")

REPO = Path(__file__).resolve().parents[2]
DAG_FILE = REPO / "dags" / "imagesearch_instance_lifecycle.py"
DAG_ID = "imagesearch_instance_lifecycle"
OBS = "https://shop-images.obs.cn-north-4.myhuaweicloud.com"
TASKS = (
    "create_instance",
    "images_to_add",
    "check_image",
    "search_images",
    "update_image_tags",
    "delete_image",
    "delete_instance",
)


def load_dag(*, deferrable: bool) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAG_FILE))
    assert not bag.import_errors, bag.import_errors
    dag = bag.dags[DAG_ID]
    # The emulator creates in 2 s and deletes in 1 s: poll faster than the DAG's real-world interval.
    for task_id in ("create_instance", "delete_instance"):
        waiting = dag.get_task(task_id)
        assert waiting.deferrable is True  # what the DAG ships with
        waiting.deferrable = deferrable
        waiting.poke_interval = 0.5
    return dag


def instance_in(emulator: Emulator, name: str) -> dict[str, Any] | None:
    instances = emulator.control.state()["instances"]
    return next((i for i in instances if i["name"] == name and i["project_id"] == DEFAULT_PROJECT_ID), None)


def images_in(emulator: Emulator, name: str) -> dict[str, Any]:
    images: dict[str, Any] = emulator.control.state().get("images", {})
    return images.get(f"{DEFAULT_PROJECT_ID}/{name}", {})


@pytest.mark.parametrize("deferrable", [False, True], ids=["in-worker", "deferred"])
def test_lifecycle_end_to_end(
    deferrable: bool,
    imagesearch_conn: Callable[..., str],
    emulator: Emulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    name = f"lifecycle-{'d' if deferrable else 'w'}"
    assert instance_in(emulator, name) is None
    dag = load_dag(deferrable=deferrable)
    images = [
        {"path": f"{OBS}/red-shirt.jpg", "tags": {"color": "red", "season": "summer"}},
        {"path": f"{OBS}/red-dress.jpg", "tags": {"color": "red", "season": "winter"}},
        {"path": f"{OBS}/blue-shirt.jpg", "tags": {"color": "blue"}},
    ]
    conf = {
        "instance_name": name,
        "imagesearch_conn_id": imagesearch_conn("aksk", conn_id="lifecycle_conn"),
        "images": images,
        "query_path": f"{OBS}/red-shirt.jpg",
        "retag": {"path": f"{OBS}/red-dress.jpg", "tags": {"color": "crimson"}},
        "delete_path": f"{OBS}/blue-shirt.jpg",
    }

    with caplog.at_level("INFO", logger="airflow.sdk.definitions.dag"):
        dr = dag.test(run_conf=conf)

    assert str(dr.state) == "success", states(dr)
    # Both waits (creation and deletion) went through the trigger exactly when deferrable.
    assert caplog.text.count("[DAG TEST] running trigger in line") == (2 if deferrable else 0)
    got = states(dr)
    for task_id in TASKS:
        assert got[(task_id, -1)] == ("success", 1), (task_id, got)
    assert [got[("add_images", i)] for i in range(3)] == [("success", 1)] * 3

    created = xcom(dr, "create_instance")
    assert created["instance_name"] == name
    assert created["project_id"] == DEFAULT_PROJECT_ID
    assert created["status"] == "NORMAL"
    assert created["domain"] == "General image search"  # the emulator's display name of common-search
    assert sorted(created["tags"]) == ["color", "season"]

    added = [xcom(dr, "add_images", i) for i in range(3)]
    assert [a["path"] for a in added] == [i["path"] for i in images]
    assert all(a["instance_name"] == name for a in added)

    assert xcom(dr, "check_image") is True

    hits = xcom(dr, "search_images")
    assert len(hits) == 3
    # The query image itself ranks first (the same image: similarity 1.0), then the rest, descending.
    assert hits[0]["path"] == f"{OBS}/red-shirt.jpg"
    assert hits[0]["similarity"] == pytest.approx(1.0)
    assert hits[0]["tags"] == {"color": "red", "season": "summer"}
    similarities = [h["similarity"] for h in hits]
    assert similarities == sorted(similarities, reverse=True)
    assert {h["path"] for h in hits} == {i["path"] for i in images}

    retagged = xcom(dr, "update_image_tags")
    assert retagged["path"] == f"{OBS}/red-dress.jpg"
    assert retagged["tags"] == {"color": "crimson"}

    assert xcom(dr, "delete_image") is True
    assert xcom(dr, "delete_instance") is None

    # The instance is gone from the service, not only reported gone.
    assert instance_in(emulator, name) is None
    assert images_in(emulator, name) == {}
    calls = [r for r in emulator.requests_log() if r.get("instance") == name]
    methods = [(r["method"], r["route"]) for r in calls]
    # Exactly one create and one delete reached the service.
    assert sum(1 for m, route in methods if m == "POST" and route.endswith("service")) == 1, methods
    assert sum(1 for m, route in methods if m == "DELETE" and "service" in route) == 1, methods
    # The deletion was waited for: the last read of the instance found it missing (the service answers
    # a missing instance with 400 IS.0007), after reads that still found it.
    reads = [r for r in calls if r["method"] == "GET"]
    assert reads[-1]["status"] == 400, [(r["route"], r["status"]) for r in calls[-6:]]
    assert reads[-2]["status"] == 200


def test_retag_and_delete_reach_the_library(imagesearch_conn: Callable[..., str], emulator: Emulator) -> None:
    """Stop before the instance is deleted and look at the library the earlier tasks left."""
    name = "lifecycle-lib"
    dag = load_dag(deferrable=False)
    conf = {"instance_name": name, "imagesearch_conn_id": imagesearch_conn("token", conn_id="lifecycle_conn")}
    try:
        dr = dag.test(run_conf=conf, mark_success_pattern="delete_instance")
        assert str(dr.state) == "success", states(dr)
        library = images_in(emulator, name)
        assert sorted(library) == [f"{OBS}/red-dress.jpg", f"{OBS}/red-shirt.jpg"]
        assert library[f"{OBS}/red-dress.jpg"]["tags"] == {"color": "crimson", "season": "winter"}
        assert library[f"{OBS}/red-shirt.jpg"]["tags"] == {"color": "red", "season": "summer"}
    finally:
        emulator.control.delete_instance(DEFAULT_PROJECT_ID, name)


def test_existing_instance_is_not_adopted(
    imagesearch_conn: Callable[..., str], emulator: Emulator, instance: Callable[..., str]
) -> None:
    """The DAG never fills and deletes an instance it did not create."""
    name = instance("lifecycle-old", tags=["color", "season"])
    try:
        dag = load_dag(deferrable=False)
        conf = {"instance_name": name, "imagesearch_conn_id": imagesearch_conn("token")}
        dr = dag.test(run_conf=conf)
        assert str(dr.state) == "failed"
        got = states(dr)
        assert got[("create_instance", -1)] == ("failed", 1), got
        assert got[("delete_instance", -1)][0] == "upstream_failed", got
        assert instance_in(emulator, name) is not None
    finally:
        emulator.control.delete_instance(DEFAULT_PROJECT_ID, name)


def test_a_create_whose_wait_timed_out_recovers_by_clearing_the_run(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    """The documented recovery (issue 20, item 4): the create's wait times out, the run fails; the user
    clears it, and the cleared ``create_instance`` adopts the instance it created instead of failing on it
    as "already exists" (the run's start date, reset by the clear, plays no part)."""
    from tests.support.rerun import clear_and_rerun
    from tests.support.waiting import wait_until

    name = "lifecycle-clr"
    dag = load_dag(deferrable=False)
    create = dag.get_task("create_instance")
    conf = {
        "instance_name": name,
        "imagesearch_conn_id": imagesearch_conn("token", conn_id="lifecycle_conn"),
        "images": [{"path": f"{OBS}/red-shirt.jpg", "tags": {"color": "red"}}],
        "query_path": f"{OBS}/red-shirt.jpg",
        "retag": {"path": f"{OBS}/red-shirt.jpg", "tags": {"color": "crimson"}},
        "delete_path": f"{OBS}/red-shirt.jpg",
    }
    emulator.control.set_config(creation_seconds=4.0)
    create.wait_timeout = 1  # type: ignore[attr-defined]
    try:
        first = dag.test(run_conf=conf)
        assert states(first)[("create_instance", -1)] == ("failed", 1)
        assert str(first.state) == "failed"
        ready = wait_until(lambda: (instance_in(emulator, name) or {}).get("status"), lambda s: s == "NORMAL")
        assert ready == "NORMAL"
        create.wait_timeout = 60  # type: ignore[attr-defined]
        second = clear_and_rerun(dag, first)
    finally:
        emulator.control.set_config(creation_seconds=2.0)
        if instance_in(emulator, name) is not None:
            emulator.control.delete_instance(DEFAULT_PROJECT_ID, name)
    assert second.run_id == first.run_id
    assert str(second.state) == "success", states(second)
    assert states(second)[("create_instance", -1)] == ("success", 2)
    creates = [
        r
        for r in emulator.requests_log()
        if r.get("instance") == name and r["method"] == "POST" and r["route"].endswith("service")
    ]
    assert len(creates) == 1, "created once, adopted by the cleared task"
