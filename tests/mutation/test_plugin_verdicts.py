"""What one mutant's pytest run reports to mutmut: a kill only when the mutant's behaviour failed a test.

* A test that fails in its own run kills the mutant (exit 1), and is remembered as a killer.
* An error in a test's setup or teardown kills it only when its traceback goes through the mutated module
  (a fixture calling the mutated code); any other (a server gone, a port taken) ends the run suspicious
  (exit 35): not a kill, and a resumed run tries the mutant again.
* mutmut's worker exits 255 when pytest could not run the tests at all (a usage error: a test file not
  found), which mutmut calls a timeout: the report counts it suspicious, not killed. And the plugin adds
  only the child-process test files that exist, so a renamed one does not stop the mutant's other tests.
(Review 7 found each of these counted as a kill.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.mutation.plugin import SUSPICIOUS, killers_of

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

import mutation  # noqa: E402

pytestmark = pytest.mark.not_in_mutation_run

TESTS = """
import pytest
from pkg import mod

@pytest.fixture
def server():
    raise ConnectionError("the shared server is gone")

@pytest.fixture
def through_the_mutant():
    return mod.broken()

@pytest.fixture
def closing():
    yield
    raise ConnectionError("the port was taken")

def test_needs_the_server(server):
    pass

def test_setup_calls_the_mutant(through_the_mutant):
    pass

def test_teardown_fails(closing):
    pass

def test_fails():
    assert mod.broken is None
"""


def _run(tmp_path: Path, test: str, mutant: str = "pkg.mod.x_broken__mutmut_3") -> int:
    (tmp_path / "setup.cfg").write_text("[tool:pytest]\n")
    (tmp_path / "pkg").mkdir(exist_ok=True)
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "mod.py").write_text("def broken():\n    raise ValueError('mutated')\n")
    (tmp_path / "test_k.py").write_text(TESTS)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), str(tmp_path)]),
        "MUTANT_UNDER_TEST": mutant,
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-x",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "tests.mutation.plugin",
            test,
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode


def test_a_failing_test_kills_and_is_remembered(tmp_path: Path) -> None:
    assert _run(tmp_path, "test_k.py::test_fails") == 1
    assert killers_of(tmp_path, "pkg.mod.x_broken") == ["test_k.py::test_fails"]


def test_a_setup_error_outside_the_mutated_module_is_suspicious_and_not_remembered(tmp_path: Path) -> None:
    assert _run(tmp_path, "test_k.py::test_needs_the_server") == SUSPICIOUS
    assert mutation.status_of(SUSPICIOUS) not in mutation.KILLED
    assert mutation.verdict(SUSPICIOUS)[0] != "killed"  # what check and the sample say of it
    assert killers_of(tmp_path, "pkg.mod.x_broken") == []


def test_a_teardown_error_outside_the_mutated_module_is_suspicious(tmp_path: Path) -> None:
    assert _run(tmp_path, "test_k.py::test_teardown_fails") == SUSPICIOUS
    assert killers_of(tmp_path, "pkg.mod.x_broken") == []


def test_a_setup_error_through_the_mutated_module_kills(tmp_path: Path) -> None:
    assert _run(tmp_path, "test_k.py::test_setup_calls_the_mutant") == 1
    assert killers_of(tmp_path, "pkg.mod.x_broken") == ["test_k.py::test_setup_calls_the_mutant"]


def test_a_run_of_no_test_at_all_is_not_a_kill() -> None:
    assert mutation.status_of(255) == "suspicious"
    assert mutation.status_of(-1) not in mutation.KILLED
    assert mutation.status_of(-24) == "timeout"  # mutmut's CPU limit: the mutant made a test hang
    assert mutation.status_of(1) == "killed"


def test_a_child_process_test_file_renamed_since_does_not_stop_the_other_tests(tmp_path: Path) -> None:
    mutant = "airflow_provider_imagesearch.operators.imagesearch.x__default_deferrable__mutmut_1"
    (tmp_path / "test_other.py").write_text("def test_passes():\n    pass\n")
    # tests/operators/test_operator_default_deferrable.py is not in tmp_path: it is left out, not an error.
    assert _run(tmp_path, "test_other.py", mutant=mutant) == 0
