"""``python -m benchmarks [--smoke] [--json FILE] [--only GROUP,...]``.

Exit status: full run, 1 when a goal is missed or a benchmark breaks; smoke run, 1 only when a
benchmark breaks (tiny sizes say nothing about the goals).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks._env import prepare_environment
from benchmarks.results import format_table
from benchmarks.runner import GROUPS, Report, run_suite, stderr_progress


def header(report: Report) -> str:
    machine = report.machine
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items())
    lines = [
        f"ImageSearch provider benchmarks ({'SMOKE sizes' if report.smoke else 'full sizes'})",
        f"machine: {machine['cpu']}, {machine['cores']} cores, Python {machine['python']} ({machine['platform']})",
        f"versions: {versions}",
    ]
    if report.load_average:
        load = report.load_average
        lines.append(
            f"load average (1 min): {load.get('start', 0):.2f} at start, {load.get('end', 0):.2f} at end "
            "(other processes on the machine add noise; the ratios are measured side by side)"
        )
    if report.emulator_capacity:
        cap = report.emulator_capacity
        lines.append(
            f"emulator capacity (raw socket client): {cap['sequential_rps']:,.0f} req/s one request at a time, "
            f"{cap['pipelined_rps']:,.0f} req/s pipelined over 4 connections"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (whole run well under a minute)")
    parser.add_argument("--json", metavar="FILE", type=Path, help="also write the results as JSON")
    parser.add_argument("--only", metavar="GROUPS", help=f"comma-separated subset of: {', '.join(GROUPS)}")
    args = parser.parse_args(argv)
    only = [g.strip() for g in args.only.split(",") if g.strip()] if args.only else None
    if only is not None and set(only) - set(GROUPS):
        parser.error(f"--only: choose from {', '.join(GROUPS)}")

    prepare_environment(own_home=True)
    report = run_suite(smoke=args.smoke, only=only, progress=stderr_progress)
    print()
    print(header(report))
    print(format_table(report.results))
    print(f"\ntotal {report.elapsed_s:.1f} s")
    if args.json:
        args.json.write_text(json.dumps(report.to_dict(), indent=2, default=str) + "\n", encoding="utf-8")
        print(f"results written to {args.json}")
    broken = any(r.status == "error" for r in report.results)
    missed = any(r.status == "fail" for r in report.results)
    return 1 if broken or (missed and not args.smoke) else 0


if __name__ == "__main__":
    sys.exit(main())
