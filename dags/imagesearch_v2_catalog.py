"""A small catalog imported into an ImageSearch v2 (MMS) service, searched by image and by keyword into a table.

``imagesearch_v2_catalog`` imports a sample manifest (``dags/data/imagesearch_v2_catalog.csv``: item ids,
image URLs, descriptions, ``tag.color``, ``num.price``, keywords) into a v2 service with the bulk import
(a ledger table on the SQL connection: a re-run sends only new or changed rows, an unchanged manifest no
request at all), searches the service with one item's image and with keywords, and writes both result
lists to a SQL table (one row per result; a retried or cleared run replaces its rows).

| task | operator | XCom |
|---|---|---|
| `import_items` | `ImageSearchV2ImportDataOperator` | counts: `added`, `updated`, `unchanged`, ... |
| `search_by_image` | `ImageSearchV2SearchOperator` (`IMAGE`) | results `[{id, score, desc, ...}]`, best first |
| `search_by_keyword` | `ImageSearchV2SearchOperator` (`KEYWORD`, all pages) | results, best first |
| `write_results` | `@task` (SQLAlchemy + the SQL connection: the run's rows replaced) | `{table, rows}` |

**Params**: `service_name` (created in the console: v2 has no API for it), `imagesearch_conn_id` (its
``mms_endpoint`` extra, or the region, says where v2 lives), `db_conn_id` (any common-sql connection: the
import's ledger and the results table), `table`, `manifest` (a CSV / JSON-lines / Parquet path or URL),
`query_image_url`, `query_keywords`.

Parsing this file imports no HTTP client and no pandas: the operators and the task load them when they run.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import Param, dag, get_current_context, task

from airflow_provider_imagesearch.operators.imagesearch_v2 import ImageSearchV2SearchOperator
from airflow_provider_imagesearch.operators.import_images import ImageSearchV2ImportDataOperator

CDN = "https://shop-images.obs.cn-north-4.myhuaweicloud.com"
SAMPLE_MANIFEST = str(Path(__file__).resolve().parent / "data" / "imagesearch_v2_catalog.csv")
_TABLE_PATTERN = "^[A-Za-z_][A-Za-z0-9_]{0,62}$"


@dag(
    dag_id="imagesearch_v2_catalog",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["imagesearch", "imagesearch-v2", "example"],
    render_template_as_native_obj=True,
    params={
        "service_name": Param("catalog", type="string", minLength=1, maxLength=64),
        "imagesearch_conn_id": Param("imagesearch_default", type="string"),
        "db_conn_id": Param("imagesearch_archive_db", type="string"),
        "table": Param("imagesearch_v2_results", type="string", pattern=_TABLE_PATTERN),
        "manifest": Param(SAMPLE_MANIFEST, type="string", minLength=1),
        "query_image_url": Param(f"{CDN}/red-shirt.jpg", type="string"),
        "query_keywords": Param(["shirt"], type="array", minItems=1, maxItems=10, items={"type": "string"}),
    },
    default_args={"retries": 2, "retry_delay": timedelta(seconds=10)},
    doc_md=__doc__,
)
def imagesearch_v2_catalog() -> None:
    common: dict[str, Any] = {
        "service_name": "{{ params.service_name }}",
        "imagesearch_conn_id": "{{ params.imagesearch_conn_id }}",
    }

    # [START howto_operator_imagesearch_v2_import_data]
    import_items = ImageSearchV2ImportDataOperator(
        task_id="import_items",
        manifest="{{ params.manifest }}",
        ledger_conn_id="{{ params.db_conn_id }}",
        **common,
    )
    # [END howto_operator_imagesearch_v2_import_data]
    # [START howto_operator_imagesearch_v2_search_by_image]
    by_image = ImageSearchV2SearchOperator(
        task_id="search_by_image", image_url="{{ params.query_image_url }}", limit=10, **common
    )
    # [END howto_operator_imagesearch_v2_search_by_image]
    # [START howto_operator_imagesearch_v2_search_by_keyword]
    by_keyword = ImageSearchV2SearchOperator(
        task_id="search_by_keyword",
        search_type="KEYWORD",
        keywords="{{ params.query_keywords }}",
        limit=100,
        fetch_all=True,
        **common,
    )
    # [END howto_operator_imagesearch_v2_search_by_keyword]

    @task
    def write_results(image_hits: list[dict[str, Any]], keyword_hits: list[dict[str, Any]]) -> dict[str, Any]:
        import sqlalchemy as sa

        from airflow_provider_imagesearch.archive import (
            create_table_if_missing,
            derived_identifier,
            sql_engine,
            validate_table_name,
        )

        context = get_current_context()
        params = context["params"]
        table = validate_table_name(params["table"])
        schema, _, name = table.rpartition(".")
        results = sa.Table(
            name,
            sa.MetaData(),
            sa.Column("run_id", sa.String(255), nullable=False),
            sa.Column("query", sa.String(16), nullable=False),
            sa.Column("rank", sa.Integer(), nullable=False),
            sa.Column("item_id", sa.String(256), nullable=False),
            sa.Column("score", sa.Float(), nullable=False),
            sa.Column("desc", sa.Text()),
            sa.Column("keywords", sa.Text()),
            sa.PrimaryKeyConstraint("run_id", "query", "rank", name=derived_identifier("pk", name)),
            schema=schema or None,
        )
        run_id = context["run_id"]
        rows = [
            {
                "run_id": run_id,
                "query": query,
                "rank": rank,
                "item_id": hit["id"],
                "score": hit["score"],
                "desc": hit.get("desc"),
                "keywords": ",".join(hit.get("keywords") or []),
            }
            for query, hits in (("image", image_hits), ("keyword", keyword_hits))
            for rank, hit in enumerate(hits, start=1)
        ]
        engine = sql_engine(params["db_conn_id"])
        try:
            # The run's rows are replaced, not appended, in one transaction: a retry or a clear of this
            # task in the same run rewrites them instead of adding a second copy.
            with engine.begin() as connection:
                create_table_if_missing(connection, table, results)
                connection.execute(sa.delete(results).where(results.c.run_id == run_id))
                if rows:
                    connection.execute(sa.insert(results), rows)
        finally:
            engine.dispose()
        return {"table": table, "rows": len(rows)}

    searches = [by_image, by_keyword]
    import_items >> searches
    # The operators' XComArgs resolve to the result lists when write_results runs.
    image_hits: Any = by_image.output
    keyword_hits: Any = by_keyword.output
    write_results(image_hits, keyword_hits)


imagesearch_v2_catalog()
