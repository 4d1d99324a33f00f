"""The v2 search operator's default ``limit``: ten results per request, as documented (run with
``execute`` against the emulator, a service of twelve items)."""

from __future__ import annotations

from collections.abc import Callable

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.operators.imagesearch_v2 import ImageSearchV2SearchOperator

SERVICE = "k8a-v2-default"
CDN = "https://cdn.example/k8a"


def test_a_search_without_a_limit_returns_ten_results(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    items = {f"d{n}": {"image_url": f"{CDN}/{n}.jpg", "desc": f"item {n}"} for n in range(12)}
    emulator.upsert_v2_service(SERVICE, custom_tags=["color"], items=items)
    op = ImageSearchV2SearchOperator(
        task_id="search",
        service_name=SERVICE,
        imagesearch_conn_id=imagesearch_conn("token"),
        image_url=f"{CDN}/1.jpg",
    )
    results = op.execute({})
    assert len(results) == 10, results
    assert results[0]["id"] == "d1"
