"""Review of issue 25's shared PostgreSQL server for the mutation run and of ``scripts/mutation.py check``.

Each test runs ``scripts/mutation.py`` in a process of its own (a scratch copy of the checkout, a
PostgreSQL server): marked ``not_in_mutation_run``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.reaper import alive

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "mutation.py"
#: A mutant of outcomes.py (cheap to generate) and a fast test that kills it.
MUTANT = "airflow_provider_imagesearch.outcomes.x_missing_message__mutmut_1"
KILLING_TEST = (
    "tests/unit/test_outcomes_behaviour.py::test_several_missing_instances_are_each_named_in_input_order"
)

pytestmark = pytest.mark.not_in_mutation_run


@pytest.fixture
def tmpdir_for_postgres() -> Iterator[Path]:
    """A TMPDIR the child's PostgreSQL root lands in (traversable by the ``postgres`` user); any server
    left running in it is stopped afterwards (only servers this test's child started)."""
    root = Path(tempfile.mkdtemp(prefix="r25b-review-"))
    os.chmod(root, 0o755)
    try:
        yield root
    finally:
        for pid_file in root.glob("imagesearch-pg-*/data/postmaster.pid"):
            pid = int(pid_file.read_text().splitlines()[0])
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGQUIT)  # the postmaster's "immediate shutdown"
        time.sleep(1)
        shutil.rmtree(root, ignore_errors=True)


def _ready_postmaster(root: Path, deadline: float) -> int:
    while time.monotonic() < deadline:
        for pid_file in root.glob("imagesearch-pg-*/data/postmaster.pid"):
            lines = pid_file.read_text().splitlines()
            if len(lines) >= 8 and lines[7].strip() == "ready":
                return int(lines[0])
        time.sleep(0.2)
    raise AssertionError("the script's PostgreSQL server never became ready")


@pytest.mark.parametrize(
    "command", [["check", MUTANT, "--tests", KILLING_TEST], ["sample"]], ids=["check", "sample"]
)
def test_the_timeout_that_stops_a_run_also_stops_its_postgresql_server(
    command: list[str], tmpdir_for_postgres: Path
) -> None:
    """``make mutation`` and ``make mutation-sample`` run the script under ``timeout -k 15 N``: when the
    run overruns (the docs' own recorded run was stopped by ``MUTATION_TIMEOUT``), ``timeout`` sends
    SIGTERM to its process group. Python dies on SIGTERM without running ``finally`` blocks, and the
    postmaster ``pg_ctl`` started is in a session of its own, so the server the script started for the
    tests (``_postgres_for_tests``) keeps running, with its data folder in /tmp, after every such run:
    one leaked PostgreSQL server per overrun, until someone finds and kills it by hand."""
    child = subprocess.Popen(
        [sys.executable, str(SCRIPT), *command],
        cwd=REPO,
        env={**os.environ, "TMPDIR": str(tmpdir_for_postgres)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        postmaster = _ready_postmaster(tmpdir_for_postgres, time.monotonic() + 300)
        os.killpg(child.pid, signal.SIGTERM)  # what `timeout` does when MUTATION_TIMEOUT expires
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    deadline = time.monotonic() + 15
    while alive(postmaster) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive(postmaster), f"the run's PostgreSQL server (pid {postmaster}) outlived the run"


def test_check_says_a_name_that_is_no_mutant_is_unknown_rather_than_a_survivor() -> None:
    """A mutant's number moves when its function is edited (the script's own docstring), and engineers
    pass ranges of names (``_defer__mutmut_1`` ... ``_defer__mutmut_42``): ``check`` prints ``SURVIVED``
    for a number the function does not have, or a misspelt function, since the trampoline runs the
    original code for a name it does not know. The user is told their new test leaves a survivor that
    does not exist, and may write a test or an equivalence note for it."""
    phantom = MUTANT.replace("__mutmut_1", "__mutmut_999")
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "check", MUTANT, phantom, "--tests", KILLING_TEST],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert re.search(rf"^killed +{re.escape(MUTANT)}$", output, re.M), output[-3000:]
    assert not re.search(rf"^SURVIVED +{re.escape(phantom)}$", output, re.M), output[-3000:]
    unknown = re.search(r"^.*(no such mutant|not a mutant|unknown).*$", output, re.I | re.M)
    assert unknown, output[-3000:]
    assert "999" in unknown.group(0), output[-3000:]


def _newcomer_path() -> str:
    """PATH as a newcomer's shell has it after ``make install``: the project's .venv is not activated."""
    venv_bin = str(Path(sys.executable).parent)
    return os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p != venv_bin)


def test_the_docs_check_command_runs_as_written() -> None:
    """docs/mutation-testing.rst tells the reader to run ``python scripts/mutation.py check NAME ...
    --tests ...``. Nothing in the README or the docs activates ``.venv`` (docs/performance.rst writes
    ``.venv/bin/python``), so ``python`` is the machine's interpreter, which has no mutmut: the command
    copies the checkout, then dies with ``ModuleNotFoundError: No module named 'mutmut'``.
    tests/test_readme.py cannot see it: it runs the command with its own ``sys.executable``."""
    page = (REPO / "docs" / "mutation-testing.rst").read_text(encoding="utf-8")
    (line,) = [x.strip() for x in page.splitlines() if re.search(r"scripts/mutation\.py check ", x)]
    words = line.replace("NAME [NAME ...]", MUTANT).split()
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH")}
    env["PATH"] = _newcomer_path()
    if words[0] in ("python", "python3") and shutil.which(words[0], path=env["PATH"]) is None:
        pytest.skip(f"no {words[0]} on PATH outside the venv here")
    result = subprocess.run(words, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    output = result.stdout + result.stderr
    assert "ModuleNotFoundError" not in output, output[-2000:]
    assert re.search(rf"^(killed|SURVIVED) +{re.escape(MUTANT)}$", output, re.M), output[-2000:]


#: A test the mutation plugin always deselects (marked ``not_in_mutation_run``); it passes in ``make test``.
DESELECTED_TEST = (
    "tests/review/test_review_issue20_21.py::"
    "test_concurrent_kit_sessions_started_like_xdist_workers_use_their_own_metadata_db"
)


def test_check_says_a_named_test_was_left_out_rather_than_that_it_fails() -> None:
    """``check`` runs the named tests through the mutation plugin, which deselects every test marked
    ``not_in_mutation_run``. Naming one, the control run collects nothing (pytest exit 5, "1 deselected")
    and ``check`` tells the user "the tests fail without any mutant: fix them first": they pass, and
    nothing tells the user the plugin left them out. Named beside other tests, such a test is dropped
    silently and a mutant only it kills is reported ``SURVIVED``."""
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "check", MUTANT, "--tests", DESELECTED_TEST],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-2000:]
    assert "fail without any mutant" not in output, output[-2000:]
    assert re.search(r"not_in_mutation_run|deselected|left out|not run", output.splitlines()[-1]), output[
        -2000:
    ]
