"""The import lock on a SQLite ledger file: how long a run waits and what it says meanwhile (on a clock of
the test's own: no test here waits), the refusal naming every holder, and the holder identity written
where the boot id cannot be read or the host name is long."""

from __future__ import annotations

import logging
import os
import random
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_imagesearch.imports import lock as lock_module
from airflow_provider_imagesearch.imports.lock import ImportLock, ImportLockedError, process_space
from tests.imports.conftest import LogLines
from tests.support.import_lock import TABLE, TARGET, holding_run_ids, lock_of, set_holder


class _Clock:
    """The lock module's ``time``: still, except that ``sleep`` moves it on (or refuses, when frozen)."""

    def __init__(self, *, frozen: bool = False) -> None:
        self.now = 5000.0
        self.frozen = frozen
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        if self.frozen:
            raise AssertionError(f"slept {seconds} s")
        self.slept.append(seconds)
        self.now += seconds


def test_a_run_that_may_not_wait_is_refused_at_once_without_sleeping(
    lock_engine: Any, held: Callable[..., ImportLock], monkeypatch: pytest.MonkeyPatch
) -> None:
    held("scheduled__holder")
    monkeypatch.setattr(lock_module, "time", _Clock(frozen=True))
    with pytest.raises(ImportLockedError) as refused:
        lock_of(lock_engine, "manual__second").acquire(0)
    assert "(waited 0 s, lock_timeout=0)" in str(refused.value)


def test_a_waiting_run_says_whom_it_waits_for_in_its_log_then_is_refused(
    lock_engine: Any,
    held: Callable[..., ImportLock],
    monkeypatch: pytest.MonkeyPatch,
    logged: tuple[logging.Logger, LogLines],
) -> None:
    held("scheduled__holder")
    clock = _Clock()
    monkeypatch.setattr(lock_module, "time", clock)
    logger, handler = logged
    waiting = ImportLock(lock_engine, TABLE, "v1", TARGET, "manual__waiting", logger=logger)
    with pytest.raises(ImportLockedError) as refused:
        waiting.acquire(5)
    waited = clock.now - 5000.0
    assert len(clock.slept) >= 4
    assert waited >= 5
    assert len(handler.lines) == 1, handler.lines
    assert handler.lines[0].startswith("Import into catalog waits for run 'scheduled__holder' (host "), (
        handler.lines
    )
    assert handler.lines[0].endswith("(waited 0 s of lock_timeout=5)"), handler.lines
    assert f"(waited {waited:.0f} s, lock_timeout=5)" in str(refused.value)


def test_the_seconds_acquire_returns_are_the_seconds_it_took(lock_engine: Any) -> None:
    lock = lock_of(lock_engine, "manual__free")
    before = time.monotonic()
    waited = lock.acquire(60)
    took = time.monotonic() - before
    lock.release()
    assert 0 <= waited <= took


def test_the_refusal_names_every_holder_it_waited_for(
    lock_engine: Any, held: Callable[..., ImportLock]
) -> None:
    held("scheduled__shard0", (0, 2))
    held("scheduled__shard1", (1, 2))
    with pytest.raises(ImportLockedError) as refused:
        lock_of(lock_engine, "manual__whole").acquire(0)
    message = str(refused.value)
    named = message.partition("holds the lock: ")[2].partition(" (waited")[0]
    assert [part.partition(" (host")[0] for part in named.split("; ")] == [
        "run 'scheduled__shard0' shard 0/2",
        "run 'scheduled__shard1' shard 1/2",
    ], message


def test_where_the_boot_id_cannot_be_read_a_holder_is_judged_by_its_heartbeat_only(
    lock_engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every container that cannot read its boot id writes the same "boot unknown": the holder's pid,
    absent here, may be a live process of another machine."""

    def denied(path: Any, *args: Any, **kwargs: Any) -> Any:
        if str(path) == "/proc/sys/kernel/random/boot_id":
            raise PermissionError(13, "Permission denied", str(path))
        return open(path, *args, **kwargs)

    monkeypatch.setattr(lock_module, "open", denied, raising=False)
    assert process_space() == f"{socket.gethostname()} (boot unknown, {os.readlink('/proc/self/ns/pid')})"
    other = lock_of(lock_engine, "scheduled__other-machine")
    other.acquire(0)
    try:
        set_holder(lock_engine, pid=4194300)
        assert not Path("/proc/4194300").exists()
        with pytest.raises(ImportLockedError):
            lock_of(lock_engine, "manual__here").acquire(0)
        assert holding_run_ids(lock_engine) == ["scheduled__other-machine"]
    finally:
        other.release()


def test_a_long_host_name_still_fits_the_host_column(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lock_module.socket, "gethostname", lambda: "h" * 300)
    assert process_space() == "h" * 255


def test_a_v1_instance_and_a_v2_service_of_one_name_do_not_block_each_other(lock_engine: Any) -> None:
    v1 = lock_of(lock_engine, "scheduled__v1")
    v1.acquire(0)
    v2 = ImportLock(lock_engine, TABLE, "v2", TARGET, "scheduled__v2")
    try:
        assert v2.acquire(0) >= 0
        assert holding_run_ids(lock_engine) == ["scheduled__v1", "scheduled__v2"]
    finally:
        v2.release()
        v1.release()


def test_a_long_run_id_is_written_cut_to_the_run_id_column(
    lock_engine: Any, held: Callable[..., ImportLock]
) -> None:
    run_id = "manual__" + "r" * 300
    held(run_id)
    assert holding_run_ids(lock_engine) == [run_id[:255]]


class _Middle:
    """The lock module's ``random``: every jitter at the middle of its range (retries one second apart)."""

    @staticmethod
    def uniform(low: float, high: float) -> float:
        return (low + high) / 2


def _refused_after_waiting(engine: Any, logger: logging.Logger, timeout: float) -> str:
    waiting = ImportLock(engine, TABLE, "v1", TARGET, "manual__waiting", logger=logger)
    with pytest.raises(ImportLockedError) as refused:
        waiting.acquire(timeout)
    return str(refused.value)


def test_a_waiting_run_says_so_every_thirty_seconds_sharp(
    lock_engine: Any,
    held: Callable[..., ImportLock],
    monkeypatch: pytest.MonkeyPatch,
    logged: tuple[logging.Logger, LogLines],
) -> None:
    held("scheduled__holder")
    clock = _Clock()
    monkeypatch.setattr(lock_module, "time", clock)
    monkeypatch.setattr(lock_module, "random", _Middle())
    logger, handler = logged
    message = _refused_after_waiting(lock_engine, logger, 61)
    assert clock.slept == [1.0] * 61
    assert [line.rpartition(" (waited ")[2] for line in handler.lines] == [
        "0 s of lock_timeout=61)",
        "30 s of lock_timeout=61)",
        "60 s of lock_timeout=61)",
    ]
    assert "(waited 61 s, lock_timeout=61)" in message


def test_a_waiting_run_retries_about_every_second_jittered_and_stops_at_its_timeout(
    lock_engine: Any,
    held: Callable[..., ImportLock],
    monkeypatch: pytest.MonkeyPatch,
    logged: tuple[logging.Logger, LogLines],
) -> None:
    """Retries half a second to a second and a half apart (the draws of a seeded generator), the last one
    cut short at the timeout: the refusal comes when ``lock_timeout`` is up, not a retry later."""
    held("scheduled__holder")
    clock = _Clock()
    monkeypatch.setattr(lock_module, "time", clock)
    monkeypatch.setattr(lock_module, "random", random.Random(25))
    logger, handler = logged
    _refused_after_waiting(lock_engine, logger, 100)
    *retries, last = clock.slept
    assert len(retries) > 50
    assert all(0.5 <= seconds <= 1.5 for seconds in retries), retries
    assert max(retries) - min(retries) > 0.5, retries
    assert 100 <= clock.now - 5000.0 <= 100.05 + 1e-9, clock.slept
    assert last <= 1.5
    assert len(handler.lines) == 4, handler.lines  # at 0 s, then once each 30 s


def test_imports_of_two_targets_sharing_a_ledger_do_not_block_each_other(lock_engine: Any) -> None:
    catalog = lock_of(lock_engine, "scheduled__catalog")
    catalog.acquire(0)
    other = ImportLock(lock_engine, TABLE, "v1", "archive", "scheduled__archive")
    try:
        assert other.acquire(0) >= 0
        assert holding_run_ids(lock_engine) == ["scheduled__archive", "scheduled__catalog"]
    finally:
        other.release()
        catalog.release()


def test_a_second_run_of_one_shard_waits_for_that_shard_whatever_other_shards_hold(
    lock_engine: Any, held: Callable[..., ImportLock]
) -> None:
    held("scheduled__shard0", (0, 2))
    held("scheduled__shard1", (1, 2))
    with pytest.raises(ImportLockedError) as refused:
        lock_of(lock_engine, "manual__shard1", (1, 2)).acquire(0)
    assert [holder.run_id for holder in refused.value.holders] == ["scheduled__shard1"]
    assert holding_run_ids(lock_engine) == ["scheduled__shard0", "scheduled__shard1"]
