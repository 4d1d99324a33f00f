"""A retry that meets its own earlier effect succeeds (issue 20, items 2, 3, 4, 6 and the suspicions).

Each test drives what Airflow does every day against the emulator, in real Airflow (``dag.test()``): an
answer lost and the call retried by the hook, by a task try, or the task cleared and run again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from airflow.sdk import DAG

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from airflow_provider_imagesearch.operators.imagesearch import (
    ImageSearchAddImageOperator,
    ImageSearchCreateInstanceOperator,
    ImageSearchDeleteInstanceOperator,
)
from airflow_provider_imagesearch.operators.imagesearch_v2 import (
    ImageSearchV2AddDataOperator,
    ImageSearchV2DeleteDataOperator,
)
from tests.support.dagrun import run_dag, states, xcom
from tests.support.rerun import clear_and_rerun
from tests.support.waiting import wait_until

pytestmark = pytest.mark.usefixtures("airflow_db")

#: The hook's attempts per call in these tests (the connection's ``max_attempts``).
ATTEMPTS = 5


def _dag(dag_id: str, operator: type, **kwargs: Any) -> DAG:
    kwargs.setdefault("retries", 2)
    kwargs.setdefault("retry_delay", timedelta(seconds=0))
    with DAG(dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
        operator(task_id="op", **kwargs)
    return dag


def _requests(emulator: Emulator, method: str, suffix: str) -> list[dict[str, Any]]:
    return [r for r in emulator.requests_log() if r["method"] == method and r["path"].endswith(suffix)]


def _items(emulator: Emulator, service: str) -> dict[str, Any]:
    services = emulator.control.state()["v2_services"]
    (found,) = [s for s in services if s["name"] == service and s["project_id"] == DEFAULT_PROJECT_ID]
    items: dict[str, Any] = found["items"]
    return items


def _instances(emulator: Emulator, name: str) -> list[dict[str, Any]]:
    return [i for i in emulator.control.state()["instances"] if i["name"] == name]


@pytest.fixture
def instant_delete(emulator: Emulator) -> Iterator[None]:
    """Instances disappear at once when deleted (no DELETING phase), so a retry meets 'no such instance'."""
    emulator.control.set_config(deletion_seconds=0)
    try:
        yield
    finally:
        emulator.control.set_config(deletion_seconds=1.0)


# --- item 2: a v2 add whose answer was lost ------------------------------------------------------------

V2_ITEM = {
    "item_id": "shoe-1",
    "image_url": "https://cdn.example/shoe-1.jpg",
    "desc": "red running shoe",
    "custom_tags": {"color": "red"},
    "custom_num_tags": {"price": 59.0},
    "keywords": ["shoe", "running"],
}


def _assert_item_as_asked(emulator: Emulator, service: str) -> None:
    item = _items(emulator, service)["shoe-1"]
    assert item["desc"] == V2_ITEM["desc"]
    assert item["custom_tags"] == V2_ITEM["custom_tags"]
    assert item["custom_num_tags"] == V2_ITEM["custom_num_tags"]
    assert item["keywords"] == V2_ITEM["keywords"]


@pytest.mark.parametrize(
    ("sequence", "tries"),
    [
        # The add took effect, its answer was lost; the read-back in the same try finds it.
        (["drop_after"], 1),
        # ... and the read-back fails too (503 on every attempt): the task try fails, the next try's add
        # is refused as "item exists", and its read-back finds the item as asked.
        (["drop_after", *["503_json"] * ATTEMPTS], 2),
    ],
    ids=["read-back-in-the-try", "next-task-try"],
)
def test_a_v2_add_whose_answer_was_lost_succeeds(
    sequence: list[str], tries: int, imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    service = f"adds-{tries}"
    emulator.upsert_v2_service(service, items={})
    emulator.set_faults(sequence=sequence)
    dr = run_dag(
        _dag(
            f"v2_add_lost_{tries}",
            ImageSearchV2AddDataOperator,
            service_name=service,
            imagesearch_conn_id=imagesearch_conn("token", max_attempts=ATTEMPTS),
            **V2_ITEM,
        )
    )
    assert states(dr) == {("op", -1): ("success", tries)}
    _assert_item_as_asked(emulator, service)
    assert xcom(dr, "op")["item_id"] == "shoe-1"


def test_a_v2_add_refused_because_a_different_item_is_there_still_fails(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    """The read-back succeeds only on what was asked: another item under the id fails, naming the field."""
    from airflow_provider_imagesearch.version_compat import AirflowFailException

    emulator.upsert_v2_service(
        "adds-other", items={"shoe-1": {"digest": "x", "desc": "blue boot", "custom_tags": {"color": "blue"}}}
    )
    # A lost answer first, so that the refusal may be this task's own effect and is read back.
    emulator.set_faults(sequence=["503_json", *["ok"] * 10])
    op = ImageSearchV2AddDataOperator(
        task_id="x", service_name="adds-other", imagesearch_conn_id=imagesearch_conn("token"), **V2_ITEM
    )
    with pytest.raises(AirflowFailException, match="desc") as raised:
        op.execute({})  # type: ignore[arg-type]
    assert "blue boot" in str(raised.value)
    assert _items(emulator, "adds-other")["shoe-1"]["desc"] == "blue boot"  # not overwritten


# --- item 3: a delete whose answer was lost, then 503s --------------------------------------------------


@pytest.mark.usefixtures("instant_delete")
@pytest.mark.parametrize(
    ("extra_503", "tries"),
    [(0, 1), (ATTEMPTS, 2)],
    ids=["read-back-in-the-try", "next-task-try"],
)
def test_a_strict_instance_delete_whose_answer_was_lost_succeeds(
    extra_503: int,
    tries: int,
    imagesearch_conn: Callable[..., str],
    emulator: Emulator,
    capfd: pytest.CaptureFixture[str],
) -> None:
    name = f"strict-del-{tries}"
    emulator.upsert_instance(name)
    # The status read, the delete (processed, answer lost), its retries all 503: the hook gives up.
    emulator.set_faults(sequence=["ok", "drop_after", *["503_json"] * (ATTEMPTS - 1 + extra_503)])
    dr = run_dag(
        _dag(
            f"strict_delete_lost_{tries}",
            ImageSearchDeleteInstanceOperator,
            instance_name=name,
            missing_ok=False,
            poke_interval=0.2,
            imagesearch_conn_id=imagesearch_conn("token", max_attempts=ATTEMPTS),
        )
    )
    assert states(dr) == {("op", -1): ("success", tries)}
    assert _instances(emulator, name) == []
    if tries == 2:
        # The next try finds no instance: that it was this task's own delete is an inference, and says so.
        out = capfd.readouterr().out
        assert f"Instance {name} does not exist: taken to be the effect of an earlier try" in out
        assert "an earlier try of this task deleted it" not in out


# --- item 4: a create whose wait timed out, then the task is cleared ----------------------------------


def test_a_cleared_create_adopts_the_instance_it_created(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    emulator.control.set_config(creation_seconds=4.0)
    try:
        dag = _dag(
            "create_cleared_after_timeout",
            ImageSearchCreateInstanceOperator,
            instance_name="cleared-new",
            tags=["color"],
            description="spring catalogue",
            poke_interval=0.2,
            timeout=1,
            retries=0,
            imagesearch_conn_id=imagesearch_conn("token"),
        )
        first = run_dag(dag)
        assert states(first) == {("op", -1): ("failed", 1)}  # the wait timed out
        statuses = wait_until(
            lambda: [i["status"] for i in _instances(emulator, "cleared-new")], lambda s: s == ["NORMAL"]
        )
        assert statuses == ["NORMAL"]
        # The documented recovery: clear the task. The same run goes again (and its start_date is reset).
        second = clear_and_rerun(dag, first)
    finally:
        emulator.control.set_config(creation_seconds=2.0)
    assert second.run_id == first.run_id
    assert states(second) == {("op", -1): ("success", 2)}
    assert xcom(second, "op")["status"] == "NORMAL"
    assert len(_requests(emulator, "POST", "/service")) == 1, "created once"
    assert len(_instances(emulator, "cleared-new")) == 1


def test_a_create_never_adopts_an_instance_another_run_created(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    """Proof of this run's own create, not a clock: a second run of the same DAG fails on the instance."""
    dag = _dag(
        "create_twice_two_runs",
        ImageSearchCreateInstanceOperator,
        instance_name="two-runs",
        tags=["color"],
        wait_for_completion=False,
        imagesearch_conn_id=imagesearch_conn("token"),
    )
    assert states(run_dag(dag)) == {("op", -1): ("success", 1)}
    assert states(run_dag(dag)) == {("op", -1): ("failed", 1)}
    assert len(_requests(emulator, "POST", "/service")) == 1


# --- review of 20/21, item 9: descriptions compared like with like -----------------------------------------

MARKED = "spring [airflow:3f9c2a71b4d0]"


def test_a_cleared_create_adopts_its_instance_when_the_asked_description_ends_with_a_marker(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    """``if_exists="fail"`` with a description that itself ends with a marker (copied from the console): the
    instance holds it plus this task's marker, and the rerun after a clear compares exactly what it sends."""
    dag = _dag(
        "create_marked_description",
        ImageSearchCreateInstanceOperator,
        instance_name="marked-fail",
        tags=["color"],
        description=MARKED,
        wait_for_completion=False,
        imagesearch_conn_id=imagesearch_conn("token"),
    )
    first = run_dag(dag)
    assert states(first) == {("op", -1): ("success", 1)}
    (held,) = _instances(emulator, "marked-fail")
    assert held["description"].startswith(MARKED + " [airflow:")
    assert held["description"] != MARKED
    second = clear_and_rerun(dag, first)
    assert states(second) == {("op", -1): ("success", 2)}
    assert len(_requests(emulator, "POST", "/service")) == 1, "created once"


REUSE_DESCRIPTIONS = {
    "marker-left-by-a-fail-run": ("spring [airflow:3f9c2a71b4d0]", "spring", True),
    "plain": ("spring", "spring", True),
    "asked-text-not-held": ("spring", MARKED, False),
    "other-text": ("autumn [airflow:3f9c2a71b4d0]", "spring", False),
    "other-marker": ("spring [airflow:3f9c2a71b4d0]", "spring [airflow:000000000000]", False),
}


@pytest.mark.parametrize("case", REUSE_DESCRIPTIONS)
def test_reuse_compares_the_held_description_with_the_asked_one(
    case: str, imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    held, asked, adopted = REUSE_DESCRIPTIONS[case]
    emulator.upsert_instance("reuse-desc", tags=["color"], description=held)
    dr = run_dag(
        _dag(
            f"reuse_desc_{case}",
            ImageSearchCreateInstanceOperator,
            instance_name="reuse-desc",
            tags=["color"],
            description=asked,
            if_exists="reuse",
            wait_for_completion=False,
            retries=0,
            imagesearch_conn_id=imagesearch_conn("token"),
        )
    )
    assert states(dr) == {("op", -1): ("success" if adopted else "failed", 1)}
    assert not _requests(emulator, "POST", "/service"), "reuse never creates over an existing instance"


# --- item 6: a forced v2 delete whose answer was lost -----------------------------------------------------


def test_a_forced_v2_delete_whose_answer_was_lost_reports_the_item_gone(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    """Issue 20 item 6, revised by review round 2: after a lost answer the item is gone, but the task cannot
    know its own delete did it (another writer may have), so the item is reported in ``gone_ids``, not as
    deleted; before the fix of item 6 it was reported nowhere."""
    emulator.upsert_v2_service("dels", items={"d1": {"digest": "x", "desc": "old"}})
    emulator.set_faults(sequence=["ok", "drop_after"])  # the check before a forced delete, then the delete
    dr = run_dag(
        _dag(
            "v2_forced_delete_lost",
            ImageSearchV2DeleteDataOperator,
            service_name="dels",
            item_id="d1",
            force=True,
            imagesearch_conn_id=imagesearch_conn("token"),
        )
    )
    assert states(dr) == {("op", -1): ("success", 1)}
    assert xcom(dr, "op") == {"deleted_ids": [], "total_num": 0, "delete_num": 0, "gone_ids": ["d1"]}
    assert _items(emulator, "dels") == {}
    assert emulator.control.faults()["sequence"] == [], "the delete's answer was lost"
    assert len(_requests(emulator, "POST", "/data/delete")) == 2  # the lost one and the hook's repeat


def test_a_forced_v2_delete_counts_what_its_delete_did(
    imagesearch_conn: Callable[..., str], emulator: Emulator, capfd: pytest.CaptureFixture[str]
) -> None:
    """Review of 20/21, items 3 and 4 (and round 2): the service's answer to a forced delete by id cannot say
    whether the item was there, so the operator checks first and sends the delete without ``force``: the
    count is what its delete did, the item not there is reported gone, in the XCom and the task log
    (``dag.test()`` writes the task log to the process's output)."""
    emulator.upsert_v2_service("dels-count", items={"real": {"digest": "x"}, "keep": {"digest": "y"}})

    def forced(item_id: str) -> Any:
        dr = run_dag(
            _dag(
                f"v2_forced_delete_{item_id}",
                ImageSearchV2DeleteDataOperator,
                service_name="dels-count",
                item_id=item_id,
                force=True,
                imagesearch_conn_id=imagesearch_conn("token"),
            )
        )
        assert states(dr) == {("op", -1): ("success", 1)}
        return xcom(dr, "op")

    assert forced("real") == {"deleted_ids": ["real"], "total_num": 1, "delete_num": 1, "gone_ids": []}
    assert "Deleted 1 item(s) from dels-count" in capfd.readouterr().out
    assert forced("ghost") == {"deleted_ids": [], "total_num": 0, "delete_num": 0, "gone_ids": ["ghost"]}
    ghost_log = capfd.readouterr().out
    assert "Item ghost is not in dels-count: nothing to delete" in ghost_log
    assert "Deleted 0 item(s) from dels-count" in ghost_log
    assert sorted(_items(emulator, "dels-count")) == ["keep"]
    deletes = _requests(emulator, "POST", "/data/delete")
    assert len(deletes) == 1, "nothing is sent for an item the check did not find"


# --- suspicions ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["DELETING", "CREATION_FAILD", "DELETING_FAILED"])
def test_reuse_without_waiting_refuses_an_instance_that_will_never_be_ready(
    status: str, imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    """Confirmed: ``if_exists="reuse"`` with ``wait_for_completion=False`` returned a dying instance."""
    name = f"dead-{status[:8].lower()}"
    emulator.upsert_instance(name, status=status, tags=["color"], transition_after_s=3600, next_status=status)
    dr = run_dag(
        _dag(
            f"reuse_dead_{status}",
            ImageSearchCreateInstanceOperator,
            instance_name=name,
            tags=["color"],
            if_exists="reuse",
            wait_for_completion=False,
            imagesearch_conn_id=imagesearch_conn("token"),
        )
    )
    assert states(dr) == {("op", -1): ("failed", 1)}
    assert _requests(emulator, "POST", "/service") == []


def test_a_conditional_v2_delete_retried_after_a_lost_answer_deletes_what_matches_and_nothing_else(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    """Confirmed: the hook repeated a conditional delete whose answer was lost, deleting a second batch and
    reporting only that one. A conditional delete now deletes every matching item, batch by batch, so a
    repeat only continues the job, and the count covers every batch, the lost one included."""
    items = {f"m{n:03d}": {"digest": f"d{n}", "custom_tags": {"season": "old"}} for n in range(250)}
    items.update({f"k{n:03d}": {"digest": f"k{n}", "custom_tags": {"season": "new"}} for n in range(20)})
    emulator.upsert_v2_service("purge", items=items)
    # The listing of what matches at the start (3 pages of 100), then the first batch: its answer is lost.
    emulator.set_faults(sequence=["ok", "ok", "ok", "drop_after"])
    dr = run_dag(
        _dag(
            "v2_conditional_delete_lost",
            ImageSearchV2DeleteDataOperator,
            service_name="purge",
            custom_tags={"season": ["old"]},
            imagesearch_conn_id=imagesearch_conn("token"),
        )
    )
    assert states(dr) == {("op", -1): ("success", 1)}
    assert sorted(_items(emulator, "purge")) == [f"k{n:03d}" for n in range(20)]
    result = xcom(dr, "op")
    assert (result["total_num"], result["delete_num"]) == (250, 250)
    # The ids come from the answers received: the lost batch's 100 are counted, not listed.
    assert len(result["deleted_ids"]) == 150


def test_a_refused_overwrite_on_a_later_try_fails_with_the_services_reason(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    """A v1 add overwrites: when its repeat on a retry is refused, the refusal is about something else (here
    a tag name the instance does not define) and is reported as the service gave it, not as "what is there
    is not what was asked"."""
    from types import SimpleNamespace

    from airflow_provider_imagesearch.version_compat import AirflowFailException

    path = "https://shop-images.obs.cn-north-4.myhuaweicloud.com/a.jpg"
    emulator.upsert_instance("lib-refused", tags=["color"], images={path: {"tags": {"color": "red"}}})
    op = ImageSearchAddImageOperator(
        task_id="x",
        instance_name="lib-refused",
        path=path,
        tags={"size": "L"},
        imagesearch_conn_id=imagesearch_conn("token"),
    )
    retry = SimpleNamespace(try_number=2, dag_id="d", run_id="r", task_id="x", map_index=-1)
    with pytest.raises(AirflowFailException) as raised:
        op.execute({"ti": retry})  # type: ignore[arg-type]
    assert "HTTP 400" in str(raised.value)
    assert "not what was asked" not in str(raised.value)
    assert emulator.control.state()["images"][f"{DEFAULT_PROJECT_ID}/lib-refused"][path]["tags"] == {
        "color": "red"
    }
