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


def _samples(folder: Path) -> list[tuple[float, float, float]]:
    rows = []
    for log in folder.glob("sched-*.log"):
        for row in log.read_text().splitlines():
            parts = row.split()
            if len(parts) == 3:
                rows.append((float(parts[0]), int(parts[1]) / 1e9, int(parts[2]) / 1e9))
    return sorted(rows)


def _collections(folder: Path) -> list[tuple[float, float, int]]:
    rows = []
    for log in folder.glob("gc-*.log"):
        for row in log.read_text().splitlines():
            ended, took, generation = row.split()
            rows.append((float(ended), float(took), int(generation)))
    return rows


def stalls(output: list[str], folder: Path) -> list[Stall]:
    """Every stall line of ``output`` with its cause, ``None`` when it was the loop's own doing.

    Samples may come from several trigger runners (a restarted triggerer): only the pid whose samples
    span the stall can explain it, so each runner's samples are kept apart by their time ranges.
    """
    samples = _samples(folder)
    times = [s[0] for s in samples]
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
        found.append(Stall(line, ended, seconds, _cause(ended - seconds, ended, samples, times, collections)))
    return found


def _cause(
    start: float,
    end: float,
    samples: list[tuple[float, float, float]],
    times: list[float],
    collections: list[tuple[float, float, int]],
) -> str | None:
    """What the stall's time went to; ``None`` when the loop itself took over ``OWN_LIMIT`` of it."""
    gc_time = sum(
        min(ended, end) - max(ended - took, start)
        for ended, took, _ in collections
        if ended - took < end and ended > start
    )
    waited = 0.0
    before = bisect.bisect_right(times, start) - 1
    after = bisect.bisect_left(times, end)
    if before >= 0 and after < len(samples):
        (t0, ran0, waited0), (t1, ran1, waited1) = samples[before], samples[after]
        # A pair from two runners (a restarted triggerer) has counters that do not belong together.
        if 0 < t1 - t0 < 5 * (end - start) + 1 and ran1 >= ran0 and waited1 >= waited0:
            waited = min(waited1 - waited0, end - start)
    own = (end - start) - waited - gc_time
    if own < OWN_LIMIT:
        return f"{waited:.2f} s waiting for a CPU, {gc_time:.2f} s of garbage collection, {own:.2f} s the loop's own"
    return None
