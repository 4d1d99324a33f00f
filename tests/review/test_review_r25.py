"""Review of issue 25's mutation run (branch ``mut``: private Airflow DB per worker, mypy over the mutants,
the report's two ratios). Each test FAILS on the reviewed code and is marked xfail(strict=True).

The mutation-run tests below generate mutants in a scratch copy and run mypy: they are skipped inside a
mutation run itself (``MUTANT_UNDER_TEST`` set), where they would only slow the stats run down.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(REPO / "scripts"))

import mutation  # noqa: E402

not_in_a_mutation_run = pytest.mark.skipif(
    bool(os.environ.get("MUTANT_UNDER_TEST")),
    reason="generates mutants and runs mypy: not inside a mutation run",
)


def _copy(names: list[str], into: Path) -> None:
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis", ".mypy_cache")
    for name in names:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, into / name, ignore=skip)
        else:
            shutil.copy2(source, into / name)


@not_in_a_mutation_run
@pytest.mark.timeout(900)
@pytest.mark.xfail(
    strict=True,
    reason="review: a mutant the project's mypy accepts is counted 'caught by mypy' (trampoline artefact)",
)
def test_a_mutant_the_projects_mypy_accepts_is_not_counted_as_caught_by_mypy(tmp_path: Path) -> None:
    """``Ledger.__init__`` with ``self.instance_name = None`` is a real, silent bug: the ledger then scopes
    its rows to ``instance_name IS NULL``. In the real code mypy accepts it (the attribute is then inferred
    as ``None`` and only compared in SQLAlchemy expressions), so `make lint` / CI would let it land. In the
    trampolined mutants/ file the ``__mutmut_orig`` copy assigns first and fixes the attribute's type as
    ``str``, so the mutation run reports this mutant "caught by mypy": counted as detected in the kill ratio
    and left out of the tests' ratio, although no check of the project would stop it."""
    ledger = "airflow_provider_imagesearch/imports/ledger.py"
    # 1. mutmut's own view: generate the ledger's mutants in a scratch copy, run setup.cfg's mypy step.
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    _copy(
        [
            "airflow_provider_imagesearch",
            "tests",
            "dags",
            "docs",
            "scripts",
            "README.md",
            "setup.cfg",
            "pyproject.toml",
        ],
        scratch,
    )
    probe = textwrap.dedent(
        f"""
        import json, sys
        sys.path.insert(0, "scripts")
        import mutation
        mutation._generate([{ledger!r}])
        from mutmut.mutation.file_mutation import filter_mutants_with_type_checker
        caught = filter_mutants_with_type_checker()
        print("CAUGHT=" + json.dumps({{
            name: mutation.changed_lines(mutation.diff_of(name, {ledger!r}))
            for name in caught if "xǁLedgerǁ__init__" in name
        }}))
        """
    )
    env = {**os.environ, "PATH": os.pathsep.join([str(BIN), os.environ.get("PATH", "")])}
    env.pop("MUTANT_UNDER_TEST", None)
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=scratch, env=env, capture_output=True, text=True, timeout=800
    )
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    caught: dict[str, list[str]] = json.loads(out.stdout.split("CAUGHT=", 1)[1].splitlines()[0])
    mutated = [
        name
        for name, lines in caught.items()
        if [line.strip() for line in lines]
        == ["-self.instance_name = instance_name", "+self.instance_name = None"]
        or [line[0] + line[1:].strip() for line in lines]
        == ["-self.instance_name = instance_name", "+self.instance_name = None"]
    ]
    # 2. The project's own mypy (make lint's configuration) on the real code with that one change.
    real = tmp_path / "real"
    real.mkdir()
    _copy(["airflow_provider_imagesearch", "dags", "benchmarks", "scripts", "pyproject.toml"], real)
    source = (real / ledger).read_text()
    assert source.count("self.instance_name = instance_name") == 1
    (real / ledger).write_text(
        source.replace("self.instance_name = instance_name", "self.instance_name = None")
    )
    lint = subprocess.run([str(BIN / "mypy")], cwd=real, capture_output=True, text=True, timeout=600)
    assert lint.returncode == 0, f"precondition: the project's mypy accepts the mutant\n{lint.stdout[-2000:]}"
    # The mutation run must not credit mypy with it.
    assert mutated == [], f"reported caught by mypy, yet `mypy` passes on it: {mutated}"


@pytest.mark.xfail(
    strict=True,
    reason="review: make mutation's 90% gate is met with mypy's catches while the tests kill 80%",
)
def test_the_gate_is_not_met_by_mypy_catches_when_the_tests_kill_only_80_percent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 25: "a kill ratio of at least 90% of non-equivalent mutants" so that the tests catch real bugs.
    In a full run about half the mutants are rejected by mypy (3,621 of the 8,385 this branch generates: 43%, so a 90% kill ratio needs the tests to kill only 82.5% of the rest), and
    ``report()`` compares (mypy + tests) / all with 90%: a run where the tests kill only 80% of the mutants
    mypy lets through still exits 0 and prints no warning. A user reads "kill ratio 90%" as the tests'."""
    mutants = (
        [mutation.Mutant(f"airflow_provider_imagesearch.retry.x_f__mutmut_{i}", "p", "caught by type check") for i in range(50)]
        + [mutation.Mutant(f"airflow_provider_imagesearch.retry.x_f__mutmut_{i}", "p", "killed") for i in range(50, 90)]
        + [mutation.Mutant(f"airflow_provider_imagesearch.retry.x_f__mutmut_{i}", "p", "survived") for i in range(90, 100)]
    )  # fmt: skip
    monkeypatch.chdir(tmp_path)  # report() chdirs to mutation.REPO; restored afterwards
    monkeypatch.setattr(mutation, "REPO", tmp_path)
    monkeypatch.setattr(mutation, "REPORT_DIR", tmp_path / "reports" / "mutation")
    monkeypatch.setattr(mutation, "load_results", lambda: mutants)
    monkeypatch.setattr(mutation, "load_equivalents", lambda: {})
    monkeypatch.setattr(mutation, "diff_of", lambda name, path: "-a\n+b")
    code = mutation.report()
    printed = capsys.readouterr()
    assert "| total | 100 | 50 | 40 | 10 | 0 | 0 | 0 | 90.0% | 80.0% |" in printed.out
    assert code != 0, "make mutation passes its 90% gate with tests that kill 80% of what mypy lets through"


@pytest.mark.xfail(
    strict=True, reason="review: docs/mutation-testing.rst still describes the run before this change"
)
def test_the_mutation_docs_describe_the_run_and_the_report_as_they_are() -> None:
    """A user reading docs/mutation-testing.rst is told the dag.test() tests are left out of the run (they
    now run, each worker on its own DB), that the report has a "killed" column and
    "kill ratio = killed / (killed + survived + no tests)" (it now prints "caught by mypy", "killed by
    tests", a kill ratio that counts mypy's catches, and a "tests' ratio"), and is advised to prefer direct
    calls because "the mutation run leaves dag.test() tests out"."""
    page = (REPO / "docs" / "mutation-testing.rst").read_text(encoding="utf-8")
    flat = " ".join(page.split())
    stale = [
        phrase
        for phrase in (
            "the mutation run leaves ``dag.test()`` tests out",
            "**kill ratio**: killed / (killed + survived + no tests)",
            "tests that need the Airflow metadata DB (the ``airflow_db`` fixture: ``dag.test()`` runs) or"
            " PostgreSQL are left out",
        )
        if phrase in flat
    ]
    missing = [
        phrase for phrase in ("caught by mypy", "tests' ratio", "type_check_command") if phrase not in flat
    ]
    assert (stale, missing) == ([], []), f"stale: {stale}; not documented: {missing}"
