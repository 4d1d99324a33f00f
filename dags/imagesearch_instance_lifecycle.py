"""The whole life of an ImageSearch instance, one operator per v1 call.

``imagesearch_instance_lifecycle`` creates an instance and waits until it is ``NORMAL``, adds images to
its library (one mapped task per image), checks that the query image is there, searches for images like
it, replaces one image's tags, deletes one image, and deletes the instance, waiting until it is gone.

| task | operator | XCom |
|---|---|---|
| `create_instance` | `ImageSearchCreateInstanceOperator` | the instance's details (`status` `NORMAL`) |
| `add_images` (mapped, one per image) | `ImageSearchAddImageOperator` | `{instance_name, path, result}` |
| `check_image` | `ImageSearchCheckImageOperator` | `true` / `false` |
| `search_images` | `ImageSearchSearchImagesOperator` | hits `[{path, similarity, tags}]`, most similar first |
| `update_image_tags` | `ImageSearchUpdateImageTagsOperator` | `{instance_name, path, tags, result}` |
| `delete_image` | `ImageSearchDeleteImageOperator` | `true` (deleted) / `false` (was not there) |
| `delete_instance` | `ImageSearchDeleteInstanceOperator` | none; succeeds once the instance is gone |

**Params**: `instance_name`, `imagesearch_conn_id`, `instance_tags` (the tag names images may use),
`images` (a list of `{path, tags}`), `query_path` (the image checked and searched for), `retag`
(`{path, tags}`: the image whose tags are replaced) and `delete_path` (the image deleted).

Image paths are OBS HTTPS URLs in the instance's region,
`https://{bucket}.obs.{region}.myhuaweicloud.com/{key}`: the service downloads each image from there and
uses the URL as the image's id in the library.

The two waits are deferrable: the instance's creation and deletion are waited for in the triggerer,
not in a worker slot (`airflow dags test` runs the trigger inline).

`create_instance` refuses an instance that already exists (`if_exists="fail"`), so the DAG never
adopts, fills and deletes an instance it did not create. If a run fails half-way, the instance is left
as it is: clear `delete_instance` alone to remove it, or fix the cause and clear the failed task.

Against the local emulator:

```bash
python -m airflow_provider_imagesearch.emulator --port 8080 &
export AIRFLOW_CONN_IMAGESEARCH_DEFAULT='{"conn_type": "imagesearch", "host": "http://127.0.0.1:8080",
  "extra": {"region": "cn-north-4", "project_id": "0b5e4c3a2f1d4e6a8c7b9d0e1f2a3b4c",
            "token": "MIIemu-ready-token-Secret-0004"}}'
airflow dags test imagesearch_instance_lifecycle
```

Parsing this file imports no HTTP client and no pandas: the operators load them when they run.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import Param, dag, get_current_context, task

from airflow_provider_imagesearch.operators.imagesearch import (
    ImageSearchAddImageOperator,
    ImageSearchCheckImageOperator,
    ImageSearchCreateInstanceOperator,
    ImageSearchDeleteImageOperator,
    ImageSearchDeleteInstanceOperator,
    ImageSearchSearchImagesOperator,
    ImageSearchUpdateImageTagsOperator,
)

OBS = "https://shop-images.obs.cn-north-4.myhuaweicloud.com"
#: Seconds between status reads while the instance is created or deleted (it takes minutes for real).
POLL_SECONDS = 15.0
#: How long creation and deletion may take before the wait fails.
WAIT_TIMEOUT_SECONDS = 30 * 60

_OBS_URL = r"^https://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\.obs\.[a-z0-9-]+\.myhuaweicloud\.com/.+$"
_IMAGE_SCHEMA = {
    "type": "object",
    "required": ["path"],
    "properties": {
        "path": {"type": "string", "pattern": _OBS_URL},
        "tags": {"type": "object", "additionalProperties": {"type": ["string", "array"]}},
    },
    "additionalProperties": False,
}


@dag(
    dag_id="imagesearch_instance_lifecycle",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["imagesearch", "example"],
    # Tags and the image list reach the operators as dicts and lists, not as their text.
    render_template_as_native_obj=True,
    params={
        "instance_name": Param(
            "lifecycle-demo",
            type="string",
            pattern="^[a-z][a-z0-9_-]{0,15}$",
            description="The instance to create and delete (1-16 chars of a-z, 0-9, '-', '_', "
            "starting with a letter). It must not exist yet.",
        ),
        "imagesearch_conn_id": Param("imagesearch_default", type="string"),
        "instance_tags": Param(
            ["color", "season"],
            type="array",
            items={"type": "string", "pattern": "^[a-z0-9_-]{1,32}$"},
            maxItems=10,
            description="Tag names the instance's images may carry (at most 10, lowercase).",
        ),
        "images": Param(
            [
                {"path": f"{OBS}/red-shirt.jpg", "tags": {"color": "red", "season": "summer"}},
                {"path": f"{OBS}/red-dress.jpg", "tags": {"color": "red", "season": "winter"}},
                {"path": f"{OBS}/blue-shirt.jpg", "tags": {"color": "blue", "season": "summer"}},
            ],
            type="array",
            items=_IMAGE_SCHEMA,
            minItems=1,
            description="Images to add: each an OBS HTTPS URL in the instance's region "
            "(https://{bucket}.obs.{region}.myhuaweicloud.com/{key}) and its tags.",
        ),
        "query_path": Param(
            f"{OBS}/red-shirt.jpg",
            type="string",
            pattern=_OBS_URL,
            description="The image checked for and searched with (one of the images).",
        ),
        "retag": Param(
            {"path": f"{OBS}/red-dress.jpg", "tags": {"color": "crimson", "season": "winter"}},
            type="object",
            required=["path", "tags"],
            properties=_IMAGE_SCHEMA["properties"],
            description="The image whose tags are replaced, and its new tags.",
        ),
        "delete_path": Param(
            f"{OBS}/blue-shirt.jpg",
            type="string",
            pattern=_OBS_URL,
            description="The image deleted from the library before the instance is.",
        ),
    },
    default_args={"retries": 2, "retry_delay": timedelta(seconds=10)},
    doc_md=__doc__,
)
def imagesearch_instance_lifecycle() -> None:
    conn_id = "{{ params.imagesearch_conn_id }}"
    name = "{{ params.instance_name }}"

    # [START howto_operator_imagesearch_create_instance]
    create = ImageSearchCreateInstanceOperator(
        task_id="create_instance",
        imagesearch_conn_id=conn_id,
        instance_name=name,
        description="Created by the imagesearch_instance_lifecycle example DAG",
        tags="{{ params.instance_tags }}",  # type: ignore[arg-type]  # rendered to a list
        if_exists="fail",
        deferrable=True,
        poke_interval=POLL_SECONDS,
        timeout=WAIT_TIMEOUT_SECONDS,
    )
    # [END howto_operator_imagesearch_create_instance]

    @task
    def images_to_add() -> list[dict[str, Any]]:
        """One ``{path, tags}`` per image: the mapped add task's arguments."""
        images = get_current_context()["params"]["images"]
        return [{"path": image["path"], "tags": image.get("tags") or None} for image in images]

    # [START howto_operator_imagesearch_add_image]
    added = ImageSearchAddImageOperator.partial(
        task_id="add_images",
        imagesearch_conn_id=conn_id,
        instance_name=name,
        map_index_template="{{ task.path }}",
    ).expand_kwargs(images_to_add())
    # [END howto_operator_imagesearch_add_image]

    # [START howto_operator_imagesearch_check_image]
    check = ImageSearchCheckImageOperator(
        task_id="check_image", imagesearch_conn_id=conn_id, instance_name=name, path="{{ params.query_path }}"
    )
    # [END howto_operator_imagesearch_check_image]

    # [START howto_operator_imagesearch_search_images]
    search = ImageSearchSearchImagesOperator(
        task_id="search_images",
        imagesearch_conn_id=conn_id,
        instance_name=name,
        path="{{ params.query_path }}",
        limit=10,
    )
    # [END howto_operator_imagesearch_search_images]

    # [START howto_operator_imagesearch_update_image_tags]
    retag = ImageSearchUpdateImageTagsOperator(
        task_id="update_image_tags",
        imagesearch_conn_id=conn_id,
        instance_name=name,
        path="{{ params.retag.path }}",
        tags="{{ params.retag.tags }}",  # type: ignore[arg-type]  # rendered to a dict
    )
    # [END howto_operator_imagesearch_update_image_tags]

    # [START howto_operator_imagesearch_delete_image]
    delete_image = ImageSearchDeleteImageOperator(
        task_id="delete_image",
        imagesearch_conn_id=conn_id,
        instance_name=name,
        path="{{ params.delete_path }}",
        missing_ok=False,
    )
    # [END howto_operator_imagesearch_delete_image]

    # [START howto_operator_imagesearch_delete_instance]
    delete_instance = ImageSearchDeleteInstanceOperator(
        task_id="delete_instance",
        imagesearch_conn_id=conn_id,
        instance_name=name,
        missing_ok=False,
        deferrable=True,
        poke_interval=POLL_SECONDS,
        timeout=WAIT_TIMEOUT_SECONDS,
    )
    # [END howto_operator_imagesearch_delete_instance]

    create >> added >> check >> search >> retag >> delete_image >> delete_instance


imagesearch_instance_lifecycle()
