"""The mutation report's arithmetic: what counts as caught, and the two ratios it prints."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import mutation


def _row(**counts: int) -> mutation.ModuleRow:
    row = mutation.ModuleRow("m.py")
    for name, value in counts.items():
        setattr(row, name, value)
    return row


def test_mypy_catches_count_as_detected_but_not_as_the_tests_kills() -> None:
    row = _row(caught_by_mypy=30, killed=60, survived=10, equivalent=5, not_checked=7)
    assert row.ratio == pytest.approx(90 / 100)
    assert row.test_ratio == pytest.approx(60 / 70)


def test_a_function_no_test_calls_counts_against_both_ratios() -> None:
    row = _row(killed=8, no_tests=2)
    assert row.ratio == pytest.approx(0.8)
    assert row.test_ratio == pytest.approx(0.8)


def test_a_module_of_only_equivalent_or_unchecked_mutants_has_no_ratio() -> None:
    row = _row(equivalent=3, not_checked=4)
    assert row.ratio is None
    assert row.test_ratio is None
    assert mutation.render_table({"m.py": row})[2].endswith("| - | - |")


def test_the_total_adds_every_column_of_every_module() -> None:
    rows = {
        "a.py": _row(caught_by_mypy=1, killed=2, survived=3, no_tests=4, equivalent=5, not_checked=6),
        "b.py": _row(caught_by_mypy=10, killed=20, survived=30, no_tests=40, equivalent=50, not_checked=60),
    }
    total = mutation.total_row(rows)
    assert (total.caught_by_mypy, total.killed, total.survived, total.no_tests) == (11, 22, 33, 44)
    assert (total.equivalent, total.not_checked) == (55, 66)
    assert total.ratio == pytest.approx(33 / 110)
    last = mutation.render_table(rows)[-1]
    assert last == "| total | 0 | 11 | 22 | 33 | 44 | 55 | 66 | 30.0% | 22.2% |"
