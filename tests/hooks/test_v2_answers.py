"""How v2 answers are read: ``search_all`` paging against ``total_num``, and the optional ``data`` (issue 20).

Both suspicions of the review are settled here on the parsing and paging code itself (sans-IO: the pages
are answers as the service documents them; the emulator never sends a short page with more to come, and
always sends ``data``), plus one end-to-end run of ``search_all`` against the emulator.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_imagesearch import api, api_v2
from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from airflow_provider_imagesearch.errors import ImageSearchResponseError
from airflow_provider_imagesearch.hooks.imagesearch_v2 import _Pager
from airflow_provider_imagesearch.models_v2 import V2SearchResult

PROJECT = DEFAULT_PROJECT_ID


def _page(ids: list[str], total: int | None, start_score: float = 0.9) -> V2SearchResult:
    items = [{"id": i, "score": round(start_score - n * 0.001, 4), "source": {}} for n, i in enumerate(ids)]
    info: dict[str, object] = {"return_num": len(ids)}
    if total is not None:
        info["total_num"] = total
    return V2SearchResult.from_api({"result": "success", "data": {"items": items, "search_info": info}})


def _request() -> api.ApiRequest:
    return api_v2.search(PROJECT, "svc", image_url="https://cdn.example/q.jpg")


def test_a_short_page_does_not_end_paging_while_total_num_says_more_remain() -> None:
    """Confirmed: a short page ended ``search_all`` although ``total_num`` said results remained (a service
    may answer fewer than ``limit``, e.g. after ``collapse_key`` or ``max_scan_num``)."""
    pager = _Pager(page_size=3, max_items=None)
    assert pager.take(_page(["a", "b"], total=6), 3, _request()) is True
    assert pager.take(_page(["c", "d"], total=6, start_score=0.8), 3, _request()) is True
    assert pager.take(_page(["e", "f"], total=6, start_score=0.7), 3, _request()) is False
    assert [item.id for item in pager.items] == ["a", "b", "c", "d", "e", "f"]


def test_a_short_page_ends_paging_when_total_num_is_reached_or_unknown() -> None:
    done = _Pager(page_size=3, max_items=None)
    assert done.take(_page(["a", "b"], total=2), 3, _request()) is False
    unknown = _Pager(page_size=3, max_items=None)
    assert unknown.take(_page(["a", "b"], total=None), 3, _request()) is False


def test_an_empty_page_ends_paging_even_if_total_num_promises_more() -> None:
    """No endless loop on a service whose total_num overcounts: an empty page cannot advance the cursor."""
    pager = _Pager(page_size=3, max_items=None)
    assert pager.take(_page(["a", "b", "c"], total=10), 3, _request()) is True
    assert pager.take(_page([], total=10), 3, _request()) is False
    assert len(pager.items) == 3


def _parse(request: api.ApiRequest, body: dict[str, object]) -> object:
    return api.parse_response(request, 200, {}, json.dumps(body).encode())


def test_a_search_answer_without_data_is_no_results() -> None:
    """Confirmed: ``data`` is optional in the SDK's model; its absence was a malformed-response error."""
    result = _parse(_request(), {"result": "success"})
    assert isinstance(result, V2SearchResult)
    assert (result.items, result.total_num) == ((), 0)


def test_a_conditional_check_answer_without_data_is_no_items() -> None:
    request = api_v2.check_data(PROJECT, "svc", custom_tags={"color": ["red"]})
    result = _parse(request, {"result": "success"})
    assert result.items == ()  # type: ignore[attr-defined]


def test_a_conditional_delete_answer_without_data_is_nothing_listed() -> None:
    request = api_v2.delete_data(PROJECT, "svc", custom_tags={"color": ["red"]})
    assert _parse(request, {"result": "success"}).deleted_ids == ()  # type: ignore[attr-defined]


def test_a_delete_by_id_answers_without_data_and_names_its_item() -> None:
    """The delete page: ``data`` is present only for a conditional delete; success by id deleted that id."""
    request = api_v2.delete_data(PROJECT, "svc", item_id="a")
    result = _parse(request, {"result": "success"})
    assert (result.deleted_ids, result.delete_num) == (("a",), 1)  # type: ignore[attr-defined]


def test_an_id_check_without_data_is_still_malformed() -> None:
    """Whether the item exists cannot be read from nothing: an id check's answer must say ``existed``."""
    request = api_v2.check_data(PROJECT, "svc", item_id="a")
    with pytest.raises(ImageSearchResponseError, match="MALFORMED_RESPONSE"):
        _parse(request, {"result": "success"})


@pytest.mark.usefixtures("airflow_db")
def test_search_all_pages_through_everything_against_the_emulator(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchHook

    items = {f"i{n:02d}": {"digest": f"d{n}", "keywords": ["shoe"]} for n in range(25)}
    emulator.upsert_v2_service("paged", items=items)
    with ImageSearchHook(imagesearch_conn("token")) as hook:
        found = hook.search_all("paged", search_type="KEYWORD", keywords=["shoe"], page_size=10)
    assert sorted(item.id for item in found) == sorted(items)


@pytest.mark.parametrize("sync", [True, False], ids=["sync", "async"])
def test_a_forced_delete_reports_the_same_whether_or_not_its_answer_was_lost(
    sync: bool, imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    """Review of 20/21, items 3 and 4, in both hooks: a forced delete by id is answered without counts, and
    its repeat after a lost answer is answered the same: the hook reports no id and no count on both paths
    (the operator checks the item first for a count). Before, the lost path invented ``delete_num: 1``."""
    import asyncio

    from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchAsyncHook, ImageSearchHook

    service = f"forced-{'s' if sync else 'a'}"
    emulator.upsert_v2_service(
        service, items={"d1": {"digest": "x"}, "d2": {"digest": "y"}, "d3": {"digest": "z"}}
    )
    conn_id = imagesearch_conn("token")

    def delete(item_id: str) -> Any:
        if sync:
            with ImageSearchHook(conn_id) as hook:
                return hook.delete_data(service, item_id=item_id, force=True)

        async def run() -> Any:
            async with ImageSearchAsyncHook(conn_id) as hook:
                return await hook.delete_data(service, item_id=item_id, force=True)

        return asyncio.run(run())

    normal = delete("d1")
    emulator.set_faults(sequence=["drop_after"])
    lost = delete("d2")
    never_there = delete("ghost")
    unknown = {"deleted_ids": [], "total_num": None, "delete_num": None, "gone_ids": []}
    assert normal.to_dict() == lost.to_dict() == never_there.to_dict() == unknown
    services = emulator.control.state()["v2_services"]
    (held,) = [s for s in services if s["name"] == service]
    assert sorted(held["items"]) == ["d3"]
    deletes = [r for r in emulator.requests_log() if r["path"].endswith("/data/delete")]
    assert len(deletes) == 4  # d1, d2's lost one and its repeat, ghost


def test_a_conditional_delete_is_not_repeated_by_the_hook_after_a_lost_answer(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    """Its repeat would delete the next batch of up to 100: the hook raises instead (the operator reads back)."""
    from airflow_provider_imagesearch.errors import ImageSearchTransportError
    from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchHook

    items = {f"m{n:03d}": {"digest": f"d{n}", "custom_tags": {"season": "old"}} for n in range(150)}
    emulator.upsert_v2_service("batches", items=items)
    emulator.set_faults(sequence=["drop_after"])
    with ImageSearchHook(imagesearch_conn("token")) as hook, pytest.raises(ImageSearchTransportError):
        hook.delete_data("batches", custom_tags={"season": ["old"]})
    services = emulator.control.state()["v2_services"]
    (held,) = [s for s in services if s["name"] == "batches"]
    assert len(held["items"]) == 50  # one batch of 100, not two


def test_the_async_hook_searches_by_the_documented_enum_value(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    """``search_type="0"`` (IMAGE's documented value) passes the shared request builder in the async hook too."""
    import asyncio

    from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchAsyncHook

    emulator.upsert_v2_service("by-value", items={"a": {"image_url": "https://cdn.example/a.jpg"}})

    async def search() -> Any:
        async with ImageSearchAsyncHook(imagesearch_conn("token")) as hook:
            return await hook.search_data("by-value", search_type="0", image_url="https://cdn.example/a.jpg")

    assert [item.id for item in asyncio.run(search()).items] == ["a"]
    (sent,) = [r for r in emulator.requests_log() if r["path"].endswith("/search")]
    assert sent["status"] == 200
