"""How a v2 write's read-back compares the item the service holds with what was asked.

``item_differences`` (public: the v2 operators' comparison) names each field that differs, in the form a
user reads in the task's failure (``desc is 'x', wanted 'y'``), compares only the fields asked for, and
compares values, not their Python types: numeric tags as numbers (``59`` is ``59.0``), keywords as an
ordered list (a tuple asked is the list held), no tags as empty tags. Through the operators: a v2 add or
update whose answer was lost is adopted, without a second request, when the item holds what was asked (an
update asks only for the fields it was given); a different item under the id fails the add, naming the field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.emulator.routes_v2 import R2_ADD, R2_UPDATE
from airflow_provider_imagesearch.models_v2 import V2Item
from airflow_provider_imagesearch.operators.imagesearch_v2 import (
    ImageSearchV2AddDataOperator,
    ImageSearchV2UpdateDataOperator,
    item_differences,
)
from airflow_provider_imagesearch.version_compat import AirflowFailException
from tests.support.v2_items import v2_item as _item

HELD = V2Item(
    id="shoe-1",
    desc="red running shoe",
    custom_tags={"color": "red"},
    custom_num_tags={"price": 59.0},
    keywords=("shoe", "running"),
)
AS_HELD: dict[str, Any] = {
    "desc": "red running shoe",
    "custom_tags": {"color": "red"},
    "custom_num_tags": {"price": 59},
    "keywords": ["shoe", "running"],
}


def test_an_item_holding_what_was_asked_has_no_difference() -> None:
    assert item_differences(HELD, **AS_HELD) == []
    assert item_differences(HELD, **{**AS_HELD, "keywords": ("shoe", "running")}) == []
    bare = V2Item(id="bare")
    assert item_differences(bare, desc=None, custom_tags=None, custom_num_tags=None, keywords=None) == []


@pytest.mark.parametrize(
    ("field", "asked", "difference"),
    [
        ("desc", "blue boot", "desc is 'red running shoe', wanted 'blue boot'"),
        ("desc", None, "desc is 'red running shoe', wanted None"),
        ("custom_tags", {"color": "blue"}, "custom_tags are {'color': 'red'}, wanted {'color': 'blue'}"),
        ("custom_tags", None, "custom_tags are {'color': 'red'}, wanted {}"),
        ("custom_num_tags", {"price": 60}, "custom_num_tags are {'price': 59.0}, wanted {'price': 60.0}"),
        ("custom_num_tags", None, "custom_num_tags are {'price': 59.0}, wanted {}"),
        ("keywords", ["running", "shoe"], "keywords are ['shoe', 'running'], wanted ['running', 'shoe']"),
        ("keywords", None, "keywords are ['shoe', 'running'], wanted []"),
    ],
)
def test_each_field_that_differs_is_named_with_what_is_held_and_what_was_wanted(
    field: str, asked: Any, difference: str
) -> None:
    assert item_differences(HELD, **{**AS_HELD, field: asked}) == [difference]


def test_every_difference_is_named_in_field_order() -> None:
    found = item_differences(
        V2Item(id="other"), desc="d", custom_tags={"a": "b"}, custom_num_tags={"n": 1}, keywords=["k"]
    )
    assert [d.split(" ")[0] for d in found] == ["desc", "custom_tags", "custom_num_tags", "keywords"]


def test_only_the_fields_asked_for_are_compared() -> None:
    other = V2Item(id="other", desc="x", custom_tags={"a": "b"}, custom_num_tags={"n": 2.0}, keywords=("k",))
    assert item_differences(other) == []
    assert item_differences(other, custom_tags={"a": "b"}) == []
    assert item_differences(other, custom_num_tags={"n": 3}) == [
        "custom_num_tags are {'n': 2.0}, wanted {'n': 3.0}"
    ]


# --- through the operators -----------------------------------------------------------------------------


def _requests(emulator: Emulator, route: str) -> int:
    return sum(1 for r in emulator.requests_log() if r["route"] == route)


def test_a_lost_v2_add_of_the_item_is_adopted_without_a_second_add(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    emulator.upsert_v2_service("rb-add", items={})
    emulator.set_faults(sequence=["503_after"])  # the add takes effect, the gateway answers 503
    op = ImageSearchV2AddDataOperator(
        task_id="add",
        service_name="rb-add",
        item_id="shoe-1",
        image_url="https://cdn.example/shoe-1.jpg",
        keywords=("shoe", "running"),
        imagesearch_conn_id=imagesearch_conn("token", max_attempts=1),
        **{k: v for k, v in AS_HELD.items() if k != "keywords"},
    )
    assert op.execute({}) == {"item_id": "shoe-1", "result": "success", "objects": []}
    assert _requests(emulator, R2_ADD) == 1
    assert _item(emulator, "rb-add", "shoe-1")["custom_num_tags"] == {"price": 59.0}


def test_a_lost_v2_update_compares_only_the_fields_it_was_given(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    emulator.upsert_v2_service(
        "rb-update",
        items={"shoe-1": {"digest": "x", "desc": "kept as it is", "custom_tags": {"color": "red"}}},
    )
    emulator.set_faults(sequence=["503_after"])
    op = ImageSearchV2UpdateDataOperator(
        task_id="update",
        service_name="rb-update",
        item_id="shoe-1",
        custom_tags={"color": "blue"},
        imagesearch_conn_id=imagesearch_conn("token", max_attempts=1),
    )
    assert op.execute({}) == {"item_id": "shoe-1", "result": "success"}
    assert _requests(emulator, R2_UPDATE) == 1, "the read-back found the update: not sent again"
    held = _item(emulator, "rb-update", "shoe-1")
    assert (held["desc"], held["custom_tags"]) == ("kept as it is", {"color": "blue"})


def test_a_lost_v2_add_meeting_a_different_item_fails_naming_the_difference(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    emulator.upsert_v2_service(
        "rb-other", items={"shoe-1": {"digest": "x", "desc": "red running shoe", "keywords": ["boot"]}}
    )
    emulator.set_faults(sequence=["503_json"])  # the add may have taken effect: the item is read back
    op = ImageSearchV2AddDataOperator(
        task_id="add",
        service_name="rb-other",
        item_id="shoe-1",
        image_url="https://cdn.example/shoe-1.jpg",
        desc="red running shoe",
        keywords=["shoe"],
        imagesearch_conn_id=imagesearch_conn("token", max_attempts=1),
    )
    with pytest.raises(AirflowFailException) as failed:
        op.execute({})
    assert str(failed.value).endswith("item shoe-1: keywords are ['boot'], wanted ['shoe']")
    assert _item(emulator, "rb-other", "shoe-1")["keywords"] == ["boot"]
