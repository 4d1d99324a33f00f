"""The v2 (MMS) request builders refuse bad input naming the field, and parse the documented shapes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_imagesearch import api, api_v2
from airflow_provider_imagesearch.errors import (
    ImageSearchApiError,
    ImageSearchAuthError,
    ImageSearchNotFoundError,
    ImageSearchResponseError,
    ImageSearchServerError,
    ImageSearchValidationError,
)
from airflow_provider_imagesearch.models_v2 import LastItem, V2CheckResult, V2SearchResult
from airflow_provider_imagesearch.settings import settings_from_connection

P = "0b5e4c3a2f1d4e6a8c7b9d0e1f2a3b4c"
IMG = {"image_url": "https://bucket.obs.cn-north-4.myhuaweicloud.com/a.jpg"}


def _field(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(ImageSearchValidationError) as info:
        call(*args, **kwargs)
    return info.value.field


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"item_id": "", **IMG}, "item_id"),
        ({"item_id": "x" * 257, **IMG}, "item_id"),
        ({"item_id": "a"}, "image_url/image_base64"),
        ({"item_id": "a", "image_base64": "AAAA", **IMG}, "image_url/image_base64"),
        ({"item_id": "a", "image_url": "u" * 4097}, "image_url"),
        ({"item_id": "a", "desc": "d" * 2049, **IMG}, "desc"),
        ({"item_id": "a", "custom_tags": {"color": "r" * 65}, **IMG}, "custom_tags['color']"),
        ({"item_id": "a", "custom_tags": {"color": 3}, **IMG}, "custom_tags['color']"),
        ({"item_id": "a", "custom_num_tags": {"price": "9"}, **IMG}, "custom_num_tags['price']"),
        ({"item_id": "a", "custom_num_tags": {"price": True}, **IMG}, "custom_num_tags['price']"),
        ({"item_id": "a", "keywords": [], **IMG}, "keywords"),
        ({"item_id": "a", "keywords": ["k"] * 101, **IMG}, "keywords"),
        ({"item_id": "a", "keywords": ["k" * 65], **IMG}, "keywords[0]"),
        ({"item_id": "a", "force": "yes", **IMG}, "force"),
    ],
)
def test_add_data_refuses_bad_fields(kwargs: dict[str, Any], field: str) -> None:
    assert _field(api_v2.add_data, P, "svc", **kwargs) == field


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"limit": 1001, **IMG}, "limit"),
        ({"limit": 0, **IMG}, "limit"),
        ({"offset": -1, **IMG}, "offset"),
        ({"offset": 1, "limit": 1000, **IMG}, "offset+limit"),
        ({"offset": 901, "limit": 100, **IMG}, "offset+limit"),
        ({}, "image_url/image_base64"),
        ({"image_base64": "AAAA", **IMG}, "image_url/image_base64"),
        ({"min_score": 1.5, **IMG}, "min_score"),
        ({"search_type": "FUZZY", **IMG}, "search_type"),
        ({"search_type": "1", **IMG}, "search_type"),  # only IMAGE's value is documented
        ({"search_type": 0, **IMG}, "search_type"),  # the value is a string
        ({"search_type": "0"}, "image_url/image_base64"),  # "0" is IMAGE: it needs an image
        ({"search_type": "KEYWORD"}, "keywords"),
        ({"search_type": "KEYWORD", "keywords": ["k"] * 11}, "keywords"),
        ({"search_type": "TEXT"}, "text"),
        ({"search_type": "TEXT", "text": "t" * 513}, "text"),
        ({"last_item": {"score": 0.5}, **IMG}, "last_item"),
        ({"last_item": {"score": 0.5, "id": ""}, **IMG}, "last_item.id"),
        ({"custom_tags": {"color": ["r" * 65]}, **IMG}, "custom_tags['color']"),
        ({"custom_tags": {"color": ["r"] * 33}, **IMG}, "custom_tags['color']"),
        ({"custom_num_tags": {"price": {"from": 5, "to": 1}}, **IMG}, "custom_num_tags['price']"),
        ({"custom_num_tags": {"price": {"min": 5}}, **IMG}, "custom_num_tags['price']"),
    ],
)
def test_search_refuses_bad_fields(kwargs: dict[str, Any], field: str) -> None:
    assert _field(api_v2.search, P, "svc", **kwargs) == field


def test_search_takes_the_documented_enum_value_and_sends_it_as_given() -> None:
    """Page imagesearch_02_0039: the name or the value (``"0"`` for IMAGE); the SDK's docstring says so too."""
    by_value = api_v2.search(P, "svc", search_type="0", **IMG)
    assert by_value.body is not None
    assert by_value.body["search_type"] == "0"
    assert api_v2.search_type("0") == "IMAGE"
    with pytest.raises(ImageSearchValidationError, match="'0' for IMAGE"):
        api_v2.search_type("IMAGES")


def test_check_and_delete_need_an_id_or_a_condition() -> None:
    assert _field(api_v2.check_data, P, "svc") == "item_id/custom_tags/custom_num_tags"
    assert _field(api_v2.delete_data, P, "svc") == "item_id/custom_tags/custom_num_tags"
    assert _field(api_v2.check_data, P, "svc", custom_tags={"c": "r"}, limit=101) == "limit"
    assert _field(api_v2.update_data, P, "svc", item_id="a") == "desc/custom_tags/custom_num_tags"
    assert _field(api_v2.update_data, P, "bad name!", item_id="a", desc="d") == "service_name"


def test_builders_post_to_the_mms_paths_with_the_documented_body() -> None:
    add = api_v2.add_data(P, "svc", item_id="a 1", custom_num_tags={"price": 9.5}, force=True, **IMG)
    assert (add.method, add.path, add.service) == ("POST", f"/v2/{P}/mms/svc/data/add", "mms")
    assert add.idempotent  # force: a repeat overwrites with the same data
    assert not api_v2.add_data(P, "svc", item_id="a", **IMG).idempotent
    search = api_v2.search(
        P,
        "svc",
        search_type="KEYWORD",
        keywords=["red"],
        last_item=LastItem(0.5, "a"),
        custom_tags={"color": "red"},
        custom_num_tags={"price": {"from": 1}},
    )
    assert search.path == f"/v2/{P}/mms/svc/search"
    assert search.body == {
        "search_type": "KEYWORD",
        "limit": 10,
        "offset": 0,
        "keywords": ["red"],
        "last_item": {"score": 0.5, "id": "a"},
        "custom_tags": {"color": ["red"]},
        "custom_num_tags": {"price": {"from": 1}},
    }
    for build, suffix in ((api_v2.check_data, "data/check"), (api_v2.delete_data, "data/delete")):
        assert build(P, "svc", item_id="a").path == f"/v2/{P}/mms/svc/{suffix}"


def _parse(request: api.ApiRequest, body: Any, status: int = 200) -> Any:
    return api.parse_response(request, status, {"X-Request-Id": "r1"}, json.dumps(body).encode())


def test_search_response_parses_items_info_and_cursor() -> None:
    body = {
        "result": "success",
        "data": {
            "items": [
                {
                    "id": "a",
                    "score": 0.9,
                    "source": {"desc": "d", "custom_tags": {"c": "r"}, "keywords": ["k"]},
                },
                {"id": "b", "score": 0.8, "source": {"custom_num_tags": {"price": 3}}},
            ],
            "search_info": {
                "total_num": 7,
                "return_num": 2,
                "search_time": 4,
                "last_item": {"score": 0.8, "id": "b"},
            },
        },
    }
    result = _parse(api_v2.search(P, "svc", **IMG), body)
    assert isinstance(result, V2SearchResult)
    assert [i.id for i in result.items] == ["a", "b"]
    assert result.items[0].custom_tags == {"c": "r"}
    assert result.items[1].custom_num_tags == {"price": 3.0}
    assert (result.total_num, result.return_num, result.last_item) == (7, 2, LastItem(0.8, "b"))
    assert result.to_dict()["items"][0]["keywords"] == ["k"]


def test_check_response_and_errors() -> None:
    check = _parse(
        api_v2.check_data(P, "svc", item_id="a"), {"result": "success", "data": {"existed": False}}
    )
    assert isinstance(check, V2CheckResult)
    assert check.existed is False
    with pytest.raises(ImageSearchResponseError):
        _parse(api_v2.check_data(P, "svc", item_id="a"), {"result": "success", "data": {}})
    with pytest.raises(ImageSearchResponseError):
        _parse(api_v2.search(P, "svc", **IMG), {"result": "success", "data": {"items": [{"score": 1}]}})


@pytest.mark.parametrize(
    ("code", "error_type", "token_rejected"),
    [
        # The v2 table (imagesearch_02_0043): refusals of the caller, an unknown service, "try again later".
        ("MMS.0001", ImageSearchAuthError, False),
        ("MMS.0002", ImageSearchAuthError, False),
        ("ModelArts.4204", ImageSearchAuthError, False),
        ("MMS.1001", ImageSearchNotFoundError, False),
        ("MMS.1014", ImageSearchServerError, False),
        ("MMS.1015", ImageSearchServerError, False),
        ("MMS.1016", ImageSearchServerError, False),
        ("MMS.0003", ImageSearchApiError, False),
        ("APIGW.0307", ImageSearchAuthError, True),
        ("APIG.0301", ImageSearchAuthError, True),
        # v1's codes mean nothing to v2 (it never answers them): an ordinary refusal, not v1's classes.
        ("IS.0007", ImageSearchApiError, False),
        ("IS.0009", ImageSearchApiError, False),
        ("IS.0004", ImageSearchApiError, False),
        # The emulator's own codes are no documented code: an ordinary refusal.
        ("MMS.9001", ImageSearchApiError, False),
    ],
)
def test_v2_errors_are_classified_from_the_v2_table(
    code: str, error_type: type[ImageSearchApiError], token_rejected: bool
) -> None:
    with pytest.raises(ImageSearchApiError) as info:
        _parse(api_v2.search(P, "svc", **IMG), {"error_code": code, "error_msg": "x"}, 400)
    assert type(info.value) is error_type
    assert getattr(info.value, "token_rejected", False) is token_rejected


def test_v1_codes_keep_their_v1_classification() -> None:
    request = api.get_instance(P, "lib")
    for code, error_type in (
        ("IS.0007", ImageSearchNotFoundError),
        ("IS.0009", ImageSearchServerError),
        ("IS.0013", ImageSearchAuthError),  # "The token is empty."
        ("MMS.1015", ImageSearchApiError),  # a v2 code means nothing to v1
    ):
        with pytest.raises(ImageSearchApiError) as info:
            api.raise_for_error(request, 400, {}, f'{{"error_code": "{code}", "error_msg": "x"}}'.encode())
        assert type(info.value) is error_type, code


def test_delete_by_id_answers_without_data() -> None:
    """The delete page: ``data`` only for a conditional delete; by id the answer is ``{"result"}``."""
    plain = _parse(api_v2.delete_data(P, "svc", item_id="a"), {"result": "success"})
    assert (plain.deleted_ids, plain.total_num, plain.delete_num) == (("a",), 1, 1)
    forced = _parse(api_v2.delete_data(P, "svc", item_id="a", force=True), {"result": "success"})
    # With force the service answers the same whether the item was there: no id, no count (nothing invented).
    assert (forced.deleted_ids, forced.total_num, forced.delete_num) == ((), None, None)
    by_tags = _parse(
        api_v2.delete_data(P, "svc", custom_tags={"c": ["r"]}),
        {
            "result": "success",
            "data": {"items": [{"id": "x"}], "delete_info": {"total_num": 3, "delete_num": 1}},
        },
    )
    assert (by_tags.deleted_ids, by_tags.total_num, by_tags.delete_num) == (("x",), 3, 1)


def test_mms_endpoint_from_region_or_extra() -> None:
    base: dict[str, Any] = {"host": None, "port": None, "login": None, "password": "tok"}
    from_region = settings_from_connection(**base, extras={"region": "cn-north-4"})
    assert from_region.base_url("mms") == "https://mms.cn-north-4.myhuaweicloud.com"
    assert from_region.base_url("imagesearch") == "https://imagesearch.cn-north-4.myhuaweicloud.com"
    override = settings_from_connection(
        **base, extras={"region": "cn-north-4", "mms_endpoint": "http://127.0.0.1:9/"}
    )
    assert override.base_url("mms") == "http://127.0.0.1:9"
    with pytest.raises(Exception, match="mms_endpoint"):
        settings_from_connection(
            **base, extras={"region": "cn-north-4", "mms_endpoint": "http://mms.example"}
        )
