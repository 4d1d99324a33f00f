"""The import lock on a SQLite ledger file, while it is held: an attempt takes the file's write lock before
it reads the holders, the holder's heartbeat refreshes its row from a daemon thread named after the
target, and a lock that was never taken sends nothing when released."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa

from airflow_provider_imagesearch.imports import lock as lock_module
from tests.support.import_lock import TABLE, holding_run_ids, lock_of, set_holder


def _record(engine: Any) -> list[str]:
    statements: list[str] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(" ".join(statement.split()))

    return statements


def _heartbeats(engine: Any) -> list[tuple[Any, Any]]:
    with engine.connect() as connection:
        return list(connection.execute(sa.text(f"SELECT acquired_at, heartbeat_at FROM {TABLE}_lock")).all())


def test_an_attempt_takes_the_write_lock_before_it_reads_the_holders(lock_engine: Any) -> None:
    lock = lock_of(lock_engine, "manual__first")
    lock.acquire(0)  # creates the table: the attempt below is the only thing recorded
    lock.release()
    statements = _record(lock_engine)
    second = lock_of(lock_engine, "manual__second")
    second.acquire(0)
    second.release()
    reads = [
        i
        for i, statement in enumerate(statements)
        if statement.startswith("SELECT") and f"FROM {TABLE}_lock" in statement
    ]
    assert reads, statements
    assert statements[reads[0] - 1].upper() == "BEGIN IMMEDIATE", statements


def test_the_heartbeat_refreshes_the_holders_row(lock_engine: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lock_module, "HEARTBEAT_SECONDS", 0.01)
    lock = lock_of(lock_engine, "manual__beating")
    lock.acquire(0)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            [(acquired_at, heartbeat_at)] = _heartbeats(lock_engine)
            if heartbeat_at != acquired_at:
                break
            time.sleep(0.01)
        assert heartbeat_at > acquired_at
        assert not lock.lost
    finally:
        lock.release()


def test_the_heartbeat_runs_in_a_daemon_thread_named_after_the_target(lock_engine: Any) -> None:
    """A daemon: a worker process that ends without releasing (its task killed) is not kept alive by
    it; named after the target: a thread dump says what it is."""
    before = set(threading.enumerate())
    lock = lock_of(lock_engine, "manual__named")
    lock.acquire(0)
    try:
        started = [thread for thread in threading.enumerate() if thread not in before]
        assert [(thread.name, thread.daemon) for thread in started] == [
            ("imagesearch-import-lock-catalog", True)
        ]
    finally:
        lock.release()
    assert [thread for thread in threading.enumerate() if thread not in before] == []


def test_a_lock_never_taken_sends_nothing_when_released(lock_engine: Any) -> None:
    holder = lock_of(lock_engine, "scheduled__holder")
    holder.acquire(0)
    try:
        statements = _record(lock_engine)
        never = lock_of(lock_engine, "manual__never")
        never.release()
        assert statements == []
    finally:
        holder.release()


def _until(condition: Callable[[], bool]) -> bool:
    """Whether ``condition`` comes true within 15 s (a guard against a hang, not a timing assertion)."""
    deadline = time.monotonic() + 15
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_holder_whose_row_was_taken_over_learns_it_at_its_next_heartbeat(
    lock_engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its row says a process of this host that is gone (pid 4194300): the next run takes it over."""
    monkeypatch.setattr(lock_module, "HEARTBEAT_SECONDS", 0.01)
    frozen = lock_of(lock_engine, "scheduled__frozen")
    frozen.acquire(0)
    try:
        set_holder(lock_engine, pid=4194300)
        taker = lock_of(lock_engine, "manual__taker")
        taker.acquire(0)
        try:
            assert _until(lambda: frozen.lost)
            assert holding_run_ids(lock_engine) == ["manual__taker"]
        finally:
            taker.release()
    finally:
        frozen.release()


def test_a_failed_heartbeat_is_retried_without_losing_the_lock(
    lock_engine: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(lock_module, "HEARTBEAT_SECONDS", 0.01)
    failed: list[str] = []

    @sa.event.listens_for(lock_engine, "before_cursor_execute")
    def fail_once(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("UPDATE") and not failed:
            failed.append(statement)
            raise RuntimeError("database busy")

    lock = lock_of(lock_engine, "manual__busy")
    with caplog.at_level(logging.WARNING, logger=lock_module.log.name):
        lock.acquire(0)
        try:
            assert _until(lambda: [row[1] != row[0] for row in _heartbeats(lock_engine)] == [True])
            assert failed
            assert not lock.lost
        finally:
            lock.release()
    assert "Import lock heartbeat of catalog failed (database busy); retrying" in caplog.messages


def test_the_heartbeat_is_written_in_utc_on_a_worker_whose_local_time_is_not(
    lock_engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "XST+5")  # five hours behind UTC
    time.tzset()
    try:
        monkeypatch.setattr(lock_module, "HEARTBEAT_SECONDS", 0.01)
        lock = lock_of(lock_engine, "manual__west")
        lock.acquire(0)
        try:
            assert _until(lambda: [row[1] != row[0] for row in _heartbeats(lock_engine)] == [True])
            [(acquired_at, heartbeat_at)] = _heartbeats(lock_engine)
        finally:
            lock.release()
    finally:
        monkeypatch.undo()
        time.tzset()
    beat = datetime.fromisoformat(heartbeat_at) - datetime.fromisoformat(acquired_at)
    assert 0 < beat.total_seconds() < 600
