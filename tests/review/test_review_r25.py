"""Review of issue 25's mutation run (branch ``mut``: private Airflow DB per worker, mypy over the mutants,
the report's two ratios). Each test failed on the reviewed code; they pass since the fixes.

The mypy test copies the repository (benchmarks/ included, which a mutation run's copy lacks) and runs
mypy in a process of its own: marked ``not_in_mutation_run``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(REPO / "scripts"))

import mutation  # noqa: E402


def _copy(names: list[str], into: Path) -> None:
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis", ".mypy_cache")
    for name in names:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, into / name, ignore=skip)
        else:
            shutil.copy2(source, into / name)


#: (file, the line as written, the mutant's line): mutants of an ``__init__`` that the mutation run's mypy
#: step rejects (there the ``__mutmut_orig`` copy of ``__init__`` assigns first and fixes the attribute's
#: type). Unannotated, the project's own mypy accepted them: the run credited mypy with bugs CI would let
#: land, and ran no test for them (``ImportLockedError.holders = None`` survived every test). The fix
#: annotates the attributes, so that `make lint` rejects them too.
FALSELY_CAUGHT = [
    ("airflow_provider_imagesearch/imports/ledger.py", "self.instance_name: str = instance_name"),
    ("airflow_provider_imagesearch/imports/ledger.py", "self.run_id: str = run_id"),
    ("airflow_provider_imagesearch/imports/ledger.py", "self.api: str = api"),
    ("airflow_provider_imagesearch/imports/lock.py", "self.holders: list[Holder] = holders"),
    ("airflow_provider_imagesearch/operators/imagesearch.py", "self.missing: str = missing"),
    ("airflow_provider_imagesearch/operators/import_images.py", "self.ledger_conn_id: str = ledger_conn_id"),
    ("airflow_provider_imagesearch/operators/import_images.py", "self.ledger_table: str = ledger_table"),
    ("airflow_provider_imagesearch/operators/import_images.py", "self.max_failed: int = max_failed"),
    ("airflow_provider_imagesearch/operators/import_images.py", "self.prune: bool = prune"),
    ("airflow_provider_imagesearch/sensors/imagesearch.py", "self.deferrable: bool = deferrable"),
    ("airflow_provider_imagesearch/triggers/imagesearch.py", "self.imagesearch_conn_id: str = imagesearch_conn_id"),
]  # fmt: skip


@pytest.mark.not_in_mutation_run
@pytest.mark.timeout(600)
def test_the_projects_mypy_rejects_the_mutants_the_mutation_run_credits_to_mypy(tmp_path: Path) -> None:
    """Each of those attributes set to ``None`` instead: the project's mypy (`make lint`'s configuration,
    which CI runs) must reject every one, on the mutated line, so that "caught by mypy" in the report
    means CI would catch it."""
    real = tmp_path / "real"
    real.mkdir()
    _copy(["airflow_provider_imagesearch", "dags", "benchmarks", "scripts", "pyproject.toml"], real)
    mutated: dict[tuple[str, str], list[int]] = {}
    for path, line in FALSELY_CAUGHT:
        mutant = line.rpartition(" = ")[0] + " = None"
        lines = (real / path).read_text().splitlines()
        numbers = [n for n, text in enumerate(lines, 1) if text.strip() == line]
        assert numbers, (path, line)
        for n in numbers:
            lines[n - 1] = lines[n - 1].replace(line, mutant)
        (real / path).write_text("\n".join(lines) + "\n")
        mutated[(path, line)] = numbers
    lint = subprocess.run([str(BIN / "mypy")], cwd=real, capture_output=True, text=True, timeout=600)
    errors = {tuple(out.split(":", 2)[:2]) for out in lint.stdout.splitlines() if ": error:" in out}
    accepted = [
        (path, line)
        for (path, line), numbers in mutated.items()
        if any((path, str(n)) not in errors for n in numbers)
    ]
    assert accepted == [], f"the project's mypy accepts these attributes set to None:\n{lint.stdout[-2000:]}"


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
