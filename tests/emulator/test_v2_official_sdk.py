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
    assert [i.id for i in deleted.data.items] == ["item-1"]
    assert deleted.data.delete_info.delete_num == 1
    with pytest.raises(ClientRequestException) as info:
        client.run_delete_data(RunDeleteDataRequest(service_name=SERVICE, body=DeleteParam(item_id="item-1")))
    assert info.value.error_code == "IS.0014"
    forced = client.run_delete_data(
        RunDeleteDataRequest(service_name=SERVICE, body=DeleteParam(item_id="item-1", force=True))
    )
    assert forced.data.delete_info.delete_num == 0
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
    assert info.value.error_code == "IS.0017"
    body.force = True
    assert client.run_add_data(RunAddDataRequest(service_name=SERVICE, body=body)).result == "success"
