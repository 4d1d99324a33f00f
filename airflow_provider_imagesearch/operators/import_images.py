"""Bulk import of a catalogue of images into an ImageSearch instance: idempotent, resumable, fast."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_imagesearch.errors import ImageSearchValidationError
from airflow_provider_imagesearch.mixins import imagesearch_template_fields
from airflow_provider_imagesearch.operators.base import ImageSearchBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchHook

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
        path, a URL or an ``ObjectStoragePath``. Columns: ``path`` (required), ``tags`` (a JSON object) or
        ``tag.<key>`` columns, ``file`` (optional local file sent base64). (templated)
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

    def _check_arguments(self) -> None:
        from airflow_provider_imagesearch import validation
        from airflow_provider_imagesearch.archive import validate_table_name
        from airflow_provider_imagesearch.imports.manifest import validate_source

        validation.instance_name(self.instance_name)
        validate_source(self.manifest, self.manifest_sql, self.manifest_conn_id)
        validate_table_name(self.ledger_table)
        for name, low in (("max_concurrency", 1), ("max_failed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low or value > 1024:
                raise ImageSearchValidationError(name, f"an integer from {low} to 1024", value)
        if not isinstance(self.prune, bool):
            raise ImageSearchValidationError("prune", "True or False", self.prune)
        if not isinstance(self.ledger_conn_id, str) or not self.ledger_conn_id:
            raise ImageSearchValidationError(
                "ledger_conn_id", "the id of a SQL connection", self.ledger_conn_id
            )

    def run(self, hook: ImageSearchHook, context: Context) -> dict[str, Any]:
        from airflow_provider_imagesearch.archive import sql_engine
        from airflow_provider_imagesearch.imports.engine import ImportEngine
        from airflow_provider_imagesearch.imports.ledger import Ledger
        from airflow_provider_imagesearch.imports.manifest import read_chunks
        from airflow_provider_imagesearch.imports.plan import Plan
        from airflow_provider_imagesearch.version_compat import AirflowFailException

        self._check_arguments()
        run_id = str(context.get("run_id") or "manual")
        engine = sql_engine(self.ledger_conn_id)
        try:
            ledger = Ledger(engine, self.ledger_table, self.instance_name, run_id)
            ledger.create_if_missing()
            with Plan() as plan:
                chunks = read_chunks(
                    self.manifest, manifest_sql=self.manifest_sql, manifest_conn_id=self.manifest_conn_id
                )
                plan.load_manifest(chunks, region=hook.settings.region)
                plan.load_ledger(ledger)
                importer = ImportEngine(
                    hook,
                    self.instance_name,
                    ledger,
                    max_concurrency=self.max_concurrency,
                    prune=self.prune,
                    logger=self.log,
                )
                result = importer.run(plan)
        finally:
            engine.dispose()
        summary = result.to_dict()
        self.log.info("Import into %s done: %s", self.instance_name, summary)
        bad = result.counts["failed"] + result.counts["invalid"]
        if bad > self.max_failed:
            reasons = ", ".join(f"{code} x{count}" for code, count in result.problem_reasons.most_common())
            raise AirflowFailException(
                f"Import into {self.instance_name}: {bad} rows failed or were invalid (max_failed="
                f"{self.max_failed}; every other row was processed: {summary}). By reason: {reasons}. "
                f"First {len(result.problems)}: " + "; ".join(result.problems)
            )
        return summary
