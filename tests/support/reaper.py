"""Stops the deployment's processes if the test process dies without doing it (SIGKILL, ``timeout -k``).

``python -m tests.support.reaper`` runs in its own session and reads lines on stdin:
``group <pid>`` (a process group leader started by the test), ``pidfile <path>`` (a daemon such as the
PostgreSQL postmaster, whose pid is the file's first line), ``rmtree <path>`` and ``done``. When stdin
closes without ``done`` (the test process died before its clean-up), every group and every descendant is
killed, each pid file's process too, and the folders are removed. ``done`` (sent after a clean stop)
makes it exit without touching anything: those pids may belong to other processes by then.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
from pathlib import Path


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (task processes put themselves in their own process groups)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: the ppid is the 2nd field after the last ')'.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found: list[int] = []
    pending = [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def kill_tree(pid: int, sig: int = signal.SIGKILL) -> None:
    """``sig`` to the process group led by ``pid`` and to every descendant of ``pid``."""
    family = descendants(pid)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
    for member in [pid, *family]:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(member, sig)


def main() -> None:
    groups: list[int] = []
    pidfiles: list[Path] = []
    folders: list[Path] = []
    for line in sys.stdin:
        kind, _, value = line.strip().partition(" ")
        if kind == "group":
            groups.append(int(value))
        elif kind == "pidfile":
            pidfiles.append(Path(value))
        elif kind == "rmtree":
            folders.append(Path(value))
        elif kind == "done":
            return
    for pid in groups:
        kill_tree(pid)
    for pidfile in pidfiles:
        with contextlib.suppress(OSError, ValueError, IndexError):
            # SIGQUIT: PostgreSQL's immediate shutdown (the postmaster stops its own children).
            os.kill(int(pidfile.read_text().splitlines()[0]), signal.SIGQUIT)
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
