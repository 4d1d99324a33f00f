"""Replacing an image's tags, called directly against the emulator (no DAG run): the XCom it returns, and
what it does when the update's answer is lost and the connection allows no further attempt.

``max_attempts=1`` leaves the hook no retry of its own, so a lost answer reaches the operator's read-back
at once: the image found with the tags asked for is the update's effect (adopted, no second update); the
image still holding its old tags after an update that never arrived fails the try with the request's own
(retryable) error, since an update overwrites and a task retry sends it again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from airflow_provider_imagesearch.emulator.routes import R_MODIFY
from airflow_provider_imagesearch.errors import ImageSearchApiError
from airflow_provider_imagesearch.operators.imagesearch import ImageSearchUpdateImageTagsOperator
from airflow_provider_imagesearch.version_compat import AirflowFailException

OBS = "https://shop-images.obs.cn-north-4.myhuaweicloud.com"
IMAGE = f"{OBS}/a.jpg"


def _seed(emulator: Emulator, name: str) -> None:
    emulator.upsert_instance(
        name, project_id=DEFAULT_PROJECT_ID, tags=["color"], images={IMAGE: {"tags": {"color": "red"}}}
    )


def _tags(emulator: Emulator, name: str) -> Any:
    return emulator.control.state()["images"][f"{DEFAULT_PROJECT_ID}/{name}"][IMAGE]["tags"]


def _updates(emulator: Emulator) -> int:
    return sum(1 for r in emulator.requests_log() if r["route"] == R_MODIFY)


def _update(conn_id: str, name: str) -> Any:
    op = ImageSearchUpdateImageTagsOperator(
        task_id="update", instance_name=name, path=IMAGE, tags={"color": "blue"}, imagesearch_conn_id=conn_id
    )
    return op.execute({})


def test_an_update_returns_the_instance_path_tags_and_result(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    _seed(emulator, "kd-plain")
    result = _update(imagesearch_conn("aksk"), "kd-plain")
    assert result == {
        "instance_name": "kd-plain",
        "path": IMAGE,
        "tags": {"color": "blue"},
        "result": "Success",
    }
    assert _tags(emulator, "kd-plain") == {"color": "blue"}


def test_a_lost_update_found_in_the_library_is_adopted_as_success(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    _seed(emulator, "kd-lost")
    emulator.set_faults(sequence=["drop_after"])  # the update takes effect, its answer is lost
    result = _update(imagesearch_conn("aksk", max_attempts=1), "kd-lost")
    assert result == {
        "instance_name": "kd-lost",
        "path": IMAGE,
        "tags": {"color": "blue"},
        "result": "Success",
    }
    assert _tags(emulator, "kd-lost") == {"color": "blue"}
    assert _updates(emulator) == 1, "the read-back found the update's effect: no second update"


def test_an_update_that_never_arrived_fails_the_try_retryably_once_the_budget_is_used(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    _seed(emulator, "kd-never")
    emulator.set_faults(sequence=["drop"])  # the update never reaches the service; the client cannot tell
    with pytest.raises(ImageSearchApiError) as raised:
        _update(imagesearch_conn("aksk", max_attempts=1), "kd-never")
    # The old tags are what an update overwrites: not a reason to fail without task retries.
    assert not isinstance(raised.value, AirflowFailException)
    assert _tags(emulator, "kd-never") == {"color": "red"}
    assert raised.value.error_code == "CONNECTION_DROPPED"
    assert _updates(emulator) == 1, "the one allowed attempt was sent, and not sent again"
    assert emulator.control.faults()["sequence"] == []
