"""``hook.request(method, path, json=...)``: a call the provider does not wrap, on the same auth and retries.

``get_conn()`` is a bare ``requests.Session`` (no credentials); ``request()`` is the documented way to
reach an API path the hook has no method for. Checked against the emulator under every auth type, with
faults, for the sync hook and its async twin.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from airflow_provider_imagesearch.errors import (
    ImageSearchAuthError,
    ImageSearchNotFoundError,
    ImageSearchServerError,
    ImageSearchValidationError,
)
from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchAsyncHook, ImageSearchHook
from tests.support.fixtures import AUTH_TYPES

OBS = "https://shop-images.obs.cn-north-4.myhuaweicloud.com"


@pytest.mark.parametrize("auth", AUTH_TYPES)
def test_request_is_authenticated_under_every_auth_type(
    auth: str, imagesearch_conn: Callable[..., str], instance: Callable[..., str], emulator: Emulator
) -> None:
    conn_id = imagesearch_conn(auth)
    instance("shop-1", tags=["color"])
    emulator.reset_stats()
    with ImageSearchHook(conn_id) as hook:
        body = hook.request("GET", "/v1/{project_id}/service/shop-1")
        added = hook.request(
            "POST", "/v1/{project_id}/shop-1/image", json={"path": f"{OBS}/a.png", "tags": {"color": "red"}}
        )
    assert body["instanceName"] == "shop-1"
    assert added == {"result": "Success"}
    assert emulator.stats()["auth_failures"] == 0
    assert emulator.stats()["requests_by_auth"]["aksk" if auth == "aksk" else "token"] >= 2


def test_the_bare_session_is_not_authenticated(
    imagesearch_conn: Callable[..., str], instance: Callable[..., str], emulator: Emulator
) -> None:
    """Why request() exists: get_conn() sends requests without credentials."""
    conn_id = imagesearch_conn("token")
    instance("shop-1")
    with ImageSearchHook(conn_id) as hook:
        session = hook.get_conn()
        bare = session.get(f"{hook.settings.endpoint}/v1/{DEFAULT_PROJECT_ID}/service/shop-1", timeout=10)
        assert bare.status_code == 401
        assert hook.request("GET", f"/v1/{DEFAULT_PROJECT_ID}/service/shop-1")["instanceName"] == "shop-1"


def test_request_errors_are_the_providers_own(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    conn_id = imagesearch_conn("iam_password")
    with ImageSearchHook(conn_id) as hook, pytest.raises(ImageSearchNotFoundError) as caught:
        hook.request("GET", "/v1/{project_id}/service/no-such-instance")
    assert caught.value.error_code == "IS.0007"
    assert caught.value.request_id


def test_idempotent_methods_are_retried_and_posts_are_not(
    imagesearch_conn: Callable[..., str], instance: Callable[..., str], emulator: Emulator
) -> None:
    conn_id = imagesearch_conn("aksk")
    instance("shop-1")
    with ImageSearchHook(conn_id) as hook:
        emulator.set_faults(sequence=["500_json", "500_json"])
        assert hook.request("GET", "/v1/{project_id}/service/shop-1")["instanceName"] == "shop-1"
        assert hook.retry_stats["5xx"] == 2
        emulator.set_faults(sequence=["500_json"])
        with pytest.raises(ImageSearchServerError):
            hook.request("POST", "/v1/{project_id}/shop-1/image", json={"path": f"{OBS}/b.png"})
        # ...unless the caller says the call is harmless to repeat.
        emulator.set_faults(sequence=["500_json"])
        hook.request(
            "POST", "/v1/{project_id}/shop-1/image/check", json={"path": f"{OBS}/b.png"}, idempotent=True
        )
    assert hook.retry_stats["5xx"] == 3


def test_v2_service_goes_to_the_mms_endpoint(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    conn_id = imagesearch_conn("iam_password")
    emulator.upsert_v2_service("catalog", items={})
    with ImageSearchHook(conn_id) as hook:
        hook.add_data("catalog", item_id="i-1", image_url=f"{OBS}/a.png")
        answer = hook.request(
            "POST", "/v2/{project_id}/mms/catalog/data/check", json={"item_id": "i-1"}, service="mms"
        )
    assert answer["result"] == "success"
    assert answer["data"]["existed"] is True


def test_a_rejected_token_is_renewed_once(
    imagesearch_conn: Callable[..., str], instance: Callable[..., str], emulator: Emulator
) -> None:
    conn_id = imagesearch_conn("iam_password")
    instance("shop-1")
    with ImageSearchHook(conn_id) as hook:
        hook.request("GET", "/v1/{project_id}/service/shop-1")
        emulator.expire_tokens(include_ready=False)  # the ready token serves the other tests
        assert hook.request("GET", "/v1/{project_id}/service/shop-1")["instanceName"] == "shop-1"
    assert hook.retry_stats["token_renewal"] == 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"method": "TRACE", "path": "/v1/x"}, "method"),
        ({"method": "GET", "path": "v1/x"}, "path"),
        ({"method": "GET", "path": "https://evil.example/v1/x"}, "path"),
        ({"method": "GET", "path": "/v1/../../etc"}, "path"),
        ({"method": "GET", "path": "/v1/x?limit=1"}, "path"),
        ({"method": "GET", "path": "/v1//x"}, "path"),
        ({"method": "POST", "path": "/v1/x", "json": {"n": float("nan")}}, "json"),
        ({"method": "POST", "path": "/v1/x", "json": {"s": {1, 2}}}, "json"),
        ({"method": "GET", "path": "/v1/x", "service": "iam"}, "service"),
    ],
)
def test_bad_arguments_send_nothing(
    kwargs: dict[str, object], field: str, imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    conn_id = imagesearch_conn("token")
    emulator.reset_stats()
    with ImageSearchHook(conn_id) as hook, pytest.raises(ImageSearchValidationError) as caught:
        hook.request(**kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert emulator.stats()["requests_total"] == 0


def test_async_request_is_authenticated_and_retried(
    imagesearch_conn: Callable[..., str], instance: Callable[..., str], emulator: Emulator
) -> None:
    conn_id = imagesearch_conn("iam_password")
    instance("shop-1")
    emulator.set_faults(sequence=["503_json"])

    async def read() -> object:
        async with ImageSearchAsyncHook(conn_id) as hook:
            body = await hook.request("GET", "/v1/{project_id}/service/shop-1")
            assert hook.retry_stats["5xx"] == 1
            return body

    assert asyncio.run(read())["instanceName"] == "shop-1"  # type: ignore[index]


def test_async_request_with_bad_credentials_is_an_auth_error(
    imagesearch_conn: Callable[..., str], emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn_id = imagesearch_conn("token", token="not-a-token")

    async def read() -> object:
        async with ImageSearchAsyncHook(conn_id) as hook:
            return await hook.request("GET", "/v1/{project_id}/service/shop-1")

    with pytest.raises(ImageSearchAuthError):
        asyncio.run(read())
