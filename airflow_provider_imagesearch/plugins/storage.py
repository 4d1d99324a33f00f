"""How the ImageSearch page reaches its tables: one engine per SQL connection, and the read indexes.

The statements themselves are in ``queries.py``; this module holds the plumbing they run on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_imagesearch.archive import derived_identifier

if TYPE_CHECKING:
    import sqlalchemy as sa

log = logging.getLogger(__name__)

#: Seconds before a failed index creation is tried again (a locked SQLite file, a busy table).
INDEX_RETRY_SECONDS = 600.0


# --- connections ----------------------------------------------------------------------------------


class _Engines:
    """One SQLAlchemy engine (and so one connection pool) per connection, rebuilt when it changes.

    The connection is looked up on every call (an edited connection applies at the next page view);
    its hook builds the engine only when the connection's URI differs from the cached one.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._engines: dict[str, tuple[str, sa.engine.Engine]] = {}

    def get(self, conn_id: str, field: str) -> sa.engine.Engine:
        from airflow.providers.common.sql.hooks.sql import DbApiHook
        from airflow.sdk import BaseHook

        from airflow_provider_imagesearch.errors import ImageSearchValidationError

        connection = BaseHook.get_connection(conn_id)
        uri = connection.get_uri()
        with self._lock:
            cached = self._engines.get(conn_id)
            if cached is not None and cached[0] == uri:
                return cached[1]
        hook = connection.get_hook()
        if not isinstance(hook, DbApiHook):
            raise ImageSearchValidationError(
                field, "the id of a SQL connection (one whose hook is a common-sql DbApiHook)", conn_id
            )
        engine = hook.get_sqlalchemy_engine()
        with self._lock:
            old = self._engines.get(conn_id)
            self._engines[conn_id] = (uri, engine)
        if old is not None and old[1] is not engine:
            old[1].dispose()
        return engine

    def clear(self) -> None:
        with self._lock:
            engines, self._engines = self._engines, {}
        for _, engine in engines.values():
            engine.dispose()


ENGINES = _Engines()


# --- indexes ----------------------------------------------------------------------------------------


@dataclass
class _IndexState:
    done: set[tuple[str, str]] = field(default_factory=set)
    failed_at: dict[tuple[str, str], float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


_INDEXES = _IndexState()


def forget_indexes() -> None:
    """Forget which indexes this process made or failed to make (tests; a changed database)."""
    with _INDEXES.lock:
        _INDEXES.done.clear()
        _INDEXES.failed_at.clear()


def index_name(table: sa.Table) -> str:
    return derived_identifier("ix_isui", table.name)


def ensure_index(engine: sa.engine.Engine, table: sa.Table, columns: Sequence[str]) -> None:
    """Create the page's index on ``table`` unless an index with these leading columns exists.

    At most once per process and table (and again after :data:`INDEX_RETRY_SECONDS` when it failed: a
    database user without the right, a locked SQLite file). Never raises: the page works without the
    index, only slower. On PostgreSQL the creation holds a transaction-level advisory lock (several API
    server workers start at once) and waits at most 5 s for the table's lock; writers to the table wait
    for the build (about 2 s per million ledger rows), once.
    """
    import sqlalchemy as sa

    key = (engine.url.render_as_string(hide_password=True), table.fullname)
    with _INDEXES.lock:
        if key in _INDEXES.done:
            return
        failed = _INDEXES.failed_at.get(key)
        if failed is not None and time.monotonic() - failed < INDEX_RETRY_SECONDS:
            return
        # Claimed: concurrent requests of this process go on without waiting for the build.
        _INDEXES.done.add(key)
    name = index_name(table)
    try:
        with engine.begin() as connection:
            inspector = sa.inspect(connection)
            if not inspector.has_table(table.name, schema=table.schema):
                with _INDEXES.lock:
                    _INDEXES.done.discard(key)  # not created yet: look again at the next view
                return
            if _has_index(inspector, table, columns):
                return
            index = sa.Index(name, *(table.c[column] for column in columns))
            dialect = connection.dialect.name
            started = time.monotonic()
            if dialect == "postgresql":
                connection.execute(sa.text("SET LOCAL lock_timeout = '5s'"))
                connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_lock_key(table.fullname))))
                if not _has_index(sa.inspect(connection), table, columns):
                    index.create(connection)
            elif dialect == "sqlite":
                connection.execute(sa.schema.CreateIndex(index, if_not_exists=True))
            else:
                index.create(connection, checkfirst=True)
            log.info(
                "Created index %s on %s for the ImageSearch page in %.1f s",
                name,
                table.fullname,
                time.monotonic() - started,
            )
    except Exception as error:
        with _INDEXES.lock:
            _INDEXES.done.discard(key)
            _INDEXES.failed_at[key] = time.monotonic()
        log.warning(
            "Could not create index %s on %s (%s: %s); the ImageSearch page reads without it, slower. "
            "Create it yourself or set [imagesearch] create_indexes = False.",
            name,
            table.fullname,
            type(error).__name__,
            str(error).splitlines()[0][:200] if str(error) else "",
        )


def _has_index(inspector: Any, table: sa.Table, columns: Sequence[str]) -> bool:
    wanted = list(columns)
    for index in inspector.get_indexes(table.name, schema=table.schema):
        if list(index.get("column_names") or [])[: len(wanted)] == wanted:
            return True
    return False


def _lock_key(name: str) -> int:
    import hashlib

    digest = hashlib.sha256(f"airflow_provider_imagesearch.plugins:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)
