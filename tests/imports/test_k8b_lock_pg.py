"""The import lock on PostgreSQL: an attempt to take it is serialized with every other attempt on the same
target by a transaction advisory lock whose key every release derives the same way (SHA-256 of the lock
table's oid, the API and the target, first 8 bytes, big-endian, signed): while another session holds that
key, the attempt waits for it, whichever release that session runs."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from airflow_provider_imagesearch.imports.lock import ImportLock, lock_table_name

TABLE = "k8b_serialized_ledger"


@pytest.fixture
def pg_engine(postgres_uri: str) -> Iterator[Any]:
    engine = sa.create_engine(postgres_uri.replace("postgres://", "postgresql+psycopg2://"))
    yield engine
    with engine.begin() as connection:
        connection.execute(sa.text(f"DROP TABLE IF EXISTS {lock_table_name(TABLE)}"))
    engine.dispose()


def _probe_key(*parts: str) -> int:
    text = "\x1f".join(("airflow_provider_imagesearch.import", *parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big", signed=True)


def _waiting_on(engine: Any, key: int) -> bool:
    """Whether a session waits for the advisory lock ``key`` (pg_locks: high half, low half)."""
    unsigned = key & (2**64 - 1)
    with engine.connect() as connection:
        return bool(
            connection.execute(
                sa.text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    " AND classid::bigint = :high AND objid::bigint = :low AND objsubid = 1"
                ),
                {"high": unsigned >> 32, "low": unsigned & 0xFFFFFFFF},
            ).scalar_one()
        )


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_pg_an_attempt_waits_while_another_session_holds_the_targets_serializing_key(
    pg_engine: Any, api: str
) -> None:
    first = ImportLock(pg_engine, TABLE, api, "catalog", "scheduled__first")
    first.acquire(0)  # creates the lock table
    first.release()
    with pg_engine.connect() as connection:
        oid = connection.execute(
            sa.text("SELECT to_regclass(:name)::oid"), {"name": TABLE + "_lock"}
        ).scalar_one()
    key = _probe_key(f"oid:{oid}", api, "catalog")
    contender = ImportLock(pg_engine, TABLE, api, "catalog", "manual__contender")
    outcome: list[Any] = []
    with pg_engine.connect() as blocker:
        blocker.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))  # held until the rollback below

        def attempt() -> None:
            try:
                outcome.append(contender.acquire(0))
            except Exception as error:  # reported by the assertions below
                outcome.append(error)

        thread = threading.Thread(target=attempt, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30  # a guard against a hang, not a timing assertion
        waited = False
        while thread.is_alive() and not waited and time.monotonic() < deadline:
            waited = _waiting_on(pg_engine, key)
            time.sleep(0.02)
        assert waited, f"the attempt did not wait for the serializing key (it ended with {outcome})"
        assert outcome == []
        blocker.rollback()
    thread.join(30)
    try:
        assert len(outcome) == 1
        assert isinstance(outcome[0], float), outcome
    finally:
        contender.release()


def test_pg_once_release_returns_another_session_can_take_the_holders_key(pg_engine: Any) -> None:
    """Unlocked explicitly: the key is free when release returns, not once the server has noticed the
    closed connection (its backend ends a moment later, and a run queued on the key would wait for it).
    Twenty releases, each followed at once by another session's try: a release that only closed its
    session loses that race on some of them."""
    for attempt in range(20):
        lock = ImportLock(pg_engine, TABLE, "v1", "catalog", f"scheduled__releasing{attempt}")
        lock.acquire(0)
        with pg_engine.connect() as connection:
            oid = connection.execute(
                sa.text("SELECT to_regclass(:name)::oid"), {"name": TABLE + "_lock"}
            ).scalar_one()
        key = _probe_key(f"oid:{oid}", "v1", "catalog", lock.token)
        lock.release()
        with pg_engine.connect() as other:
            taken = other.execute(sa.select(sa.func.pg_try_advisory_lock(key))).scalar_one()
            other.execute(sa.select(sa.func.pg_advisory_unlock(key)))
            other.commit()
        assert taken, f"release {attempt + 1} returned while its session still held the key"
