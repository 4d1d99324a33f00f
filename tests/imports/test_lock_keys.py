"""The import lock's footprint outside the process: what other runs, of this release or another, see.

* On PostgreSQL a holder keeps a session advisory lock whose key is derived from the lock table's oid,
  the API, the target and its row's token (SHA-256, first 8 bytes, big-endian, signed). Workers of two
  releases run side by side during an upgrade: a run of any release probes a holder by that key, so the
  key must stay what it is, or a live holder would be taken over.
* The lock's own PostgreSQL session gets TCP keepalives and ``tcp_user_timeout`` where the driver's
  libpq knows them, and never fails on options the connection's URL sets itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest

TABLE = "imagesearch_import_ledger"


@pytest.fixture
def pg_engine(postgres_uri: str) -> Iterator[Any]:
    import sqlalchemy as sa

    engine = sa.create_engine(postgres_uri.replace("postgres://", "postgresql+psycopg2://"))
    yield engine
    engine.dispose()


def _probe_key(*parts: str) -> int:
    """The advisory key every release derives from these parts (the formula, written out)."""
    text = "\x1f".join(("airflow_provider_imagesearch.import", *parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big", signed=True)


def _free(engine: Any, key: int) -> bool:
    """Whether another session can take the advisory lock ``key`` now (given back at once)."""
    import sqlalchemy as sa

    with engine.connect() as other:
        taken = bool(other.execute(sa.select(sa.func.pg_try_advisory_lock(key))).scalar_one())
        if taken:
            other.execute(sa.select(sa.func.pg_advisory_unlock(key)))
        other.commit()
    return taken


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_pg_a_holder_keeps_the_advisory_lock_every_release_probes_it_by(pg_engine: Any, api: str) -> None:
    import sqlalchemy as sa

    from airflow_provider_imagesearch.imports.lock import ImportLock, lock_table_name

    lock = ImportLock(pg_engine, TABLE, api, "catalog", "scheduled__1")
    lock.acquire(0)
    try:
        with pg_engine.connect() as connection:
            oid = connection.execute(
                sa.text("SELECT to_regclass(:name)::oid"), {"name": lock_table_name(TABLE)}
            ).scalar_one()
            token = connection.execute(
                sa.text(
                    f"SELECT token FROM {lock_table_name(TABLE)} WHERE instance_name = 'catalog' AND api = :api"
                ),
                {"api": api},
            ).scalar_one()
        key = _probe_key(f"oid:{oid}", api, "catalog", token)
        assert not _free(pg_engine, key), "the holder's session does not hold the key other runs probe"
    finally:
        lock.release()
    assert _free(pg_engine, key), "the key is still held after release"


def test_the_lock_session_leaves_tcp_user_timeout_to_a_url_that_sets_it_on_any_libpq() -> None:
    from airflow_provider_imagesearch.imports.lock import session_tcp_options

    keepalives = {"keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count"}
    assert set(session_tcp_options("psycopg2", {"tcp_user_timeout": "5000"}, 110005)) == keepalives
    assert set(session_tcp_options("psycopg", {"tcp_user_timeout": "5000"}, None)) == keepalives
    assert set(session_tcp_options("psycopg", {"tcp_user_timeout": "5000"}, 170000)) == keepalives


def test_the_psycopg3_drivers_libpq_version_is_read() -> None:
    """psycopg (3) runs on a libpq of its own: its version decides whether tcp_user_timeout is passed."""
    import psycopg

    from airflow_provider_imagesearch.imports.lock import (
        TCP_USER_TIMEOUT_LIBPQ,
        libpq_version,
        session_tcp_options,
    )

    version = libpq_version("psycopg")
    assert version == psycopg.pq.version()
    assert version is not None
    assert version >= TCP_USER_TIMEOUT_LIBPQ
    assert "tcp_user_timeout" in session_tcp_options("psycopg", {}, version)


@pytest.mark.parametrize("driver", ["psycopg2", "psycopg"])
def test_pg_the_lock_session_connects_with_keepalives_and_tcp_user_timeout(
    postgres_uri: str, driver: str
) -> None:
    """The connection holding the session lock is opened with :data:`SESSION_TCP_OPTIONS` (this libpq
    knows ``tcp_user_timeout``), so a connection dropped without a reset fails the heartbeat in ~30 s."""
    import sqlalchemy as sa

    from airflow_provider_imagesearch.imports.lock import SESSION_TCP_OPTIONS, ImportLock

    seen: list[dict[str, str]] = []

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        info = dbapi_connection.info  # libpq's connection options, as the server was connected with
        seen.append(dict(info.dsn_parameters if driver == "psycopg2" else info.get_parameters()))

    engine = sa.create_engine(postgres_uri.replace("postgres://", f"postgresql+{driver}://"))
    sa.event.listen(sa.engine.Engine, "connect", on_connect)
    try:
        lock = ImportLock(engine, TABLE, "v1", f"keepalive-{driver}", "scheduled__1")
        lock.acquire(0)
        lock.release()
    finally:
        sa.event.remove(sa.engine.Engine, "connect", on_connect)
        engine.dispose()
    expected = {key: str(value) for key, value in SESSION_TCP_OPTIONS.items()}
    with_options = [p for p in seen if {k: p.get(k) for k in expected} == expected]
    assert with_options, f"no connection of the lock had {expected}: {seen}"
