"""Bulk import of a catalogue into an ImageSearch v1 instance or v2 (MMS) service: idempotent, resumable, fast.

Two operators on one engine (:mod:`airflow_provider_imagesearch.imports.engine`) and one ledger table:
:class:`ImageSearchImportImagesOperator` (v1 images of an instance, on the v1 operator base) and
:class:`ImageSearchV2ImportDataOperator` (v2 data items of a service, on the v2 operator base, so it
takes ``service_name`` and reports lineage under ``mms://`` like the other v2 operators). They differ only
in the API adapter (:mod:`airflow_provider_imagesearch.imports.apis`) and the manifest's columns.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_imagesearch.errors import ImageSearchValidationError
from airflow_provider_imagesearch.imports.ledger import DEFAULT_LEDGER_TABLE
from airflow_provider_imagesearch.mixins import PresignedUrlMaskMixin, imagesearch_template_fields
from airflow_provider_imagesearch.operators.base import ImageSearchBaseOperator
from airflow_provider_imagesearch.operators.imagesearch_v2 import ImageSearchV2BaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchHook
    from airflow_provider_imagesearch.imports.apis import ImportApi

DEFAULT_LEDGER_CONN_ID = "imagesearch_archive_db"
#: Seconds a run waits for another run of the same import to finish before it fails naming it.
DEFAULT_LOCK_TIMEOUT = 300.0
#: SQLite's busy timeout on the ledger (ms): several imports (or shards) write one file.
SQLITE_BUSY_TIMEOUT_MS = 60_000
_COMMON_PARAMS = """
    :param lock_timeout: seconds to wait while another run of the same import (same ledger table, API,
        target and shard) holds its lock, logging which run every 30 s, before failing naming it; 0
        fails at once. Default 300.
    :param max_rate: requests per second at most (every request of the import, retries included), shared
        by all its threads: stay under the service's QPS quota instead of finding it through 429s.
    :param time_limit: seconds (or a ``timedelta``) after the task's start when the import stops sending:
        requests in flight finish and everything is recorded, the rest is left for the next run (XCom
        ``remaining``), and the task succeeds. A daily run chips away at a huge catalogue.
    :param shard: ``(index, count)``: import only the keys whose stable hash falls in slice ``index`` of
        ``count`` (mapped tasks on several workers, each with its own lock; prune acts only on its slice).
"""


class ImageSearchImportImagesOperator(PresignedUrlMaskMixin, ImageSearchBaseOperator):
    """Import a manifest of images into an instance, sending only what is new or changed.

    Every row's outcome goes to a ledger table (one row per instance and path), so a rerun sends only
    new and changed rows (an unchanged manifest sends no request at all) and a killed run resumes.
    After an ambiguous failure (a 5xx, a timeout or a dropped connection after sending) the row is sent
    again as an overwrite (an add replaces the path whole), a bounded number of times, and recorded
    ``retried``: a check of the library could not tell its image from an older one at the path. Bad rows
    never block good ones: rows that fail the checks or that the API refuses (``IS.0002``/``IS.0003``) are
    recorded as ``invalid`` with their reason and row number and are not sent again until they change. The task processes every row, then fails when more than
    ``max_failed`` rows failed or were invalid, naming the first ten. Returns the counts: ``added``,
    ``updated``, ``unchanged``, ``retried`` (and its former name ``reconciled``), ``resent``, ``pruned``,
    ``failed``, ``invalid``, ``remaining``, ``prune_refused``, ``seconds`` (and ``rows``, ``duplicates``,
    ``throttled``, ``shard``, ``phases``).

    :param instance_name: the instance to import into. (templated)
    :param manifest: a list of dicts (e.g. an XCom value), or a CSV / JSON-lines / Parquet file: a local
        path, an http(s) URL (e.g. presigned) or an ``ObjectStoragePath``. Columns: ``path`` (required),
        ``tags`` (a JSON object) or ``tag.<key>`` columns, ``file`` (optional local file sent base64).
        (templated)
    :param manifest_sql: a query returning the manifest's columns, instead of ``manifest``. (templated)
    :param manifest_conn_id: the SQL connection ``manifest_sql`` runs on; or, for an ``s3://`` manifest,
        the ``aws`` connection of its store (e.g. OBS's S3 endpoint). (templated)
    :param ledger_conn_id: the SQL connection of the ledger (SQLite, PostgreSQL, any ``DbApiHook``).
        (templated)
    :param ledger_table: the ledger's ``[schema.]table``; created when missing. (templated)
    :param max_concurrency: requests in flight at most (halved by throttling, grown back by successes).
    :param max_failed: failed plus invalid rows tolerated before the task fails (default 0).
    :param prune: delete from the library the images the ledger recorded and the manifest no longer lists;
        refused (before any delete) when more than ``max_failed`` rows failed or were invalid, and
        whenever a row's key could not be read (XCom ``prune_refused`` says why).
    """

    __doc__ = (__doc__ or "") + _COMMON_PARAMS

    template_fields: Sequence[str] = imagesearch_template_fields(
        "instance_name", "manifest", "manifest_sql", "manifest_conn_id", "ledger_conn_id", "ledger_table"
    )
    template_fields_renderers = {"manifest_sql": "sql"}
    lineage_role = "output"
    #: Its signature and credential masked in the Rendered Template view, mapped (sharded) or not.
    presigned_url_fields = ("manifest",)

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
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        max_rate: float | None = None,
        time_limit: float | timedelta | None = None,
        shard: Sequence[int] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        _keep_import_options(self, lock_timeout, max_rate, time_limit, shard)
        self.instance_name = instance_name
        self.manifest = manifest
        self.manifest_sql = manifest_sql
        self.manifest_conn_id = manifest_conn_id
        self.ledger_conn_id: str = ledger_conn_id
        self.ledger_table: str = ledger_table
        self.max_concurrency = max_concurrency
        self.max_failed: int = max_failed
        self.prune: bool = prune

    def run(self, hook: ImageSearchHook, context: Context) -> dict[str, Any]:
        from airflow_provider_imagesearch.imports.apis import V1_IMAGES

        return _run_import(self, hook, context, V1_IMAGES, self.instance_name)


def _keep_import_options(
    op: Any, lock_timeout: Any, max_rate: Any, time_limit: Any, shard: Sequence[int] | None
) -> None:
    op.lock_timeout = lock_timeout
    op.max_rate = max_rate
    op.time_limit = time_limit
    op.shard = shard


def _number(value: Any, name: str, low: float, high: float, *, low_open: bool = False) -> float:
    ok = not isinstance(value, bool) and isinstance(value, int | float)
    if not ok or not (low < value if low_open else low <= value) or value > high:
        # .15g: whole numbers of any size in full (30 days is "2592000", not :g's "2.592e+06").
        bound = f"more than {low:.15g}" if low_open else f"from {low:.15g}"
        raise ImageSearchValidationError(name, f"a number of seconds {bound} to {high:.15g}", value)
    return float(value)


def _shard(value: Any) -> tuple[int, int]:
    """``(index, count)``, from a tuple or (after XCom or a template) a list."""
    if value is None:
        return (0, 1)
    form = "(index, count) with 0 <= index < count <= 1024, e.g. (0, 4) for the first of four shards"
    if isinstance(value, str) or not isinstance(value, Sequence) or len(value) != 2:
        raise ImageSearchValidationError("shard", form, value)
    index, count = value
    if any(isinstance(v, bool) or not isinstance(v, int) for v in (index, count)):
        raise ImageSearchValidationError("shard", form, value)
    if not 1 <= count <= 1024 or not 0 <= index < count:
        raise ImageSearchValidationError("shard", form, value)
    return (index, count)


def _check_import_arguments(op: Any, api: ImportApi, target: str) -> None:
    from airflow_provider_imagesearch.archive import validate_table_name
    from airflow_provider_imagesearch.imports.manifest import validate_source
    from airflow_provider_imagesearch.imports.pacing import MAX_RATE

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
    _number(op.lock_timeout, "lock_timeout", 0, 7 * 86400)
    if op.max_rate is not None:
        ok = not isinstance(op.max_rate, bool) and isinstance(op.max_rate, int | float)
        if not ok or not 0 < op.max_rate <= MAX_RATE:
            raise ImageSearchValidationError(
                "max_rate", f"requests per second, more than 0 and at most {MAX_RATE:g}", op.max_rate
            )
    if op.time_limit is not None:
        limit = op.time_limit.total_seconds() if isinstance(op.time_limit, timedelta) else op.time_limit
        _number(limit, "time_limit", 0, 30 * 86400, low_open=True)
    _shard(op.shard)


def _sqlite_patience(engine: Any) -> None:
    """SQLite waits up to a minute for the write lock (several imports and shards share one file)."""
    if engine.dialect.name != "sqlite":
        return
    import sqlalchemy as sa

    @sa.event.listens_for(engine, "connect")
    def _busy_timeout(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")


def _run_import(
    op: Any, hook: ImageSearchHook, context: Context, api: ImportApi, target: str
) -> dict[str, Any]:
    """The import of either operator: plan, lock, engine, ledger, counts, and the task's verdict."""
    from airflow_provider_imagesearch.archive import sql_engine
    from airflow_provider_imagesearch.imports.engine import ImportEngine
    from airflow_provider_imagesearch.imports.ledger import Ledger
    from airflow_provider_imagesearch.imports.lock import ImportLock, ImportLockedError, ImportLockLostError
    from airflow_provider_imagesearch.imports.manifest import ReadPosition, read_chunks
    from airflow_provider_imagesearch.imports.plan import Plan
    from airflow_provider_imagesearch.version_compat import AirflowException, AirflowFailException

    started = time.monotonic()
    _check_import_arguments(op, api, target)
    shard = _shard(op.shard)
    limit = op.time_limit.total_seconds() if isinstance(op.time_limit, timedelta) else op.time_limit
    deadline = started + limit if limit else None
    run_id = str(context.get("run_id") or "manual")
    engine = sql_engine(op.ledger_conn_id)
    _sqlite_patience(engine)
    waited = 0.0
    try:
        ledger = Ledger(engine, op.ledger_table, target, run_id, api=api.name)
        ledger.create_if_missing()
        with Plan(shard=shard, logger=op.log) as plan:
            position = ReadPosition()
            chunks = read_chunks(
                op.manifest,
                manifest_sql=op.manifest_sql,
                manifest_conn_id=op.manifest_conn_id,
                position=position,
            )
            plan.load_manifest(
                chunks, region=hook.settings.region, check=api.check_row, position=position.fraction
            )
            if op.prune and plan.summary.manifest_paths == 0:
                # A manifest without one usable path (an empty file, a query that matched nothing, a
                # header spelled "Path") is far more often an upstream failure than a wish to empty the
                # library: refuse rather than delete it all.
                raise AirflowFailException(
                    f"Import into {target}: the manifest has {plan.summary.rows} rows and no usable "
                    f"{api.key_column}, and prune=True would delete every image the ledger recorded; "
                    "nothing was sent. To empty a library, delete its images or the instance explicitly."
                )
            lock = ImportLock(engine, op.ledger_table, api.name, target, run_id, shard=shard, logger=op.log)
            try:
                try:
                    waited = lock.acquire(float(op.lock_timeout))
                except ImportLockedError as error:
                    raise AirflowException(str(error)) from None
                # Read under the lock: no other run of this target writes its rows meanwhile.
                plan.load_ledger(ledger)
                importer = ImportEngine(
                    hook,
                    target,
                    ledger,
                    max_concurrency=op.max_concurrency,
                    prune=op.prune,
                    logger=op.log,
                    api=api,
                    max_failed=op.max_failed,
                    max_rate=op.max_rate,
                    deadline=deadline,
                    lock=lock,
                )
                try:
                    result = importer.run(plan)
                except ImportLockLostError as error:
                    raise AirflowException(
                        f"Import into {target}: {error}; every answer was recorded"
                    ) from None
            finally:
                lock.release()
            phases = plan.summary.phases
    finally:
        engine.dispose()
    result.phases = {
        "read": phases.get("read", 0.0),
        "lock_wait": waited,
        "ledger": phases.get("ledger", 0.0),
        "diff": phases.get("diff", 0.0),
        "send": result.phases.get("send", 0.0),
    }
    result.seconds = time.monotonic() - started
    summary = result.to_dict()
    op.log.info("Import into %s done: %s", target, summary)
    if result.bad_rows() > op.max_failed:
        reasons = ", ".join(f"{code} x{count}" for code, count in result.problem_reasons.most_common())
        refused = f" {result.prune_refused.capitalize()}." if result.prune_refused else ""
        elsewhere = " (the other shards name theirs)" if result.other_shards_invalid else ""
        raise AirflowFailException(
            f"Import into {target}: {result.describe_bad_rows()} (max_failed="
            f"{op.max_failed}; every other row was processed: {summary}).{refused} By reason: {reasons}. "
            f"First {len(result.problems)}{elsewhere}: " + "; ".join(result.problems)
        )
    return summary


class ImageSearchV2ImportDataOperator(PresignedUrlMaskMixin, ImageSearchV2BaseOperator):
    """Import a manifest of data items into a v2 (MMS) service, sending only what is new or changed.

    The v2 twin of :class:`ImageSearchImportImagesOperator`, on the same engine and ledger table (rows
    kept apart from v1's by the ledger's ``api`` column): the same idempotency, resume, throttling,
    progress, ``max_failed`` verdict and XCom counts. ``item_id`` keys the rows. Rows are checked against
    the SDK's limits before any request and recorded ``invalid`` naming the field. A new row is sent as
    ``data/add`` with ``force`` (after an ambiguous failure it is sent again, an overwrite, and recorded
    ``retried``; the hook's own retries of it count in ``resent`` too). A changed row is sent as
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
    :param manifest_conn_id: the SQL connection ``manifest_sql`` runs on; or, for an ``s3://`` manifest,
        the ``aws`` connection of its store (e.g. OBS's S3 endpoint). (templated)
    :param ledger_conn_id: the SQL connection of the ledger (SQLite, PostgreSQL, any ``DbApiHook``).
        (templated)
    :param ledger_table: the ledger's ``[schema.]table``; created when missing; may be v1's. (templated)
    :param max_concurrency: requests in flight at most (halved by throttling, grown back by successes).
    :param max_failed: failed plus invalid rows tolerated before the task fails (default 0).
    :param prune: delete from the service the items the ledger recorded and the manifest no longer lists;
        refused (before any delete) when more than ``max_failed`` rows failed or were invalid, and
        whenever a row's key could not be read (XCom ``prune_refused`` says why).
    """

    __doc__ = (__doc__ or "") + _COMMON_PARAMS

    template_fields: Sequence[str] = imagesearch_template_fields(
        "service_name", "manifest", "manifest_sql", "manifest_conn_id", "ledger_conn_id", "ledger_table"
    )
    template_fields_renderers = {"manifest_sql": "sql"}
    lineage_role = "output"
    #: Its signature and credential masked in the Rendered Template view, mapped (sharded) or not.
    presigned_url_fields = ("manifest",)

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
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        max_rate: float | None = None,
        time_limit: float | timedelta | None = None,
        shard: Sequence[int] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(service_name=service_name, **kwargs)
        _keep_import_options(self, lock_timeout, max_rate, time_limit, shard)
        self.manifest = manifest
        self.manifest_sql = manifest_sql
        self.manifest_conn_id = manifest_conn_id
        self.ledger_conn_id: str = ledger_conn_id
        self.ledger_table: str = ledger_table
        self.max_concurrency = max_concurrency
        self.max_failed: int = max_failed
        self.prune: bool = prune

    def run(self, hook: ImageSearchHook, context: Context) -> dict[str, Any]:
        from airflow_provider_imagesearch.imports.apis import V2_DATA

        return _run_import(self, hook, context, V2_DATA, self.service_name)
