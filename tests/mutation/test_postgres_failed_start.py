"""A throwaway PostgreSQL start that fails or is interrupted after pg_ctl forked the postmaster leaves no
server running: the watchdog is abandoned (stdin closed without "done"), so it stops the postmaster by its
pid file. Telling it "done" there, as the owner does after a clean stop, left the server running."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import postgres

pytestmark = [
    pytest.mark.not_in_mutation_run,
    pytest.mark.skipif(postgres.server_bindir() is None, reason="PostgreSQL is not installed"),
]


class Interrupted(BaseException):
    """What SIGINT (KeyboardInterrupt) or scripts/mutation.py's SIGTERM handler (SystemExit) raises."""


def _postmasters_under(folder: Path) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
                if argv and argv[0].endswith(b"/postgres") and any(os.fsencode(folder) in a for a in argv):
                    found.append(int(entry))
    return found


@pytest.fixture
def private_tmp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="pg-failed-start-"))
    os.chmod(root, 0o755)
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    try:
        yield root
    finally:
        for pid in _postmasters_under(root):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGQUIT)
        subprocess.run(["rm", "-rf", str(root)], check=False)


@pytest.mark.parametrize("how", ["interrupted", "pg_ctl -w timed out"])
def test_a_start_that_fails_after_the_postmaster_was_forked_leaks_no_postmaster(
    private_tmp: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    run = postgres.PostgresServer._run

    def failing_start(self: postgres.PostgresServer, *args: str) -> None:
        if args[0] == "pg_ctl" and args[-1] == "start":
            if how == "interrupted":  # Ctrl-C / SIGTERM in mutation.py while pg_ctl -w polls
                run(self, *args)
                raise Interrupted
            # pg_ctl -w -t 60 giving up under load while the server does come up, modelled as -t 0
            args = tuple("0" if a == "60" else a for a in args)
        run(self, *args)

    monkeypatch.setattr(postgres.PostgresServer, "_run", failing_start)
    with pytest.raises((Interrupted, subprocess.CalledProcessError)):
        postgres.start_postgres()
    deadline = time.monotonic() + 10
    while _postmasters_under(private_tmp) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _postmasters_under(private_tmp), "start_postgres() failed, its postmaster still runs"
