"""What the v2 search and check operators send, seen in their XCom (run with ``execute`` against the
emulator): every argument of ``ImageSearchV2SearchOperator`` reaches the search (``limit``, ``offset``,
``min_score``, the tag filters, ``search_type`` with its ``keywords`` or ``text``, ``fetch_all`` with
``max_items``), results best first; ``ImageSearchV2CheckDataOperator`` by id or by conditions with a
``limit``. Arguments that contradict each other fail before any request, naming the field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.emulator.routes_v2 import R2_SEARCH
from airflow_provider_imagesearch.operators.imagesearch_v2 import (
    ImageSearchV2CheckDataOperator,
    ImageSearchV2SearchOperator,
)
from airflow_provider_imagesearch.version_compat import AirflowFailException

SERVICE = "v2-find"
CDN = "https://cdn.example/shoes"
ITEMS = {
    f"s{n}": {
        "image_url": f"{CDN}/{n}.jpg",
        "desc": f"shoe number {n}",
        "custom_tags": {"color": "red" if n % 2 else "blue"},
        "custom_num_tags": {"price": 10.0 * n},
        "keywords": ["shoe", "boot"] if n < 3 else ["shoe"],
    }
    for n in range(6)
}


@pytest.fixture
def conn_id(emulator: Emulator, imagesearch_conn: Callable[..., str]) -> str:
    emulator.upsert_v2_service(SERVICE, custom_tags=["color"], custom_num_tags=["price"], items=ITEMS)
    return imagesearch_conn("token")


def _search(conn_id: str, **kwargs: Any) -> list[dict[str, Any]]:
    op = ImageSearchV2SearchOperator(
        task_id="search", service_name=SERVICE, imagesearch_conn_id=conn_id, **kwargs
    )
    result: list[dict[str, Any]] = op.execute({})
    return result


def _ids(results: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in results]


def test_an_image_search_returns_the_best_results_first_from_offset_within_limit(conn_id: str) -> None:
    everything = _search(conn_id, image_url=f"{CDN}/1.jpg", limit=6)
    assert everything[0]["id"] == "s1"
    assert everything[0]["score"] == 1.0
    scores = [r["score"] for r in everything]
    assert scores == sorted(scores, reverse=True)
    assert len(everything) == 6
    assert _ids(_search(conn_id, image_url=f"{CDN}/1.jpg", limit=2)) == _ids(everything)[:2]
    assert _ids(_search(conn_id, image_url=f"{CDN}/1.jpg", limit=3, offset=2)) == _ids(everything)[2:5]
    threshold = scores[3]
    kept = _search(conn_id, image_url=f"{CDN}/1.jpg", limit=6, min_score=threshold)
    assert _ids(kept) == [r["id"] for r in everything if r["score"] >= threshold]
    assert everything[0] == {
        "id": "s1",
        "score": 1.0,
        "desc": "shoe number 1",
        "custom_tags": {"color": "red"},
        "custom_num_tags": {"price": 10.0},
        "keywords": ["shoe", "boot"],
    }


def test_the_tag_filters_reach_the_search(conn_id: str) -> None:
    red = _search(conn_id, image_url=f"{CDN}/1.jpg", limit=6, custom_tags={"color": ["red"]})
    assert sorted(_ids(red)) == ["s1", "s3", "s5"]
    pricey = _search(conn_id, image_url=f"{CDN}/1.jpg", limit=6, custom_num_tags={"price": {"from": 30}})
    assert sorted(_ids(pricey)) == ["s3", "s4", "s5"]


def test_keyword_and_text_searches_send_their_query(conn_id: str) -> None:
    assert sorted(_ids(_search(conn_id, search_type="KEYWORD", keywords=["boot"], limit=6))) == [
        "s0",
        "s1",
        "s2",
    ]
    assert _ids(_search(conn_id, search_type="TEXT", text="number 4", limit=1)) == ["s4"]


def test_fetch_all_pages_limit_results_at_a_time_until_max_items(conn_id: str, emulator: Emulator) -> None:
    everything = _ids(_search(conn_id, image_url=f"{CDN}/2.jpg", limit=6))
    emulator.reset_stats()
    assert _ids(_search(conn_id, image_url=f"{CDN}/2.jpg", limit=2, fetch_all=True)) == everything
    assert sum(1 for r in emulator.requests_log() if r["route"] == R2_SEARCH) >= 3, "pages of 2"
    assert (
        _ids(_search(conn_id, image_url=f"{CDN}/2.jpg", limit=2, fetch_all=True, max_items=3))
        == everything[:3]
    )


@pytest.mark.parametrize(
    ("kwargs", "refused"),
    [
        ({"fetch_all": True, "offset": 2}, "Invalid offset 2: 0 with fetch_all"),
        ({"max_items": 3}, "Invalid max_items 3: left out without fetch_all"),
    ],
)
def test_contradicting_search_arguments_fail_before_any_request(
    conn_id: str, emulator: Emulator, kwargs: dict[str, Any], refused: str
) -> None:
    emulator.reset_stats()
    with pytest.raises(AirflowFailException, match=refused):
        _search(conn_id, image_url=f"{CDN}/1.jpg", **kwargs)
    assert emulator.requests_log() == []


def _check(conn_id: str, **kwargs: Any) -> dict[str, Any]:
    op = ImageSearchV2CheckDataOperator(
        task_id="check", service_name=SERVICE, imagesearch_conn_id=conn_id, **kwargs
    )
    result: dict[str, Any] = op.execute({})
    return result


def test_a_check_by_id_or_by_conditions(conn_id: str) -> None:
    by_id = _check(conn_id, item_id="s3")
    assert by_id["existed"] is True
    assert by_id["item"]["custom_num_tags"] == {"price": 30.0}
    assert _check(conn_id, item_id="nope")["existed"] is False
    red = _check(conn_id, custom_tags={"color": ["red"]}, limit=2)
    assert (red["total_num"], red["return_num"], len(red["items"])) == (3, 2, 2)
    pricey = _check(conn_id, custom_num_tags={"price": {"from": 40}}, limit=10)
    assert sorted(i["id"] for i in pricey["items"]) == ["s4", "s5"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("custom_tags", {"color": ["red"]}), ("custom_num_tags", {"price": {"from": 1}}), ("limit", 5)],
)
def test_a_check_by_id_refuses_conditions_and_limit(
    conn_id: str, emulator: Emulator, field: str, value: Any
) -> None:
    emulator.reset_stats()
    with pytest.raises(AirflowFailException, match=f"Invalid {field} .*left out with item_id"):
        _check(conn_id, item_id="s1", **{field: value})
    assert emulator.requests_log() == []
