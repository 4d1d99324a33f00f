"""An Airflow connection to a SQLite file, and a SQLAlchemy engine to read what the task wrote there."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.support.connections import set_connection

if TYPE_CHECKING:
    import sqlalchemy as sa


def sqlite_connection(monkeypatch: Any, conn_id: str, path: Path) -> sa.Engine:
    """Set connection ``conn_id`` to the SQLite file ``path`` (for this test) and return an engine on the
    same file; the caller disposes of it."""
    import sqlalchemy as sa  # not at import: collecting the tests does not load SQLAlchemy

    set_connection(monkeypatch, conn_id, conn_type="sqlite", host=str(path))
    return sa.create_engine(f"sqlite:///{path}")
