"""Which covering tests run against one mutant: as many as fit in the budget, taken across their files,
those that killed other mutants of the same function first.

The fastest tests of a function every import test covers are argument refusals and one-row imports,
which never reach most of what the function does; one test of each file reaches more of it. A test that
killed one mutant of a function was written about what it does, and tends to kill its other mutants.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.mutation.plugin import KILLERS_FILE, UNKNOWN_DURATION, killers_of, within_budget

REPO = Path(__file__).resolve().parents[2]

DURATIONS = {
    "tests/a.py::refuse_1": 0.1,
    "tests/a.py::refuse_2": 0.1,
    "tests/a.py::refuse_3": 0.1,
    "tests/a.py::refuse_4": 0.1,
    "tests/b.py::prune": 0.5,
    "tests/b.py::prune_slow": 2.0,
    "tests/c.py::resume": 0.8,
}


def test_one_test_of_each_file_before_a_second_of_any() -> None:
    kept = within_budget(list(DURATIONS), DURATIONS, budget=1.45)

    assert set(kept) == {"tests/a.py::refuse_1", "tests/b.py::prune", "tests/c.py::resume"}


def test_second_round_follows_when_the_budget_allows() -> None:
    kept = within_budget(list(DURATIONS), DURATIONS, budget=1.65)

    assert kept == [
        "tests/a.py::refuse_1",
        "tests/b.py::prune",
        "tests/c.py::resume",
        "tests/a.py::refuse_2",
        "tests/a.py::refuse_3",
    ]


def test_a_test_that_does_not_fit_is_passed_over_for_a_quicker_one() -> None:
    kept = within_budget(list(DURATIONS), DURATIONS, budget=3.0)

    assert "tests/b.py::prune_slow" not in kept
    assert {"tests/a.py::refuse_2", "tests/a.py::refuse_3", "tests/a.py::refuse_4"} <= set(kept)
    assert sum(DURATIONS[n] for n in kept) <= 3.0


def test_everything_fits_in_a_large_budget() -> None:
    assert sorted(within_budget(list(DURATIONS), DURATIONS, budget=100)) == sorted(DURATIONS)


def test_an_untimed_test_is_assumed_to_take_the_default() -> None:
    kept = within_budget(["tests/new.py::t", "tests/a.py::refuse_1"], DURATIONS, budget=UNKNOWN_DURATION)

    assert kept == ["tests/a.py::refuse_1"]
    assert within_budget(["tests/new.py::t"], {}, budget=UNKNOWN_DURATION) == ["tests/new.py::t"]


def test_nothing_fits_in_no_budget() -> None:
    assert within_budget(list(DURATIONS), DURATIONS, budget=0.0) == []


def test_the_killers_of_the_function_go_first_then_the_others_in_turn() -> None:
    kept = within_budget(list(DURATIONS), DURATIONS, budget=2.65, first=["tests/b.py::prune_slow"])

    assert kept == ["tests/b.py::prune_slow", "tests/a.py::refuse_1", "tests/b.py::prune"]


def test_a_killer_that_does_not_cover_the_mutant_or_does_not_fit_is_left_out() -> None:
    first = ["tests/gone.py::t", "tests/b.py::prune_slow", "tests/c.py::resume"]
    kept = within_budget(list(DURATIONS), DURATIONS, budget=0.95, first=first)

    assert kept == ["tests/c.py::resume", "tests/a.py::refuse_1"]


def test_the_killers_of_a_function_are_read_most_mutants_killed_first(tmp_path: Path) -> None:
    lines = [
        {"function": "m.x_f", "mutant": "m.x_f__mutmut_1", "test": "t.py::once"},
        {"function": "m.x_f", "mutant": "m.x_f__mutmut_2", "test": "t.py::twice"},
        {"function": "m.x_g", "mutant": "m.x_g__mutmut_1", "test": "t.py::other"},
        {"function": "m.x_f", "mutant": "m.x_f__mutmut_3", "test": "t.py::twice"},
        # The same kill again (check proved it, the run found it): it counts once.
        {"function": "m.x_f", "mutant": "m.x_f__mutmut_1", "test": "t.py::once"},
        {"function": "m.x_f", "mutant": "m.x_f__mutmut_1", "test": "t.py::once"},
    ]
    text = "".join(json.dumps(line) + "\n" for line in lines) + '{"function": "m.x_f", "te'
    (tmp_path / KILLERS_FILE).write_text(text)

    assert killers_of(tmp_path, "m.x_f") == ["t.py::twice", "t.py::once"]
    assert killers_of(tmp_path, "m.x_h") == []
    assert killers_of(tmp_path / "none", "m.x_f") == []
