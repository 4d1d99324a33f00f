"""The benchmark suite at tiny sizes, so it cannot rot. Goals are not judged here: at smoke sizes they
mean nothing, and speed is never a timed assertion in a test."""

from __future__ import annotations

import benchmarks


def test_benchmarks_smoke() -> None:
    results = benchmarks.run(smoke=True)
    assert {r.figure.split(":")[0] for r in results} >= {
        "call overhead",
        "vs the generic way",
        "token reuse",
        "deferral at scale",
        "DAG-parse cost",
        "archive throughput",
        "bulk import, clean",
        "bulk import, manifest diff memory",
        "UI page",
    }
    errors = [(r.figure, r.measured, r.notes) for r in results if r.status == "error"]
    assert not errors, errors
