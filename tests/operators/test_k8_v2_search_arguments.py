"""The v2 search operator sends what it is given (the eighth mutation sitting's survivors: no operator test
passed ``image_base64`` or ``optional_params``). Run with ``execute`` against the emulator.

* ``image_base64``: the search is by those bytes, so the item added with the same bytes scores 1.0 first.
* ``optional_params``: ``collapse_key`` keeps the best result per value of that tag and drops results
  without it, so two items of one colour and one without a colour come back as one result.
"""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.operators.imagesearch_v2 import ImageSearchV2SearchOperator

SERVICE = "k8-v2-arguments"
CDN = "https://cdn.example/k8"
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n k8 query image").decode()


@pytest.fixture
def conn(imagesearch_conn: Callable[..., str]) -> str:
    return imagesearch_conn("token")


def test_a_search_by_image_base64_searches_by_those_bytes(conn: str, emulator: Emulator) -> None:
    from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchHook

    emulator.upsert_v2_service(SERVICE, custom_tags=["color"], items={})
    with ImageSearchHook(conn) as hook:
        hook.add_data(SERVICE, item_id="same-bytes", image_base64=PNG)
        hook.add_data(SERVICE, item_id="by-url", image_url=f"{CDN}/other.jpg")
    results = ImageSearchV2SearchOperator(
        task_id="search", service_name=SERVICE, imagesearch_conn_id=conn, image_base64=PNG
    ).execute({})
    assert results[0]["id"] == "same-bytes"
    assert results[0]["score"] == 1.0


def test_optional_params_reach_the_search(conn: str, emulator: Emulator) -> None:
    items = {
        "red-a": {"image_url": f"{CDN}/q.jpg", "custom_tags": {"color": "red"}},
        "red-b": {"image_url": f"{CDN}/b.jpg", "custom_tags": {"color": "red"}},
        "plain": {"image_url": f"{CDN}/c.jpg"},
    }
    emulator.upsert_v2_service(SERVICE, custom_tags=["color"], items=items)
    results = ImageSearchV2SearchOperator(
        task_id="search",
        service_name=SERVICE,
        imagesearch_conn_id=conn,
        image_url=f"{CDN}/q.jpg",
        optional_params={"collapse_key": "color"},
    ).execute({})
    assert [r["id"] for r in results] == ["red-a"]
