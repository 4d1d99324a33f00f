"""Bulk import of a catalogue into an ImageSearch v1 instance or v2 (MMS) service: idempotent, resumable, fast.

Two operators on one engine (:mod:`airflow_provider_imagesearch.imports.engine`) and one ledger table:
:class:`ImageSearchImportImagesOperator` (v1 images of an instance, on the v1 operator base) and
:class:`ImageSearchV2ImportDataOperator` (v2 data items of a service, on the v2 operator base, so it
takes ``service_name`` and reports lineage under ``mms://`` like the other v2 operators). They differ only
in the API adapter (:mod:`airflow_provider_imagesearch.imports.apis`) and the manifest's columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_imagesearch.errors import ImageSearchValidationError
from airflow_provider_imagesearch.mixins import imagesearch_template_fields
from airflow_provider_imagesearch.operators.base import ImageSearchBaseOperator
from airflow_provider_imagesearch.operators.imagesearch_v2 import ImageSearchV2BaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchHook
    from airflow_provider_imagesearch.imports.apis import ImportApi

DEFAULT_LEDGER_CONN_ID = "imagesearch_archive_db"
DEFAULT_LEDGER_TABLE = "imagesearch_import_ledger"


class ImageSearchImportImagesOperator(ImageSearchBaseOperator):
    """Import a manifest of images into an instance, sending only what is new or changed.

    Every row's outcome goes to a ledger table (one row per instance and path), so a rerun sends only
    new and changed rows (an unchanged manifest sends no request at all) and a killed run resumes.
    ``add_image`` is never blindly retried: after an ambiguous failure the library is asked, and the row
    is reconciled or sent again. Bad rows never block good ones: rows that fail the checks or that the
    API refuses (``IS.0002``/``IS.0003``) are recorded as ``invalid`` with their reason and row number and
    are not sent again until they change. The task processes every row, then fails when more than
    ``max_failed`` rows failed or were invalid, naming the first ten. Returns the counts: ``added``,
    ``updated``, ``unchanged``, ``reconciled``, ``pruned``, ``failed``, ``invalid``, ``seconds`` (and
    ``rows``, ``duplicates``).

    :param instance_name: the instance to import into. (templated)
    :param manifest: a list of dicts (e.g. an XCom value), or a CSV / JSON-lines / Parquet file: a local
        path, an http(s) URL (e.g. presigned) or an ``ObjectStoragePath``. Columns: ``path`` (required),
        ``tags`` (a JSON object) or ``tag.<key>`` columns, ``file`` (optional local file sent base64).
        (templated)
    :param manifest_sql: a query returning the manifest's columns, instead of ``manifest``. (templated)
    :param manifest_conn_id: the SQL connection ``manifest_sql`` runs on. (templated)
    :param ledger_conn_id: the SQL connection of the ledger (SQLite, PostgreSQL, any ``DbApiHook``).
        (templated)
    :param ledger_table: the ledger's ``[schema.]table``; created when missing. (templated)
    :param max_concurrency: requests in flight at most (halved by throttling, grown back by successes).
    :param max_failed: failed plus invalid rows tolerated before the task fails (default 0).
    :param prune: delete from the library the images the ledger recorded and the manifest no longer lists.
    """

    template_fields: Sequence[str] = imagesearch_template_fields(
        "instance_name", "manifest", "manifest_sql", "manifest_conn_id", "ledger_conn_id", "ledger_table"
    )
    template_fields_renderers = {"manifest_sql": "sql"}
    lineage_role = "output"

    def __init__(
        self,
        *,
        instance_name: str,
        manifest: Any = None,
        manifest_sql: str | None = None,
        manifest_conn_id: str | None = None,
        ledger_conn_id: str = DEFAULT_LEDGER_CONN_ID,
        ledger_table: str = DEFAULT_LEDGER_TABLE,
        max_concurrency: int = 8,
        max_failed: int = 0,
        prune: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.instance_name = instance_name
        self.manifest = manifest
        self.manifest_sql = manifest_sql
        self.manifest_conn_id = manifest_conn_id
        self.ledger_conn_id = ledger_conn_id
        self.ledger_table = ledger_table
        self.max_concurrency = max_concurrency
        self.max_failed = max_failed
        self.prune = prune

    def run(self, hook: ImageSearchHook, context: Context) -> dict[str, Any]:
        from airflow_provider_imagesearch.imports.apis import V1_IMAGES

        return _run_import(self, hook, context, V1_IMAGES, self.instance_name)


def _check_import_arguments(op: Any, api: ImportApi, target: str) -> None:
    from airflow_provider_imagesearch.archive import validate_table_name
    from airflow_provider_imagesearch.imports.manifest import validate_source

    api.validate_target(target)
    validate_source(op.manifest, op.manifest_sql, op.manifest_conn_id)
    validate_table_name(op.ledger_table, "ledger_table")
    for name, low in (("max_concurrency", 1), ("max_failed", 0)):
        value = getattr(op, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < low or value > 1024:
            raise ImageSearchValidationError(name, f"an integer from {low} to 1024", value)
    if not isinstance(op.prune, bool):
        raise ImageSearchValidationError("prune", "True or False", op.prune)
    if not isinstance(op.ledger_conn_id, str) or not op.ledger_conn_id:
        raise ImageSearchValidationError("ledger_conn_id", "the id of a SQL connection", op.ledger_conn_id)


def _run_import(
    op: Any, hook: ImageSearchHook, context: Context, api: ImportApi, target: str
) -> dict[str, Any]:
    """The import of either operator: plan, engine, ledger, counts, and the task's verdict."""
    from airflow_provider_imagesearch.archive import sql_engine
    from airflow_provider_imagesearch.imports.engine import ImportEngine
    from airflow_provider_imagesearch.imports.ledger import Ledger
    from airflow_provider_imagesearch.imports.manifest import read_chunks
    from airflow_provider_imagesearch.imports.plan import Plan
    from airflow_provider_imagesearch.version_compat import AirflowFailException

    _check_import_arguments(op, api, target)
    run_id = str(context.get("run_id") or "manual")
    engine = sql_engine(op.ledger_conn_id)
    try:
        ledger = Ledger(engine, op.ledger_table, target, run_id, api=api.name)
        ledger.create_if_missing()
        with Plan() as plan:
            chunks = read_chunks(
                op.manifest, manifest_sql=op.manifest_sql, manifest_conn_id=op.manifest_conn_id
            )
            plan.load_manifest(chunks, region=hook.settings.region, check=api.check_row)
            plan.load_ledger(ledger)
            if op.prune and plan.summary.paths == 0:
                # A manifest without one usable path (an empty file, a query that matched nothing, a
                # header spelled "Path") is far more often an upstream failure than a wish to empty the
                # library: refuse rather than delete it all.
                raise AirflowFailException(
                    f"Import into {target}: the manifest has {plan.summary.rows} rows and no usable "
                    f"{api.key_column}, and prune=True would delete every image the ledger recorded; "
                    "nothing was sent. To empty a library, delete its images or the instance explicitly."
                )
            importer = ImportEngine(
                hook,
                target,
                ledger,
                max_concurrency=op.max_concurrency,
                prune=op.prune,
                logger=op.log,
                api=api,
            )
            result = importer.run(plan)
    finally:
        engine.dispose()
    summary = result.to_dict()
    op.log.info("Import into %s done: %s", target, summary)
    bad = result.counts["failed"] + result.counts["invalid"]
    if bad > op.max_failed:
        reasons = ", ".join(f"{code} x{count}" for code, count in result.problem_reasons.most_common())
        raise AirflowFailException(
            f"Import into {target}: {bad} rows failed or were invalid (max_failed="
            f"{op.max_failed}; every other row was processed: {summary}). By reason: {reasons}. "
            f"First {len(result.problems)}: " + "; ".join(result.problems)
        )
    return summary


class ImageSearchV2ImportDataOperator(ImageSearchV2BaseOperator):
    """Import a manifest of data items into a v2 (MMS) service, sending only what is new or changed.

    The v2 twin of :class:`ImageSearchImportImagesOperator`, on the same engine and ledger table (rows
    kept apart from v1's by the ledger's ``api`` column): the same idempotency, resume, throttling,
    progress, ``max_failed`` verdict and XCom counts. ``item_id`` keys the rows. Rows are checked against
    the SDK's limits before any request and recorded ``invalid`` naming the field. A new row is sent as
    ``data/add`` (not blindly retried; after an ambiguous failure ``data/check`` decides: present with
    the row's fields, it is ``reconciled``; absent, it is sent again). A changed row is sent as
    ``data/update`` when only its description or tag values changed, else as an add with ``force``.
    ``prune`` deletes with ``data/delete``.

    :param service_name: the v2 service (created in the console). (templated)
    :param manifest: a list of dicts (e.g. an XCom value), or a CSV / JSON-lines / Parquet file: a local
        path, an http(s) URL (e.g. presigned) or an ``ObjectStoragePath``. Columns: ``item_id`` (required,
        1-256 characters), exactly one of ``image_url``, ``image_base64`` or ``file`` (a local file sent
        base64), ``desc``, ``custom_tags`` (JSON object) or ``tag.<key>`` columns (strings of 1-64
        characters), ``custom_num_tags`` (JSON object) or ``num.<key>`` columns (numbers), ``keywords`` (a
        list or comma-separated text). (templated)
    :param manifest_sql: a query returning the manifest's columns, instead of ``manifest``. (templated)
    :param manifest_conn_id: the SQL connection ``manifest_sql`` runs on. (templated)
    :param ledger_conn_id: the SQL connection of the ledger (SQLite, PostgreSQL, any ``DbApiHook``).
        (templated)
    :param ledger_table: the ledger's ``[schema.]table``; created when missing; may be v1's. (templated)
    :param max_concurrency: requests in flight at most (halved by throttling, grown back by successes).
    :param max_failed: failed plus invalid rows tolerated before the task fails (default 0).
    :param prune: delete from the service the items the ledger recorded and the manifest no longer lists.
    """

    template_fields: Sequence[str] = imagesearch_template_fields(
        "service_name", "manifest", "manifest_sql", "manifest_conn_id", "ledger_conn_id", "ledger_table"
    )
    template_fields_renderers = {"manifest_sql": "sql"}
    lineage_role = "output"

    def __init__(
        self,
        *,
        service_name: str,
        manifest: Any = None,
        manifest_sql: str | None = None,
        manifest_conn_id: str | None = None,
        ledger_conn_id: str = DEFAULT_LEDGER_CONN_ID,
        ledger_table: str = DEFAULT_LEDGER_TABLE,
        max_concurrency: int = 8,
        max_failed: int = 0,
        prune: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(service_name=service_name, **kwargs)
        self.manifest = manifest
        self.manifest_sql = manifest_sql
        self.manifest_conn_id = manifest_conn_id
        self.ledger_conn_id = ledger_conn_id
        self.ledger_table = ledger_table
        self.max_concurrency = max_concurrency
        self.max_failed = max_failed
        self.prune = prune

    def run(self, hook: ImageSearchHook, context: Context) -> dict[str, Any]:
        from airflow_provider_imagesearch.imports.apis import V2_DATA

        return _run_import(self, hook, context, V2_DATA, self.service_name)
