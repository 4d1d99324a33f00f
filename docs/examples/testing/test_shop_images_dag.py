"""Testing a DAG of your own with the testing kit: the whole set-up is the two-line conftest.py."""

from __future__ import annotations

# [START howto_testing_kit_fixture]
import pytest
import requests
from shop_images_dag import NEW_IMAGE, dag

from airflow_provider_imagesearch.testing import run_dag


def test_the_dag_adds_the_image_and_finds_it(imagesearch_emulator):
    # The emulator starts empty for every test: seed what the DAG expects to find.
    imagesearch_emulator.add_instance("shop-main", tags=["color"])
    imagesearch_emulator.add_image(
        "shop-main",
        "https://shop-images.obs.cn-north-4.myhuaweicloud.com/shoes/red-1.jpg",
        tags={"color": "red"},
    )

    dag_run = run_dag(dag)

    assert dag_run.state == "success"
    assert imagesearch_emulator.images("shop-main")[NEW_IMAGE] == {"color": "red"}
    searches = imagesearch_emulator.requests("/image/search")
    assert [r["status"] for r in searches] == [200]


# [END howto_testing_kit_fixture]


# [START howto_testing_kit_faults]
def test_the_dag_rides_out_a_throttled_and_a_failing_call(imagesearch_emulator):
    imagesearch_emulator.add_instance("shop-main", tags=["color"])
    # The next two API requests are refused: a 429 (with Retry-After), then a 503.
    imagesearch_emulator.fail_next("429", "503_json")

    assert run_dag(dag).state == "success"

    statuses = [r["status"] for r in imagesearch_emulator.api_requests()]
    assert statuses[:3] == [429, 503, 200]  # the read was retried twice


# [END howto_testing_kit_faults]


# [START howto_testing_kit_missing]
def test_the_dag_fails_when_the_instance_is_missing(imagesearch_emulator):
    dag_run = run_dag(dag)

    assert dag_run.state == "failed"
    (refused,) = imagesearch_emulator.api_requests()
    assert refused["error_code"] == "IS.0007"  # "Invalid instance name.": no such instance


# [END howto_testing_kit_missing]


# [START howto_testing_kit_guard]
def test_no_request_can_reach_huawei_cloud(imagesearch_emulator):
    from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchHook

    # The exported connection sends v1, v2 and IAM calls to the emulator...
    settings = ImageSearchHook().settings
    endpoints = {settings.base_url(api) for api in ("imagesearch", "mms", "iam")}
    assert endpoints == {imagesearch_emulator.url}
    # ...and anything else trying a public Huawei Cloud host fails at once.
    with pytest.raises(requests.ConnectionError, match="imagesearch testing kit"):
        requests.get("https://iam.cn-north-4.myhuaweicloud.com/v3/auth/tokens", timeout=5)
    assert imagesearch_emulator.blocked_hosts == ["iam.cn-north-4.myhuaweicloud.com"]


# [END howto_testing_kit_guard]
