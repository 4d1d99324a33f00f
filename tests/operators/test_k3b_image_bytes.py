"""Image bytes and crop boxes given to the v1 image operators reach the service.

``ImageSearchAddImageOperator(file_base64=...)`` stores those bytes under ``path`` (then only the image's
id, not a URL the service could download from), so a search by the same bytes finds the image as identical.
``ImageSearchSearchImagesOperator`` queries by ``file_base64`` when given, and searches only the ``box``
region of the query image when given one: the hits are those of the cropped query, not the whole image.
Called directly against the emulator (no DAG run).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchHook
from airflow_provider_imagesearch.operators.imagesearch import (
    ImageSearchAddImageOperator,
    ImageSearchSearchImagesOperator,
)

OBS = "https://shop-images.obs.cn-north-4.myhuaweicloud.com"
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"k3b-red-shoe" * 8).decode()
OTHER_PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"k3b-blue-hat" * 8).decode()
BOX = {"x": 10, "y": 20, "width": 30, "height": 40}


def _search(conn_id: str, name: str, **kwargs: Any) -> Any:
    op = ImageSearchSearchImagesOperator(
        task_id="search", instance_name=name, limit=10, imagesearch_conn_id=conn_id, **kwargs
    )
    return op.execute({})


def test_an_image_added_by_its_bytes_is_stored_under_its_id_and_found_identical_by_those_bytes(
    emulator: Emulator, imagesearch_conn: Callable[..., str], instance: Callable[..., str]
) -> None:
    name = instance("k3b-add", tags=["color"], images={f"{OBS}/other.jpg": {"tags": {"color": "blue"}}})
    conn_id = imagesearch_conn("aksk")
    # "sku-1" is no URL the service could download from: only the bytes sent with the add make the image.
    result = ImageSearchAddImageOperator(
        task_id="add",
        instance_name=name,
        path="sku-1",
        tags={"color": "red"},
        file_base64=PNG,
        imagesearch_conn_id=conn_id,
    ).execute({})
    assert result == {"instance_name": name, "path": "sku-1", "result": "Success"}
    library = emulator.control.state()["images"][f"{DEFAULT_PROJECT_ID}/{name}"]
    assert library["sku-1"]["tags"] == {"color": "red"}
    hits = _search(conn_id, name, file_base64=PNG)
    assert hits[0] == {"path": "sku-1", "similarity": 1.0, "tags": {"color": "red"}}
    assert [hit["path"] for hit in hits] == ["sku-1", f"{OBS}/other.jpg"]


def test_an_image_added_by_its_bytes_at_an_obs_url_holds_those_bytes_not_the_url(
    emulator: Emulator, imagesearch_conn: Callable[..., str], instance: Callable[..., str]
) -> None:
    name = instance("k3b-add-url", tags=["color"])
    conn_id = imagesearch_conn("aksk")
    path = f"{OBS}/shoe.png"
    ImageSearchAddImageOperator(
        task_id="add", instance_name=name, path=path, file_base64=PNG, imagesearch_conn_id=conn_id
    ).execute({})
    # The bytes sent, not the image the URL names, are what the library holds.
    assert _search(conn_id, name, file_base64=PNG) == [{"path": path, "similarity": 1.0, "tags": {}}]
    assert _search(conn_id, name, file_base64=OTHER_PNG)[0]["similarity"] < 1.0


def test_a_search_by_bytes_queries_with_those_bytes(
    emulator: Emulator, imagesearch_conn: Callable[..., str], instance: Callable[..., str]
) -> None:
    name = instance("k3b-by-bytes", tags=["color"])
    conn_id = imagesearch_conn("aksk")
    hook = ImageSearchHook(imagesearch_conn_id=conn_id)
    hook.add_image(name, path="hat", file_base64=OTHER_PNG, tags={"color": "blue"})
    hook.add_image(name, path="shoe", file_base64=PNG, tags={"color": "red"})
    hook.close()
    hits = _search(conn_id, name, file_base64=PNG)
    assert (hits[0]["path"], hits[0]["similarity"]) == ("shoe", 1.0)
    assert {hit["path"] for hit in hits} == {"hat", "shoe"}
    hits = _search(conn_id, name, file_base64=OTHER_PNG)
    assert (hits[0]["path"], hits[0]["similarity"]) == ("hat", 1.0)


def test_a_search_with_a_box_searches_only_that_region_of_the_query_image(
    emulator: Emulator, imagesearch_conn: Callable[..., str], instance: Callable[..., str]
) -> None:
    paths = [f"{OBS}/box-{n}.jpg" for n in range(4)]
    name = instance("k3b-box", images={path: {"tags": {}} for path in paths})
    conn_id = imagesearch_conn("aksk")
    hook = ImageSearchHook(imagesearch_conn_id=conn_id)
    cropped = [hit.to_dict() for hit in hook.search_images(name, path=paths[0], box=BOX, limit=10).hits]
    hook.close()
    hits = _search(conn_id, name, path=paths[0], box=BOX)
    assert hits == cropped
    # A region of the image is not the whole image: not even the image itself is identical to it.
    assert all(hit["similarity"] < 1.0 for hit in hits)
    assert _search(conn_id, name, path=paths[0])[0] == {"path": paths[0], "similarity": 1.0, "tags": {}}
