"""Runs the figures in order, each isolated: a figure that breaks becomes an ``error`` result."""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from benchmarks._env import machine_info, prepare_environment, raise_fd_limit
from benchmarks.config import FULL, SMOKE, Sizes
from benchmarks.results import Result

#: Figure groups, in run order; those in EMULATOR_GROUPS talk to the emulator.
GROUPS = ("calls", "tokens", "deferral", "fleet", "import", "parse", "archive", "ui")
EMULATOR_GROUPS = frozenset({"calls", "tokens", "deferral", "fleet", "import"})
TITLES = {
    "calls": "call overhead + vs the generic way",
    "tokens": "token reuse",
    "deferral": "deferral at scale",
    "fleet": "bulk read, fleet trigger, loop hold",
    "import": "bulk import",
    "parse": "DAG-parse cost",
    "archive": "archive throughput",
    "ui": "UI page",
}

Progress = Callable[[str], None]


@dataclass
class Report:
    smoke: bool
    sizes: Sizes
    machine: dict[str, Any]
    results: list[Result] = field(default_factory=list)
    emulator_capacity: dict[str, float] | None = None
    elapsed_s: float = 0.0
    load_average: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": "smoke" if self.smoke else "full",
            "sizes": self.sizes.__dict__,
            "machine": self.machine,
            "emulator_capacity": self.emulator_capacity,
            "elapsed_s": round(self.elapsed_s, 1),
            "load_average_1min": self.load_average,
            "results": [r.to_dict() for r in self.results],
        }


def _error(group: str, error: BaseException) -> Result:
    lines = traceback.format_exception(error)
    return Result(
        figure=TITLES[group],
        goal="-",
        measured=f"benchmark error: {type(error).__name__}: {error}".splitlines()[0][:300],
        status="error",
        notes=["".join(lines).strip()[-2000:]],
    )


def _quiet(_: str) -> None:
    pass


def run_suite(
    smoke: bool = False, *, only: Collection[str] | None = None, progress: Progress = _quiet
) -> Report:
    """Run the selected figure groups (all by default) and return every result with the context."""
    prepare_environment()
    raise_fd_limit()
    selected = [group for group in GROUPS if only is None or group in only]
    unknown = set(only or ()) - set(GROUPS)
    if unknown:
        raise ValueError(f"unknown figure group(s) {sorted(unknown)}; choose from {', '.join(GROUPS)}")
    sizes = SMOKE if smoke else FULL
    report = Report(smoke=smoke, sizes=sizes, machine=machine_info())
    report.load_average["start"] = os.getloadavg()[0]
    started = time.perf_counter()

    def step(group: str, action: Callable[[], list[Result]]) -> None:
        progress(f"running {TITLES[group]} ...")
        begun = time.perf_counter()
        try:
            results = action()
        except Exception as error:
            results = [_error(group, error)]
        report.results.extend(results)
        statuses = ", ".join(f"{r.figure}: {r.status}" for r in results)
        progress(f"  done in {time.perf_counter() - begun:.1f} s ({statuses})")

    if EMULATOR_GROUPS.intersection(selected):
        _run_emulator_groups(selected, sizes, smoke, report, step, progress)
    if "parse" in selected:
        from benchmarks import fig_parse

        step("parse", lambda: fig_parse.run(sizes))
    if "archive" in selected:
        from benchmarks import fig_archive

        step("archive", lambda: fig_archive.run(sizes))
    if "ui" in selected:
        from benchmarks import fig_ui_page

        step("ui", lambda: fig_ui_page.run(sizes))
    report.elapsed_s = time.perf_counter() - started
    report.load_average["end"] = os.getloadavg()[0]
    return report


def _run_emulator_groups(
    selected: list[str],
    sizes: Sizes,
    smoke: bool,
    report: Report,
    step: Callable[[str, Callable[[], list[Result]]], None],
    progress: Progress,
) -> None:
    from benchmarks import fig_calls, fig_deferral, fig_fleet, fig_import, fig_tokens
    from benchmarks.emulator import Meter, measure_capacity, start_emulator

    progress("starting the emulator (own process) and measuring its capacity ...")
    try:
        emulator = start_emulator()
    except Exception as error:
        for group in EMULATOR_GROUPS.intersection(selected):
            report.results.append(_error(group, error))
        return
    try:
        capacity = measure_capacity(emulator.url, smoke=smoke)
        report.emulator_capacity = capacity.to_dict()
        progress(
            f"  emulator at {emulator.url}: {capacity.sequential_rps:,.0f} req/s one at a time, "
            f"{capacity.pipelined_rps:,.0f} req/s pipelined"
        )
        meter = Meter(emulator.url, capacity)
        url = emulator.url
        if "calls" in selected:
            step("calls", lambda: fig_calls.run(url, meter, sizes))
        if "tokens" in selected:
            step("tokens", lambda: [fig_tokens.run(url, meter, sizes)])
        if "deferral" in selected:
            step("deferral", lambda: [fig_deferral.run(url, meter, sizes)])
        if "fleet" in selected:
            step("fleet", lambda: fig_fleet.run(url, meter, sizes))
        if "import" in selected:
            step(
                "import",
                lambda: fig_import.run(
                    url,
                    emulator,
                    sizes.import_rows,
                    sizes.import_diff_rows,
                    paced_rows=sizes.import_paced_rows,
                    shard_rows=sizes.import_shard_rows,
                ),
            )
    finally:
        emulator.stop()


def stderr_progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
