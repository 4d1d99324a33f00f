"""Item 5: hostile arguments are refused before any request, naming the offending field.

Every hook method (and the async hook's ``get_instance``) is called with path-traversal, encoded,
upper-case, over-long, quoted, non-ASCII, empty and ``None`` instance names, project ids carrying
``/``, ``?`` or ``#``, and out-of-range search paging. Each raises ``ImageSearchValidationError`` whose
``field`` names the argument, and the emulator sees zero requests (no IAM token request either).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.errors import ImageSearchValidationError
from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchAsyncHook, ImageSearchHook
from tests.reliability.support import SecretAudit

#: An image the service can download: an OBS HTTPS URL of the default region (the reference's form).
OBS = "https://shop-images.obs.cn-north-4.myhuaweicloud.com"
BAD_NAMES: list[Any] = ["../x", "a/b", "A", "x" * 17, '"', "%2e%2e", "名字", "", None, "..", "a b", "a\nb"]
BAD_PROJECTS = ["abc/def", "abc?x=1", "abc#frag", "../0b5e4c3a", "/", "?", "#"]

#: (method, fixed kwargs); the instance name is passed positionally.
METHODS: dict[str, dict[str, Any]] = {
    "get_instance": {},
    "delete_instance": {},
    "create_instance": {"description": "d"},
    "add_image": {"path": f"{OBS}/x.png"},
    "search_images": {"path": f"{OBS}/x.png"},
    "check_image": {"path": f"{OBS}/x.png"},
    "modify_image": {"path": f"{OBS}/x.png", "tags": {"color": "red"}},
    "delete_image": {"path": f"{OBS}/x.png"},
}
#: create_instance sends the name as the body's ``name`` field and reports it under that name.


@pytest.fixture
def hook(imagesearch_conn: Callable[..., str], emulator: Emulator) -> ImageSearchHook:
    return ImageSearchHook(imagesearch_conn("iam_password"))


def _refused(call: Callable[[], Any], field: str, audit: SecretAudit) -> ImageSearchValidationError:
    with pytest.raises(ImageSearchValidationError) as caught:
        call()
    audit.exception("validation", caught.value)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"Invalid {field} ")
    return caught.value


def test_hostile_instance_names(hook: ImageSearchHook, emulator: Emulator, audit: SecretAudit) -> None:
    refused = 0
    for method, kwargs in METHODS.items():
        for name in BAD_NAMES:
            error = _refused(
                functools.partial(getattr(hook, method), name, **kwargs),
                "instance_name",
                audit,
            )
            assert repr(name)[:20] in str(error) or len(repr(name)) > 60
            refused += 1
    stats = emulator.stats()
    audit.figure("hostile instance names", refused=refused, emulator_requests=stats["requests_total"])
    assert refused == len(METHODS) * len(BAD_NAMES)
    assert stats["requests_total"] == 0


def test_hostile_project_ids(hook: ImageSearchHook, emulator: Emulator, audit: SecretAudit) -> None:
    refused = 0
    for method, kwargs in METHODS.items():
        for project in BAD_PROJECTS:
            _refused(
                functools.partial(getattr(hook, method), "shop-1", project_id=project, **kwargs),
                "project_id",
                audit,
            )
            refused += 1
    stats = emulator.stats()
    audit.figure("hostile project ids", refused=refused, emulator_requests=stats["requests_total"])
    assert refused == len(METHODS) * len(BAD_PROJECTS)
    assert stats["requests_total"] == 0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": -1}, "limit"),
        ({"limit": True}, "limit"),
        ({"limit": 10.0}, "limit"),
        ({"offset": -1}, "offset"),
        ({"offset": "0"}, "offset"),
    ],
)
def test_hostile_search_paging(
    kwargs: dict[str, Any], field: str, hook: ImageSearchHook, emulator: Emulator, audit: SecretAudit
) -> None:
    _refused(lambda: hook.search_images("shop-1", path=f"{OBS}/x.png", **kwargs), field, audit)
    assert emulator.stats()["requests_total"] == 0


def test_boundaries_are_accepted(
    hook: ImageSearchHook, emulator: Emulator, instance: Callable[..., str]
) -> None:
    """The limits are not off by one: 1 and 100 and offset 0 pass, and a 16-character name is fine."""
    instance("a" * 16, images={f"{OBS}/x.png": {}})  # a search ``path`` names an image in the library
    assert hook.get_instance("a" * 16).instance_name == "a" * 16
    for limit in (1, 100):
        assert hook.search_images("a" * 16, path=f"{OBS}/x.png", limit=limit, offset=0).count == 1


def test_async_hook_refuses_the_same_input(
    imagesearch_conn: Callable[..., str], emulator: Emulator, audit: SecretAudit
) -> None:
    async def main() -> None:
        hook = ImageSearchAsyncHook(imagesearch_conn("iam_password"))
        try:
            for name in BAD_NAMES:
                with pytest.raises(ImageSearchValidationError) as caught:
                    await hook.get_instance(name)
                assert caught.value.field == "instance_name"
            for project in BAD_PROJECTS:
                with pytest.raises(ImageSearchValidationError) as caught:
                    await hook.get_instance("shop-1", project_id=project)
                assert caught.value.field == "project_id"
        finally:
            await hook.aclose()

    asyncio.run(main())
    assert emulator.stats()["requests_total"] == 0
