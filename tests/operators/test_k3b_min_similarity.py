"""``min_similarity`` of ``ImageSearchSearchImagesOperator``: a number from 0 to 1, both ends included.

0 keeps every hit and 1 keeps only identical images; anything else (a bool, a string, a number outside
0-1) fails the task before any search, with an error naming ``min_similarity`` and the form it must have.
Called directly against the emulator (no DAG run).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.emulator.routes import R_SEARCH
from airflow_provider_imagesearch.operators.imagesearch import ImageSearchSearchImagesOperator
from airflow_provider_imagesearch.version_compat import AirflowFailException

OBS = "https://shop-images.obs.cn-north-4.myhuaweicloud.com"
PATHS = [f"{OBS}/sim-{n}.jpg" for n in range(5)]


def _search(conn_id: str, name: str, minimum: Any) -> Any:
    op = ImageSearchSearchImagesOperator(
        task_id="search",
        instance_name=name,
        path=PATHS[0],
        limit=10,
        min_similarity=minimum,
        imagesearch_conn_id=conn_id,
    )
    return op.execute({})


def _searches(emulator: Emulator) -> int:
    return sum(1 for r in emulator.requests_log() if r["route"] == R_SEARCH)


def test_a_min_similarity_of_0_keeps_every_hit(
    emulator: Emulator, imagesearch_conn: Callable[..., str], instance: Callable[..., str]
) -> None:
    name = instance("k3b-sim-0", images={path: {"tags": {}} for path in PATHS})
    hits = _search(imagesearch_conn("aksk"), name, 0)
    assert sorted(hit["path"] for hit in hits) == sorted(PATHS)


def test_a_min_similarity_of_1_keeps_only_the_identical_image(
    emulator: Emulator, imagesearch_conn: Callable[..., str], instance: Callable[..., str]
) -> None:
    name = instance("k3b-sim-1", images={path: {"tags": {}} for path in PATHS})
    hits = _search(imagesearch_conn("aksk"), name, 1)
    assert hits == [{"path": PATHS[0], "similarity": 1.0, "tags": {}}]


@pytest.mark.parametrize("minimum", [True, False, "0.5", [0.5], -0.01, 1.01])
def test_a_min_similarity_that_is_not_a_number_from_0_to_1_fails_before_any_search(
    minimum: Any, emulator: Emulator, imagesearch_conn: Callable[..., str], instance: Callable[..., str]
) -> None:
    name = instance("k3b-sim-bad", images={path: {"tags": {}} for path in PATHS})
    with pytest.raises(AirflowFailException) as refused:
        _search(imagesearch_conn("aksk"), name, minimum)
    assert str(refused.value) == f"Invalid min_similarity {minimum!r}: a number from 0 to 1"
    assert _searches(emulator) == 0
