"""The v2 (MMS) behaviours the pages and the 3.1.219 models document, one rule per test, over plain HTTP."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import requests

from airflow_provider_imagesearch.emulator import Emulator

from .helpers import Api

SERVICE = "shop"


def _v2(api: Api, op: str, body: Any) -> requests.Response:
    suffix = "search" if op == "search" else f"data/{op}"
    return api.call("POST", f"/v2/{api.project_id}/mms/{SERVICE}/{suffix}", body)


def _error(response: requests.Response) -> tuple[int, str, str]:
    body = response.json()
    return response.status_code, body["error_code"], body["error_msg"]


@pytest.fixture
def shop(emulator: Emulator) -> dict[str, dict[str, Any]]:
    items = {
        "a1": {"image_url": "https://x/a1.jpg", "custom_tags": {"model": "a"}, "keywords": ["red"]},
        "a2": {"image_url": "https://x/a2.jpg", "custom_tags": {"model": "a"}, "keywords": ["red"]},
        "b1": {"image_url": "https://x/b1.jpg", "custom_tags": {"model": "b"}, "keywords": ["red"]},
        "c1": {"image_url": "https://x/c1.jpg", "keywords": ["red"]},
    }
    emulator.upsert_v2_service(SERVICE, custom_tags=["model", "color"], items=items)
    return items


# --- delete ---------------------------------------------------------------------------------------------
def test_delete_by_id_answers_no_data_and_a_conditional_delete_does(api: Api, shop: dict[str, Any]) -> None:
    assert _v2(api, "delete", {"item_id": "a1"}).json() == {"result": "success"}
    assert _v2(api, "check", {"item_id": "a1"}).json()["data"] == {"existed": False}
    assert _error(_v2(api, "delete", {"item_id": "a1"}))[:2] == (400, "MMS.9002")
    assert _v2(api, "delete", {"item_id": "a1", "force": True}).json() == {"result": "success"}
    by_tag = _v2(api, "delete", {"custom_tags": {"model": ["b"]}, "force": False}).json()
    assert by_tag == {
        "result": "success",
        "data": {"items": [{"id": "b1"}], "delete_info": {"total_num": 1, "delete_num": 1}},
    }


# --- search_type ------------------------------------------------------------------------------------------
def test_search_type_is_the_enums_name_or_its_documented_value(api: Api, shop: dict[str, Any]) -> None:
    query = {"image_url": "https://x/a1.jpg"}
    by_name = _v2(api, "search", {"search_type": "IMAGE", **query}).json()
    by_value = _v2(api, "search", {"search_type": "0", **query}).json()
    assert by_value == by_name
    assert by_name["data"]["items"][0] == {
        "id": "a1",
        "score": 1.0,
        "source": by_name["data"]["items"][0]["source"],
    }
    # Only IMAGE's value is documented ("IMAGE/0", values may change): others are refused, as are
    # numbers (the field is a string) and unknown names.
    for value in ("1", 0, "image", "SOUND"):
        assert _error(_v2(api, "search", {"search_type": value, **query})) == (
            400,
            "MMS.0003",
            "Invalid parameter: search_type",
        ), value


def test_search_type_must_be_one_the_service_offers(api: Api, emulator: Emulator) -> None:
    emulator.upsert_v2_service(SERVICE, search_types=["KEYWORD"], items={"k": {"keywords": ["red"]}})
    assert _v2(api, "search", {"search_type": "KEYWORD", "keywords": ["red"]}).status_code == 200
    refused = _v2(api, "search", {"search_type": "IMAGE", "image_url": "https://x/k.jpg"})
    assert _error(refused) == (400, "MMS.0003", "Invalid parameter: search_type")


# --- optional_params.collapse_key -------------------------------------------------------------------------
def test_collapse_key_keeps_the_best_hit_per_value_and_drops_items_without_the_tag(
    api: Api, shop: dict[str, Any]
) -> None:
    body = {"search_type": "KEYWORD", "keywords": ["red"]}
    plain = _v2(api, "search", body).json()["data"]
    assert [i["id"] for i in plain["items"]] == ["a1", "a2", "b1", "c1"]  # all score 1.0: by id
    collapsed = _v2(api, "search", {**body, "optional_params": {"collapse_key": "model"}}).json()["data"]
    assert [i["id"] for i in collapsed["items"]] == ["a1", "b1"]
    assert collapsed["search_info"]["total_num"] == 2
    # Best-scoring, not first by id: an image search makes a2 the best of "a".
    image = {
        "search_type": "IMAGE",
        "image_url": "https://x/a2.jpg",
        "optional_params": {"collapse_key": "model"},
    }
    hits = _v2(api, "search", image).json()["data"]["items"]
    assert hits[0]["id"] == "a2"
    assert sorted(i["id"] for i in hits) == ["a2", "b1"]


def test_collapse_key_must_be_a_tag_key_of_the_service(api: Api, shop: dict[str, Any]) -> None:
    body = {"search_type": "KEYWORD", "keywords": ["red"], "optional_params": {"collapse_key": "size"}}
    assert _error(_v2(api, "search", body)) == (
        400,
        "MMS.0003",
        "Invalid parameter: optional_params.collapse_key",
    )


# --- optional_params, image_info -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"unknown": 1}, "optional_params"),
        ({"box": "1, 2, 30, 40"}, "optional_params.box"),
        ({"box": "0,0,10,100"}, "optional_params.box"),  # narrower than 15 px
        ({"box": "30,0,10,100"}, "optional_params.box"),  # x2 < x1
        ({"do_det": "yes"}, "optional_params.do_det"),
        ({"category": -1}, "optional_params.category"),
        ({"max_scan_num": 0}, "optional_params.max_scan_num"),
        ({"nprobe": 1.5}, "optional_params.nprobe"),
        ({"text_lang": ""}, "optional_params.text_lang"),
    ],
)
def test_optional_params_are_checked_against_the_models(
    api: Api, shop: dict[str, Any], options: dict[str, Any], field: str
) -> None:
    body = {"search_type": "IMAGE", "image_url": "https://x/a1.jpg", "optional_params": options}
    assert _error(_v2(api, "search", body)) == (400, "MMS.0003", f"Invalid parameter: {field}")


def test_image_info_reports_the_subject_searched_and_added(api: Api, shop: dict[str, Any]) -> None:
    options = {"box": "10,20,110,220", "category": 3, "max_scan_num": 500, "nprobe": 8, "do_det": False}
    data = _v2(
        api, "search", {"search_type": "IMAGE", "image_url": "https://x/a1.jpg", "optional_params": options}
    ).json()["data"]
    info = data["image_info"]
    assert (info["box"], info["category"]) == ("10,20,110,220", 3)
    assert info["objects"] == [{"box": "10,20,110,220", "category": 3, "category_name": "category 3"}]
    keyword = _v2(api, "search", {"search_type": "KEYWORD", "keywords": ["red"]}).json()["data"]
    assert "image_info" not in keyword  # no query image, no subjects
    added = _v2(
        api, "add", {"item_id": "n", "image_url": "https://x/n.jpg", "optional_params": {"box": "0,0,20,20"}}
    )
    assert added.json()["data"]["image_info"]["objects"][0]["box"] == "0,0,20,20"
    refused = _v2(
        api, "add", {"item_id": "m", "image_url": "u", "optional_params": {"collapse_key": "model"}}
    )
    assert _error(refused) == (400, "MMS.0003", "Invalid parameter: optional_params")  # a search-only key


# --- images -------------------------------------------------------------------------------------------------
def test_an_image_over_5_mb_is_refused(api: Api, shop: dict[str, Any]) -> None:
    big = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * (5 * 1024 * 1024)).decode()
    refused = _v2(api, "add", {"item_id": "big", "image_base64": big})
    assert _error(refused) == (400, "MMS.0003", "Invalid parameter: image_base64")
    small = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 1000).decode()
    assert _v2(api, "add", {"item_id": "small", "image_base64": small}).status_code == 200


def test_a_body_that_is_not_json_is_an_invalid_parameter(api: Api, shop: dict[str, Any]) -> None:
    headers = {"Content-Type": "application/json"}
    url = f"/v2/{api.project_id}/mms/{SERVICE}/data/add"
    assert _error(api.call("POST", url, data=b"[1]", headers=headers)) == (
        400,
        "MMS.0003",
        "Invalid parameter: request body",
    )
