"""The v2 (MMS) operations of both hooks against the emulator over loopback HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.errors import (
    ImageSearchApiError,
    ImageSearchNotFoundError,
    ImageSearchServerError,
    ImageSearchValidationError,
)
from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchAsyncHook, ImageSearchHook
from airflow_provider_imagesearch.models_v2 import V2SearchResult
from tests.hooks.test_imagesearch_hook import PNG
from tests.support.fixtures import AUTH_TYPES

SERVICE = "shop"


def v2_requests(emulator: Emulator) -> list[dict[str, Any]]:
    return [r for r in emulator.requests_log() if r["path"].startswith("/v2/")]


@pytest.fixture
def service(emulator: Emulator) -> str:
    emulator.upsert_v2_service(SERVICE, custom_tags=["color"], custom_num_tags=["price"], items={})
    return SERVICE


@pytest.mark.parametrize("auth", AUTH_TYPES)
def test_all_five_operations_sync(
    auth: str, imagesearch_conn: Callable[..., str], emulator: Emulator, service: str
) -> None:
    hook = ImageSearchHook(imagesearch_conn(auth))
    added = hook.add_data(
        service,
        item_id="red-1",
        image_base64=PNG,
        desc="red shoe",
        custom_tags={"color": "red"},
        custom_num_tags={"price": 20},
        keywords=["red", "shoe"],
    )
    assert added.item_id == "red-1"
    assert added.result == "success"
    hook.add_data(service, item_id="blue-1", image_url="https://x.example/b.jpg", keywords=["blue"])
    found = hook.search_data(service, image_base64=PNG, limit=5)
    assert isinstance(found, V2SearchResult)
    assert found.items[0].id == "red-1"
    assert found.items[0].score == 1.0
    assert found.items[0].custom_num_tags == {"price": 20.0}
    by_keyword = hook.search_data(service, search_type="KEYWORD", keywords=["blue"])
    assert [i.id for i in by_keyword.items] == ["blue-1"]
    filtered = hook.search_data(service, image_base64=PNG, custom_num_tags={"price": {"from": 10, "to": 30}})
    assert [i.id for i in filtered.items] == ["red-1"]
    assert hook.update_data(service, item_id="blue-1", custom_tags={"color": "blue"}) == "success"
    check = hook.check_data(service, item_id="blue-1")
    assert check.existed is True
    assert check.item is not None
    assert check.item.custom_tags == {"color": "blue"}
    by_tag = hook.check_data(service, custom_tags={"color": ["blue"]})
    assert [i.id for i in by_tag.items] == ["blue-1"]
    deleted = hook.delete_data(service, item_id="blue-1")
    assert deleted.deleted_ids == ("blue-1",)
    assert hook.check_data(service, item_id="blue-1").existed is False
    assert {r["auth"] for r in v2_requests(emulator)} == {"token" if auth != "aksk" else "aksk"}


@pytest.mark.parametrize("auth", AUTH_TYPES)
def test_all_five_operations_async(
    auth: str, imagesearch_conn: Callable[..., str], emulator: Emulator, service: str
) -> None:
    conn_id = imagesearch_conn(auth)

    async def run() -> None:
        async with ImageSearchAsyncHook(conn_id) as hook:
            added = await hook.add_data(
                service, item_id="a", image_url="https://x.example/a.jpg", keywords=["k"]
            )
            assert added.result == "success"
            found = await hook.search_data(service, image_url="https://x.example/a.jpg")
            assert [(i.id, i.score) for i in found.items] == [("a", 1.0)]
            assert await hook.update_data(service, item_id="a", desc="new") == "success"
            check = await hook.check_data(service, item_id="a")
            assert check.item is not None
            assert check.item.desc == "new"
            assert (await hook.delete_data(service, item_id="a")).deleted_ids == ("a",)
            assert (await hook.search_all(service, search_type="KEYWORD", keywords=["k"])) == []

    asyncio.run(run())
    assert len(v2_requests(emulator)) == 6


def test_search_all_pages_past_the_offset_limit(
    imagesearch_conn: Callable[..., str], emulator: Emulator, service: str
) -> None:
    items = {
        f"i{n:04d}": {"image_url": f"https://x.example/{n}.jpg", "keywords": ["bulk"]} for n in range(1203)
    }
    emulator.upsert_v2_service(SERVICE, items=items)
    hook = ImageSearchHook(imagesearch_conn("token"))
    found = hook.search_all(service, search_type="KEYWORD", keywords=["bulk"], page_size=500)
    assert len(found) == 1203  # more than offset + limit could ever reach
    assert len({i.id for i in found}) == 1203
    assert len(v2_requests(emulator)) == 3
    assert len(hook.search_all(service, search_type="KEYWORD", keywords=["bulk"], max_items=250)) == 250

    async def run() -> int:
        async with ImageSearchAsyncHook(imagesearch_conn("token")) as async_hook:
            return len(
                await async_hook.search_all(service, search_type="KEYWORD", keywords=["bulk"], page_size=1000)
            )

    assert asyncio.run(run()) == 1203


@pytest.mark.parametrize(
    ("call", "kwargs", "field"),
    [
        ("add_data", {"item_id": "x" * 257, "image_url": "u"}, "item_id"),
        ("add_data", {"item_id": "", "image_url": "u"}, "item_id"),
        ("add_data", {"item_id": "a"}, "image_url/image_base64"),
        ("add_data", {"item_id": "a", "image_url": "u", "image_base64": PNG}, "image_url/image_base64"),
        (
            "add_data",
            {"item_id": "a", "image_url": "u", "custom_tags": {"color": "r" * 65}},
            "custom_tags['color']",
        ),
        ("update_data", {"item_id": "a", "custom_tags": {"color": "r" * 65}}, "custom_tags['color']"),
        ("search_data", {"image_url": "u", "limit": 1001}, "limit"),
        ("search_data", {"image_url": "u", "limit": 100, "offset": 901}, "offset+limit"),
        ("search_data", {}, "image_url/image_base64"),
        ("check_data", {"item_id": "x" * 257}, "item_id"),
        ("delete_data", {"item_id": "x" * 257}, "item_id"),
    ],
)
def test_bad_input_is_refused_before_any_request(
    call: str,
    kwargs: dict[str, Any],
    field: str,
    imagesearch_conn: Callable[..., str],
    emulator: Emulator,
    service: str,
) -> None:
    hook = ImageSearchHook(imagesearch_conn("aksk"))
    with pytest.raises(ImageSearchValidationError) as info:
        getattr(hook, call)(service, **kwargs)
    assert info.value.field == field
    assert field.split("[")[0].split("/")[0].split("+")[0] in str(info.value)
    assert emulator.stats()["requests_total"] == 0


def test_add_is_not_blindly_retried_unless_forced(
    imagesearch_conn: Callable[..., str], emulator: Emulator, service: str
) -> None:
    hook = ImageSearchHook(imagesearch_conn("token"))
    emulator.set_faults(sequence=["503_json"])
    with pytest.raises(ImageSearchServerError):
        hook.add_data(service, item_id="a", image_url="https://x.example/a.jpg")
    assert len(v2_requests(emulator)) == 1
    emulator.set_faults(sequence=["503_json"])
    assert (
        hook.add_data(service, item_id="a", image_url="https://x.example/a.jpg", force=True).result
        == "success"
    )
    assert len(v2_requests(emulator)) == 3
    assert hook.retry_stats["5xx"] == 1


def test_delete_whose_answer_was_lost_is_adopted(
    imagesearch_conn: Callable[..., str], emulator: Emulator, service: str
) -> None:
    hook = ImageSearchHook(imagesearch_conn("token"))
    hook.add_data(service, item_id="a", image_url="https://x.example/a.jpg")
    emulator.set_faults(sequence=["drop_after"])  # deleted, then the answer is lost
    # Gone, which is success; but reported as gone, not deleted: another writer may have deleted it.
    adopted = hook.delete_data(service, item_id="a")
    assert (adopted.deleted_ids, adopted.delete_num, adopted.gone_ids) == ((), 0, ("a",))
    with pytest.raises(ImageSearchApiError) as info:
        hook.delete_data(service, item_id="a")  # no lost answer: a missing item is an error
    assert info.value.error_code == "MMS.9002"  # the emulator's own code: no documented one exists
    # A delete by id is answered without ``data``; with force the counts are unknown.
    assert hook.delete_data(service, item_id="a", force=True).delete_num is None


def test_unknown_service_is_not_found(imagesearch_conn: Callable[..., str], emulator: Emulator) -> None:
    hook = ImageSearchHook(imagesearch_conn("token"))
    with pytest.raises(ImageSearchNotFoundError):
        hook.check_data("no-such-service", item_id="a")
