"""How the write rule counts and reads the hook's own retries of a write (``ImageSearchBaseOperator.write``).

* A refusal that follows the hook's retry of an attempt whose answer was lost may be that attempt's own
  effect: the write is read back, on the task's first try too, and the task succeeds when the target is as
  asked. (Deletes never get there, the hook reconciles their refused retry itself; an update does: the hook
  repeats a ``PUT`` after a 503, and nothing in the hook reads a refused repeat back.)
* The write's budget (the connection's ``max_attempts``) counts the write's own attempts only: the retries
  the hook made of a read-back, before the write is sent again, do not use up the write's attempts.

Called directly against the emulator (no DAG run), with a ready token (no IAM requests in the log).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from airflow_provider_imagesearch.emulator.routes import R_ADD, R_CHECK, R_MODIFY, R_SEARCH
from airflow_provider_imagesearch.operators.imagesearch import (
    ImageSearchAddImageOperator,
    ImageSearchUpdateImageTagsOperator,
)
from airflow_provider_imagesearch.version_compat import AirflowFailException

OBS = "https://shop-images.obs.cn-north-4.myhuaweicloud.com"
IMAGE = f"{OBS}/k7w.jpg"


def _images(emulator: Emulator, name: str) -> dict[str, Any]:
    images: dict[str, Any] = emulator.control.state()["images"].get(f"{DEFAULT_PROJECT_ID}/{name}", {})
    return images


def _log(emulator: Emulator) -> list[tuple[str, int]]:
    """The requests the emulator received, as (route, status)."""
    return [(r["route"], r["status"]) for r in emulator.requests_log()]


def _update_to_blue(name: str, imagesearch_conn: Callable[..., str]) -> ImageSearchUpdateImageTagsOperator:
    """The update of IMAGE's tags to blue, three attempts allowed (the hook repeats a PUT after a 503)."""
    return ImageSearchUpdateImageTagsOperator(
        task_id="update",
        instance_name=name,
        path=IMAGE,
        tags={"color": "blue"},
        imagesearch_conn_id=imagesearch_conn("token", max_attempts=3, backoff_initial=0.01),
    )


def test_an_update_whose_answer_was_lost_and_whose_retry_was_refused_is_read_back_and_succeeds(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    """The update takes effect but the gateway answers 503; the hook repeats it (a ``PUT`` is idempotent) and
    the repeat is refused (HTTP 400 IS.0011). The refusal may be due to the lost attempt, so the image is read
    back on this first try: it holds the tags asked for, and the task returns what a plain update returns."""
    name = "k7w-update"
    emulator.upsert_instance(name, tags=["color"], images={IMAGE: {"tags": {"color": "red"}}})
    emulator.set_faults(sequence=["503_after", "IS.0011"])
    op = _update_to_blue(name, imagesearch_conn)
    assert op.execute({}) == {
        "instance_name": name,
        "path": IMAGE,
        "tags": {"color": "blue"},
        "result": "Success",
    }
    assert _images(emulator, name)[IMAGE]["tags"] == {"color": "blue"}
    # The lost update, the hook's refused repeat, then the read-back (presence, then the tags); no third PUT.
    assert _log(emulator) == [(R_MODIFY, 503), (R_MODIFY, 400), (R_CHECK, 200), (R_SEARCH, 200)]


def test_an_update_refused_outright_is_not_read_back_on_the_first_try(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    """The contrast: the same refusal with no lost attempt before it is the service's answer to this update;
    on the task's first try it fails the task (no task retry) with the service's reason, reading nothing back."""
    name = "k7w-refused"
    emulator.upsert_instance(name, tags=["color"], images={IMAGE: {"tags": {"color": "red"}}})
    emulator.set_faults(sequence=["IS.0011"])
    op = _update_to_blue(name, imagesearch_conn)
    with pytest.raises(AirflowFailException, match=r"HTTP 400 IS\.0011"):
        op.execute({})
    assert _images(emulator, name)[IMAGE]["tags"] == {"color": "red"}
    assert _log(emulator) == [(R_MODIFY, 400)]


def test_a_read_back_the_hook_retried_does_not_use_up_the_writes_attempts(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    """``max_attempts=3``. An add fails with a 500 before it reaches the service (the hook does not repeat an
    add); its read-back is answered 503 once and retried by the hook, then finds no image; the add sent again
    fails the same way, and is read back. Two of the add's three attempts are used (the read-back's retry is
    not one of them), so it is sent a third time, succeeds, and the task returns the service's answer."""
    name = "k7w-add"
    emulator.upsert_instance(name, tags=["color"], images={})
    emulator.set_faults(sequence=["500_json", "503_json", "ok", "500_json", "ok", "ok"])
    op = ImageSearchAddImageOperator(
        task_id="add",
        instance_name=name,
        path=IMAGE,
        tags={"color": "red"},
        imagesearch_conn_id=imagesearch_conn("token", max_attempts=3, backoff_initial=0.01),
    )
    assert op.execute({}) == {"instance_name": name, "path": IMAGE, "result": "Success"}
    assert _images(emulator, name)[IMAGE]["tags"] == {"color": "red"}
    assert _log(emulator) == [
        (R_ADD, 500),
        (R_CHECK, 503),
        (R_CHECK, 200),
        (R_ADD, 500),
        (R_CHECK, 200),
        (R_ADD, 200),
    ]
