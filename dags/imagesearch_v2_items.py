"""One item's life in an ImageSearch v2 (MMS) service: add, check, update, search, delete.

``imagesearch_v2_items`` calls each v2 data operator once: it adds an item (image URL, description,
string and numeric tags, keywords), checks that it is there, changes its description and tags, searches
the service by the item's image, and deletes it again. The service itself is created in the Huawei
Cloud console (v2 has no API for it): give its name as the ``service_name`` param.

| task | operator | XCom |
|---|---|---|
| `add_item` | `ImageSearchV2AddDataOperator` | `{item_id, result, objects}` |
| `check_item` | `ImageSearchV2CheckDataOperator` | `{existed, item, ...}` |
| `update_item` | `ImageSearchV2UpdateDataOperator` | `"success"` |
| `search_similar` | `ImageSearchV2SearchOperator` | results `[{id, score, desc, ...}]`, best first |
| `delete_item` | `ImageSearchV2DeleteDataOperator` | `{deleted_ids, total_num, delete_num}` |

Parsing this file imports no HTTP client and no pandas: the operators load them when they run.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Param, dag

from airflow_provider_imagesearch.operators.imagesearch_v2 import (
    ImageSearchV2AddDataOperator,
    ImageSearchV2CheckDataOperator,
    ImageSearchV2DeleteDataOperator,
    ImageSearchV2SearchOperator,
    ImageSearchV2UpdateDataOperator,
)

IMAGE_URL = "https://shop-images.obs.cn-north-4.myhuaweicloud.com/red-shirt.jpg"


@dag(
    dag_id="imagesearch_v2_items",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["imagesearch", "imagesearch-v2", "example"],
    params={
        "service_name": Param("catalog", type="string", minLength=1, maxLength=64),
        "imagesearch_conn_id": Param("imagesearch_default", type="string"),
        "item_id": Param("sku-red-shirt", type="string", minLength=1, maxLength=256),
    },
    doc_md=__doc__,
)
def imagesearch_v2_items() -> None:
    service = "{{ params.service_name }}"
    conn_id = "{{ params.imagesearch_conn_id }}"
    item = "{{ params.item_id }}"

    # [START howto_operator_imagesearch_v2_add_data]
    add = ImageSearchV2AddDataOperator(
        task_id="add_item",
        imagesearch_conn_id=conn_id,
        service_name=service,
        item_id=item,
        image_url=IMAGE_URL,
        desc="Red shirt, cotton",
        custom_tags={"color": "red"},
        custom_num_tags={"price": 19.9},
        keywords=["shirt", "red"],
        force=True,  # overwrite an item with the same id: a retry is harmless
    )
    # [END howto_operator_imagesearch_v2_add_data]

    # [START howto_operator_imagesearch_v2_check_data]
    check = ImageSearchV2CheckDataOperator(
        task_id="check_item", imagesearch_conn_id=conn_id, service_name=service, item_id=item
    )
    # [END howto_operator_imagesearch_v2_check_data]

    # [START howto_operator_imagesearch_v2_update_data]
    update = ImageSearchV2UpdateDataOperator(
        task_id="update_item",
        imagesearch_conn_id=conn_id,
        service_name=service,
        item_id=item,
        desc="Red shirt, organic cotton",
        custom_tags={"color": "crimson"},
        custom_num_tags={"price": 17.5},
    )
    # [END howto_operator_imagesearch_v2_update_data]

    # [START howto_operator_imagesearch_v2_search]
    search = ImageSearchV2SearchOperator(
        task_id="search_similar",
        imagesearch_conn_id=conn_id,
        service_name=service,
        image_url=IMAGE_URL,
        limit=10,
        min_score=0.5,
    )
    # [END howto_operator_imagesearch_v2_search]

    # [START howto_operator_imagesearch_v2_delete_data]
    delete = ImageSearchV2DeleteDataOperator(
        task_id="delete_item", imagesearch_conn_id=conn_id, service_name=service, item_id=item
    )
    # [END howto_operator_imagesearch_v2_delete_data]

    add >> check >> update >> search >> delete


imagesearch_v2_items()
