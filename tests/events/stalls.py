"""Which of the triggerer's "async thread was blocked" lines did a trigger cause?

The triggerer logs each stall of its event loop over 0.2 s. On a shared, overloaded 2-core machine
(load average 8 and more while several engineers run suites) most of them are not a trigger's doing:
the loop's thread was ready to run and waited for a CPU. A small control process beside it does not
show that (the kernel wakes a process that mostly sleeps at once, a busy one waits its turn), so this
module asks the kernel instead. A ``sitecustomize`` put on ``PYTHONPATH`` of the deployment starts, in
the triggerer's trigger-runner process (the child the ``airflow triggerer`` process forks), a thread
that samples ``/proc/self/task/<loop thread>/schedstat`` every 20 ms: the CPU time the loop's thread
ran and the time it waited on a run queue. It also logs that process's garbage collections over 50 ms.
Each stall is then:

* time **waiting for a CPU**: the loop's thread sat on a run queue (machine load);
* time in **garbage collection**: the process's own collections (a full collection of Airflow's heap
  takes 0.2-2 s on a loaded machine; no trigger controls when the collector runs);
* the rest, **the loop's own**: code ran on it, or it was blocked in a system call. A stall whose own
  part alone reaches the triggerer's threshold (0.2 s) is one a trigger (or Airflow) caused: the check
  fails on it.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

BLOCKED = "async thread was blocked"
#: The triggerer's own threshold: a stall whose time the loop itself took is below it is not one.
OWN_LIMIT = 0.2
RECORDER = r'''
"""Samples the trigger runner's loop thread and logs its garbage collections (tests/events/stalls.py)."""
import gc, os, sys, threading, time

_FOLDER = os.environ.get("IMAGESEARCH_STALL_LOG")


def _start_in_runner():
    pid = os.getpid()
    gc_log = os.path.join(_FOLDER, f"gc-{pid}.log")
    started = [0.0]

    def record(phase, info):
        if phase == "start":
            started[0] = time.perf_counter()
            return
        took = time.perf_counter() - started[0]
        if took > 0.05:
            with open(gc_log, "a") as sink:
                sink.write(f"{time.time():.3f} {took:.3f} {info['generation']}\n")

    gc.callbacks.append(record)

    def sample():
        path = f"/proc/self/task/{pid}/schedstat"
        with open(os.path.join(_FOLDER, f"sched-{pid}.log"), "a", buffering=1) as sink:
            while True:
                with open(path) as stat:
                    ran, waited, _ = stat.read().split()
                sink.write(f"{time.time():.3f} {ran} {waited}\n")
                time.sleep(0.02)

    threading.Thread(target=sample, name="schedstat-sampler", daemon=True).start()


if _FOLDER and "triggerer" in sys.argv:
    os.register_at_fork(after_in_child=_start_in_runner)
'''


@dataclass(frozen=True)
class Stall:
    line: str
    ended_at: float
    seconds: float
    cause: str | None


def recorder_path(folder: Path) -> Path:
    """A folder holding the recording ``sitecustomize``: put it on PYTHONPATH, and set
    ``IMAGESEARCH_STALL_LOG`` to a folder for its logs."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(RECORDER)
    return folder


Samples = dict[int, list[tuple[float, float, float]]]


def _samples(folder: Path) -> Samples:
    """Per process: (epoch, seconds the loop thread ran, seconds it waited on a run queue)."""
    found: Samples = {}
    for log in folder.glob("sched-*.log"):
        rows = []
        for row in log.read_text().splitlines():
            parts = row.split()
            if len(parts) == 3:
                rows.append((float(parts[0]), int(parts[1]) / 1e9, int(parts[2]) / 1e9))
        found[int(log.stem.split("-")[1])] = sorted(rows)
    return found


def _collections(folder: Path) -> dict[int, list[tuple[float, float]]]:
    """Per process: (epoch when it ended, seconds) of each garbage collection over 50 ms."""
    found: dict[int, list[tuple[float, float]]] = {}
    for log in folder.glob("gc-*.log"):
        rows = []
        for row in log.read_text().splitlines():
            ended, took, _generation = row.split()
            rows.append((float(ended), float(took)))
        found[int(log.stem.split("-")[1])] = rows
    return found


def stalls(output: list[str], folder: Path) -> list[Stall]:
    """Every stall line of ``output`` with its cause, ``None`` when it was the loop's own doing."""
    samples = _samples(folder)
    collections = _collections(folder)
    found = []
    for line in output:
        if BLOCKED not in line:
            continue
        stamp = re.search(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z", line)
        took = re.search(r"blocked for ([0-9.]+) seconds", line)
        if stamp is None or took is None:
            found.append(Stall(line, 0.0, 0.0, None))
            continue
        ended = datetime.fromisoformat(stamp.group(1)).replace(tzinfo=UTC).timestamp()
        seconds = float(took.group(1))
        found.append(Stall(line, ended, seconds, _cause(ended - seconds, ended, samples, collections)))
    return found


def _usage(rows: list[tuple[float, float, float]], start: float, end: float) -> tuple[float, float] | None:
    """(ran, waited) seconds of one process's loop thread from the sample before ``start`` to the
    one after ``end``; None when its samples do not span the stall."""
    times = [row[0] for row in rows]
    before = bisect.bisect_right(times, start) - 1
    after = bisect.bisect_left(times, end)
    if before < 0 or after >= len(rows):
        return None
    (_, ran0, waited0), (_, ran1, waited1) = rows[before], rows[after]
    return ran1 - ran0, waited1 - waited0


def _cause(
    start: float, end: float, samples: Samples, collections: dict[int, list[tuple[float, float]]]
) -> str | None:
    """What the stall's time went to; ``None`` when the loop itself took ``OWN_LIMIT`` of it or more.

    The triggerer forks two processes (the trigger runner and its log server): the runner is the one
    whose loop thread was busy (ran or waited to run) during the stall.
    """
    spans = {pid: usage for pid, rows in samples.items() if (usage := _usage(rows, start, end)) is not None}
    if not spans:
        return None
    pid, (_ran, waited) = max(spans.items(), key=lambda item: sum(item[1]))
    gc_time = sum(
        min(ended, end) - max(ended - took, start)
        for ended, took in collections.get(pid, [])
        if ended - took < end and ended > start
    )
    waited = min(waited, end - start)
    own = (end - start) - waited - gc_time
    if own < OWN_LIMIT:
        return f"{waited:.2f} s waiting for a CPU, {gc_time:.2f} s of garbage collection, {own:.2f} s the loop's own"
    return None
