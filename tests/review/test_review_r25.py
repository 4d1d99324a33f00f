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
from typing import Any

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


#: (file, the line as written, the mutant's line): mutants of an ``__init__`` that the project's own mypy
#: accepts, yet the mutation run reports "caught by mypy".
FALSELY_CAUGHT = [
    # A silent data bug: the ledger's rows are then scoped to ``instance_name IS NULL``.
    (
        "airflow_provider_imagesearch/imports/ledger.py",
        "self.instance_name = instance_name",
        "self.instance_name = None",
    ),
    # A survivor: no test reads ImportLockedError.holders (tests/imports/test_concurrency.py and
    # tests/review/test_review_round19b.py, the tests of the mutation run that raise it, all pass on this
    # mutant; test_review_round19.py's PostgreSQL one does not read it either).
    ("airflow_provider_imagesearch/imports/lock.py", "self.holders = holders", "self.holders = None"),
]


@not_in_a_mutation_run
@pytest.mark.timeout(900)
@pytest.mark.xfail(
    strict=True,
    reason="review: a mutant the project's mypy accepts is counted 'caught by mypy' (trampoline artefact)",
)
def test_a_mutant_the_projects_mypy_accepts_is_not_counted_as_caught_by_mypy(tmp_path: Path) -> None:
    """``self.instance_name = None`` in ``Ledger.__init__`` or ``self.holders = None`` in
    ``ImportLockedError.__init__``: in the real code mypy accepts either (the attribute is then inferred as
    ``None`` and only used where any type goes), so `make lint` / CI would let it land. In the trampolined
    mutants/ file the ``__mutmut_orig`` copy of ``__init__`` assigns first and fixes the attribute's type,
    so the mutant's ``None`` is an "Incompatible types in assignment" and the run reports the mutant
    "caught by mypy": counted as detected in the kill ratio, left out of the tests' ratio, and no test is
    run for it. The holders mutant survives every test that raises the error: a survivor the report hides.
    (Over all 8,385 mutants this review found 11 such: every one an unannotated attribute set in
    ``__init__``; see the review report.)"""
    files = sorted({path for path, _, _ in FALSELY_CAUGHT})
    # 1. mutmut's own view: generate those modules' mutants in a scratch copy, run setup.cfg's mypy step.
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
        files = {files!r}
        mutation._generate(files)
        from mutmut.mutation.file_mutation import filter_mutants_with_type_checker
        caught = filter_mutants_with_type_checker()
        found = {{}}
        for name in caught:
            path = mutation.module_of(name).join(["airflow_provider_imagesearch/", ""])
            if path in files and "__init__" in name:
                found[name] = [path, mutation.changed_lines(mutation.diff_of(name, path))]
        print("CAUGHT=" + json.dumps(found))
        """
    )
    env = {**os.environ, "PATH": os.pathsep.join([str(BIN), os.environ.get("PATH", "")])}
    env.pop("MUTANT_UNDER_TEST", None)
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=scratch, env=env, capture_output=True, text=True, timeout=800
    )
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    caught: dict[str, list[Any]] = json.loads(out.stdout.split("CAUGHT=", 1)[1].splitlines()[0])
    changes = {(path, tuple(line[0] + line[1:].strip() for line in lines)) for path, lines in caught.values()}
    reported = [
        (path, line) for path, line, mutant in FALSELY_CAUGHT if (path, ("-" + line, "+" + mutant)) in changes
    ]
    # 2. The project's own mypy (make lint's configuration) on the real code with those changes.
    real = tmp_path / "real"
    real.mkdir()
    _copy(["airflow_provider_imagesearch", "dags", "benchmarks", "scripts", "pyproject.toml"], real)
    for path, line, mutant in FALSELY_CAUGHT:
        source = (real / path).read_text()
        assert source.count(line) == 1, (path, line)
        (real / path).write_text(source.replace(line, mutant))
    lint = subprocess.run([str(BIN / "mypy")], cwd=real, capture_output=True, text=True, timeout=600)
    assert lint.returncode == 0, (
        f"precondition: the project's mypy accepts the mutants\n{lint.stdout[-2000:]}"
    )
    # The mutation run must not credit mypy with them.
    assert reported == [], f"reported caught by mypy, yet `mypy` passes on them: {reported}"


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
