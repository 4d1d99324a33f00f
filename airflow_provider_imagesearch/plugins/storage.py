"""How the ImageSearch page reaches its tables: one engine per SQL connection.

The statements themselves are in ``queries.py``; this module holds the plumbing they run on.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlalchemy as sa

log = logging.getLogger(__name__)

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
