"""What a v2 add sends (the image's bytes, its options, ``force``) and how it reads an item back after a
lost answer: every field it asked for is compared, the differences are named together, and ``force``
makes a different item something to overwrite (on a task retry), not a failure. Direct calls against
the emulator."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.emulator.routes_v2 import R2_ADD
from airflow_provider_imagesearch.errors import ImageSearchApiError
from airflow_provider_imagesearch.operators.imagesearch_v2 import ImageSearchV2AddDataOperator
from airflow_provider_imagesearch.version_compat import AirflowFailException
from tests.support.v2_items import v2_item as _item

PNG = b"\x89PNG\r\n\x1a\n" + b"killb-shoe" * 8
URL = "https://cdn.example/shoe-1.jpg"


def _adds(emulator: Emulator) -> int:
    return sum(1 for r in emulator.requests_log() if r["route"] == R2_ADD)


def _add(conn_id: str, service: str, **fields: Any) -> ImageSearchV2AddDataOperator:
    return ImageSearchV2AddDataOperator(
        task_id="add", service_name=service, item_id="shoe-1", imagesearch_conn_id=conn_id, **fields
    )


def test_an_item_added_from_its_bytes_holds_that_image(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    emulator.upsert_v2_service("kb-bytes", items={})
    op = _add(imagesearch_conn("token"), "kb-bytes", image_base64=base64.b64encode(PNG).decode())
    assert op.execute({})["result"] == "success"
    assert _item(emulator, "kb-bytes", "shoe-1")["digest"] == hashlib.sha256(PNG).hexdigest()


def test_the_add_options_reach_the_service_and_its_answer_names_the_subject(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    """``box`` and ``category`` are the subject the service reports back (in the XCom's ``objects``)."""
    emulator.upsert_v2_service("kb-options", items={})
    op = _add(
        imagesearch_conn("token"),
        "kb-options",
        image_url=URL,
        optional_params={"box": "10,20,110,220", "category": 3},
    )
    assert op.execute({})["objects"] == [
        {"box": "10,20,110,220", "category": 3, "category_name": "category 3"}
    ]


def test_force_replaces_an_item_already_under_the_id(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    emulator.upsert_v2_service("kb-force", items={"shoe-1": {"digest": "x", "desc": "old boot"}})
    op = _add(imagesearch_conn("token"), "kb-force", image_url=URL, desc="red running shoe", force=True)
    assert op.execute({})["result"] == "success"
    assert _item(emulator, "kb-force", "shoe-1")["desc"] == "red running shoe"
    assert _adds(emulator) == 1


HELD: dict[str, Any] = {
    "digest": "x",
    "desc": "red running shoe",
    "custom_tags": {"color": "red"},
    "custom_num_tags": {"price": 59.0},
    "keywords": ["shoe"],
}
ASKED: dict[str, Any] = {
    "desc": "red running shoe",
    "custom_tags": {"color": "red"},
    "custom_num_tags": {"price": 59},
    "keywords": ["shoe"],
}


@pytest.mark.parametrize(
    ("asked", "difference"),
    [
        ({"custom_tags": {"color": "blue"}}, "custom_tags are {'color': 'red'}, wanted {'color': 'blue'}"),
        ({"custom_num_tags": {"price": 60}}, "custom_num_tags are {'price': 59.0}, wanted {'price': 60.0}"),
        (
            {"desc": "blue boot", "keywords": ["boot"]},
            "desc is 'red running shoe', wanted 'blue boot'; keywords are ['shoe'], wanted ['boot']",
        ),
    ],
    ids=["custom_tags", "custom_num_tags", "two-fields"],
)
def test_a_lost_add_meeting_an_item_that_differs_fails_naming_every_difference(
    emulator: Emulator, imagesearch_conn: Callable[..., str], asked: dict[str, Any], difference: str
) -> None:
    emulator.upsert_v2_service("kb-differs", items={"shoe-1": dict(HELD)})
    emulator.set_faults(sequence=["503_json"])  # answered 503 before applying: the item is read back
    op = _add(imagesearch_conn("token", max_attempts=1), "kb-differs", image_url=URL, **{**ASKED, **asked})
    with pytest.raises(AirflowFailException) as failed:
        op.execute({})
    assert str(failed.value).endswith(f"what is there is not what was asked: item shoe-1: {difference}")
    assert _item(emulator, "kb-differs", "shoe-1")["desc"] == "red running shoe"  # left as it was


def test_a_lost_forced_add_meeting_another_item_leaves_the_overwrite_to_a_retry(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    """With ``force`` a different item under the id is what the add overwrites: no failure without
    retries (``AirflowFailException``), but the lost answer's error, so the task's retry adds it."""
    emulator.upsert_v2_service("kb-forced", items={"shoe-1": {"digest": "x", "desc": "old boot"}})
    emulator.set_faults(sequence=["503_json"])
    conn_id = imagesearch_conn("token", max_attempts=1)
    with pytest.raises(ImageSearchApiError):  # an AirflowFailException is not one: no retry
        _add(conn_id, "kb-forced", image_url=URL, desc="red running shoe", force=True).execute({})
    assert _item(emulator, "kb-forced", "shoe-1")["desc"] == "old boot"
    retry = _add(conn_id, "kb-forced", image_url=URL, desc="red running shoe", force=True)
    assert retry.execute({})["result"] == "success"
    assert _item(emulator, "kb-forced", "shoe-1")["desc"] == "red running shoe"
