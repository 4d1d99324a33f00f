"""A DAG of "your own": read an instance, add an image, search for it (run by test_shop_images_dag.py)."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_imagesearch.operators.imagesearch import (
    ImageSearchAddImageOperator,
    ImageSearchSearchImagesOperator,
    InstanceDetailOperator,
)

NEW_IMAGE = "https://shop-images.obs.cn-north-4.myhuaweicloud.com/shoes/new-1.jpg"

with DAG("shop_images", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
    detail = InstanceDetailOperator(task_id="detail", instance_name="shop-main")
    add = ImageSearchAddImageOperator(
        task_id="add", instance_name="shop-main", path=NEW_IMAGE, tags={"color": "red"}
    )
    search = ImageSearchSearchImagesOperator(
        task_id="search", instance_name="shop-main", path=NEW_IMAGE, tags={"color": "red"}, limit=5
    )
    detail >> add >> search
