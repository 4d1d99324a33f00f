"""A mutant of a function called when its module is imported runs against the tests written for it.

mutmut's stats run credits a call made at import time (``_default_deferrable()``, an operator parameter's
default) to whichever test imported the module first, and would run only that test against the mutant:
the plugin adds the tests that check the function (``CHILD_PROCESS_TESTS``), whatever the time budget.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFERRABLE_TEST = "tests/operators/test_operator_default_deferrable.py"
#: A test that imports the operators' module and knows nothing of default_deferrable.
UNRELATED_TEST = "tests/operators/test_operator_import_rendering.py"


def _collected(mutant: str) -> list[str]:
    env = {**os.environ, "MUTANT_UNDER_TEST": mutant, "IMAGESEARCH_MUTATION_BUDGET": "0.001"}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "tests.mutation.plugin",
            UNRELATED_TEST,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # 5: no test left (the budget dropped them all).
    assert out.returncode in (0, 5), out.stdout[-3000:] + out.stderr[-3000:]
    return [line for line in out.stdout.splitlines() if "::" in line]


def test_a_mutant_of_default_deferrable_runs_the_default_deferrable_test_whatever_the_budget() -> None:
    collected = _collected(
        "airflow_provider_imagesearch.operators.imagesearch.x__default_deferrable__mutmut_7"
    )
    # Added, although the 1 ms budget fits no test: and only it.
    assert collected, "nothing collected"
    assert all(line.startswith(DEFERRABLE_TEST) for line in collected), collected


def test_a_mutant_of_another_function_gets_no_added_test_and_keeps_the_budget() -> None:
    # A budget of 1 ms fits none of the tests mutmut chose, and nothing is added.
    assert _collected("airflow_provider_imagesearch.operators.imagesearch.x__other__mutmut_1") == []
