"""A run scoped to a few mutants (found by review 9b): it saves the other verdicts it was resumed from, not
"not checked", and a glob over mutant names reaches mutmut as the names it selects.

``make mutation MUTATION_SCOPE=...`` on a fresh clone resumes from ``reports/mutation/results.json.gz``: the
survivors it puts back as unchecked (to run again) and the mutants it did not reach used to be saved as not
checked, so the file lost what earlier runs had found (754 survivors became 0 after a 5-mutant run). And
mutmut picks a mutant's tests by its function's name, which a glob such as ``f__mutmut_*`` never matches:
given the glob, its clean run took every test of the selection instead of the scope's.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import mutation

from tests.mutation.test_results_resume import clone_with_is_permanent_edited

MODULE = "airflow_provider_imagesearch/outcomes.py"
GLOB = "airflow_provider_imagesearch.outcomes.x_missing_message__mutmut_*"
DRIVER = """
import contextlib, json, sys
sys.path.insert(0, "scripts")
import mutation as m
m._chdir_repo()
step = sys.argv[1]
if step == "run":
    calls = []
    m._call = lambda command, env: calls.append(command) or 3
    m._postgres_for_tests = contextlib.nullcontext
    m.save_results = lambda: 0
    code = m.run(2, [{glob!r}])
    print(json.dumps({{"code": code, "command": calls[0]}}))
    sys.exit(0)
if step.startswith("resume"):
    m._resume_results()
m._generate([{module!r}])
if step == "resume-noted":
    m._keep_noted_survivors()
if step.startswith("key "):
    name = step[4:]
    print(json.dumps([m.function_of(name), m.diff_key(m.diff_of(name, {module!r}))]))
    sys.exit(0)
if step == "select":
    print(json.dumps(m._selected([{glob!r}])))
    sys.exit(0)
meta = json.loads((m.MUTANTS / ({module!r} + ".meta")).read_text())
print(json.dumps(meta["exit_code_by_key"]))
"""


def _python(checkout: Path, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, *args], cwd=checkout, capture_output=True, text=True, timeout=300, check=False
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    return out.stdout


def _driver(checkout: Path, step: str) -> object:
    output = _python(checkout, "-c", DRIVER.format(module=MODULE, glob=GLOB), step)
    return json.loads(output.strip().splitlines()[-1])


def _saved(checkout: Path) -> dict[str, int | None]:
    payload = json.loads(
        mutation.gzip.decompress((checkout / "reports/mutation/results.json.gz").read_bytes())
    )
    codes: dict[str, int | None] = payload["files"][MODULE]["exit_code_by_key"]
    return codes


@pytest.fixture
def checkout() -> Iterator[Path]:
    with mutation._sample_checkout() as scratch:
        yield scratch


def test_a_resumed_run_that_checks_nothing_saves_every_earlier_verdict_of_unchanged_code(
    checkout: Path,
) -> None:
    codes = _driver(checkout, "generate")
    assert isinstance(codes, dict)
    assert codes
    survivor = next(name for name in sorted(codes) if ".x_missing_message__mutmut_" in name)
    meta_path = checkout / "mutants" / (MODULE + ".meta")
    meta = json.loads(meta_path.read_text())
    meta["exit_code_by_key"] = {**dict.fromkeys(codes, 1), survivor: 0}
    meta_path.write_text(json.dumps(meta))
    _python(checkout, "scripts/mutation.py", "save-results")

    # A fresh clone of code with is_permanent edited: resumed, nothing run, saved again.
    clone_with_is_permanent_edited(checkout)
    resumed = _driver(checkout, "resume")
    assert isinstance(resumed, dict)
    assert resumed[survivor] is None  # put back to run again
    said = _python(checkout, "scripts/mutation.py", "save-results")

    saved = _saved(checkout)
    changed = {name for name in saved if ".x_is_permanent__mutmut_" in name}
    assert changed
    assert saved[survivor] == 0, "the survivor this run did not reach is still a survivor"
    assert all(saved[name] is None for name in changed), "an edited function's old verdicts are not kept"
    assert all(code == 1 for name, code in saved.items() if name not in changed | {survivor})
    assert (
        f"{len(saved) - len(changed) - 1 + 1} of them kept from the file" in said
        or "kept from the file" in said
    )


def test_a_glob_over_mutant_names_reaches_mutmut_as_the_names_it_selects(checkout: Path) -> None:
    codes = _driver(checkout, "generate")
    assert isinstance(codes, dict)
    expected = sorted(name for name in codes if ".x_missing_message__mutmut_" in name)
    assert expected
    assert sorted(_driver(checkout, "select")) == expected  # type: ignore[arg-type]
    ran = _driver(checkout, "run")
    assert isinstance(ran, dict)
    assert ran["code"] == 3
    command = ran["command"]
    assert command[1:4] == ["-m", "mutmut", "run"]
    assert sorted(command[command.index("--max-children") + 2 :]) == expected


def test_a_fresh_clone_runs_again_the_survivors_but_those_noted_equivalent(checkout: Path) -> None:
    """A noted survivor survives any test by definition: a fresh clone's run keeps its verdict rather than
    spend its time budget on it; the other survivors run again."""
    codes = _driver(checkout, "generate")
    assert isinstance(codes, dict)
    noted, other = sorted(name for name in codes if ".x_missing_message__mutmut_" in name)[:2]
    meta_path = checkout / "mutants" / (MODULE + ".meta")
    meta = json.loads(meta_path.read_text())
    meta["exit_code_by_key"] = {**dict.fromkeys(codes, 1), noted: 0, other: 0}
    meta_path.write_text(json.dumps(meta))
    _python(checkout, "scripts/mutation.py", "save-results")
    function, key = _driver(checkout, f"key {noted}")  # type: ignore[misc]
    with (checkout / "tests/mutation/equivalent.txt").open("a", encoding="utf-8") as notes:
        notes.write(f"\n{function} {key} a note of this test\n")

    shutil.rmtree(checkout / "mutants")
    resumed = _driver(checkout, "resume-noted")
    assert isinstance(resumed, dict)
    assert resumed[noted] == 0, "the noted survivor keeps its verdict"
    assert resumed[other] is None, "a survivor no note calls equivalent runs again"
    assert all(code == 1 for name, code in resumed.items() if name not in (noted, other))


def test_the_report_names_each_uncommitted_file_in_full(monkeypatch: pytest.MonkeyPatch) -> None:
    """The report's provenance line wrote "ests/mutation/equivalent.txt": the git output was stripped, and
    with it the first line's status column, before the column was cut off."""
    answers = {
        "status": "?? tests/new_test.py",
        "diff": "tests/mutation/equivalent.txt\nairflow_provider_imagesearch/auth.py",
        "rev-parse": "abc",
        "show": "2026-12-04",
    }
    monkeypatch.setattr(mutation, "_git", lambda *args: answers[args[0]])
    assert mutation.provenance().uncommitted == [
        "airflow_provider_imagesearch/auth.py",
        "tests/mutation/equivalent.txt",
        "tests/new_test.py",
    ]
