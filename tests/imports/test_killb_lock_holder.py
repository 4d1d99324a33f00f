"""The import lock on SQLite: how a refused run names the holder, and how a holder of this host is
judged alive or dead by its process (a live process of any name or owner holds the lock; a zombie, or
a process the kernel reports dead, does not; a process that cannot be read holds it until its
heartbeat goes stale). Direct calls on a ledger file: each test well under a second."""

from __future__ import annotations

import builtins
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_imagesearch.imports import lock as lock_module
from airflow_provider_imagesearch.imports.lock import ImportLock, ImportLockedError
from tests.support.import_lock import (
    holding_run_ids,
    lock_of,
    shared_ledger,
)

# --- the holder named in the refusal ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("shard", "named"),
    [((0, 1), "run 'scheduled__2026-12-01'"), ((1, 2), "run 'scheduled__2026-12-01' shard 1/2")],
    ids=["unsharded", "shard-of-two"],
)
def test_the_refusal_names_the_holder_its_shard_host_pid_and_start(
    lock_engine: Any, held: Callable[..., ImportLock], shard: tuple[int, int], named: str
) -> None:
    """A shard is named only when the holder's import is split; the host is the bare host name."""
    held("scheduled__2026-12-01", shard, acquired_at=datetime(2026, 12, 1, 3, 4, 5))
    with pytest.raises(ImportLockedError) as refused:
        lock_of(lock_engine, "manual__second").acquire(0)
    holder = f"{named} (host {socket.gethostname()}, pid {os.getpid()}, since 2026-12-01 03:04:05 UTC)"
    assert f"another import of it holds the lock: {holder} (waited " in str(refused.value)


# --- a holder of this host, judged by its process ---------------------------------------------------


def _hang_up_as_by_default() -> None:
    # A worker started under nohup would pass on an ignored SIGHUP: the holder dies of one, as workers do.
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


@pytest.mark.parametrize(
    "name",
    ["sleep", "schläft", "x) Z )"],
    ids=["plain-name", "non-ascii-name", "name-with-parenthesis-and-Z"],
)
def test_a_live_holder_process_of_this_host_keeps_the_lock_whatever_its_name(
    lock_engine: Any, held: Callable[..., ImportLock], tmp_path: Path, name: str
) -> None:
    """The kernel shows a process's name in ``/proc/<pid>/stat`` as it was executed (any bytes, ``)``
    included): the holder is alive, and probing it sends it no signal."""
    program = tmp_path / name
    program.symlink_to(shutil.which("sleep") or "/bin/sleep")
    process = subprocess.Popen(
        ["sleep", "60"],
        executable=program,
        preexec_fn=_hang_up_as_by_default,
    )
    try:
        held("scheduled__holder", pid=process.pid)
        with pytest.raises(ImportLockedError) as refused:
            lock_of(lock_engine, "manual__second").acquire(0)
        assert [holder.pid for holder in refused.value.holders] == [process.pid]
        assert holding_run_ids(lock_engine) == ["scheduled__holder"]
    finally:
        process.terminate()
        # Still running until we stopped it: the probe did not end it (SIGHUP would have).
        assert process.wait() == -signal.SIGTERM


def test_a_holder_whose_process_exited_unreaped_is_taken_over(
    lock_engine: Any, held: Callable[..., ImportLock]
) -> None:
    """A worker that died but whose parent has not reaped it yet (a zombie) holds nothing."""
    process = subprocess.Popen(["true"])
    try:
        os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)  # exited, left unreaped: a zombie
        held("scheduled__died", pid=process.pid)
        assert lock_of(lock_engine, "manual__after").acquire(0) >= 0
        assert holding_run_ids(lock_engine) == ["manual__after"]
    finally:
        process.wait()


def test_a_holder_process_of_another_user_keeps_the_lock() -> None:
    """A run whose worker may not signal the holder's process (another user's: ``EPERM``) takes it
    to be alive: the probe tells only that it runs. Shown as root: a run under ``nobody`` probes a
    holder running as root, on a ledger file both can write."""
    import sqlalchemy as sa

    if os.geteuid() != 0:
        pytest.skip("running a contender as another user needs root")
    with shared_ledger() as (path, shared_engine):
        holder = lock_of(shared_engine, "scheduled__root")
        holder.acquire(0)
        try:
            child = os.fork()
            if child == 0:  # the contender, as nobody: 0 refused, 1 took the lock, 2 failed otherwise
                code = 2
                try:
                    os.setgid(65534)
                    os.setuid(65534)
                    contender = lock_of(sa.create_engine(f"sqlite:///{path}"), "manual__nobody")
                    try:
                        contender.acquire(0)
                        code = 1
                    except ImportLockedError:
                        code = 0
                finally:
                    os._exit(code)
            deadline = time.monotonic() + 60  # a guard against a hung child, not a timing assertion
            while (status := os.waitpid(child, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            if status[0] == 0:
                os.kill(child, signal.SIGKILL)
                os.waitpid(child, 0)
                pytest.fail("the contender hung")
            assert os.waitstatus_to_exitcode(status[1]) == 0
            assert holding_run_ids(shared_engine) == ["scheduled__root"]
        finally:
            holder.release()


# --- what the kernel may answer in between ------------------------------------------------------------


def _proc_stat_answers(monkeypatch: pytest.MonkeyPatch, pid: int, answer: Callable[[], str]) -> None:
    """``/proc/<pid>/stat`` of the holder reads as ``answer()`` (which may raise), as the kernel would
    show it in a moment a test cannot otherwise hold still; every other file opens as usual."""
    real_open = builtins.open

    class _Stat:
        def __enter__(self) -> _Stat:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def read(self) -> str:
            return answer()

    def fake_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        if file == f"/proc/{pid}/stat":
            return _Stat()
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(lock_module, "open", fake_open, raising=False)


def test_a_holder_the_kernel_shows_as_dead_while_reaped_is_taken_over(
    lock_engine: Any, held: Callable[..., ImportLock], monkeypatch: pytest.MonkeyPatch
) -> None:
    """State ``X`` (dead, being reaped): the process still answers a signal probe, but is gone."""
    process = subprocess.Popen(["sleep", "60"])
    try:
        held("scheduled__dying", pid=process.pid)
        _proc_stat_answers(monkeypatch, process.pid, lambda: f"{process.pid} (sleep) X 1 1 1 0 -1")
        assert lock_of(lock_engine, "manual__after").acquire(0) >= 0
        assert holding_run_ids(lock_engine) == ["manual__after"]
    finally:
        process.kill()
        process.wait()


def test_a_holder_whose_proc_entry_cannot_be_read_keeps_the_lock_until_its_heartbeat_is_stale(
    lock_engine: Any, held: Callable[..., ImportLock], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process answered the signal probe but its ``/proc`` entry cannot be read (hidden, or it
    just went away): nothing proves it dead, so its fresh heartbeat keeps the lock."""
    process = subprocess.Popen(["sleep", "60"])

    def unreadable() -> str:
        raise PermissionError(13, "Permission denied", f"/proc/{process.pid}/stat")

    try:
        held("scheduled__hidden", pid=process.pid)
        _proc_stat_answers(monkeypatch, process.pid, unreadable)
        with pytest.raises(ImportLockedError):
            lock_of(lock_engine, "manual__second").acquire(0)
        assert holding_run_ids(lock_engine) == ["scheduled__hidden"]
    finally:
        process.kill()
        process.wait()
