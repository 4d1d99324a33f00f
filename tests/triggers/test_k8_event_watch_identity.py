"""Watchers of the same instances on one connection but another project or region are other watches: their
event ids and their memory in the asset's state store must not mix (the eighth mutation sitting's
survivors: no test built two watchers differing only there). A watcher's ``watch_id`` starts its event ids,
its ``state_key`` names its memory of an instance."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_imagesearch.triggers.events import ImageSearchInstanceStatusEventTrigger


def _watch(**kwargs: Any) -> ImageSearchInstanceStatusEventTrigger:
    return ImageSearchInstanceStatusEventTrigger(
        instance_names=["shop-1"], statuses=["NORMAL"], imagesearch_conn_id="imagesearch_default", **kwargs
    )


@pytest.mark.parametrize(
    "other",
    [{"project_id": "0123456789abcdef0123456789abcdef"}, {"region": "ap-southeast-1"}],
    ids=["another project", "another region"],
)
def test_another_project_or_region_is_another_watch(other: dict[str, Any]) -> None:
    plain, elsewhere = _watch(), _watch(**other)
    assert elsewhere.watch_id != plain.watch_id
    assert elsewhere.state_key("shop-1") != plain.state_key("shop-1")
    assert _watch(**other).watch_id == elsewhere.watch_id  # the same watch, rebuilt, is the same
