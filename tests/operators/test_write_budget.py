"""One write's requests in one task try stay within the connection's ``max_attempts`` (review of 20/21, item 5).

The write rule (:meth:`ImageSearchBaseOperator.write`) reads a write back when its outcome is unknown, and
sends it again when the target is not as asked. Those sends used to wrap the hook's own retries, so a write
the hook retries (an update, a delete) made ``max_attempts`` x ``max_attempts`` requests against a failing
service in one try. Here every write attempt fails (503) and every read succeeds, for each write operator the
hook retries; with ``max_attempts=3`` the try sends the write 3 times, reads it back once, and fails (a task
retry starts a new budget). A write the hook does not repeat (a v2 add) is sent again by the rule, 3 sends in
all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from airflow.sdk import DAG

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.operators.imagesearch import (
    ImageSearchDeleteImageOperator,
    ImageSearchDeleteInstanceOperator,
    ImageSearchUpdateImageTagsOperator,
)
from airflow_provider_imagesearch.operators.imagesearch_v2 import (
    ImageSearchV2AddDataOperator,
    ImageSearchV2DeleteDataOperator,
    ImageSearchV2UpdateDataOperator,
)
from tests.support.dagrun import run_dag, states

pytestmark = pytest.mark.usefixtures("airflow_db")

ATTEMPTS = 3
OBS = "https://shop-images.obs.cn-north-4.myhuaweicloud.com"
RED = {f"{OBS}/a.jpg": {"tags": {"color": "red"}}}


@dataclass
class Case:
    """A write the hook retries: how to seed it, its request, and the reads before it and in its read-back."""

    operator: type
    kwargs: Callable[[str], dict[str, Any]]
    seed: Callable[[Emulator, str], None]
    write: tuple[str, str]  # method, path suffix
    reads_before: int
    reads_back: int


CASES = {
    "v1-update-tags": Case(
        ImageSearchUpdateImageTagsOperator,
        lambda name: {"instance_name": name, "path": f"{OBS}/a.jpg", "tags": {"color": "blue"}},
        lambda emulator, name: emulator.upsert_instance(name, tags=["color"], images=RED),
        ("PUT", "/image"),
        reads_before=0,
        reads_back=2,  # check_image, then a search by the image for its tags
    ),
    "v1-delete-image": Case(
        ImageSearchDeleteImageOperator,
        lambda name: {"instance_name": name, "path": f"{OBS}/a.jpg"},
        lambda emulator, name: emulator.upsert_instance(name, tags=["color"], images=RED),
        ("DELETE", "/image"),
        reads_before=0,
        reads_back=1,
    ),
    "v1-delete-instance": Case(
        ImageSearchDeleteInstanceOperator,
        lambda name: {"instance_name": name, "wait_for_completion": False},
        lambda emulator, name: emulator.upsert_instance(name),
        ("DELETE", "/service/{name}"),
        reads_before=1,  # the status read
        reads_back=1,
    ),
    "v2-update": Case(
        ImageSearchV2UpdateDataOperator,
        lambda name: {"service_name": name, "item_id": "it", "desc": "new"},
        lambda emulator, name: emulator.upsert_v2_service(name, items={"it": {"digest": "x", "desc": "old"}}),
        ("POST", "/data/update"),
        reads_before=0,
        reads_back=1,
    ),
    "v2-delete-by-id": Case(
        ImageSearchV2DeleteDataOperator,
        lambda name: {"service_name": name, "item_id": "it"},
        lambda emulator, name: emulator.upsert_v2_service(name, items={"it": {"digest": "x"}}),
        ("POST", "/data/delete"),
        reads_before=0,
        reads_back=1,
    ),
}


def _sent(emulator: Emulator, method: str, suffix: str) -> int:
    return sum(1 for r in emulator.requests_log() if r["method"] == method and r["path"].endswith(suffix))


def _dag(dag_id: str, operator: type, conn_id: str, **kwargs: Any) -> DAG:
    with DAG(dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
        operator(
            task_id="op", retries=0, retry_delay=timedelta(seconds=0), imagesearch_conn_id=conn_id, **kwargs
        )
    return dag


@pytest.mark.parametrize("case", CASES)
def test_a_write_the_hook_retries_sends_at_most_max_attempts_requests_in_one_try(
    case: str, imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    spec = CASES[case]
    name = f"budget{list(CASES).index(case)}"
    spec.seed(emulator, name)
    method, suffix = spec.write
    suffix = suffix.format(name=name)
    # Room for the old behaviour (ATTEMPTS sends, each retried ATTEMPTS times) to show itself.
    one_send = ["503_json"] * ATTEMPTS + ["ok"] * spec.reads_back
    emulator.set_faults(sequence=["ok"] * spec.reads_before + one_send * ATTEMPTS)
    dr = run_dag(
        _dag(
            f"budget_{case}",
            spec.operator,
            imagesearch_conn("token", max_attempts=ATTEMPTS),
            **spec.kwargs(name),
        )
    )
    assert states(dr) == {("op", -1): ("failed", 1)}
    assert _sent(emulator, method, suffix) == ATTEMPTS
    log = emulator.requests_log()
    assert len(log) == spec.reads_before + ATTEMPTS + spec.reads_back, [r["path"] for r in log]


def test_a_write_the_hook_does_not_repeat_is_sent_at_most_max_attempts_times_by_the_rule(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    """A v2 add (not idempotent): the hook does not repeat it after a dropped connection; the rule reads it
    back, finds nothing, and sends it again, ``max_attempts`` sends in all."""
    emulator.upsert_v2_service("budget-add", items={})
    emulator.set_faults(sequence=["drop", "ok"] * ATTEMPTS)  # each add dropped unprocessed; each check fine
    dr = run_dag(
        _dag(
            "budget_v2_add",
            ImageSearchV2AddDataOperator,
            imagesearch_conn("token", max_attempts=ATTEMPTS),
            service_name="budget-add",
            item_id="it",
            image_url="https://cdn.example/it.jpg",
        )
    )
    assert states(dr) == {("op", -1): ("failed", 1)}
    assert _sent(emulator, "POST", "/data/add") == ATTEMPTS
    assert _sent(emulator, "POST", "/data/check") == ATTEMPTS
