"""A run stopped half-way still saves the verdicts it reached, and a verdict file cut short does not stop the
others being saved (found by review 7).

``make mutation``'s MUTATION_TIMEOUT (``timeout`` SIGTERMs the process group, which the script turns into
SystemExit) or a Ctrl-C stops the run while mutmut works; the verdicts mutmut wrote until then are saved to
reports/mutation/results.json.gz, so that the next run resumes from them. mutmut rewrites a source file's
``.meta`` in place after every mutant: a run SIGKILLed in that write leaves it cut short, and the other files'
verdicts are saved all the same. And ``check``, run by hand where PostgreSQL is not installed, runs the tests
that need no server instead of failing before any.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import signal
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
import mutation  # noqa: E402

pytestmark = pytest.mark.not_in_mutation_run


@pytest.mark.parametrize(
    "stop", [SystemExit(128 + signal.SIGTERM), KeyboardInterrupt()], ids=["sigterm", "ctrl-c"]
)
def test_a_run_stopped_half_way_saves_its_verdicts(
    stop: BaseException, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mutants = tmp_path / "mutants"
    (mutants / "airflow_provider_imagesearch").mkdir(parents=True)  # not a fresh checkout: no generation
    monkeypatch.setattr(mutation, "MUTANTS", mutants)
    monkeypatch.setattr(mutation, "_chdir_repo", lambda: None)
    monkeypatch.setattr(mutation, "_fresh_copies", lambda: None)
    monkeypatch.setattr(mutation, "_resume_results", lambda: None)
    monkeypatch.setattr(mutation, "_postgres_for_tests", contextlib.nullcontext)
    saved: list[bool] = []
    monkeypatch.setattr(mutation, "save_results", lambda *a, **k: saved.append(True) or 0)

    def mutmut_stopped(command: list[str], env: dict[str, str]) -> int:
        raise stop  # what _call does once mutmut, signalled with the script, has stopped

    monkeypatch.setattr(mutation, "_call", mutmut_stopped)
    with pytest.raises(type(stop)):
        mutation.run(2, [])
    assert saved, "the verdicts mutmut wrote before the stop were not saved to results.json.gz"


def test_save_results_keeps_the_other_files_when_one_meta_was_cut_short(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mutants = tmp_path / "mutants"
    good = mutants / "airflow_provider_imagesearch" / "retry.py.meta"
    cut = mutants / "airflow_provider_imagesearch" / "outcomes.py.meta"
    good.parent.mkdir(parents=True)
    good.write_text(json.dumps({"exit_code_by_key": {"m": 1}, "hash_by_function_name": {}}))
    cut.write_text(
        '{\n    "exit_code_by_key": {\n        "airflow_provider_imagesearch.outcomes.x'
    )  # SIGKILL mid-write
    monkeypatch.setattr(mutation, "MUTANTS", mutants)
    monkeypatch.setattr(mutation, "_chdir_repo", lambda: None)
    monkeypatch.setattr(
        "mutmut.utils.file_utils.walk_mutatable_files",
        lambda: iter(
            [Path("airflow_provider_imagesearch/retry.py"), Path("airflow_provider_imagesearch/outcomes.py")]
        ),
    )
    target = tmp_path / "results.json.gz"
    monkeypatch.setattr(mutation, "REPO", tmp_path)
    code = mutation.save_results(target)
    assert code == 0
    saved = json.loads(gzip.decompress(target.read_bytes()))
    assert {source: data["exit_code_by_key"] for source, data in saved["files"].items()} == {
        "airflow_provider_imagesearch/retry.py": {"m": 1}
    }


def test_the_tests_need_no_postgresql_server_when_none_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """``check`` run by hand on a machine without PostgreSQL: the tests run without the shared server (the
    plugin then leaves out those that need one) instead of the check failing before any test."""
    from tests.support import postgres

    monkeypatch.delenv(postgres.SHARED_SERVER_ENV, raising=False)
    monkeypatch.setattr(postgres, "server_bindir", lambda: None)
    with mutation._postgres_for_tests():
        assert postgres.SHARED_SERVER_ENV not in os.environ


def test_a_second_run_on_the_checkout_is_refused_and_leaves_the_first_ones_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fcntl

    mutants = tmp_path / "mutants"
    (mutants / "tests").mkdir(parents=True)  # the first run's copy of the tests, in use by its workers
    monkeypatch.setattr(mutation, "MUTANTS", mutants)
    monkeypatch.setattr(mutation, "_chdir_repo", lambda: None)
    with (mutants / ".run.lock").open("a+") as first:
        fcntl.flock(first, fcntl.LOCK_EX | fcntl.LOCK_NB)
        first.write("pid 4242")
        first.flush()
        with pytest.raises(SystemExit, match=r"another mutation run \(pid 4242\)"):
            mutation.run(2, [])
    assert (mutants / "tests").is_dir()
