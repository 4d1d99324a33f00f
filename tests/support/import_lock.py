"""The import lock of one target on a SQLite ledger file, for tests that call it directly: a lock per
run, a holder whose row is rewritten as another process would have left it, the run ids holding it,
and a ledger file two users can write (for a contender running as ``nobody``)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from airflow_provider_imagesearch.imports.lock import ImportLock

TABLE = "imagesearch_import_ledger"
TARGET = "catalog"


def lock_of(engine: Any, run_id: str, shard: tuple[int, int] = (0, 1)) -> ImportLock:
    """The lock ``run_id`` takes on the v1 target ``catalog``."""
    return ImportLock(engine, TABLE, "v1", TARGET, run_id, shard=shard)


def set_holder(engine: Any, **values: Any) -> None:
    """Rewrite the holder's row (its pid, its start) as another process of this host would have it."""
    import sqlalchemy as sa

    assignments = ", ".join(f"{name} = :{name}" for name in values)
    with engine.begin() as connection:
        connection.execute(sa.text(f"UPDATE {TABLE}_lock SET {assignments}"), values)


def holding_run_ids(engine: Any) -> list[str]:
    import sqlalchemy as sa

    with engine.connect() as connection:
        return sorted(connection.execute(sa.text(f"SELECT run_id FROM {TABLE}_lock")).scalars())


@contextmanager
def shared_ledger() -> Iterator[tuple[Path, Any]]:
    """A ledger file (and an engine on it) in a directory any user may write, the file itself writable
    by any user: a contender that drops to ``nobody`` opens the same file."""
    import sqlalchemy as sa

    with tempfile.TemporaryDirectory() as shared:
        os.chmod(shared, 0o777)
        path = Path(shared) / "ledger.db"
        engine = sa.create_engine(f"sqlite:///{path}")
        try:
            engine.connect().close()  # creates the file
            path.chmod(0o666)
            yield path, engine
        finally:
            engine.dispose()
