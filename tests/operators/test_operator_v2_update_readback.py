"""A v2 update whose answer was lost (a 503 before it was applied).

With attempts left (the connection's ``max_attempts``), the update is sent again and the item ends as
asked. With none left, the task reads the item back: it does not hold what was asked, and the update
overwrites, so that is no conflict (no "what is there is not what was asked" failure): the try fails with
the lost answer's error, the item untouched, and the task's retry sends the update again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.emulator.routes_v2 import R2_UPDATE
from airflow_provider_imagesearch.errors import ImageSearchApiError
from airflow_provider_imagesearch.operators.imagesearch_v2 import ImageSearchV2UpdateDataOperator
from tests.support.v2_items import v2_item as _item


def _updates(emulator: Emulator) -> int:
    return sum(1 for r in emulator.requests_log() if r["route"] == R2_UPDATE)


def _update(conn_id: str, **fields: Any) -> ImageSearchV2UpdateDataOperator:
    return ImageSearchV2UpdateDataOperator(
        task_id="update", service_name="rb-again", item_id="shoe-1", imagesearch_conn_id=conn_id, **fields
    )


def test_a_lost_update_of_desc_that_did_not_take_effect_is_sent_again(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    emulator.upsert_v2_service("rb-again", items={"shoe-1": {"digest": "x", "desc": "old"}})
    emulator.set_faults(sequence=["503_json"])  # answered 503 before the update is applied
    op = _update(imagesearch_conn("token", max_attempts=2), desc="new")
    assert op.execute({}) == {"item_id": "shoe-1", "result": "success"}
    assert _item(emulator, "rb-again", "shoe-1")["desc"] == "new"
    assert _updates(emulator) == 2


def test_a_lost_update_of_numeric_tags_that_did_not_take_effect_is_sent_again(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    emulator.upsert_v2_service(
        "rb-again", items={"shoe-1": {"digest": "x", "desc": "kept", "custom_num_tags": {"price": 59.0}}}
    )
    emulator.set_faults(sequence=["503_json"])
    op = _update(imagesearch_conn("token", max_attempts=2), custom_num_tags={"price": 60})
    assert op.execute({}) == {"item_id": "shoe-1", "result": "success"}
    held = _item(emulator, "rb-again", "shoe-1")
    assert held["custom_num_tags"] == {"price": 60.0}
    assert held["desc"] == "kept"
    assert _updates(emulator) == 2


def test_a_lost_update_with_no_attempt_left_fails_the_try_with_the_lost_answer_and_its_retry_updates(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    emulator.upsert_v2_service(
        "rb-again",
        items={"shoe-1": {"digest": "x", "desc": "old", "custom_tags": {"color": "red"}}},
    )
    emulator.set_faults(sequence=["503_json"])
    op = _update(imagesearch_conn("token", max_attempts=1), desc="new", custom_tags={"color": "blue"})
    with pytest.raises(ImageSearchApiError, match="503"):
        op.execute({})
    held = _item(emulator, "rb-again", "shoe-1")
    assert (held["desc"], held["custom_tags"]) == ("old", {"color": "red"})
    assert _updates(emulator) == 1
    # The task's retry: the same operator, the service answering again.
    assert op.execute({}) == {"item_id": "shoe-1", "result": "success"}
    held = _item(emulator, "rb-again", "shoe-1")
    assert (held["desc"], held["custom_tags"]) == ("new", {"color": "blue"})
