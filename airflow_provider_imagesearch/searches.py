"""Batch search: many queries against one instance, the hits into a SQL table, idempotent per run.

Used by :class:`~airflow_provider_imagesearch.operators.imagesearch.ImageSearchSearchImagesOperator`
given ``queries`` or ``queries_sql``. The queries are read like an import manifest
(:mod:`airflow_provider_imagesearch.imports.manifest`: a list of dicts, a CSV / JSON-lines / Parquet file
by path or URL, or a SQL query on any SQL connection) and checked whole before the first request: a
row without a ``query_id``, with neither ``path`` nor ``file``, or repeating an earlier ``query_id`` is
refused naming the row and the field. The queries are then held in memory (a batch of searches, not a
catalogue of millions).

Columns: ``query_id`` (required, unique), ``path`` (an image already in the library) and/or ``file`` (a
local image file sent base64; it wins over ``path``), optional ``tags`` (a JSON object, tag name ->
string or list of strings) or ``tag.<key>`` columns as a tag filter, optional ``limit`` (1-100).

Concurrency: ``max_concurrency`` threads share the operator's one sync hook (one session, one token),
as the import engine and the bulk read do. Searches are reads, so the hook's retry policy retries them
on 5xx, 429 and dropped connections.

The table (created when missing, through the archive's SQL layer): one row per hit, primary key
``(run_id, instance_name, query_id, rank)``. Hits are written in batches of finished queries, each batch
in one transaction that first deletes the run's earlier rows of those queries: a retry or a rerun of the
same run replaces them and never duplicates them. A query's rows are written only once all its pages
have arrived, so a failed query writes nothing (an earlier try's complete rows of it stay).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_imagesearch.errors import (
    ImageSearchApiError,
    ImageSearchAuthError,
    ImageSearchNotFoundError,
    ImageSearchResponseError,
    ImageSearchServerError,
    ImageSearchThrottledError,
    ImageSearchTransportError,
    ImageSearchValidationError,
)
from airflow_provider_imagesearch.progress import ProgressPacer

if TYPE_CHECKING:
    import sqlalchemy as sa

    from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchHook

log = logging.getLogger(__name__)

#: Documented codes that doom every query: IS.0007 no such instance, IS.0014 "Instance status is
#: abnormal." (not NORMAL), IS.0015 "The model file does not exist.". The batch stops.
FATAL_CODES = frozenset({"IS.0007", "IS.0014", "IS.0015"})
MAX_QUERY_ID_LENGTH = 255
FLUSH_QUERIES = 200
FLUSH_SECONDS = 1.0
TRANSIENT_ERRORS = (
    ImageSearchServerError,
    ImageSearchTransportError,
    ImageSearchThrottledError,
    ImageSearchResponseError,
)


@dataclass(frozen=True)
class Query:
    """One checked query.

    :param query_id: its id, unique in the batch (the results table's key).
    :param row: its number in the queries (1 = first data row).
    :param path: query by this image of the library, or None.
    :param file: query by this local file's bytes (wins over ``path``), or None.
    :param tags: the tag filter, or None for the operator's default.
    :param limit: hits per page, or None for the operator's default.
    """

    query_id: str
    row: int
    path: str | None
    file: str | None
    tags: dict[str, Any] | None
    limit: int | None


# --- reading and checking the queries ---------------------------------------------------------------


def validate_queries_source(queries: Any, queries_sql: Any, queries_conn_id: Any) -> None:
    """Exactly one source: ``queries`` (list of dicts, path or URL) or ``queries_sql`` + conn id."""
    from airflow_provider_imagesearch.imports.manifest import validate_source

    try:
        validate_source(queries, queries_sql, queries_conn_id)
    except ImageSearchValidationError as error:
        raise error.renamed("manifest", "queries") from None


def read_queries(
    queries: Any = None, *, queries_sql: str | None = None, queries_conn_id: str | None = None
) -> list[Query]:
    """Read and check every query (see the module doc); raises on the first bad row."""
    from airflow_provider_imagesearch.imports.manifest import read_chunks

    validate_queries_source(queries, queries_sql, queries_conn_id)
    chunks = read_chunks(queries, manifest_sql=queries_sql, manifest_conn_id=queries_conn_id)
    try:
        rows = [row for chunk in chunks for row in chunk]
    except ImageSearchValidationError as error:
        raise error.renamed("manifest", "queries") from None
    return check_queries(rows)


def check_queries(rows: Iterable[Mapping[str, Any]]) -> list[Query]:
    checked: list[Query] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(rows, start=1):
        query = check_query(raw, number)
        if query.query_id in seen:
            raise ImageSearchValidationError(
                f"query_id (queries row {number})",
                f"an id used once: row {seen[query.query_id]} already has it",
                query.query_id,
            )
        seen[query.query_id] = number
        checked.append(query)
    return checked


def check_query(raw: Mapping[str, Any], row: int) -> Query:
    """One raw row -> a :class:`Query`; a bad value raises naming the row and the field."""
    from airflow_provider_imagesearch.imports.manifest import _missing, _row_tags

    def refuse(name: str, allowed: str, value: Any) -> ImageSearchValidationError:
        return ImageSearchValidationError(f"{name} (queries row {row})", allowed, value)

    if not isinstance(raw, Mapping):
        raise refuse("row", "a mapping of column -> value", raw)
    query_id = raw.get("query_id")
    if isinstance(query_id, int) and not isinstance(query_id, bool):
        query_id = str(query_id)  # ids from a SQL integer column
    if _missing(query_id) or not isinstance(query_id, str) or len(query_id.strip()) > MAX_QUERY_ID_LENGTH:
        raise refuse("query_id", f"a non-empty string of at most {MAX_QUERY_ID_LENGTH} characters", query_id)
    query_id = query_id.strip()
    path, file = raw.get("path"), raw.get("file")
    path = None if _missing(path) else path
    file = None if _missing(file) else file
    if path is None and file is None:
        raise refuse(
            "path/file", "a query image: path (an image of the library) or file (a local file)", None
        )
    if path is not None and not isinstance(path, str):
        raise refuse("path", "an image path (string)", path)
    if file is not None and not isinstance(file, str):
        raise refuse("file", "a local file path (string)", file)
    try:
        tags = _row_tags(raw) or None
    except ValueError as error:
        raise refuse(
            "tags", f"a flat map of tag name -> string or list of strings ({error})", raw.get("tags")
        ) from None
    return Query(
        query_id=query_id,
        row=row,
        path=path.strip() if path is not None else None,
        file=file,
        tags=tags,
        limit=_limit(raw.get("limit"), refuse),
    )


def _limit(value: Any, refuse: Any) -> int | None:
    from airflow_provider_imagesearch.imports.manifest import _missing

    if _missing(value):
        return None
    number = value
    if isinstance(value, str) and value.strip().isdigit():
        number = int(value)
    elif isinstance(value, float) and value.is_integer():
        number = int(value)  # a JSON-lines column with a gap becomes floats
    if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= 100:
        raise refuse("limit", "an integer from 1 to 100", value)
    return number


# --- one search, every page -------------------------------------------------------------------------


def search_hits(
    hook: ImageSearchHook,
    instance_name: str,
    *,
    path: str | None,
    file_base64: str | None,
    tags: Mapping[str, Any] | None,
    box: Mapping[str, int] | None,
    limit: int,
    offset: int,
    min_similarity: float | None,
    fetch_all: bool,
) -> list[dict[str, Any]]:
    """The hits of one query, most similar first: one page, or with ``fetch_all`` every page from ``offset``.

    Hits below ``min_similarity`` are dropped, and paging stops at the first page that reaches below it.
    """
    hits: list[dict[str, Any]] = []
    while True:
        page = hook.search_images(
            instance_name, path=path, file_base64=file_base64, tags=tags, box=box, limit=limit, offset=offset
        )
        hits.extend(
            hit.to_dict() for hit in page.hits if min_similarity is None or hit.similarity >= min_similarity
        )
        offset += len(page.hits)
        below = min_similarity is not None and page.hits and page.hits[-1].similarity < min_similarity
        if not fetch_all or not page.hits or offset >= page.count or below:
            return hits


# --- the results table ------------------------------------------------------------------------------


def results_table(table: str, metadata: sa.MetaData) -> sa.Table:
    import sqlalchemy as sa

    from airflow_provider_imagesearch.archive import derived_identifier, validate_table_name

    validate_table_name(table)
    schema, _, name = table.rpartition(".")
    return sa.Table(
        name,
        metadata,
        sa.Column("run_id", sa.String(255), nullable=False),
        sa.Column("instance_name", sa.String(64), nullable=False),
        sa.Column("query_id", sa.String(MAX_QUERY_ID_LENGTH), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("similarity", sa.Float(), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("searched_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "run_id", "instance_name", "query_id", "rank", name=derived_identifier("pk", name)
        ),
        schema=schema or None,
    )


class ResultStore:
    """The hits of one run's searches of one instance, in one table.

    :param engine: SQLAlchemy engine of the results connection.
    :param table: ``[schema.]table``, a checked identifier.
    :param instance_name: the instance searched.
    :param run_id: the run whose rows this object replaces.
    """

    def __init__(self, engine: sa.engine.Engine, table: str, instance_name: str, run_id: str) -> None:
        import sqlalchemy as sa

        self.engine = engine
        self.table = results_table(table, sa.MetaData())
        self.instance_name = instance_name
        self.run_id = run_id

    def create_if_missing(self) -> None:
        from airflow_provider_imagesearch.archive import create_table_if_missing

        with self.engine.begin() as connection:
            create_table_if_missing(connection, self.table.fullname, self.table)

    def replace(self, results: Sequence[tuple[str, list[dict[str, Any]]]]) -> int:
        """Replace the run's rows of these queries with their hits, in one transaction; returns rows written."""
        if not results:
            return 0
        import sqlalchemy as sa

        t = self.table
        now = datetime.now(UTC)
        values = [
            {
                "run_id": self.run_id,
                "instance_name": self.instance_name,
                "query_id": query_id,
                "rank": rank,
                "path": hit["path"],
                "similarity": float(hit["similarity"]),
                "tags": json.dumps(hit.get("tags") or {}, ensure_ascii=False, sort_keys=True),
                "searched_at": now,
            }
            for query_id, hits in results
            for rank, hit in enumerate(hits, start=1)
        ]
        ids = [query_id for query_id, _ in results]
        with self.engine.begin() as connection:
            for start in range(0, len(ids), 500):
                connection.execute(
                    sa.delete(t).where(
                        t.c.run_id == self.run_id,
                        t.c.instance_name == self.instance_name,
                        t.c.query_id.in_(ids[start : start + 500]),
                    )
                )
            if values:
                connection.execute(sa.insert(t), values)
        return len(values)


# --- the batch --------------------------------------------------------------------------------------


@dataclass
class BatchResult:
    """What a batch search did."""

    queries: int = 0
    succeeded: int = 0
    failed: int = 0
    hits: int = 0
    transient_failures: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        return {
            "queries": self.queries,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "hits": self.hits,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class _Outcome:
    query: Query
    hits: list[dict[str, Any]] | None
    error_code: str | None = None
    message: str | None = None
    transient: bool = False


class BatchSearch:
    """Run many queries against one instance and store their hits (see the module doc).

    :param hook: the operator's hook (one session, one token), shared by the threads.
    :param instance_name: the instance searched.
    :param store: where the hits go.
    :param max_concurrency: searches in flight at most.
    :param limit: hits per page of a query without its own ``limit``.
    :param offset: the first hit's position, for every query.
    :param tags: the tag filter of a query without its own tags.
    :param min_similarity: drop hits less similar than this.
    :param fetch_all: page through every match of each query.
    :param logger: where progress goes (the task's log).
    """

    def __init__(
        self,
        hook: ImageSearchHook,
        instance_name: str,
        store: ResultStore,
        *,
        max_concurrency: int = 8,
        limit: int = 10,
        offset: int = 0,
        tags: Mapping[str, Any] | None = None,
        min_similarity: float | None = None,
        fetch_all: bool = False,
        logger: logging.Logger | Any = log,
    ) -> None:
        self.hook = hook
        self.instance_name = instance_name
        self.store = store
        self.max_concurrency = max_concurrency
        self.limit = limit
        self.offset = offset
        self.tags = dict(tags) if tags else None
        self.min_similarity = min_similarity
        self.fetch_all = fetch_all
        self.log = logger
        self._stop = threading.Event()

    def run(self, queries: Sequence[Query]) -> BatchResult:
        started = time.monotonic()
        result = BatchResult(queries=len(queries))
        self.log.info(
            "Batch search of %s: %d queries, concurrency %d, hits into %s (run %s)",
            self.instance_name,
            len(queries),
            self.max_concurrency,
            self.store.table.fullname,
            self.store.run_id,
        )
        if queries:
            # The session is built (and its pool widened) once, before the threads share it.
            self.hook.reserve_connections(self.max_concurrency)
            self._execute(queries, result)
        result.seconds = time.monotonic() - started
        return result

    def _execute(self, queries: Sequence[Query], result: BatchResult) -> None:
        pending: list[tuple[str, list[dict[str, Any]]]] = []
        state = {"done": 0, "last_flush": time.monotonic()}
        fatal: list[BaseException] = []
        total = len(queries)
        pacer = ProgressPacer(total)

        def collect(done: Iterable[Future[_Outcome]]) -> None:
            for future in done:
                error = future.exception()
                if error is not None:
                    fatal.append(error)
                    self._stop.set()
                    continue
                self._account(future.result(), result, pending)
                state["done"] += 1
            now = time.monotonic()
            if len(pending) >= FLUSH_QUERIES or (pending and now - state["last_flush"] >= FLUSH_SECONDS):
                self._flush(pending, result)
                state["last_flush"] = now
            self._progress(pacer, int(state["done"]), result)

        in_flight: set[Future[_Outcome]] = set()
        with ThreadPoolExecutor(
            min(self.max_concurrency, total), thread_name_prefix="imagesearch-search"
        ) as pool:
            try:
                for query in queries:
                    if fatal:
                        break
                    while len(in_flight) >= self.max_concurrency:
                        done, in_flight = wait(in_flight, timeout=1.0, return_when=FIRST_COMPLETED)
                        collect(done)
                    if fatal:
                        break
                    in_flight.add(pool.submit(self._one, query))
                while in_flight:
                    done, in_flight = wait(in_flight, timeout=1.0, return_when=FIRST_COMPLETED)
                    collect(done)
            finally:
                pool.shutdown(wait=True)
                collect([f for f in in_flight if f.done()])
                # Finished queries are stored even when the batch stops: a retry replaces them anyway.
                self._flush(pending, result)
        if fatal:
            raise fatal[0]

    def _one(self, query: Query) -> _Outcome:
        if self._stop.is_set():
            return _Outcome(query, None, "NOT_RUN", "the batch stopped before this query", transient=True)
        try:
            encoded = _read_file(query.file) if query.file is not None else None
            hits = search_hits(
                self.hook,
                self.instance_name,
                path=None if encoded is not None else query.path,
                file_base64=encoded,
                tags=query.tags if query.tags is not None else self.tags,
                box=None,
                limit=query.limit or self.limit,
                offset=self.offset,
                min_similarity=self.min_similarity,
                fetch_all=self.fetch_all,
            )
        except ImageSearchApiError as error:
            if (
                isinstance(error, ImageSearchAuthError | ImageSearchNotFoundError)
                or error.error_code in FATAL_CODES
            ):
                raise
            return _Outcome(
                query, None, error.error_code, error.error_msg, transient=isinstance(error, TRANSIENT_ERRORS)
            )
        except ImageSearchValidationError as error:
            return _Outcome(query, None, "INVALID_QUERY", str(error))
        except (OSError, ValueError) as error:
            return _Outcome(query, None, "FILE_ERROR", str(error))
        return _Outcome(query, hits)

    def _account(
        self, outcome: _Outcome, result: BatchResult, pending: list[tuple[str, list[dict[str, Any]]]]
    ) -> None:
        if outcome.hits is not None:
            result.succeeded += 1
            pending.append((outcome.query.query_id, outcome.hits))
            return
        result.failed += 1
        result.transient_failures += outcome.transient
        code = outcome.error_code or "FAILED"
        result.reasons[code] += 1
        if len(result.problems) < 10:
            query = outcome.query
            result.problems.append(
                f"query {query.query_id!r} (row {query.row}): {code} {outcome.message or ''}".strip()[:400]
            )

    def _flush(self, pending: list[tuple[str, list[dict[str, Any]]]], result: BatchResult) -> None:
        if pending:
            result.hits += self.store.replace(pending)
            pending.clear()

    def _progress(self, pacer: ProgressPacer, done: int, result: BatchResult) -> None:
        line = pacer.due(done)
        if line is None:
            return
        self.log.info(
            "Search progress: %d/%d queries (%d%%), %.1f queries/s, ETA %s, %d failed",
            line.done,
            line.total,
            line.percent,
            line.rate,
            line.eta,
            result.failed,
        )


def _read_file(file: str) -> str:
    from airflow_provider_imagesearch.imports.manifest import MAX_FILE_BYTES, file_base64

    size = os.path.getsize(file)
    if size == 0 or size > MAX_FILE_BYTES:
        raise ValueError(f"file {file!r} is {size} bytes: it must hold 1 to {MAX_FILE_BYTES} bytes")
    return file_base64(file)
