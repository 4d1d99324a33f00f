"""A process SIGKILLed while it owns a throwaway PostgreSQL server (tests/support/postgres.py) leaks neither
the server nor its folder, and a stop by the book leaves no watchdog behind; nor does a SIGKILLed
``scripts/mutation.py check`` or ``sample`` leak its scratch copy of the checkout.

The postmaster is a daemon and ``PostgresServer.stop()`` runs from a ``finally``, which the OOM killer,
``timeout -k``, a cancelled CI job or a ``kill -9`` never lets run: without a watchdog the server ran on
forever, its ``imagesearch-pg-*`` folder in /tmp. Here a child process starts a server and is SIGKILLed;
the server must be gone and its folder removed within a bound (a bound, not a speed requirement: the
watchdog stops the server as soon as the kernel closes the child's end of its pipe).

These tests start processes of their own (a child, servers): marked ``not_in_mutation_run``, and they live
beside tests/mutation/test_shared_postgres.py, the other tests of tests/support/postgres.py.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import reaper as reaper_module
from tests.support.postgres import running_postgres, server_bindir

REPO = Path(__file__).resolve().parents[2]
#: How long the clean-up after a kill may take before the test calls it a leak.
BOUND = 30.0

pytestmark = [
    pytest.mark.not_in_mutation_run,
    pytest.mark.skipif(server_bindir() is None, reason="PostgreSQL is not installed"),
]

SERVER_CHILD = """
import time
from tests.support.postgres import start_postgres

server = start_postgres()
postmaster = (server.root / "data" / "postmaster.pid").read_text().splitlines()[0]
print(server.root, postmaster, flush=True)
time.sleep(600)
"""


SAMPLE_CHILD = """
import sys, time
sys.path.insert(0, "scripts")
import mutation

with mutation._sample_checkout(folders=(mutation.PACKAGE,)) as scratch:
    print(scratch, flush=True)
    time.sleep(600)
"""


def _watchdogs() -> set[int]:
    """The pids of this process's children that run tests/support/reaper.py."""
    script = os.fsencode(Path(reaper_module.__file__).resolve())
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid == os.getpid() and script in Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0"):
                found.add(int(entry))
    return found


#: The children the running test started, killed after it whatever it asserted.
_children: list[subprocess.Popen[str]] = []


@pytest.fixture
def tmpdir_for_child() -> Iterator[Path]:
    """A TMPDIR for the child (traversable by the ``postgres`` user), so that what it leaves is found
    there; a server a failed test leaves in it is stopped afterwards (only servers this test's child
    started, never another run's)."""
    root = Path(tempfile.mkdtemp(prefix="pg-sigkill-test-"))
    os.chmod(root, 0o755)
    try:
        yield root
    finally:
        # A child a failed assertion left running (it sleeps 600 s) goes first: its watchdog then cleans up.
        while _children:
            child = _children.pop()
            if child.poll() is None:
                child.kill()
                child.wait()
        for pid_file in root.glob("imagesearch-pg-*/data/postmaster.pid"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                pid = int(pid_file.read_text().splitlines()[0])
                if pid <= 0:  # initdb's standalone backend writes its pid negated: a group, not a server
                    continue
                os.kill(pid, signal.SIGQUIT)  # the postmaster's immediate shutdown
                deadline = time.monotonic() + BOUND
                while reaper_module.alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.2)
        subprocess.run(["rm", "-rf", str(root)], check=False)


def _child(code: str, tmpdir: Path) -> tuple[subprocess.Popen[str], list[str]]:
    """A Python child running ``code`` and the words of the first line it prints."""
    child = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**os.environ, "TMPDIR": str(tmpdir), "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    _children.append(child)
    assert child.stdout is not None
    ready, _, _ = select.select([child.stdout], [], [], 180)
    line = child.stdout.readline() if ready else ""
    if not line:
        child.kill()
        child.wait()
        pytest.fail("the child printed nothing (its stderr is above)")
    return child, line.split()


def _sigkill(child: subprocess.Popen[str]) -> None:
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    assert child.stdout is not None
    child.stdout.close()


def test_a_sigkilled_owner_leaks_neither_its_server_nor_its_folder(tmpdir_for_child: Path) -> None:
    child, (root, postmaster) = _child(SERVER_CHILD, tmpdir_for_child)
    folder, pid = Path(root), int(postmaster)
    assert folder.parent == tmpdir_for_child
    assert reaper_module.alive(pid)
    _sigkill(child)
    deadline = time.monotonic() + BOUND
    while (reaper_module.alive(pid) or folder.exists()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not reaper_module.alive(pid), (
        f"the postmaster (pid {pid}) outlived its SIGKILLed owner by {BOUND:.0f} s"
    )
    assert not folder.exists(), f"{folder} outlived its SIGKILLed owner by {BOUND:.0f} s"


def test_a_server_stopped_by_the_book_leaves_no_watchdog_and_no_folder() -> None:
    before = _watchdogs()
    with running_postgres() as server:
        root = server.root
        postmaster = int((root / "data" / "postmaster.pid").read_text().splitlines()[0])
        watching = _watchdogs() - before
        assert len(watching) == 1, "the running server has no watchdog of its own"
    assert not root.exists()
    assert not reaper_module.alive(postmaster)
    assert not (_watchdogs() & watching), "the server's watchdog outlived the server"


def test_a_sigkilled_check_or_sample_leaks_no_scratch_checkout(tmpdir_for_child: Path) -> None:
    """``scripts/mutation.py check`` and ``sample`` work in a scratch copy of the checkout
    (``imagesearch-mutation-sample-*``, its mutants beside it), removed in a ``finally``: a killed run
    left one in /tmp each time."""
    child, (scratch,) = _child(SAMPLE_CHILD, tmpdir_for_child)
    folder = Path(scratch)
    assert folder.parent == tmpdir_for_child
    assert (folder / "airflow_provider_imagesearch").is_dir()
    _sigkill(child)
    deadline = time.monotonic() + BOUND
    while folder.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not folder.exists(), f"{folder} outlived its SIGKILLed owner by {BOUND:.0f} s"
