"""Figure "archive throughput": the archive code path vs a plain DB-API ``executemany``, same rows.

Input: N synthetic rows shaped like ``InstanceDetail.to_dict()`` (the XCom values the archive task
receives). Both sides start from that same list of dicts and write the same 13 columns into the same
table schema, in one transaction, on a table that does not exist yet:

* archive path: ``details_frame`` (pandas) -> ``sql_engine`` (the Airflow connection's SQLAlchemy
  engine) -> ``write_frame`` (create if missing, delete the run's rows, insert), i.e. exactly
  ``archive.archive_details``, with each stage timed.
* baseline: connect with the driver (``sqlite3`` / ``psycopg2``), ``BEGIN``, ``CREATE TABLE IF NOT
  EXISTS`` (the schema the archive path created), delete the run's rows, ``executemany`` of one tuple
  per row (tags JSON-encoded, timestamps as the ISO strings they arrive as), ``COMMIT``.

The two are interleaved (order alternating per repetition), both tables dropped before each
repetition (untimed), and the row counts checked after. Ratio = median baseline time / median
archive-path time (>= 1 means the archive path is faster).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from benchmarks.config import Sizes
from benchmarks.results import Result, median, verdict

if TYPE_CHECKING:
    from tests.support.postgres import PostgresServer

GOAL = 0.7
RUN_ID = "manual__2026-01-01T00:00:00+00:00"
LOGICAL_DATE = datetime(2026, 1, 1, tzinfo=UTC)
OURS = "bench_archive_path"
BASE = "bench_archive_baseline"
WARM = "bench_archive_warmup"
STATUSES = ("NORMAL", "NORMAL", "NORMAL", "CREATION", "ABNORMAL", "ARREARAGE")
TAG_NAMES = ("color", "brand", "season", "size")
PROJECT_ID = "0b5e4c3a2f1d4e6a8c7b9d0e1f2a3b4c"
COLUMN_COUNT = 13


def synthetic_rows(count: int) -> list[dict[str, Any]]:
    """Deterministic rows like ``InstanceDetail.to_dict()``: unique names, 1 in 4 never expires."""
    rows = []
    base_ms = 1_767_225_600_000  # 2026-01-01
    for index in range(count):
        registered = datetime.fromtimestamp((base_ms - index * 61_000) / 1000, tz=UTC)
        never = index % 4 == 0
        expires = None if never else datetime.fromtimestamp((base_ms + index * 3_600_000) / 1000, tz=UTC)
        rows.append(
            {
                "instance_name": f"inst-{index:07d}",
                "project_id": PROJECT_ID,
                "status": STATUSES[index % len(STATUSES)],
                "domain": "General image search",
                "description": f"catalogue {index} ({'é' if index % 7 == 0 else 'e'})",
                "level": 30_000_000,
                "tags": list(TAG_NAMES[: index % 5]),
                "registered_at": registered.isoformat().replace("+00:00", "Z"),
                "expires_at": expires.isoformat().replace("+00:00", "Z") if expires else None,
                "never_expires": never,
            }
        )
    return rows


def _tuples(rows: list[dict[str, Any]], fetched_at: str, logical_date: str) -> list[tuple[Any, ...]]:
    return [
        (
            row["instance_name"],
            RUN_ID,
            row["project_id"],
            row["status"],
            row["domain"],
            row["description"],
            row["level"],
            json.dumps(row["tags"], ensure_ascii=False),
            row["registered_at"],
            row["expires_at"],
            row["never_expires"],
            fetched_at,
            logical_date,
        )
        for row in rows
    ]


class Backend:
    """One database: how the archive path reaches it (a connection id) and how the baseline does."""

    name = ""
    conn_id = ""
    placeholder = "?"

    def adopt_schema(self) -> None:
        """Learn the table schema the archive path created (the warm-up table)."""

    def baseline(self, rows: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def count(self, table: str) -> int:
        raise NotImplementedError

    def drop(self, *tables: str) -> None:
        raise NotImplementedError

    def insert_sql(self) -> str:
        marks = ", ".join([self.placeholder] * COLUMN_COUNT)
        return f"INSERT INTO {BASE} VALUES ({marks})"

    def close(self) -> None:
        pass


class SqliteBackend(Backend):
    name = "SQLite"
    conn_id = "bench_archive_sqlite"

    def __init__(self, folder: str) -> None:
        from tests.support.connections import install

        self.path = os.path.join(folder, "archive.db")
        install(self.conn_id, {"conn_type": "sqlite", "host": self.path})
        self.ddl = ""

    def adopt_schema(self) -> None:
        with sqlite3.connect(self.path) as connection:
            (sql,) = connection.execute("SELECT sql FROM sqlite_master WHERE name = ?", (WARM,)).fetchone()
        self.ddl = sql.replace(WARM, BASE).replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS", 1)

    def baseline(self, rows: list[dict[str, Any]]) -> None:
        now = datetime.now(UTC).isoformat()
        connection = sqlite3.connect(self.path, isolation_level=None)
        try:
            connection.execute("BEGIN")
            connection.execute(self.ddl)
            connection.execute(f"DELETE FROM {BASE} WHERE run_id = ?", (RUN_ID,))
            connection.executemany(self.insert_sql(), _tuples(rows, now, LOGICAL_DATE.isoformat()))
            connection.execute("COMMIT")
        finally:
            connection.close()

    def count(self, table: str) -> int:
        with sqlite3.connect(self.path) as connection:
            return int(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    def drop(self, *tables: str) -> None:
        connection = sqlite3.connect(self.path, isolation_level=None)
        try:
            for table in tables:
                connection.execute(f"DROP TABLE IF EXISTS {table}")
        finally:
            connection.close()


class PostgresBackend(Backend):
    name = "PostgreSQL"
    conn_id = "bench_archive_postgres"
    placeholder = "%s"

    def __init__(self, server: PostgresServer) -> None:
        from tests.support.connections import env_name

        self.server = server
        os.environ[env_name(self.conn_id)] = server.uri

    def _connect(self) -> Any:
        import psycopg2

        return psycopg2.connect(
            host="127.0.0.1", port=self.server.port, user=self.server.user, dbname="postgres"
        )

    def baseline(self, rows: list[dict[str, Any]]) -> None:
        now = datetime.now(UTC).isoformat()
        connection = self._connect()
        try:
            with connection, connection.cursor() as cursor:  # one transaction, committed on exit
                # The warm-up table's definition, as the archive path created it.
                cursor.execute(f"CREATE TABLE IF NOT EXISTS {BASE} (LIKE {WARM} INCLUDING ALL)")
                cursor.execute(f"DELETE FROM {BASE} WHERE run_id = %s", (RUN_ID,))
                cursor.executemany(self.insert_sql(), _tuples(rows, now, LOGICAL_DATE.isoformat()))
        finally:
            connection.close()

    def count(self, table: str) -> int:
        connection = self._connect()
        try:
            with connection, connection.cursor() as cursor:
                cursor.execute(f"SELECT count(*) FROM {table}")
                return int(cursor.fetchone()[0])
        finally:
            connection.close()

    def drop(self, *tables: str) -> None:
        connection = self._connect()
        try:
            with connection, connection.cursor() as cursor:
                for table in tables:
                    cursor.execute(f"DROP TABLE IF EXISTS {table}")
        finally:
            connection.close()

    def close(self) -> None:
        self.server.stop()


def _archive_path(backend: Backend, rows: list[dict[str, Any]], table: str) -> dict[str, float]:
    """``archive.archive_details`` stage by stage (same calls, same order)."""
    from airflow_provider_imagesearch import archive

    clock = time.perf_counter
    started = clock()
    archive.validate_table_name(table)
    frame = archive.details_frame(rows, run_id=RUN_ID, logical_date=LOGICAL_DATE)
    framed = clock()
    engine = archive.sql_engine(backend.conn_id)
    engined = clock()
    result = archive.write_frame(engine, table, frame, RUN_ID)
    written = clock()
    engine.dispose()
    if result.rows_written != len(rows):
        raise RuntimeError(f"archive wrote {result.rows_written} rows, expected {len(rows)}")
    return {
        "total": written - started,
        "details_frame": framed - started,
        "sql_engine": engined - framed,
        "write_frame": written - engined,
    }


def _measure(backend: Backend, rows: list[dict[str, Any]], sizes: Sizes) -> Result:
    _archive_path(backend, rows[:50], WARM)  # imports pandas/SQLAlchemy/driver; creates the schema source
    backend.adopt_schema()
    ours: list[dict[str, float]] = []
    base: list[float] = []

    def run_ours() -> None:
        ours.append(_archive_path(backend, rows, OURS))

    def run_base() -> None:
        started = time.perf_counter()
        backend.baseline(rows)
        base.append(time.perf_counter() - started)

    for repetition in range(sizes.archive_repeats):
        backend.drop(OURS, BASE)
        order: list[Callable[[], None]] = (
            [run_ours, run_base] if repetition % 2 == 0 else [run_base, run_ours]
        )
        for step in order:
            step()
        counts = (backend.count(OURS), backend.count(BASE))
        if counts != (len(rows), len(rows)):
            raise RuntimeError(f"{backend.name}: row counts {counts}, expected {len(rows)} each")
    backend.drop(OURS, BASE, WARM)

    ours_total = median([o["total"] for o in ours])
    base_total = median(base)
    ratio = base_total / ours_total
    stages = {
        key: round(median([o[key] for o in ours]), 4)
        for key in ("details_frame", "sql_engine", "write_frame")
    }
    return Result(
        figure=f"archive throughput: {backend.name}",
        goal=f"baseline time / archive-path time >= {GOAL}",
        measured=(
            f"ratio {ratio:.2f} (archive path {ours_total:.2f} s = {len(rows) / ours_total:,.0f} rows/s; "
            f"executemany {base_total:.2f} s = {len(rows) / base_total:,.0f} rows/s)"
        ),
        status=verdict(ratio >= GOAL),
        value=round(ratio, 3),
        details={
            "rows": len(rows),
            "repetitions": sizes.archive_repeats,
            "archive_path_s": [round(o["total"], 4) for o in ours],
            "baseline_s": [round(b, 4) for b in base],
            "archive_path_stages_median_s": stages,
        },
        notes=[
            f"{len(rows):,} rows, {sizes.archive_repeats} interleaved repetition(s). Archive path stages "
            f"(median): details_frame {stages['details_frame']:.2f} s, sql_engine {stages['sql_engine']:.2f} s, "
            f"write_frame {stages['write_frame']:.2f} s.",
        ],
    )


def _skipped(name: str, reason: str) -> Result:
    return Result(
        figure=f"archive throughput: {name}",
        goal=f"baseline time / archive-path time >= {GOAL}",
        measured=f"skipped: {reason}",
        status="skip",
    )


def run(sizes: Sizes) -> list[Result]:
    rows = synthetic_rows(sizes.archive_rows)
    results: list[Result] = []
    folder = tempfile.mkdtemp(prefix="imagesearch-bench-archive-")
    try:
        results.append(_measure(SqliteBackend(folder), rows, sizes))
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    try:
        import psycopg2  # noqa: F401

        from tests.support.postgres import start_postgres

        server = start_postgres()
    except Exception as error:  # no server binaries, no driver, initdb refused...
        results.append(_skipped("PostgreSQL", f"{type(error).__name__}: {error}"))
        return results
    backend = PostgresBackend(server)
    try:
        results.append(_measure(backend, rows, sizes))
    finally:
        backend.close()
    return results
