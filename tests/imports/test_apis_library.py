"""What the import's API adapters' requests do to a library, sent through the hook to the emulator.

Protected, as the library's owner sees it afterwards: a v1 add puts the row's path with its tags (none
when the row has none) or the bytes of its local file; an update of a v1 image replaces it whole; a v1
delete removes the path; a v2 add puts the item with each of the row's fields (the local file's bytes
over an ``image_base64`` field) and, with ``force``, overwrites an item already there; a name that is
not an instance or service name is refused naming the field.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from airflow_provider_imagesearch.emulator.state import bytes_digest
from airflow_provider_imagesearch.errors import ImageSearchApiError, ImageSearchValidationError
from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchHook
from airflow_provider_imagesearch.imports.apis import V1_IMAGES, V2_DATA, V1ImagesApi, V2DataApi
from airflow_provider_imagesearch.imports.manifest import ManifestRow

OBS = "https://shop.obs.cn-north-4.myhuaweicloud.com"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture
def hook(imagesearch_conn: Callable[..., str]) -> Iterator[ImageSearchHook]:
    with ImageSearchHook(imagesearch_conn("token", max_attempts=1)) as hook:
        yield hook


def _row(path: str, tags: dict[str, Any] | None = None, file: str | None = None) -> ManifestRow:
    return ManifestRow(row=1, path=path, tags=tags or {}, file=file, fingerprint="f")


def _images(emulator: Emulator, instance: str) -> dict[str, Any]:
    images: dict[str, Any] = emulator.control.state()["images"].get(f"{DEFAULT_PROJECT_ID}/{instance}", {})
    return images


def _items(emulator: Emulator, service: str) -> dict[str, Any]:
    for found in emulator.control.state()["v2_services"]:
        if found["name"] == service:
            items: dict[str, Any] = found["items"]
            return items
    raise AssertionError(f"no service {service}")


def test_v1_add_puts_the_path_with_its_tags_update_replaces_it_and_delete_removes_it(
    hook: ImageSearchHook, emulator: Emulator
) -> None:
    emulator.upsert_instance("lib-1", status="NORMAL", tags=["color", "size"])
    api = V1ImagesApi()
    hook.call(api.add_request(DEFAULT_PROJECT_ID, "lib-1", _row(f"{OBS}/a.jpg", {"color": "red"})))
    hook.call(api.add_request(DEFAULT_PROJECT_ID, "lib-1", _row(f"{OBS}/b.jpg")))
    images = _images(emulator, "lib-1")
    assert (images[f"{OBS}/a.jpg"]["tags"], images[f"{OBS}/b.jpg"]["tags"]) == ({"color": "red"}, {})
    request = api.add_request(DEFAULT_PROJECT_ID, "lib-1", _row(f"{OBS}/b.jpg"))
    assert request.body == {"path": f"{OBS}/b.jpg"}  # no tags sent for a row without any
    hook.call(api.update_request(DEFAULT_PROJECT_ID, "lib-1", _row(f"{OBS}/a.jpg", {"size": "L"}), "?"))
    assert _images(emulator, "lib-1")[f"{OBS}/a.jpg"]["tags"] == {"size": "L"}
    hook.call(api.delete_request(DEFAULT_PROJECT_ID, "lib-1", f"{OBS}/a.jpg"))
    assert sorted(_images(emulator, "lib-1")) == [f"{OBS}/b.jpg"]
    assert api.is_present(hook.call(api.check_request(DEFAULT_PROJECT_ID, "lib-1", f"{OBS}/b.jpg")))


def test_v1_add_of_a_row_with_a_local_file_sends_the_files_bytes(
    hook: ImageSearchHook, emulator: Emulator, tmp_path: Path
) -> None:
    emulator.upsert_instance("lib-2", status="NORMAL")
    image = tmp_path / "a.jpg"
    image.write_bytes(PNG + b"one")
    request = V1_IMAGES.add_request(DEFAULT_PROJECT_ID, "lib-2", _row(f"{OBS}/f.jpg", file=str(image)))
    assert request.body is not None
    assert base64.b64decode(request.body["file"]) == PNG + b"one"
    hook.call(request)
    assert _images(emulator, "lib-2")[f"{OBS}/f.jpg"]["digest"] == bytes_digest(PNG + b"one")


def test_v2_add_puts_every_field_of_the_row_and_force_overwrites(
    hook: ImageSearchHook, emulator: Emulator, tmp_path: Path
) -> None:
    emulator.upsert_v2_service("cat-1", items={"i-1": {"image_url": f"{OBS}/old.jpg", "desc": "old"}})
    api = V2DataApi()
    fields = {
        "image_url": f"{OBS}/new.jpg",
        "desc": "a red shoe",
        "custom_tags": {"color": "red"},
        "custom_num_tags": {"price": 9.5},
        "keywords": ["shoe"],
    }
    request = api.add_request(DEFAULT_PROJECT_ID, "cat-1", _row("i-1", fields))
    assert request.body is not None
    assert request.body["force"] is True
    hook.call(request)
    item = _items(emulator, "cat-1")["i-1"]
    assert (item["desc"], item["custom_tags"], item["custom_num_tags"], item["keywords"]) == (
        "a red shoe",
        {"color": "red"},
        {"price": 9.5},
        ["shoe"],
    )
    image = tmp_path / "b.jpg"
    image.write_bytes(PNG + b"two")
    from_file = api.add_request(
        DEFAULT_PROJECT_ID, "cat-1", _row("i-2", {"image_base64": "aWdub3JlZA=="}, str(image))
    )
    assert from_file.body is not None
    assert base64.b64decode(from_file.body["image_base64"]) == PNG + b"two"
    assert "image_url" not in from_file.body
    hook.call(from_file)
    assert _items(emulator, "cat-1")["i-2"]["digest"] == bytes_digest(PNG + b"two")
    without_force = api.add_request(
        DEFAULT_PROJECT_ID, "cat-1", _row("i-2", {"image_url": f"{OBS}/x.jpg"}), force=False
    )
    assert without_force.body is not None
    assert "force" not in without_force.body
    with pytest.raises(ImageSearchApiError):
        hook.call(without_force)  # the item exists: only a forced add overwrites it


def test_v2_delete_removes_the_item(hook: ImageSearchHook, emulator: Emulator) -> None:
    emulator.upsert_v2_service(
        "cat-2", items={"i-1": {"image_url": f"{OBS}/a.jpg"}, "i-2": {"image_url": f"{OBS}/b.jpg"}}
    )
    hook.call(V2_DATA.delete_request(DEFAULT_PROJECT_ID, "cat-2", "i-1"))
    assert sorted(_items(emulator, "cat-2")) == ["i-2"]


@pytest.mark.parametrize(("api", "field"), [(V1_IMAGES, "instance_name"), (V2_DATA, "service")])
def test_a_target_that_is_not_a_name_is_refused_naming_the_field(api: Any, field: str) -> None:
    assert api.validate_target("shop-1") == "shop-1"
    with pytest.raises(ImageSearchValidationError) as refused:
        api.validate_target("Not A Name!")
    assert field in refused.value.field
