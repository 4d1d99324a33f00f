"""The import lock on SQLite: the refusal names the refused run's shard only when its import is split;
a holder process the run may not signal (another user's) keeps the lock; and a dead holder of this
host is taken over at once whatever the host's name holds. Direct calls on a ledger file, as in
test_killb_lock_holder.py (the fixtures of tests/imports/conftest.py, the helpers of
tests/support/import_lock.py); each test well under a second."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_imagesearch.imports.lock import ImportLock, ImportLockedError
from tests.support.import_lock import (
    holding_run_ids,
    lock_of,
    set_holder,
    shared_ledger,
)

#: Users of no one's files: the holder's process runs as the first, the refused run as the second.
HOLDER_UID = 65533
NOBODY = 65534


@pytest.mark.parametrize(
    ("shard", "prefix"),
    [((0, 1), "Import into catalog: "), ((1, 2), "Import into catalog (shard 1/2): ")],
    ids=["unsharded", "shard-of-two"],
)
def test_the_refusal_names_the_refused_runs_shard_only_when_its_import_is_split(
    lock_engine: Any,
    held: Callable[..., ImportLock],
    shard: tuple[int, int],
    prefix: str,
) -> None:
    held("scheduled__holder", shard)
    with pytest.raises(ImportLockedError) as refused:
        lock_of(lock_engine, "manual__second", shard).acquire(0)
    assert str(refused.value).startswith(prefix + "another import of it holds the lock: "), refused.value


def test_a_holder_process_this_run_may_not_signal_keeps_the_lock() -> None:
    """A run whose worker may not signal the holder's process (another user's: the kernel answers
    ``EPERM``) takes it to be alive, and is refused while its heartbeat is fresh. Shown as root: the
    holder's process runs as one user, and this process probes it with the effective user ``nobody``."""
    if os.geteuid() != 0:
        pytest.skip("probing as another user needs root")
    with shared_ledger() as (_, shared_engine):
        holder = lock_of(shared_engine, "scheduled__other_user")
        holder.acquire(0)
        process = subprocess.Popen(["sleep", "60"], user=HOLDER_UID, group=HOLDER_UID)
        try:
            set_holder(shared_engine, pid=process.pid)
            contender = lock_of(shared_engine, "manual__nobody")
            shared_engine.dispose()  # the contender's connection is opened as nobody
            try:
                os.setegid(NOBODY)
                os.seteuid(NOBODY)
                with pytest.raises(ImportLockedError) as refused:
                    contender.acquire(0)
            finally:
                os.seteuid(0)
                os.setegid(0)
            assert [h.pid for h in refused.value.holders] == [process.pid]
            assert holding_run_ids(shared_engine) == ["scheduled__other_user"]
        finally:
            process.kill()
            process.wait()
            holder.release()


def test_a_dead_holder_of_a_host_whose_name_holds_boot_unknown_is_taken_over_at_once(
    lock_engine: Any,
    held: Callable[..., ImportLock],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The kernel takes any text as a host name (``sethostname(2)``, ``/proc/sys/kernel/hostname``;
    only the ``hostname`` tool refuses one), `` (`` and ``boot unknown`` included: what judges a holder's pid is the boot id and PID namespace this host reads, written
    after the name, not words inside the name. A holder whose worker died (a zombie) is taken over at
    once, its heartbeat still fresh. (The host name is set for this process only: changing the
    machine's would need a UTS namespace.)"""
    monkeypatch.setattr(socket, "gethostname", lambda: "kiosk (boot unknown)")
    process = subprocess.Popen(["true"])
    try:
        os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)  # exited, left unreaped: a zombie
        held("scheduled__died", pid=process.pid)
        assert lock_of(lock_engine, "manual__after").acquire(0) >= 0
        assert holding_run_ids(lock_engine) == ["manual__after"]
    finally:
        process.wait()
