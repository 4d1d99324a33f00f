"""A second opinion on the emulator's v2 (MMS) protocol: Huawei's own v2 client runs all five operations.

``huaweicloudsdkimagesearch`` 3.1.219 (``ImageSearchClient`` of its ``v2`` package) with AK/SK
``BasicCredentials`` signs the requests and parses the answers into its own models; if the emulator's
paths, signatures or response shapes drifted from the SDK's, these calls would fail or parse to None.
"""

from __future__ import annotations

import base64

import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkimagesearch.v2 import (
    AddDataParam,
    CheckParam,
    DeleteParam,
    ImageSearchClient,
    RangeParam,
    RunAddDataRequest,
    RunCheckDataRequest,
    RunDeleteDataRequest,
    RunSearchRequest,
    RunUpdateDataRequest,
    SearchAfterParam,
    SearchOptionalParam,
    SearchParam,
    UpdateParam,
)

from airflow_provider_imagesearch.emulator import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_PROJECT_ID,
    DEFAULT_SECRET_KEY,
    Emulator,
)

SERVICE = "sdk-shop"
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"sdk-test-image").decode()


@pytest.fixture
def client(emulator: Emulator) -> ImageSearchClient:
    emulator.upsert_v2_service(SERVICE, items={})
    config = HttpConfig.get_default_config()
    config.retry_times = 0
    return (
        ImageSearchClient.new_builder()
        .with_http_config(config)
        .with_credentials(BasicCredentials(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, DEFAULT_PROJECT_ID))
        .with_endpoints([emulator.url])
        .build()
    )


def test_official_v2_client_runs_all_five_operations(client: ImageSearchClient, emulator: Emulator) -> None:
    for n, color in enumerate(["red", "red", "blue"]):
        added = client.run_add_data(
            RunAddDataRequest(
                service_name=SERVICE,
                body=AddDataParam(
                    item_id=f"item-{n}",
                    image_base64=PNG if n == 0 else None,
                    image_url=None if n == 0 else f"https://shop.example/{n}.jpg",
                    desc=f"a {color} shoe",
                    custom_tags={"color": color},
                    custom_num_tags={"price": 10.0 * (n + 1)},
                    keywords=[color, "shoe"],
                ),
            )
        )
        assert added.result == "success"
        assert added.data.image_info.objects[0].category_name

    found = client.run_search(
        RunSearchRequest(
            service_name=SERVICE,
            body=SearchParam(
                search_type="IMAGE",
                image_base64=PNG,
                limit=2,
                custom_num_tags={"price": RangeParam(_from=0, to=25)},
            ),
        )
    )
    assert found.data.items[0].id == "item-0"
    assert found.data.items[0].score == 1.0
    assert found.data.items[0].source.custom_tags == {"color": "red"}
    assert found.data.search_info.total_num == 2
    last = found.data.search_info.last_item
    after = client.run_search(
        RunSearchRequest(
            service_name=SERVICE,
            body=SearchParam(
                search_type="IMAGE",
                image_base64=PNG,
                limit=10,
                last_item=SearchAfterParam(score=last.score, id=last.id),
            ),
        )
    )
    assert [i.id for i in after.data.items] == ["item-2"]  # past the first page's cursor
    by_keyword = client.run_search(
        RunSearchRequest(
            service_name=SERVICE,
            body=SearchParam(search_type="KEYWORD", keywords=["blue"], custom_tags={"color": ["blue"]}),
        )
    )
    assert [i.id for i in by_keyword.data.items] == ["item-2"]

    updated = client.run_update_data(
        RunUpdateDataRequest(
            service_name=SERVICE,
            body=UpdateParam(item_id="item-1", desc="now green", custom_tags={"color": "green"}),
        )
    )
    assert updated.result == "success"
    checked = client.run_check_data(
        RunCheckDataRequest(service_name=SERVICE, body=CheckParam(item_id="item-1"))
    )
    assert checked.data.existed is True
    assert checked.data.item_info.desc == "now green"
    by_tag = client.run_check_data(
        RunCheckDataRequest(
            service_name=SERVICE, body=CheckParam(custom_tags={"color": ["red", "green"]}, limit=1)
        )
    )
    assert [i.id for i in by_tag.data.items] == ["item-0"]
    assert by_tag.data.check_info.total_num == 2

    deleted = client.run_delete_data(
        RunDeleteDataRequest(service_name=SERVICE, body=DeleteParam(item_id="item-1"))
    )
    assert deleted.result == "success"
    assert deleted.data is None  # "data ... 仅在条件删除时存在该字段": only a conditional delete has it
    with pytest.raises(ClientRequestException) as info:
        client.run_delete_data(RunDeleteDataRequest(service_name=SERVICE, body=DeleteParam(item_id="item-1")))
    assert info.value.error_code == "MMS.9002"  # the docs give no code: the emulator's own
    forced = client.run_delete_data(
        RunDeleteDataRequest(service_name=SERVICE, body=DeleteParam(item_id="item-1", force=True))
    )
    assert (forced.result, forced.data) == ("success", None)
    by_condition = client.run_delete_data(
        RunDeleteDataRequest(service_name=SERVICE, body=DeleteParam(custom_tags={"color": ["blue"]}))
    )
    assert [i.id for i in by_condition.data.items] == ["item-2"]
    assert (by_condition.data.delete_info.total_num, by_condition.data.delete_info.delete_num) == (1, 1)
    routes = {entry["route"] for entry in emulator.requests_log()}
    assert {r for r in routes if r.startswith("POST /v2/")} == {
        "POST /v2/{project_id}/mms/{service_name}/data/add",
        "POST /v2/{project_id}/mms/{service_name}/data/check",
        "POST /v2/{project_id}/mms/{service_name}/data/delete",
        "POST /v2/{project_id}/mms/{service_name}/data/update",
        "POST /v2/{project_id}/mms/{service_name}/search",
    }
    assert {entry["auth"] for entry in emulator.requests_log()} == {"aksk"}


def test_official_v2_client_add_without_force_is_refused_for_an_existing_item(
    client: ImageSearchClient,
) -> None:
    body = AddDataParam(item_id="dup", image_url="https://shop.example/d.jpg")
    client.run_add_data(RunAddDataRequest(service_name=SERVICE, body=body))
    with pytest.raises(ClientRequestException) as info:
        client.run_add_data(RunAddDataRequest(service_name=SERVICE, body=body))
    assert info.value.error_code == "MMS.9001"
    assert info.value.status_code == 400
    body.force = True
    assert client.run_add_data(RunAddDataRequest(service_name=SERVICE, body=body)).result == "success"


def test_official_v2_client_reads_the_documented_error_bodies(client: ImageSearchClient) -> None:
    """v2 errors are MMS.* with the field in the message, as the v2 pages' examples; never IS.*."""
    too_long = "x" * 257
    with pytest.raises(ClientRequestException) as info:
        client.run_check_data(RunCheckDataRequest(service_name=SERVICE, body=CheckParam(item_id=too_long)))
    assert (info.value.status_code, info.value.error_code) == (400, "MMS.0003")
    assert info.value.error_msg == "Invalid parameter: item_id"  # the check page's own example
    with pytest.raises(ClientRequestException) as info:
        client.run_search(RunSearchRequest(service_name=SERVICE, body=SearchParam(image_url="u")))
    assert (info.value.error_code, info.value.error_msg) == (
        "MMS.0003",
        "Required parameter is empty: search_type",
    )
    with pytest.raises(ClientRequestException) as info:
        client.run_check_data(
            RunCheckDataRequest(service_name="no-such-service", body=CheckParam(item_id="a"))
        )
    assert (info.value.error_code, info.value.error_msg) == ("MMS.1001", "Service instance not found.")


def test_official_v2_client_update_of_an_undefined_tag_key_is_the_documented_example(
    client: ImageSearchClient, emulator: Emulator
) -> None:
    emulator.upsert_v2_service(SERVICE, custom_tags=["color"], items={"a": {"image_url": "https://x/a.jpg"}})
    with pytest.raises(ClientRequestException) as info:
        client.run_update_data(
            RunUpdateDataRequest(
                service_name=SERVICE, body=UpdateParam(item_id="a", custom_tags={"size": "L"})
            )
        )
    # The update page's example: {"error_code": "MMS.0003", "error_msg": "Invalid parameter: custom_tags"}
    assert (info.value.error_code, info.value.error_msg) == ("MMS.0003", "Invalid parameter: custom_tags")


def test_official_v2_client_search_type_by_value_and_collapse_key(
    client: ImageSearchClient, emulator: Emulator
) -> None:
    items = {
        f"sku-{n}": {
            "image_url": f"https://shop.example/{n}.jpg",
            "custom_tags": {"model": f"m{n % 2}"} if n < 4 else {},
        }
        for n in range(5)
    }
    emulator.upsert_v2_service(SERVICE, items=items)
    query = "https://shop.example/0.jpg"
    by_name = client.run_search(
        RunSearchRequest(service_name=SERVICE, body=SearchParam(search_type="IMAGE", image_url=query))
    )
    by_value = client.run_search(
        RunSearchRequest(service_name=SERVICE, body=SearchParam(search_type="0", image_url=query))
    )
    assert [i.id for i in by_value.data.items] == [i.id for i in by_name.data.items]
    assert len(by_name.data.items) == 5
    # The image search reports the subject it searched for and the subjects of the query image.
    assert by_value.data.image_info.box
    assert by_value.data.image_info.objects[0].category_name
    collapsed = client.run_search(
        RunSearchRequest(
            service_name=SERVICE,
            body=SearchParam(
                search_type="IMAGE",
                image_url=query,
                optional_params=SearchOptionalParam(collapse_key="model"),
            ),
        )
    )
    ids = [i.id for i in collapsed.data.items]
    # One result per value of "model" (m0, m1), the best of each; sku-4 has no "model" tag: dropped.
    assert len(ids) == 2
    assert ids[0] == "sku-0"
    assert {items[i]["custom_tags"]["model"] for i in ids} == {"m0", "m1"}
    best_m1 = next(i.id for i in by_name.data.items if items[i.id]["custom_tags"].get("model") == "m1")
    assert ids[1] == best_m1
    assert collapsed.data.search_info.total_num == 2
