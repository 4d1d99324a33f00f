"""A v1 search left at its defaults returns one page of ten hits (``limit=10``, ``fetch_all=False``, as
documented), from one request, even where more images match (the eighth mutation sitting's survivors:
every search test passed its own limit). Run with ``execute`` against the emulator."""

from __future__ import annotations

from collections.abc import Callable

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.emulator.routes import R_SEARCH
from airflow_provider_imagesearch.operators.imagesearch import ImageSearchSearchImagesOperator

INSTANCE = "k8-search-dflt"


def test_a_search_at_its_defaults_returns_one_page_of_ten(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    images = {f"https://cdn.example/k8/{n:02d}.jpg": {"tags": {}} for n in range(12)}
    emulator.upsert_instance(INSTANCE, images=images)
    results = ImageSearchSearchImagesOperator(
        task_id="search",
        instance_name=INSTANCE,
        path="https://cdn.example/k8/00.jpg",
        imagesearch_conn_id=imagesearch_conn("token"),
    ).execute({})
    assert len(results) == 10, results
    assert len([r for r in emulator.requests_log() if r["route"] == R_SEARCH]) == 1
