"""A mutation run resumes on another checkout from the verdicts the last one saved with its report.

``scripts/mutation.py save-results`` keeps mutmut's verdicts in ``reports/mutation/results.json.gz``; a
run on a checkout with no ``mutants/`` (a fresh clone) puts them back before mutmut generates its
mutants. mutmut itself then keeps a verdict only while the mutated function's code is unchanged: here,
after a run has judged every mutant of ``outcomes.py``, a clone whose ``is_permanent`` was edited gets
the other functions' kills back and has ``is_permanent``'s mutants, and the survivor, to run again.
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

MODULE = "airflow_provider_imagesearch/outcomes.py"
DRIVER = """
import json, sys
sys.path.insert(0, "scripts")
import mutation as m
m._chdir_repo()
if sys.argv[1] == "generate":
    m._generate([{module!r}])
else:
    m._resume_results()
    m._generate([{module!r}])
meta = json.loads((m.MUTANTS / ({module!r} + ".meta")).read_text())
print(json.dumps(meta["exit_code_by_key"]))
"""


def _driver(checkout: Path, step: str) -> dict[str, int | None]:
    out = subprocess.run(
        [sys.executable, "-c", DRIVER.format(module=MODULE), step],
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    codes: dict[str, int | None] = json.loads(out.stdout.strip().splitlines()[-1])
    return codes


def _save(checkout: Path) -> str:
    saved = subprocess.run(
        [sys.executable, "scripts/mutation.py", "save-results"],
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert saved.returncode == 0, saved.stderr[-2000:]
    return saved.stdout


def clone_with_is_permanent_edited(checkout: Path) -> None:
    """Make ``checkout`` a fresh clone (no ``mutants/``) of code whose ``outcomes.is_permanent`` was edited."""
    shutil.rmtree(checkout / "mutants")
    source = checkout / MODULE
    text = source.read_text()
    edited = text.replace('    """True for errors that retrying the task cannot fix."""', '    """Edited."""')
    assert edited != text
    source.write_text(edited)


@pytest.fixture
def checkout() -> Iterator[Path]:
    with mutation._sample_checkout() as scratch:
        yield scratch


def test_a_fresh_clone_resumes_every_verdict_but_those_of_an_edited_function(checkout: Path) -> None:
    codes = _driver(checkout, "generate")
    assert codes, "no mutants generated"
    # A run that judged them all: every mutant killed (mutmut's exit code 1) but one survivor (0).
    survivor = next(name for name in sorted(codes) if ".x_missing_message__mutmut_" in name)
    meta_path = checkout / "mutants" / (MODULE + ".meta")
    meta = json.loads(meta_path.read_text())
    meta["exit_code_by_key"] = {**dict.fromkeys(codes, 1), survivor: 0}
    meta_path.write_text(json.dumps(meta))
    # mutmut's map of which test covers what, saved too: the resumed run need not collect it again.
    stats = {"tests_by_mangled_function_name": {"x": ["tests/t.py::test"]}, "duration_by_test": {}}
    (checkout / "mutants" / "mutmut-stats.json").write_text(json.dumps(stats))
    # And which test killed which function's mutants (twice for one): the resumed run tries those first.
    kill = json.dumps({"function": "m.x_f", "test": "tests/t.py::test"})
    killers = [kill, json.dumps({"function": "m.x_g", "test": "tests/u.py::test"}), kill]
    (checkout / "mutants" / "mutmut-killers.jsonl").write_text("".join(f"{k}\n" for k in killers))
    assert f"{len(codes)} of {len(codes)} verdicts saved" in _save(checkout)

    # The clone: no mutants/, the saved results, and one function edited since.
    clone_with_is_permanent_edited(checkout)
    resumed = _driver(checkout, "resume")

    assert set(resumed) == set(codes)
    changed = {name for name in resumed if ".x_is_permanent__mutmut_" in name}
    assert changed, "is_permanent has no mutants"
    assert all(resumed[name] is None for name in changed), "an edited function's verdicts must not be kept"
    assert resumed[survivor] is None, "a survivor is run again: tests written since may kill it"
    assert all(code == 1 for name, code in resumed.items() if name not in changed | {survivor})
    assert (checkout / "mutants" / "resumed-from.json").exists()
    assert json.loads((checkout / "mutants" / "mutmut-stats.json").read_text()) == stats
    assert sorted((checkout / "mutants" / "mutmut-killers.jsonl").read_text().splitlines()) == sorted(killers)


def test_a_checkout_with_results_of_its_own_keeps_them(checkout: Path) -> None:
    codes = _driver(checkout, "generate")
    meta_path = checkout / "mutants" / (MODULE + ".meta")
    meta = json.loads(meta_path.read_text())
    meta["exit_code_by_key"] = dict.fromkeys(codes, 1)
    meta_path.write_text(json.dumps(meta))
    _save(checkout)
    # Its own later results (all survived) are newer than the saved ones: a run does not replace them.
    meta["exit_code_by_key"] = dict.fromkeys(codes, 0)
    meta_path.write_text(json.dumps(meta))
    assert set(_driver(checkout, "resume").values()) == {0}
    assert not (checkout / "mutants" / "resumed-from.json").exists()
