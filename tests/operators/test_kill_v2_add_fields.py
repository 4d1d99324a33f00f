"""What a v2 add sends and how it meets what the service already holds: an image given as base64 bytes,
the service type's options (the subject the service reports), ``force`` overwriting an item with the same
id, and the read-back after a lost answer naming every field that differs."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from airflow_provider_imagesearch.emulator.routes_v2 import R2_ADD
from airflow_provider_imagesearch.emulator.state import bytes_digest
from airflow_provider_imagesearch.operators.imagesearch_v2 import ImageSearchV2AddDataOperator
from airflow_provider_imagesearch.version_compat import AirflowFailException
from tests.support.connections import connection_fields, set_connection
from tests.support.rewriting_proxy import RewritingProxy

IMAGE = b"\x89PNG\r\n\x1a\n a small test image"


def _items(emulator: Emulator, service: str) -> dict[str, Any]:
    for found in emulator.control.state()["v2_services"]:
        if found["name"] == service and found["project_id"] == DEFAULT_PROJECT_ID:
            items: dict[str, Any] = found["items"]
            return items
    return {}


def _adds(emulator: Emulator) -> int:
    return sum(1 for r in emulator.requests_log() if r["route"] == R2_ADD)


def test_an_image_given_as_base64_is_the_item_s_image(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    emulator.upsert_v2_service("add-b64", items={})
    op = ImageSearchV2AddDataOperator(
        task_id="add",
        service_name="add-b64",
        item_id="shoe-1",
        image_base64=base64.b64encode(IMAGE).decode(),
        imagesearch_conn_id=imagesearch_conn("token"),
    )
    assert op.execute({})["result"] == "success"
    assert _items(emulator, "add-b64")["shoe-1"]["digest"] == bytes_digest(IMAGE)


def test_the_service_options_are_sent_the_subject_reported_is_the_box_asked(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    emulator.upsert_v2_service("add-opts", items={})
    op = ImageSearchV2AddDataOperator(
        task_id="add",
        service_name="add-opts",
        item_id="shoe-1",
        image_url="https://cdn.example/shoe-1.jpg",
        optional_params={"box": "10,20,200,220", "category": 3},
        imagesearch_conn_id=imagesearch_conn("token"),
    )
    result = op.execute({})
    assert result["objects"] == [{"box": "10,20,200,220", "category": 3, "category_name": "category 3"}]


def test_force_replaces_an_item_with_the_same_id(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    emulator.upsert_v2_service("add-force", items={"shoe-1": {"digest": "old", "desc": "old shoe"}})
    op = ImageSearchV2AddDataOperator(
        task_id="add",
        service_name="add-force",
        item_id="shoe-1",
        image_url="https://cdn.example/shoe-1.jpg",
        desc="new shoe",
        force=True,
        imagesearch_conn_id=imagesearch_conn("token"),
    )
    assert op.execute({})["result"] == "success"
    assert _items(emulator, "add-force")["shoe-1"]["desc"] == "new shoe"
    assert _adds(emulator) == 1


def test_a_lost_add_meeting_an_item_with_other_tags_fails_naming_each_tag_field(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    emulator.upsert_v2_service(
        "add-other",
        items={
            "shoe-1": {
                "digest": "x",
                "desc": "red shoe",
                "custom_tags": {"color": "blue"},
                "custom_num_tags": {"price": 10},
            }
        },
    )
    emulator.set_faults(sequence=["503_json"])  # not processed; the add may have taken effect: read back
    op = ImageSearchV2AddDataOperator(
        task_id="add",
        service_name="add-other",
        item_id="shoe-1",
        image_url="https://cdn.example/shoe-1.jpg",
        desc="red shoe",
        custom_tags={"color": "red"},
        custom_num_tags={"price": 59},
        imagesearch_conn_id=imagesearch_conn("token", max_attempts=1),
    )
    with pytest.raises(AirflowFailException) as failed:
        op.execute({})
    assert str(failed.value).endswith(
        "item shoe-1: custom_tags are {'color': 'blue'}, wanted {'color': 'red'}; "
        "custom_num_tags are {'price': 10.0}, wanted {'price': 59.0}"
    )
    assert _items(emulator, "add-other")["shoe-1"]["custom_tags"] == {"color": "blue"}


def test_a_forced_add_whose_answer_is_unreadable_overwrites_another_writer_s_item(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator
) -> None:
    """The add took effect but its answer cannot be read; another writer put its own item under the id
    before the read-back. ``force`` asks for this task's item whatever is there: it is sent again."""
    emulator.upsert_v2_service("add-race", items={})
    raced = {"done": False}

    def other_writer(path: str, body: dict[str, Any], status: int, answer: Any) -> Any:
        if path.endswith("/data/add") and not raced["done"]:
            raced["done"] = True
            emulator.control.add_v2_items(
                "add-race",
                {"shoe-1": {"digest": "theirs", "desc": "their shoe"}},
                project_id=DEFAULT_PROJECT_ID,
            )
            return ["not", "the", "answer"]
        return answer

    with RewritingProxy(emulator.url, other_writer) as proxy:
        fields = connection_fields(emulator.url, "token", max_attempts=3)
        fields["extra"]["mms_endpoint"] = proxy.url
        op = ImageSearchV2AddDataOperator(
            task_id="add",
            service_name="add-race",
            item_id="shoe-1",
            image_url="https://cdn.example/shoe-1.jpg",
            desc="our shoe",
            force=True,
            imagesearch_conn_id=set_connection(monkeypatch, "through_proxy", **fields),
        )
        result = op.execute({})

    assert raced["done"]
    assert result["result"] == "success"
    assert _items(emulator, "add-race")["shoe-1"]["desc"] == "our shoe"
    assert _adds(emulator) == 2
