"""Cleans up after a process that dies without doing it itself (SIGKILL, the OOM killer, ``timeout -k``).

``python -m tests.support.reaper`` (or :class:`Reaper`, the owner's end) runs in its own session and reads
lines on stdin: ``group <pid>`` (a process group leader started by the test), ``pidfile <path>`` (a daemon
such as the PostgreSQL postmaster, whose pid is the file's first line), ``rmtree <path>`` and ``done``.
When stdin closes without ``done`` (the owner died before its clean-up: the kernel closes a killed
process's end of the pipe, whatever killed it), every group and every descendant is killed, each pid
file's process too, and the folders are removed. ``done`` (sent after a clean stop) makes it exit without
touching anything: those pids may belong to other processes by then.

A pipe rather than polling the owner's pid: EOF comes the moment the last writer is gone, and a pid is
never mistaken for a newer process that took it. A process forked from the owner (not exec'd: the pipe is
close-on-exec) holds the write end too, so EOF waits for it as well.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

#: How long a pid file's daemon gets to stop after SIGQUIT before its folder is removed regardless.
DAEMON_GRACE = 30.0


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


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped by its parent, does not; nor does one dying)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _daemon_of(pidfile: Path) -> int | None:
    """The pid in ``pidfile`` when that process still runs the daemon of the file's folder: its command
    line names the folder (``postgres -D <data>``), so a pid reused since by another process is left alone.
    """
    folder = os.fsencode(pidfile.parent)
    try:
        pid = int(pidfile.read_text().splitlines()[0])
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError, IndexError):
        pass
    else:
        if folder in argv:
            return pid
    # No pid file yet: a start given up (``pg_ctl -w`` timing out) or interrupted right after pg_ctl
    # launched the server, which writes the file only once it has set up. Found by its command line.
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and os.path.basename(argv[0]) == b"postgres" and folder in argv:
            return int(entry)
    return None


def stop_daemon(pidfile: Path, grace: float = DAEMON_GRACE) -> None:
    """SIGQUIT to the daemon of ``pidfile`` (PostgreSQL's immediate shutdown: the postmaster stops its
    own children), then wait until it is gone, so that removing its folder next does not race its exit;
    SIGKILL if it is still there after ``grace`` seconds. Every daemon of the folder, one after another: a
    start retried on another port launches another, which takes over the folder's lock once the first is
    gone; and one launched a moment ago may not have exec'd yet, so each is looked for again, briefly."""
    for _ in range(10):
        look_until = time.monotonic() + 2.0
        pid = _daemon_of(pidfile)
        while pid is None and time.monotonic() < look_until:
            time.sleep(0.1)
            pid = _daemon_of(pidfile)
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGQUIT)
        deadline = time.monotonic() + grace
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if alive(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


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
        stop_daemon(pidfile)
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


class Reaper:
    """The owner's end: starts the reaper and tells it what to clean up should this process die first.

    Cheap (one small process, stdlib only); meant once per resource set, not per test. The reaper's
    stdout and stderr are /dev/null: it outlives its owner, and must not keep open a pipe someone reads
    the owner's output from (``subprocess.run(capture_output=True)`` would wait for it).
    """

    def __init__(self) -> None:
        # By its path, isolated (-I: no PYTHONPATH, no script folder on sys.path): it needs the standard
        # library only, whatever the owner's environment, a mutation run's copy of tests/ included.
        self.process = subprocess.Popen(
            [sys.executable, "-I", str(Path(__file__).resolve())],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd="/",
            start_new_session=True,  # a kill of the owner's process group (timeout -k) misses it
        )

    def tell(self, kind: str, value: object) -> None:
        """One line of the protocol above: ``tell("rmtree", folder)``, ``tell("pidfile", path)``."""
        assert self.process.stdin is not None
        self.process.stdin.write(f"{kind} {value}\n".encode())
        self.process.stdin.flush()

    def abandon(self, timeout: float = DAEMON_GRACE + 30.0) -> None:
        """The owner failed to clean up itself (a failed or interrupted start or stop): the reaper's stdin is
        closed without ``done``, as at the owner's death, and its clean-up (stop the daemon, remove the
        folders) is waited for."""
        assert self.process.stdin is not None
        with contextlib.suppress(BrokenPipeError, ValueError):
            self.process.stdin.close()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def release(self, timeout: float = 10.0) -> None:
        """The owner cleaned up itself: ``done``, and the reaper is waited for, so none is left behind."""
        assert self.process.stdin is not None
        with contextlib.suppress(BrokenPipeError, ValueError):
            self.process.stdin.write(b"done\n")
            self.process.stdin.close()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


if __name__ == "__main__":
    main()
