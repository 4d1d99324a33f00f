"""mutmut dies with ``scripts/mutation.py`` when the script alone is SIGKILLed (found by review 8).

The shared PostgreSQL server of a run has a reaper that stops it when the script dies without stopping it.
A ``kill -9`` of the script alone (``timeout`` signals the whole group, a user or the OOM killer need not)
used to leave mutmut running on: its later pytest runs met a stopped server, failed on the refused
connection, and mutmut recorded those failures as kills, which the next run resumes from. The command
``_call`` starts now gets SIGKILL when the script dies, so it can record nothing more.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.reaper import alive, descendants

REPO = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.not_in_mutation_run,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's"),
]
#: How long the orphan may take to go: a bound on a wait, not a measure of speed.
BOUND = 30.0

# The script's role: _call runs a long command (mutmut's stand-in), as `run` runs mutmut.
OWNER = f"""
import os, sys
sys.path.insert(0, {str(REPO / "scripts")!r})
import mutation
print(os.getpid(), flush=True)
mutation._call([sys.executable, "-c", "import time; time.sleep(600)"], dict(os.environ))
"""


# mutmut's stand-in with a child of its own (its type checker, its fork server's workers).
OWNER_OF_A_FAMILY = OWNER.replace(
    '"import time; time.sleep(600)"',
    "\"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']);"
    ' time.sleep(600)"',
)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _survivors_of_a_sigkilled_owner(script: str, sleepers: int) -> list[int]:
    """Run ``script``, wait for its ``sleepers`` sleeping processes, SIGKILL it: what of its family is left
    after the bound."""
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=REPO)
    family: list[int] = []
    try:
        assert owner.stdout is not None
        ready, _, _ = select.select([owner.stdout], [], [], 60)
        assert ready, "the script printed nothing"
        assert owner.stdout.readline().strip() == str(owner.pid)
        deadline = time.monotonic() + BOUND
        sleeping: list[int] = []
        while len(sleeping) < sleepers and time.monotonic() < deadline:
            family = descendants(owner.pid)
            sleeping = [pid for pid in family if b"time.sleep(600)" in _cmdline(pid)]
            time.sleep(0.1)
        assert len(sleeping) == sleepers, f"expected {sleepers} sleeping among {family}"
        owner.send_signal(signal.SIGKILL)
        owner.wait(timeout=10)
        deadline = time.monotonic() + BOUND
        while any(alive(pid) for pid in family) and time.monotonic() < deadline:
            time.sleep(0.1)
        return [pid for pid in family if alive(pid)]
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
        for pid in family:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_the_command_call_runs_dies_with_a_sigkilled_script() -> None:
    assert _survivors_of_a_sigkilled_owner(OWNER, 1) == [], "the command outlived the SIGKILLed script"


def test_the_commands_own_children_die_with_a_sigkilled_script_too() -> None:
    """Found by review 9b: the parent-death signal reached mutmut alone, and its type checker ran on."""
    assert OWNER_OF_A_FAMILY != OWNER
    assert _survivors_of_a_sigkilled_owner(OWNER_OF_A_FAMILY, 2) == [], (
        "part of the command's family outlived it"
    )
