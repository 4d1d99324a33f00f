"""Load a product catalogue into an ImageSearch instance, then run a batch of searches into a table.

``imagesearch_catalog_import`` creates the instance unless it exists (an existing one with the same tags
is reused) and waits until it is ``NORMAL``, imports a catalogue manifest through the import ledger, and
runs a batch of searches whose hits go to a SQL table.

| task | operator | XCom |
|---|---|---|
| `create_instance` | `ImageSearchCreateInstanceOperator` (`if_exists="reuse"`, deferrable wait) | the instance's details |
| `import_catalog` | `ImageSearchImportImagesOperator`, mapped over :data:`SHARDS` shards | per shard: `added`, `updated`, `unchanged`, `reconciled`, `pruned`, `failed`, `invalid`, `seconds`, `phases`, `shard`, ... |
| `search_catalog` | `ImageSearchSearchImagesOperator` (batch) | `{queries, succeeded, failed, hits, seconds, table, run_id}` |

The sample data ships in `dags/data/` (written by `scripts/make_sample_catalog.py`, deterministic):
`sample_catalog.csv` has 300 rows (`path`, `tags` as a JSON object) of which **18 are invalid on
purpose**: 6 without a path, 6 whose tags are not a flat map of strings, 6 whose path is not an OBS HTTPS
URL. The import records them as `invalid` in the ledger (with their reason and row number) and never
sends them; it processes every other row, and `max_failed=18` (:data:`SAMPLE_INVALID_ROWS`) lets the task
succeed with exactly those. With your own manifest, set `max_failed` to what you tolerate (0 fails the
task on any bad row). `sample_searches.csv` has 24 queries (`query_id`, `path`, optional `tags` filter,
`limit`).

The import is split into :data:`SHARDS` mapped task instances (``shard=(index, count)``): each owns the
keys whose stable hash falls in its slice, holds its own lock and can run on its own worker, so a
catalogue of millions is imported by several workers at once; ``max_rate`` keeps each shard under its
share of the service's QPS quota. Rows without a path are reported by shard 0, so the shards' counts
add up to the manifest's. With one worker, ``shard`` can simply be left out.

A second run of the unchanged manifest sends no add request: the ledger knows every row. The search
hits are written per run (`run_id` column): a retry of the same run replaces its rows, never doubles them.

**Params**: `instance_name`, `imagesearch_conn_id`, `db_conn_id` (any common-sql connection: it holds the
import ledger and the results table), `manifest` and `queries` (a path or URL of a CSV / JSON-lines /
Parquet file; the shipped samples by default), `results_table`.

Against the local emulator:

```bash
python -m airflow_provider_imagesearch.emulator --port 8080 &
export AIRFLOW_CONN_IMAGESEARCH_DEFAULT='{"conn_type": "imagesearch", "host": "http://127.0.0.1:8080",
  "extra": {"region": "cn-north-4", "project_id": "0b5e4c3a2f1d4e6a8c7b9d0e1f2a3b4c",
            "token": "MIIemu-ready-token-Secret-0004"}}'
export AIRFLOW_CONN_IMAGESEARCH_ARCHIVE_DB='{"conn_type": "sqlite", "host": "/tmp/imagesearch.db"}'
airflow dags test imagesearch_catalog_import
```

Parsing this file imports no HTTP client and no pandas: the operators load them when they run.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import Param, dag

from airflow_provider_imagesearch.operators.imagesearch import (
    ImageSearchCreateInstanceOperator,
    ImageSearchSearchImagesOperator,
)
from airflow_provider_imagesearch.operators.import_images import ImageSearchImportImagesOperator

DATA = Path(__file__).resolve().parent / "data"
#: Rows of ``data/sample_catalog.csv`` that are invalid on purpose (see the module doc).
SAMPLE_INVALID_ROWS = 18
#: Tag names the catalogue's images carry (the instance is created with them).
INSTANCE_TAGS = ["color", "size"]
#: Mapped import tasks, one slice of the catalogue's keys each.
SHARDS = 4
#: Requests per second of each shard: your instance's QPS quota divided by SHARDS (ImageSearch sells
#: throughput as a quota; the v2 billing page's default for add is 5 QPS). Generous for the emulator.
MAX_RATE_PER_SHARD = 25.0
#: Seconds between status reads while the instance is created (it takes minutes for real).
POLL_SECONDS = 15.0
WAIT_TIMEOUT_SECONDS = 30 * 60
_TABLE_PATTERN = "^[A-Za-z_][A-Za-z0-9_]{0,62}$"


@dag(
    dag_id="imagesearch_catalog_import",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["imagesearch", "example"],
    params={
        "instance_name": Param(
            "catalog-demo",
            type="string",
            pattern="^[a-z][a-z0-9_-]{0,15}$",
            description="The instance to load (created when missing; reused when its tags match).",
        ),
        "imagesearch_conn_id": Param("imagesearch_default", type="string"),
        "db_conn_id": Param(
            "imagesearch_archive_db",
            type="string",
            description="SQL connection of the import ledger and of the search results.",
        ),
        "manifest": Param(str(DATA / "sample_catalog.csv"), type="string", minLength=1),
        "queries": Param(str(DATA / "sample_searches.csv"), type="string", minLength=1),
        "results_table": Param("imagesearch_search_results", type="string", pattern=_TABLE_PATTERN),
    },
    default_args={"retries": 2, "retry_delay": timedelta(seconds=10)},
    doc_md=__doc__,
)
def imagesearch_catalog_import() -> None:
    conn_id = "{{ params.imagesearch_conn_id }}"
    name = "{{ params.instance_name }}"

    create = ImageSearchCreateInstanceOperator(
        task_id="create_instance",
        imagesearch_conn_id=conn_id,
        instance_name=name,
        description="Sample catalogue of the imagesearch_catalog_import example DAG",
        tags=INSTANCE_TAGS,
        if_exists="reuse",
        wait_for_completion=True,
        deferrable=True,
        poke_interval=POLL_SECONDS,
        timeout=WAIT_TIMEOUT_SECONDS,
    )

    # [START howto_operator_imagesearch_import_images_sharded]
    load = ImageSearchImportImagesOperator.partial(
        task_id="import_catalog",
        imagesearch_conn_id=conn_id,
        instance_name=name,
        manifest="{{ params.manifest }}",
        ledger_conn_id="{{ params.db_conn_id }}",
        max_concurrency=8,
        max_rate=MAX_RATE_PER_SHARD,
        # The sample's invalid rows are known and recorded as invalid: they must not fail the run.
        max_failed=SAMPLE_INVALID_ROWS,
        map_index_template="shard {{ task.shard[0] }}/{{ task.shard[1] }}",
    ).expand(shard=[(index, SHARDS) for index in range(SHARDS)])
    # [END howto_operator_imagesearch_import_images_sharded]

    # [START howto_operator_imagesearch_batch_search]
    search = ImageSearchSearchImagesOperator(
        task_id="search_catalog",
        imagesearch_conn_id=conn_id,
        instance_name=name,
        queries="{{ params.queries }}",
        results_conn_id="{{ params.db_conn_id }}",
        results_table="{{ params.results_table }}",
        limit=10,
        max_concurrency=8,
    )
    # [END howto_operator_imagesearch_batch_search]

    create >> load >> search


imagesearch_catalog_import()
