"""pytest plugin of the mutation run (``-p tests.mutation.plugin``, set in setup.cfg's ``[mutmut]``).

Two rules, both so that a full run ends on 2 cores in a bounded time without a false kill:

* Deselected always: tests marked ``not_in_mutation_run`` (they run pytest or Airflow in processes of
  their own, which the run's environment breaks), and tests that need PostgreSQL unless the run names a
  server in ``IMAGESEARCH_TEST_POSTGRES_SERVER`` (scripts/mutation.py starts one): then each pytest
  session works in a database of its own on it (tests/support/postgres.py), so the two workers' tests
  share no table and no advisory lock. Tests that need the Airflow metadata DB (``airflow_db``: ``dag.test()`` runs)
  run, each process on its own copy of a DB migrated once (tests/support/private_db.py): mutmut runs two
  mutants at once in forks of one process, which share that process's Airflow home, and a ``dag.test()``
  in one must not race a DB reset in the other: a mutant must be killed only by a test that fails on its
  own behaviour.
* For one mutant (``MUTANT_UNDER_TEST`` names it): of the tests mutmut found to cover the mutated
  function, as many as fit in ``IMAGESEARCH_MUTATION_BUDGET`` seconds together (default 20; their
  durations from mutmut's stats run), taken across their files in turn (``within_budget``). A survivor
  costs at most the budget. A mutant only tests left out would kill counts as survived. The run remembers which test killed each mutant (``mutmut-killers.jsonl`` beside the
  stats, kept with the saved results): the tests that killed other mutants of the same function go
  first, since a test written about a function's behaviour tends to kill more than one of its mutants.

Whatever order mutmut passes the tests in (it keeps them in a set), they run in the order of the files
and of the tests in them, the order ``make test`` runs and mutmut's clean run checks: a test that fails
only after another one in some other order would otherwise kill a mutant it does not see.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest

from tests.support.postgres import SHARED_SERVER_ENV

_NEEDS_POSTGRES = {"postgres_uri"}
#: mutmut's own values of MUTANT_UNDER_TEST (stats, clean and forced-fail runs), not a mutant.
_NOT_A_MUTANT = {"", "stats", "fail", "list_all_tests", "mutant_generation"}
DEFAULT_BUDGET = 20.0
#: Functions whose behaviour only a test in a fresh process can see, and those tests: one called as its
#: module is imported (an operator parameter's default, read from Airflow's config as the core operators
#: read it), one run once per process (the triggers' preload of the async hook and anyio's backend, which
#: must happen before the event loop starts). mutmut's stats run credits such a call to whichever test
#: made it first, so a mutant of one would otherwise run against that test only; these run for it too,
#: whatever the budget (their child process imports the mutated module anew).
CHILD_PROCESS_TESTS = {
    "airflow_provider_imagesearch.operators.imagesearch.x__default_deferrable": [
        "tests/operators/test_operator_default_deferrable.py",
    ],
    "airflow_provider_imagesearch.triggers.imagesearch.x__load_hook_class": [
        "tests/triggers/test_trigger_loop_imports.py",
    ],
}
#: A test the stats run has not timed (new since): assumed this long.
UNKNOWN_DURATION = 1.0
#: One line per kill, ``{"function": ..., "mutant": ..., "test": ...}``, appended by the mutants' pytest runs.
KILLERS_FILE = "mutmut-killers.jsonl"
#: The run's root (``mutants/``), where the stats and the killers are kept.
_root = Path.cwd()


def _mutated_function(mutant: str) -> str:
    """``module.x_function`` of a mutant's name ``module.x_function__mutmut_7``."""
    return mutant.rpartition("__mutmut_")[0]


def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> None:
    mutant = os.environ.get("MUTANT_UNDER_TEST", "")
    if mutant in _NOT_A_MUTANT:
        return
    # pytest reads its test arguments from this list after the hook: extended in place, they are collected.
    # Only those still there: a test file renamed since would make pytest refuse to run any test.
    args.extend(
        test
        for test in CHILD_PROCESS_TESTS.get(_mutated_function(mutant), [])
        if test not in args and Path(test).exists()
    )


def _deselect(item: pytest.Item) -> bool:
    if item.get_closest_marker("not_in_mutation_run") is not None:
        return True
    if os.environ.get(SHARED_SERVER_ENV):
        return False
    if _NEEDS_POSTGRES & set(getattr(item, "fixturenames", ())):
        return True
    callspec = getattr(item, "callspec", None)
    return callspec is not None and "postgres" in callspec.id.split("-")


def pytest_configure(config: pytest.Config) -> None:
    from tests.support.private_db import TEMPLATE_ENV

    global _root
    _root = config.rootpath
    os.environ[TEMPLATE_ENV] = str(config.rootpath / ".mutation-airflow-db" / "template.db")
    (config.rootpath / ".mutation-airflow-db").mkdir(exist_ok=True)


def _durations(rootdir: Path) -> dict[str, float]:
    stats = rootdir / "mutmut-stats.json"
    if not stats.exists():
        return {}
    durations: dict[str, float] = json.loads(stats.read_text())["duration_by_test"]
    return durations


def within_budget(
    nodeids: list[str], durations: dict[str, float], budget: float, first: list[str] | None = None
) -> list[str]:
    """Of ``nodeids``, the tests that fit in ``budget`` seconds of recorded durations: those of ``first``
    that are among them (in its order), then the others taken across their files in turn: the fastest test
    of each file, then the second fastest of each, and so on, the quicker first within a round. A test
    that does not fit is passed over for a quicker one.

    Spread, not simply the fastest: every import test covers the engine, the plan and the ledger, and
    their fastest tests (argument refusals, one-row imports) never reach most of what those functions do.
    A test file is written about one behaviour, so one test of each file reaches more of it."""
    rank_in_file: dict[str, int] = {}
    taken_of_file: Counter[str] = Counter()
    for nodeid in sorted(nodeids, key=lambda n: (durations.get(n, UNKNOWN_DURATION), n)):
        test_file = nodeid.partition("::")[0]
        rank_in_file[nodeid] = taken_of_file[test_file]
        taken_of_file[test_file] += 1
    in_turn = sorted(nodeids, key=lambda n: (rank_in_file[n], durations.get(n, UNKNOWN_DURATION), n))
    given = set(nodeids)
    preferred = list(dict.fromkeys(n for n in first or [] if n in given))
    in_turn = preferred + [n for n in in_turn if n not in set(preferred)]
    kept: list[str] = []
    spent = 0.0
    for nodeid in in_turn:
        duration = durations.get(nodeid, UNKNOWN_DURATION)
        if spent + duration <= budget:
            kept.append(nodeid)
            spent += duration
    return kept


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    dropped = [item for item in items if _deselect(item)]
    kept = [item for item in items if not _deselect(item)]
    mode = os.environ.get("MUTANT_UNDER_TEST", "")
    budget = float(os.environ.get("IMAGESEARCH_MUTATION_BUDGET", DEFAULT_BUDGET))
    durations = _durations(config.rootpath) if mode not in ("stats", "list_all_tests") else {}
    if mode in ("", "fail"):
        # mutmut's clean run: a test slower than the budget alone never runs for a mutant either.
        dropped += [item for item in kept if durations.get(item.nodeid, 0.0) > budget]
        kept = [item for item in kept if durations.get(item.nodeid, 0.0) <= budget]
    elif mode not in _NOT_A_MUTANT:
        by_id = {item.nodeid: item for item in kept}
        always = CHILD_PROCESS_TESTS.get(_mutated_function(mode), [])
        chosen = within_budget(
            [n for n in by_id if not n.startswith(tuple(always))],
            durations,
            budget,
            first=killers_of(config.rootpath, _mutated_function(mode)),
        )
        chosen += [n for n in by_id if n.startswith(tuple(always))]
        dropped += [item for nodeid, item in by_id.items() if nodeid not in set(chosen)]
        kept = [by_id[nodeid] for nodeid in chosen]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = sorted(kept, key=_file_order)


def killers_of(rootdir: Path, function: str) -> list[str]:
    """The tests that killed mutants of ``function`` so far, those that killed the most of its mutants first
    (a kill ``check`` proved and the run found again counts once)."""
    path = rootdir / KILLERS_FILE
    if not path.exists():
        return []
    killed: dict[str, set[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            kill = json.loads(line)
        except ValueError:  # a line cut short by a killed worker
            continue
        if kill.get("function") == function:
            killed.setdefault(kill["test"], set()).add(kill.get("mutant", line))
    kills = Counter({test: len(mutants) for test, mutants in killed.items()})
    return [test for test, _ in kills.most_common()]


def _mutated_module_file(mutant: str) -> str:
    """``airflow_provider_imagesearch/imports/lock.py`` of ``airflow_provider_imagesearch.imports.lock.x...``."""
    module = _mutated_function(mutant).rpartition(".")[0]
    return module.replace(".", "/") + ".py"


#: A failure outside a test's own run (setup or teardown) whose traceback never enters the mutated module: the
#: environment failed (a server gone, a port taken), not the mutant. The session then ends SUSPICIOUS.
_outside_failures: list[str] = []
_kills: list[str] = []
#: mutmut's "suspicious" class: not a kill, and a resumed run tries the mutant again.
SUSPICIOUS = 35


def pytest_sessionstart(session: pytest.Session) -> None:
    _outside_failures.clear()
    _kills.clear()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    mode = os.environ.get("MUTANT_UNDER_TEST", "")
    if mode in _NOT_A_MUTANT or not report.failed:
        return
    if report.when != "call" and _mutated_module_file(mode) not in str(report.longrepr):
        _outside_failures.append(report.nodeid)
        return
    _kills.append(report.nodeid)
    line = json.dumps({"function": _mutated_function(mode), "mutant": mode, "test": report.nodeid}) + "\n"
    # One short append per kill: the two workers' lines do not interleave.
    with open(_root / KILLERS_FILE, "a", encoding="utf-8") as killers:
        killers.write(line)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _outside_failures and not _kills and exitstatus == pytest.ExitCode.TESTS_FAILED:
        session.exitstatus = SUSPICIOUS


def _file_order(item: pytest.Item) -> tuple[str, int, str]:
    path, line, _ = item.location
    return (path, line if line is not None else -1, item.nodeid)
