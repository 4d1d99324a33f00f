"""A delete of an image whose answer was lost returns what a delete answered at once returns: True.

``max_attempts=1`` leaves the hook no retry of its own, so the lost answer reaches the operator's read-back
at once: the image no longer in the library is the delete's own effect (no second delete), and the task
succeeds with the same return value (XCom) as a plain delete, also with ``missing_ok=False``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from airflow_provider_imagesearch.emulator.routes import R_DELETE_IMAGE
from airflow_provider_imagesearch.operators.imagesearch import ImageSearchDeleteImageOperator

OBS = "https://shop-images.obs.cn-north-4.myhuaweicloud.com"
IMAGE = f"{OBS}/a.jpg"
KEPT = f"{OBS}/b.jpg"


def _delete(conn_id: str, name: str) -> Any:
    op = ImageSearchDeleteImageOperator(
        task_id="delete", instance_name=name, path=IMAGE, missing_ok=False, imagesearch_conn_id=conn_id
    )
    return op.execute({})


def _library(emulator: Emulator, name: str) -> list[str]:
    return sorted(emulator.control.state()["images"].get(f"{DEFAULT_PROJECT_ID}/{name}", {}))


@pytest.mark.parametrize("fault", [None, "drop_after"], ids=["answered", "answer-lost"])
def test_a_delete_returns_true_whether_its_answer_arrived_or_was_lost(
    fault: str | None,
    emulator: Emulator,
    imagesearch_conn: Callable[..., str],
    instance: Callable[..., str],
    capfd: pytest.CaptureFixture[str],
) -> None:
    name = instance("k3b-del", images={IMAGE: {"tags": {}}, KEPT: {"tags": {}}})
    if fault is not None:
        emulator.set_faults(sequence=[fault])  # the delete takes effect, its answer is lost
    assert _delete(imagesearch_conn("aksk", max_attempts=1), name) is True
    assert _library(emulator, name) == [KEPT]
    deletes = sum(1 for r in emulator.requests_log() if r["route"] == R_DELETE_IMAGE)
    assert deletes == 1, "the read-back found the delete's effect: no second delete"
    read_back = f"Deleting image {IMAGE} from {name} took effect: reading it back found what was asked"
    assert (read_back in capfd.readouterr().out) is (fault is not None)  # the task log, on stdout
