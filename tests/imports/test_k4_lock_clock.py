"""The import lock's clock: a holder of another host whose heartbeat is exactly ``STALE_SECONDS`` old is
stale (taken over), one a moment younger is alive; and the refusal names the holder's start in UTC, as it
happened, on a worker whose local time zone is not UTC, on SQLite and on PostgreSQL whose session speaks
yet another zone."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from airflow_provider_imagesearch.imports import lock as lock_module
from airflow_provider_imagesearch.imports.lock import STALE_SECONDS, ImportLock, ImportLockedError
from tests.support.import_lock import holding_run_ids, lock_of

NOW = datetime(2026, 12, 3, 10, 0, 0, tzinfo=UTC)


class _FrozenDatetime(datetime):
    """The lock module's ``datetime``, its ``now`` standing at NOW."""

    @classmethod
    def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
        return NOW if tz is not None else NOW.replace(tzinfo=None)


@pytest.mark.parametrize(
    ("age", "taken_over"),
    [(STALE_SECONDS, True), (STALE_SECONDS - 0.001, False)],
    ids=["exactly-stale", "a-moment-younger"],
)
def test_a_holder_of_another_host_is_stale_once_its_heartbeat_is_stale_seconds_old(
    lock_engine: Any,
    held: Callable[..., ImportLock],
    monkeypatch: pytest.MonkeyPatch,
    age: float,
    taken_over: bool,
) -> None:
    held(
        "scheduled__elsewhere",
        host="worker-7 (boot b, pidns p)",
        pid=1,
        heartbeat_at=NOW - timedelta(seconds=age),
    )
    monkeypatch.setattr(lock_module, "datetime", _FrozenDatetime)
    contender = lock_of(lock_engine, "manual__here")
    if taken_over:
        assert contender.acquire(0) >= 0
        assert holding_run_ids(lock_engine) == ["manual__here"]
    else:
        with pytest.raises(ImportLockedError):
            contender.acquire(0)
        assert holding_run_ids(lock_engine) == ["scheduled__elsewhere"]


@pytest.fixture
def worker_in_new_york(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This process's local time zone is New York's (UTC-5 in December)."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("worker_in_new_york")
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_the_refusal_names_the_holders_start_in_utc_whatever_the_zones(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str
) -> None:
    if backend == "sqlite":
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    else:
        url = request.getfixturevalue("postgres_uri").replace("postgres://", "postgresql+psycopg2://", 1)
        engine = sa.create_engine(url, connect_args={"options": "-c timezone=Asia/Shanghai"})
    holder = lock_of(engine, "scheduled__holder")
    try:
        started = datetime.now(UTC)
        holder.acquire(0)
        with pytest.raises(ImportLockedError) as refused:
            lock_of(engine, "manual__second").acquire(0)
        since = str(refused.value).split("since ", 1)[1][:19]
        shown = datetime.strptime(since, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        assert abs(shown - started) < timedelta(minutes=5), (since, started)
    finally:
        holder.release()
        engine.dispose()
