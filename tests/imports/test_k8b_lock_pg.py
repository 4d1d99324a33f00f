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


def test_pg_release_unlocks_the_holders_key_before_closing_its_session(pg_engine: Any) -> None:
    """Unlocked explicitly: the key is free when release returns, not once the server has noticed the
    closed connection (its backend ends a moment later)."""
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "pg_advisory_unlock" in statement:
            sent.append((statement, parameters))

    lock = ImportLock(pg_engine, TABLE, "v1", "catalog", "scheduled__unlocking")
    lock.acquire(0)
    with pg_engine.connect() as connection:
        oid = connection.execute(
            sa.text("SELECT to_regclass(:name)::oid"), {"name": TABLE + "_lock"}
        ).scalar_one()
    key = _probe_key(f"oid:{oid}", "v1", "catalog", lock.token)
    sa.event.listen(sa.engine.Engine, "before_cursor_execute", record)
    try:
        lock.release()
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", record)
    assert [list(parameters.values()) for _, parameters in sent] == [[key]], sent
