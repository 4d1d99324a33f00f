"""Request building and response parsing, shared by the sync and async hooks."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_imagesearch import api
from airflow_provider_imagesearch.errors import (
    ImageSearchApiError,
    ImageSearchAuthError,
    ImageSearchError,
    ImageSearchNotFoundError,
    ImageSearchResponseError,
    ImageSearchServerError,
    ImageSearchThrottledError,
    ImageSearchValidationError,
)
from airflow_provider_imagesearch.models import InstanceDetail, InstanceStatus

#: An image the service can download: an OBS HTTPS URL of the default region (the reference's form).
OBS = "https://shop-images.obs.cn-north-4.myhuaweicloud.com"
PROJECT = "0b5e4c3a2f1d4e6a8c7b9d0e1f2a3b4c"
GET = api.get_instance(PROJECT, "shop-1")
DETAIL = {
    "instanceName": "shop-1",
    "level": 30000000,
    "expiredDate": 1530848365207,
    "domain": "General image search",
    "desc": "register service for instance test.",
    "registerDate": 1529377136279,
    "tags": ["tag1", "tag2"],
    "status": "NORMAL",
}


def parse(
    status: int, body: Any, headers: dict[str, str] | None = None, request: api.ApiRequest = GET
) -> Any:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return api.parse_response(request, status, headers or {"X-Request-Id": "rid-1"}, content)


def test_instance_detail_is_typed_and_timezone_aware() -> None:
    detail = parse(200, DETAIL)
    assert isinstance(detail, InstanceDetail)
    assert detail.status is InstanceStatus.NORMAL
    assert detail.registered_at is not None
    assert detail.registered_at.tzinfo is not None
    assert detail.registered_at.isoformat() == "2018-06-19T02:58:56.279000+00:00"
    assert detail.project_id == PROJECT
    as_dict = detail.to_dict()
    assert json.loads(json.dumps(as_dict)) == as_dict
    assert as_dict["expires_at"] == "2018-07-06T03:39:25.207000Z"
    assert as_dict["never_expires"] is False
    assert InstanceDetail.from_dict(as_dict) == detail


def test_never_expiring_instance() -> None:
    detail = parse(200, {**DETAIL, "expiredDate": -1})
    assert detail.expires_at is None
    assert detail.never_expires is True
    assert detail.to_dict()["expires_at"] is None


def test_unknown_status_keeps_the_raw_string() -> None:
    detail = parse(200, {**DETAIL, "status": "FROZEN"})
    assert detail.status.value == "FROZEN"
    assert not detail.status.is_known
    assert detail.to_dict()["status"] == "FROZEN"
    assert InstanceStatus("CREATION_FAILD") is InstanceStatus.CREATION_FAILD


@pytest.mark.parametrize(
    ("status", "body", "error_type", "code"),
    [
        (
            400,
            {"error_code": "IS.0007", "error_msg": "Invalid instance name."},
            ImageSearchNotFoundError,
            "IS.0007",
        ),
        (
            400,
            {"error_code": "IS.0004", "error_msg": "Exception verifying token."},
            ImageSearchAuthError,
            "IS.0004",
        ),
        (
            401,
            {"error_code": "APIGW.0307", "error_msg": "The token must be updated.", "request_id": "r"},
            ImageSearchAuthError,
            "APIGW.0307",
        ),
        (
            403,
            {"error_code": "APIGW.0302", "error_msg": "not authorized"},
            ImageSearchAuthError,
            "APIGW.0302",
        ),
        (
            429,
            {"error_code": "APIGW.0308", "error_msg": "throttled"},
            ImageSearchThrottledError,
            "APIGW.0308",
        ),
        (
            503,
            {"error_code": "APIGW.0613", "error_msg": "IAM unavailable"},
            ImageSearchServerError,
            "APIGW.0613",
        ),
        (502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", ImageSearchServerError, "502"),
        (400, {"error": {"code": "400", "message": "nested"}}, ImageSearchApiError, "400"),
        (
            404,
            {"error_code": "APIGW.0101", "error_msg": "The API does not exist"},
            ImageSearchApiError,
            "APIGW.0101",
        ),
        (400, b"", ImageSearchApiError, "400"),
    ],
)
def test_error_bodies(status: int, body: Any, error_type: type[ImageSearchApiError], code: str) -> None:
    with pytest.raises(error_type) as caught:
        parse(status, body, headers={"X-Request-Id": "rid-9", "Retry-After": "2"})
    error = caught.value
    assert type(error) is error_type
    assert error.status == status
    assert error.error_code == code
    assert error.request_id == "rid-9"
    assert error.method == "GET"
    assert error.path == f"/v1/{PROJECT}/service/shop-1"
    assert "rid-9" in str(error)
    if status == 429:
        assert error.retry_after == 2.0  # type: ignore[attr-defined]


def test_token_rejection_is_flagged_for_renewal() -> None:
    with pytest.raises(ImageSearchAuthError) as caught:
        parse(401, {"error_code": "APIGW.0301", "error_msg": "decrypt token fail"})
    assert caught.value.token_rejected is True
    with pytest.raises(ImageSearchAuthError) as caught:
        parse(403, {"error_code": "APIGW.0302", "error_msg": "forbidden"})
    assert caught.value.token_rejected is False


def test_html_502_message_is_short_and_tag_free() -> None:
    page = b"<html><head><title>502</title></head><body>" + b"<p>Bad Gateway</p>" * 200 + b"</body></html>"
    with pytest.raises(ImageSearchServerError) as caught:
        parse(502, page, headers={"Content-Type": "text/html"})
    assert "<" not in caught.value.error_msg
    assert caught.value.error_msg.startswith("non-JSON response (text/html)")
    assert len(caught.value.error_msg) < 260


@pytest.mark.parametrize(
    "body",
    [
        b"<html>502</html>",
        b'{"instanceName": "shop-1", "sta',
        b"[1, 2, 3]",
        json.dumps({"status": "NORMAL"}).encode(),
        json.dumps({**DETAIL, "registerDate": "yesterday"}).encode(),
        json.dumps({**DETAIL, "tags": "a,b"}).encode(),
        json.dumps({**DETAIL, "status": 7}).encode(),
        json.dumps({**DETAIL, "expiredDate": 10**30}).encode(),
        b"",
        b"null",
    ],
)
def test_malformed_success_bodies_raise_response_error(body: bytes) -> None:
    with pytest.raises(ImageSearchResponseError) as caught:
        parse(200, body)
    assert caught.value.error_code == "MALFORMED_RESPONSE"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    payload=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=6)
        ),
        max_leaves=20,
    )
    | st.fixed_dictionaries(
        {},
        optional={
            "instanceName": st.one_of(st.text(max_size=5), st.integers(), st.none()),
            "status": st.one_of(st.text(max_size=8), st.integers(), st.none()),
            "registerDate": st.one_of(st.integers(), st.text(max_size=4), st.floats(allow_nan=False)),
            "expiredDate": st.one_of(st.integers(), st.text(max_size=4)),
            "tags": st.one_of(st.lists(st.text(max_size=3)), st.text(max_size=3), st.integers()),
            "level": st.one_of(st.integers(), st.text(max_size=3)),
            "error_code": st.one_of(st.text(max_size=8), st.integers()),
        },
    ),
    status=st.sampled_from([200, 201, 400, 401, 403, 404, 429, 500, 502]),
    operation=st.sampled_from(sorted(api._RESULT_PARSERS)),
)
def test_only_project_errors_escape_the_parser(payload: Any, status: int, operation: str) -> None:
    request = api.ApiRequest(operation, "GET", "/v1/p/service/x", None, True, PROJECT)
    with contextlib.suppress(ImageSearchError):
        api.parse_response(request, status, {}, json.dumps(payload).encode())


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: api.get_instance(PROJECT, "../x"), "instance_name"),
        (lambda: api.get_instance(PROJECT, "A"), "instance_name"),
        (lambda: api.get_instance(PROJECT, "x" * 17), "instance_name"),
        (lambda: api.get_instance(PROJECT, ""), "instance_name"),
        (lambda: api.get_instance(PROJECT, None), "instance_name"),  # type: ignore[arg-type]
        (lambda: api.get_instance("a/b", "ok"), "project_id"),
        (lambda: api.get_instance("a?b", "ok"), "project_id"),
        (lambda: api.search_images(PROJECT, "ok", path="p", limit=0), "limit"),
        (lambda: api.search_images(PROJECT, "ok", path="p", limit=101), "limit"),
        (lambda: api.search_images(PROJECT, "ok", path="p", offset=-1), "offset"),
        (lambda: api.create_instance(PROJECT, "Bad"), "instance_name"),
        (lambda: api.add_image(PROJECT, "ok", path=""), "path"),
        (lambda: api.modify_image(PROJECT, "ok", path="p", tags={str(i): i for i in range(11)}), "tags"),
    ],
)
def test_builders_refuse_bad_input_naming_the_field(build: Any, field: str) -> None:
    with pytest.raises(ImageSearchValidationError) as caught:
        build()
    assert caught.value.field == field
    assert str(caught.value).startswith(f"Invalid {field} ")


def test_builders_shape_the_documented_requests() -> None:
    request = api.search_images(
        PROJECT,
        "shop_1",
        path=f"{OBS}/a.jpg",
        limit=5,
        offset=2,
        box={"x": 1, "y": 2, "width": 3, "height": 4},
    )
    assert (request.method, request.path) == ("POST", f"/v1/{PROJECT}/shop_1/image/search")
    assert request.body == {
        "limit": 5,
        "offset": 2,
        "path": f"{OBS}/a.jpg",
        "is_crop": True,
        "box": {"x": 1, "y": 2, "width": 3, "height": 4},
    }
    assert request.idempotent
    assert not api.create_instance(PROJECT, "a").idempotent
    assert not api.add_image(PROJECT, "a", path="p").idempotent
    delete = api.delete_image(PROJECT, "a", path="p")
    assert (delete.method, delete.body) == ("DELETE", {"path": "p"})
    assert api.check_image(PROJECT, "a", path="p").path.endswith("/a/image/check")
