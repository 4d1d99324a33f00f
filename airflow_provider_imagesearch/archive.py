"""Archive instance details into a SQL table: one row per instance per DAG run, atomically, idempotently.

Used by the example DAG (``dags/imagesearch_instance_archive.py``) and the benchmarks. It goes through
Airflow's SQL layer (the ``DbApiHook`` of any SQL connection: SqliteHook, PostgresHook, ...) and pandas,
both imported only when an archive actually runs, never at DAG-parse time.

* One transaction per run: the table is created if missing, the run's earlier rows (a cleared and
  re-run DAG run) are deleted, and the new rows inserted; a failure rolls all of it back (on SQLite a
  table created by a failed run stays, empty: SQLite's driver commits DDL at once).
* Several first runs may create the table at once: on PostgreSQL they queue on a transaction-level
  advisory lock keyed on the table name, on SQLite ``CREATE TABLE IF NOT EXISTS`` is atomic, elsewhere
  an "already exists" failure is accepted once the table is seen to exist.
* Primary key ``(instance_name, run_id)``: a rerun replaces its rows and never duplicates them. Details
  that name one instance twice are refused (``ImageSearchValidationError``) before anything is written.
* Table names are checked identifiers, never pasted into SQL unchecked; column names are constants.
  Identifiers derived from a table name (its primary key's) stay within 63 characters too.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import TYPE_CHECKING, Any

from airflow_provider_imagesearch.errors import ImageSearchValidationError

if TYPE_CHECKING:
    import pandas as pd
    import sqlalchemy as sa

#: The longest identifier PostgreSQL keeps (longer ones are cut; SQLAlchemy refuses them).
MAX_IDENTIFIER_LENGTH = 63
_IDENTIFIER = rf"[A-Za-z_][A-Za-z0-9_]{{0,{MAX_IDENTIFIER_LENGTH - 1}}}"
TABLE_NAME_RE = re.compile(rf"{_IDENTIFIER}(\.{_IDENTIFIER})?")
#: The same rule as a JSON-schema ``pattern`` for DAG params. jsonschema applies it with ``re.search``,
#: where ``$`` also matches before a final newline: ``(?!\n)`` refuses ``"name\n"`` as the archive does
#: (in ECMA regexes, the browser's, it is a no-op).
TABLE_NAME_PATTERN = rf"^{TABLE_NAME_RE.pattern}$(?!\n)"
TABLE_NAME_FORM = (
    "a SQL identifier of 1-63 letters, digits and '_', not starting with a digit, optionally 'schema.table'"
)
DEFAULT_TABLE = "imagesearch_instance_archive"

#: Archive columns, in table order: (name, kind). Kinds map to SQL types per dialect.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("instance_name", "key"),
    ("run_id", "key"),
    ("project_id", "text"),
    ("status", "text"),
    ("domain", "text"),
    ("description", "text"),
    ("level", "integer"),
    ("tags", "text"),
    ("registered_at", "timestamp"),
    ("expires_at", "timestamp"),
    ("never_expires", "boolean"),
    ("fetched_at", "timestamp"),
    ("logical_date", "timestamp"),
)
COLUMN_NAMES: tuple[str, ...] = tuple(name for name, _ in COLUMNS)


def validate_table_name(table: object, field: str = "table") -> str:
    """``table`` if it is a ``[schema.]table`` identifier, else a refusal naming ``field`` (the caller's
    argument, e.g. ``ledger_table``)."""
    if not isinstance(table, str) or not TABLE_NAME_RE.fullmatch(table):
        raise ImageSearchValidationError(field, TABLE_NAME_FORM, table)
    return table


def derived_identifier(prefix: str, table: str) -> str:
    """``{prefix}_{table}`` when that fits in 63 characters, else a deterministic shortened form.

    A shortened name keeps the start of the table name and ends in 8 hex digits of its SHA-256, so two
    long names sharing a 54-character start still get different identifiers. Names that fit are left as
    they were, so tables created by earlier versions keep matching.
    """
    full = f"{prefix}_{table}"
    if len(full) <= MAX_IDENTIFIER_LENGTH:
        return full
    digest = hashlib.sha256(table.encode()).hexdigest()[:8]
    return f"{full[: MAX_IDENTIFIER_LENGTH - len(digest) - 1]}_{digest}"


@dataclass(frozen=True)
class ArchiveResult:
    """What one archive run wrote.

    :param table: the table written.
    :param run_id: the DAG run id the rows belong to.
    :param rows_written: rows inserted by this run.
    :param rows_replaced: rows of an earlier attempt of the same run that were replaced.
    """

    table: str
    run_id: str
    rows_written: int
    rows_replaced: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "run_id": self.run_id,
            "rows_written": self.rows_written,
            "rows_replaced": self.rows_replaced,
        }


def details_frame(
    details: Iterable[Mapping[str, Any]],
    *,
    run_id: str,
    logical_date: datetime | None,
    fetched_at: datetime | None = None,
) -> pd.DataFrame:
    """The archive rows as a typed DataFrame, from ``InstanceDetail.to_dict()`` dicts (XCom values).

    :param details: one mapping per instance; each ``instance_name`` at most once (the table's key is
        ``(instance_name, run_id)``): a repeated name raises :class:`ImageSearchValidationError` naming
        both positions, before anything is written.
    :param run_id: the DAG run the rows belong to.
    :param logical_date: the DAG run's logical date, or ``None``.
    :param fetched_at: when the details were read (default: now, UTC).
    """
    import pandas as pd

    if not isinstance(run_id, str) or not run_id:
        raise ImageSearchValidationError("run_id", "a non-empty string", run_id)
    records = list(details)
    first_index: dict[str, int] = {}
    for index, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise ImageSearchValidationError(f"details[{index}]", "an instance detail mapping", record)
        name = record.get("instance_name")
        if not isinstance(name, str) or not name:
            raise ImageSearchValidationError(f"details[{index}].instance_name", "a non-empty string", name)
        # Refused rather than deduplicated: two details of one instance in one run means the caller
        # asked for it twice, and silently keeping one would hide which of the two was archived.
        if name in first_index:
            raise ImageSearchValidationError(
                f"details[{index}].instance_name",
                f"each instance at most once per run (duplicate of details[{first_index[name]}])",
                name,
            )
        first_index[name] = index
    frame = pd.DataFrame.from_records(records, columns=[c for c in COLUMN_NAMES if c not in _RUN_COLUMNS])
    frame["tags"] = [
        _tags_json(list(tags) if isinstance(tags, list | tuple) else []) for tags in frame["tags"]
    ]
    for column in ("registered_at", "expires_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    frame["level"] = frame["level"].astype("Int64")
    frame["never_expires"] = frame["never_expires"].fillna(False).astype(bool)
    frame["run_id"] = run_id
    frame["fetched_at"] = pd.Timestamp(fetched_at or datetime.now(UTC))
    frame["logical_date"] = pd.Timestamp(logical_date) if logical_date is not None else pd.NaT
    frame["logical_date"] = pd.to_datetime(frame["logical_date"], utc=True)
    return frame[list(COLUMN_NAMES)]


_RUN_COLUMNS = frozenset({"run_id", "fetched_at", "logical_date"})
_json_encode = json.JSONEncoder(ensure_ascii=False).encode


def _tags_json(tags: object) -> str:
    """``json.dumps(list(tags), ensure_ascii=False)``, about 3x faster for the usual list of names."""
    if not isinstance(tags, list | tuple):
        return "[]"
    if all(isinstance(tag, str) for tag in tags):
        return "[" + ", ".join(map(encode_basestring, tags)) + "]"
    return _json_encode(list(tags))


#: The index the ImageSearch page reads each instance's newest snapshot by, created with the table.
READ_INDEX = ("instance_name", "fetched_at")


def _table(table: str, metadata: sa.MetaData) -> sa.Table:
    import sqlalchemy as sa

    kinds: dict[str, sa.types.TypeEngine[Any]] = {
        "key": sa.String(255),
        "text": sa.Text(),
        "integer": sa.BigInteger(),
        "timestamp": sa.DateTime(timezone=True),
        "boolean": sa.Boolean(),
    }
    schema, _, name = table.rpartition(".")
    return sa.Table(
        name,
        metadata,
        *(sa.Column(column, kinds[kind], nullable=kind != "key") for column, kind in COLUMNS),
        sa.PrimaryKeyConstraint("instance_name", "run_id", name=derived_identifier("pk", name)),
        sa.Index(derived_identifier("ix_isui", name), *READ_INDEX),
        schema=schema or None,
    )


def write_frame(engine: sa.engine.Engine, table: str, frame: pd.DataFrame, run_id: str) -> ArchiveResult:
    """Replace ``run_id``'s rows in ``table`` with ``frame``, in one transaction."""
    import sqlalchemy as sa

    validate_table_name(table)
    target = _table(table, sa.MetaData())
    with engine.begin() as connection:
        create_table_if_missing(connection, table, target)
        replaced = connection.execute(sa.delete(target).where(target.c.run_id == run_id)).rowcount
        if len(frame):
            if connection.dialect.name == "sqlite":
                # SQLAlchemy's per-row bind processing costs several times sqlite3's own executemany;
                # the values are prepared column-wise instead, in SQLAlchemy's SQLite storage format.
                insert = str(sa.insert(target).compile(dialect=connection.dialect))
                connection.exec_driver_sql(insert, _sqlite_rows(frame))
            else:
                connection.execute(sa.insert(target), _records(frame))
    return ArchiveResult(
        table=table, run_id=run_id, rows_written=len(frame), rows_replaced=max(replaced or 0, 0)
    )


def create_table_if_missing(connection: sa.engine.Connection, table: str, target: sa.Table) -> None:
    """Create ``target`` and its indexes unless it exists, safely when several first writers run at once.

    ``create(checkfirst=True)`` alone checks, then creates: two runs can both see no table and both
    create it, and the second fails ("already exists"; ``pg_type_typname_nsp_index`` on PostgreSQL).
    Public for DAGs that keep their own reporting tables (see the example DAGs): call it in the
    transaction that writes the rows, so that a failed run rolls its ``CREATE`` back with them
    (PostgreSQL).

    :param connection: an open connection, inside the transaction that writes the table.
    :param table: the table's validated name (``[schema.]name``, see :func:`validate_table_name`);
        on PostgreSQL it keys the advisory lock that serialises concurrent creations.
    :param target: the table to create, with its indexes.
    """
    import sqlalchemy as sa

    def exists() -> bool:
        return bool(sa.inspect(connection).has_table(target.name, schema=target.schema))

    if exists():  # the usual case, taking no lock
        return
    dialect = connection.dialect.name
    if dialect == "postgresql":
        # Runs creating this table queue here until the first commits (the lock ends with the
        # transaction); the check below then sees its table. DDL is transactional: a failed run
        # rolls its CREATE back with its rows.
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_lock_key(table))))
        if not exists():
            target.create(connection)
    elif dialect == "sqlite":
        # SQLite checks IF NOT EXISTS under its database write lock: atomic.
        connection.execute(sa.schema.CreateTable(target, if_not_exists=True))
        for index in target.indexes:  # CreateTable alone leaves them out (Table.create adds them)
            connection.execute(sa.schema.CreateIndex(index, if_not_exists=True))
    else:
        # Elsewhere: try, and accept "already exists" only if the table is really there now.
        try:
            with connection.begin_nested():
                target.create(connection)
        except sa.exc.DBAPIError:
            if not exists():
                raise


def _lock_key(table: str) -> int:
    """A stable signed 64-bit advisory-lock key for ``table`` (same in every process, unlike hash())."""
    digest = hashlib.sha256(f"airflow_provider_imagesearch.archive:{table}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _columns(frame: pd.DataFrame, *, sqlite_text: bool = False) -> list[list[Any]]:
    """The frame's columns as plain Python values (NaT/NA -> None, timestamps -> datetimes), vectorised.

    With ``sqlite_text`` timestamps become ``YYYY-MM-DD HH:MM:SS.ffffff`` UTC strings instead: what
    SQLAlchemy's SQLite DATETIME type stores for them, so both paths read back the same.
    """
    columns: list[list[Any]] = []
    for name in frame.columns:
        series = frame[name]
        if name in _RUN_COLUMNS and len(series):
            # The same value on every row of a run: convert it once.
            columns.append(_column_values(series.iloc[:1], sqlite_text) * len(series))
        else:
            columns.append(_column_values(series, sqlite_text))
    return columns


def _column_values(series: pd.Series, sqlite_text: bool) -> list[Any]:
    import numpy as np
    import pandas as pd

    if isinstance(series.dtype, pd.DatetimeTZDtype) and sqlite_text:
        naive = series.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
        values = [text.replace("T", " ") for text in np.datetime_as_string(naive, unit="us").tolist()]
    elif isinstance(series.dtype, pd.DatetimeTZDtype):
        values = list(series.dt.to_pydatetime())
    else:
        values = series.astype(object).tolist()  # numpy/pandas scalars -> Python scalars
    missing = series.isna().to_numpy()
    if missing.any():
        values = [None if gone else value for value, gone in zip(values, missing, strict=True)]
    return values


def _sqlite_rows(frame: pd.DataFrame) -> list[tuple[Any, ...]]:
    return list(zip(*_columns(frame, sqlite_text=True), strict=True))


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Plain Python values for the driver, one dict per row."""
    names = list(frame.columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*_columns(frame), strict=True)]


def sql_engine(db_conn_id: str) -> sa.engine.Engine:
    """The SQLAlchemy engine of the Airflow SQL connection ``db_conn_id`` (any common-sql DbApiHook)."""
    from airflow.providers.common.sql.hooks.sql import DbApiHook
    from airflow.sdk import BaseHook

    hook = BaseHook.get_connection(db_conn_id).get_hook()
    if not isinstance(hook, DbApiHook):
        raise ImageSearchValidationError(
            "db_conn_id", "the id of a SQL connection (one whose hook is a common-sql DbApiHook)", db_conn_id
        )
    return hook.get_sqlalchemy_engine()


def archive_details(
    details: Iterable[Mapping[str, Any]],
    *,
    db_conn_id: str,
    table: str = DEFAULT_TABLE,
    run_id: str,
    logical_date: datetime | None = None,
) -> ArchiveResult:
    """Archive instance details (``InstanceDetail.to_dict()`` dicts) for one DAG run; see the module doc."""
    validate_table_name(table)
    frame = details_frame(details, run_id=run_id, logical_date=logical_date)
    engine = sql_engine(db_conn_id)
    result = write_frame(engine, table, frame, run_id)
    report_table_lineage(db_conn_id, engine, table)
    return result


def report_table_lineage(db_conn_id: str, engine: sa.engine.Engine, table: str) -> None:
    """Report the archive table as an output to Airflow's hook-level lineage (OpenLineage reads it).

    The asset URI is ``{scheme}://{host}:{port}/{database}/{schema}/{table}`` (SQLite:
    ``sqlite:{file}/main/{table}``). For PostgreSQL the postgres provider turns it into the OpenLineage
    dataset ``postgres://host:port`` / ``database.schema.table``; OpenLineage has no converter for SQLite
    assets and leaves them out. A no-op unless a lineage reader (the OpenLineage provider) is enabled.
    """
    import sqlalchemy as sa
    from airflow.providers.common.compat.lineage.hook import get_hook_lineage_collector
    from airflow.sdk import BaseHook

    schema, _, name = table.rpartition(".")
    url = engine.url
    backend = url.get_backend_name()
    try:
        if backend == "sqlite":
            # SQLite's "host" is the database file; its one schema is ``main``.
            authority, database, schema = "", str(url.database or ""), schema or "main"
        else:
            authority = f"{url.host or ''}:{url.port}" if url.port else str(url.host or "")
            database = str(url.database or "")
            schema = schema or str(sa.inspect(engine).default_schema_name or "")
        scheme = {"postgresql": "postgres"}.get(backend, backend)
        get_hook_lineage_collector().add_output_asset(
            context=BaseHook.get_connection(db_conn_id).get_hook(),
            uri=f"{scheme}://{authority}/{database.lstrip('/')}/{schema}/{name}",
        )
    except Exception:
        # Lineage is best effort (as in Airflow's own SQL hooks): the rows are committed already.
        logging.getLogger(__name__).warning("Could not report the lineage of %s", table, exc_info=True)


def latest_snapshot(*, db_conn_id: str, table: str = DEFAULT_TABLE) -> list[dict[str, Any]]:
    """Each instance's most recent archived row, JSON-friendly.

    Timestamps are ISO-8601 strings in UTC with an explicit offset (``2026-01-01T00:00:00+00:00``),
    the same on every backend: SQLite hands back the stored UTC values without a zone, PostgreSQL in
    the session's time zone.

    :param db_conn_id: the Airflow SQL connection to read.
    :param table: the archive table.
    """
    import sqlalchemy as sa

    validate_table_name(table)
    engine = sql_engine(db_conn_id)
    target = _table(table, sa.MetaData())
    newest = (
        sa.select(target.c.instance_name, sa.func.max(target.c.fetched_at).label("fetched_at"))
        .group_by(target.c.instance_name)
        .subquery()
    )
    query = (
        sa.select(target)
        .join(
            newest,
            (target.c.instance_name == newest.c.instance_name) & (target.c.fetched_at == newest.c.fetched_at),
        )
        .order_by(target.c.instance_name)
    )
    with engine.connect() as connection:
        rows = [dict(row._mapping) for row in connection.execute(query)]
    return [{k: _iso_utc(v) if isinstance(v, datetime) else v for k, v in row.items()} for row in rows]


def _iso_utc(value: datetime) -> str:
    # A value without a zone is one the archive stored as UTC (SQLite keeps no offset).
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()
