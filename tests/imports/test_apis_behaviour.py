"""What the import's API adapters send, as the mutation run found it untested (docs/mutation-testing.rst).

Each adapter turns a manifest row into the request the service gets; a prune whose delete was refused
asks ``check`` whether the key is still there, and a v2 row that only changed what ``data/update`` can
change is sent as an update (no new image analysis) rather than as an add.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from airflow_provider_imagesearch.imports.apis import V1ImagesApi, V2DataApi

PATH = "https://shop.obs.cn-north-4.myhuaweicloud.com/a.jpg"


def test_a_fresh_v1_adapter_checks_rows_and_refuses_a_bad_path() -> None:
    api = V1ImagesApi()
    good = api.check_row({"path": PATH, "tags": '{"color": "red"}'}, 1, region="cn-north-4")
    bad = api.check_row({"path": "not a url"}, 2, region="cn-north-4")
    assert (good.invalid, good.path) == (None, PATH)
    assert bad.invalid is not None
    assert "path" in bad.invalid


def test_a_fresh_v2_adapter_checks_rows_and_refuses_a_row_without_item_id() -> None:
    api = V2DataApi()
    good = api.check_row({"item_id": "i-1", "image_url": PATH}, 1)
    bad = api.check_row({"image_url": PATH}, 2)
    assert (good.invalid, good.path) == (None, "i-1")
    assert bad.invalid is not None
    assert "item_id" in bad.invalid


def test_v1_check_asks_the_instance_of_the_project_for_the_path() -> None:
    request = V1ImagesApi().check_request("p1", "shop", PATH)
    assert (request.method, request.path, request.body) == (
        "POST",
        "/v1/p1/shop/image/check",
        {"path": PATH},
    )


def test_v2_check_asks_the_service_of_the_project_for_the_item() -> None:
    request = V2DataApi().check_request("p1", "catalog", "i-1")
    assert request.method == "POST"
    assert request.path.startswith("/v2/p1/mms/catalog/")
    assert request.path.endswith("/data/check")
    assert request.body == {"item_id": "i-1"}


@dataclass
class _CheckAnswer:
    existed: object


@pytest.mark.parametrize(("answer", "present"), [(True, True), (False, False), ({}, False), (None, False)])
def test_v1_is_present_reads_the_check_answer(answer: object, present: bool) -> None:
    assert V1ImagesApi().is_present(answer) is present


@pytest.mark.parametrize(
    ("answer", "present"),
    [(_CheckAnswer(True), True), (_CheckAnswer(False), False), (_CheckAnswer("true"), False), (None, False)],
)
def test_v2_is_present_is_true_only_when_the_service_says_it_existed(answer: object, present: bool) -> None:
    assert V2DataApi().is_present(answer) is present


def _v2_row(**fields: object) -> tuple[V2DataApi, object]:
    api = V2DataApi()
    return api, api.check_row({"item_id": "i-1", "image_url": PATH, **fields}, 1)


@pytest.mark.parametrize(
    ("field", "value", "sent"),
    [
        ("desc", "red shoe", {"desc": "red shoe"}),
        ("custom_tags", '{"color": "red"}', {"custom_tags": {"color": "red"}}),
        ("custom_num_tags", '{"size": 42}', {"custom_num_tags": {"size": 42}}),
    ],
    ids=["desc", "custom_tags", "custom_num_tags"],  # plain node ids: the mutation sample lists them
)
def test_v2_a_row_whose_image_is_unchanged_is_sent_as_an_update_of_each_updatable_field(
    field: str, value: str, sent: dict[str, object]
) -> None:
    api, row = _v2_row(**{field: value})
    held = row.fingerprint[:16] + "0" * 16  # the same image and keywords, other tags
    request = api.update_request("p1", "catalog", row, held)
    assert request.path.endswith("/data/update")
    assert request.body == {"item_id": "i-1", **sent}


def test_v2_a_row_with_nothing_updatable_is_an_add_with_force() -> None:
    api, row = _v2_row()
    request = api.update_request("p1", "catalog", row, row.fingerprint[:16] + "0" * 16)
    assert request.path.endswith("/data/add")
    assert request.body["force"] is True


def test_v2_prune_deletes_with_force_so_an_item_already_gone_counts_as_deleted() -> None:
    request = V2DataApi().delete_request("p1", "catalog", "i-1")
    assert request.path.endswith("/data/delete")
    assert request.body == {"item_id": "i-1", "force": True}
