"""After an add whose outcome is unknown, what the library holds is compared with the tags asked for.

``ImageSearchAddImageOperator`` reads the image back when the add's answer is lost: when it finds the image
with the tags asked for it adopts the add (no second request); otherwise it adds again, which overwrites.
A tag's values compare as values: a tuple asked for is the list the service holds, and a list of values is
not the single string the library held before (even when that string is the one value).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from airflow_provider_imagesearch.emulator.routes import R_ADD
from airflow_provider_imagesearch.operators.imagesearch import ImageSearchAddImageOperator

OBS = "https://shop-images.obs.cn-north-4.myhuaweicloud.com"
IMAGE = f"{OBS}/a.jpg"


def _library(emulator: Emulator) -> dict[str, Any]:
    images: dict[str, Any] = emulator.control.state()["images"][f"{DEFAULT_PROJECT_ID}/readback"]
    return {path: image["tags"] for path, image in images.items()}


def _adds(emulator: Emulator) -> int:
    return sum(1 for r in emulator.requests_log() if r["route"] == R_ADD)


def _add(conn_id: str, tags: dict[str, Any]) -> Any:
    op = ImageSearchAddImageOperator(
        task_id="add", instance_name="readback", path=IMAGE, tags=tags, imagesearch_conn_id=conn_id
    )
    return op.execute({})


def test_a_lost_add_with_tuple_tags_is_adopted_without_a_second_add(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    conn_id = imagesearch_conn("aksk")
    emulator.upsert_instance("readback", project_id=DEFAULT_PROJECT_ID, tags=["color"], images={})
    emulator.set_faults(sequence=["drop_after"])  # the add takes effect, its answer is lost
    result = _add(conn_id, {"color": ("red", "blue")})
    assert result == {"instance_name": "readback", "path": IMAGE, "result": "Success"}
    assert _library(emulator) == {IMAGE: {"color": ["red", "blue"]}}
    assert _adds(emulator) == 1, "the read-back found the add's effect: no second add"


def test_a_lost_add_of_a_list_of_one_value_over_that_string_adds_again(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    conn_id = imagesearch_conn("aksk")
    emulator.upsert_instance(
        "readback", project_id=DEFAULT_PROJECT_ID, tags=["size"], images={IMAGE: {"tags": {"size": "s"}}}
    )
    emulator.set_faults(sequence=["drop"])  # the add never reaches the service; the client cannot tell
    result = _add(conn_id, {"size": ["s"]})
    assert result["result"] == "Success"
    assert _library(emulator) == {IMAGE: {"size": ["s"]}}, "the library holds the tags asked for"
    assert _adds(emulator) == 2


def test_a_lost_add_is_found_among_many_exact_duplicates_of_the_image(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    from airflow_provider_imagesearch.emulator.state import path_digest

    conn_id = imagesearch_conn("aksk")
    # A dozen copies of the same photo under other ids rank with it (similarity 1.0) and, ties going by id,
    # ahead of it: the read-back looks through the image's 100 best hits, not one page of 10.
    duplicates = {f"{OBS}/0-copy-{i:02d}.jpg": {"tags": {}, "digest": path_digest(IMAGE)} for i in range(12)}
    emulator.upsert_instance("readback", project_id=DEFAULT_PROJECT_ID, tags=["color"], images=duplicates)
    emulator.set_faults(sequence=["drop_after"])
    result = _add(conn_id, {"color": "red"})
    assert result["result"] == "Success"
    assert _library(emulator)[IMAGE] == {"color": "red"}
    assert _adds(emulator) == 1, "the read-back found the add's effect: no second add"
