"""Mutation testing of the correctness-critical modules: the full run, its report, and CI's sample.

``make mutation`` runs ``python scripts/mutation.py run``: mutmut (configured in setup.cfg's ``[mutmut]``)
mutates the modules listed there inside ``mutants/``, runs the tests that cover each mutated function,
and this script writes ``reports/mutation/report.md`` and ``report.json``: per module the mutants,
killed, survived, equivalent and the kill ratio. It fails when the ratio of killed to non-equivalent
mutants is under 90%.

``make mutation-sample`` runs ``python scripts/mutation.py sample``: the fixed mutants of
``tests/mutation/sample.txt``, each against the tests recorded beside it, with no full run first
(a few minutes). It fails when a sampled mutant survives.

A mutant is named by mutmut (``module.x_function__mutmut_7``, ``module.xǁClassǁmethod__mutmut_7``), but
the number moves when the function is edited, so the notes of ``tests/mutation/equivalent.txt`` and the
sample name a mutant by its function and a hash of the lines it changes (``diff_key``), which stays
put while that line does. See docs/mutation-testing.rst.
"""

from __future__ import annotations

import argparse
import fnmatch
import gzip
import hashlib
import json
import os
import random
import re
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
MUTANTS = REPO / "mutants"
REPORT_DIR = REPO / "reports" / "mutation"
EQUIVALENT_FILE = REPO / "tests" / "mutation" / "equivalent.txt"
SAMPLE_FILE = REPO / "tests" / "mutation" / "sample.txt"
#: mutmut's verdicts of the last recorded run (its mutants/**/*.meta, without timings), kept with the report.
RESULTS_FILE = REPORT_DIR / "results.json.gz"
#: Written into mutants/ when a run starts from RESULTS_FILE: the report names where its verdicts came from.
RESUMED_MARK = MUTANTS / "resumed-from.json"
_KEPT_META = ("exit_code_by_key", "hash_by_function_name", "type_check_error_by_key")
MIN_RATIO = 0.90

#: mutmut's exit-code classes, grouped as this report counts them. A timeout (the mutant made a test
#: hang until mutmut stopped it) and a crash of the test process are detected mutants, so killed.
KILLED = {"killed", "timeout", "segfault"}
#: mypy rejected the mutant (setup.cfg's type_check_command), so no test ran: detected, since `make test`
#: runs mypy (tests/test_packaging.py), but counted in a column of its own.
CAUGHT_BY_MYPY = "caught by type check"
NOT_KILLED = {"survived", "no tests", "suspicious"}
#: mutmut calls these a timeout, but 255 (-1) is what its fork server's worker exits with when pytest could
#: not run the tests at all (a usage error: a test file or id not found): nothing ran, so nothing was killed.
NOT_RUN_CODES = {255, -1}


def status_of(code: int | None) -> str:
    """mutmut's class of an exit code, but a run of no test at all is suspicious, not a timeout."""
    from mutmut.stats import status_by_exit_code

    return "suspicious" if code in NOT_RUN_CODES else str(status_by_exit_code[code])


def _mutmut_env(mutants: Path = MUTANTS) -> dict[str, str]:
    # Child processes a test starts (tests/reliability/_import_child.py, ...) import the mutated copy too.
    # setup.cfg's type_check_command runs `python -m mypy`: this interpreter's, which sees the project's
    # dependencies.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return {**os.environ, "PYTHONPATH": str(mutants), "PATH": path}


@contextmanager
def _postgres_for_tests() -> Iterator[None]:
    """One PostgreSQL server for every pytest session started in the block, named in the environment
    that :func:`_mutmut_env` hands on: each session works in a database of its own on it
    (tests/support/postgres.py), so the tests that need PostgreSQL run for mutants too, without a server
    start per mutant."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from tests.support.postgres import SHARED_SERVER_ENV, running_postgres, server_bindir

    if os.environ.get(SHARED_SERVER_ENV):  # the caller's server
        yield
        return
    if server_bindir() is None:
        # ``check`` run by hand on a machine without PostgreSQL (``make mutation`` installs it first).
        print(
            "PostgreSQL not found (scripts/ensure-postgres.sh installs it): the tests that need it are left out",
            file=sys.stderr,
        )
        yield
        return
    with running_postgres() as server:
        os.environ[SHARED_SERVER_ENV] = server.uri
        try:
            yield
        finally:
            os.environ.pop(SHARED_SERVER_ENV, None)


def _stop_on_sigterm() -> None:
    """SIGTERM (``make``'s ``timeout`` signals the whole process group when a run overruns) ends this
    script as an exception would, so that ``finally`` blocks run: mutmut gets its time to stop and keep its
    results (:func:`_call`) and the verdicts are saved. The PostgreSQL server and the scratch copy have a
    reaper each for the case where no ``finally`` runs (SIGKILL)."""
    import signal

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL it when this script dies. A SIGKILL of this script alone (its
    group is signalled otherwise) sets its PostgreSQL server's reaper going, which stops the server while
    an orphaned mutmut would go on running tests against it and record their refused connections as
    kills. Killed with it, mutmut records nothing more (the verdicts are kept by mutmut's own process)."""
    import ctypes
    import signal

    parent = os.getppid()
    if ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL) != 0:  # 1: PR_SET_PDEATHSIG
        os._exit(126)
    if os.getppid() != parent:  # the script died before the call: no signal would come
        os.kill(os.getpid(), signal.SIGKILL)


def _call(command: list[str], env: dict[str, str]) -> int:
    """``subprocess.call``, except that the child runs in a process group of its own, which goes with it:
    when this script is stopped the child gets SIGTERM and time to stop by itself (mutmut keeps the
    results it has) before the group is killed; when this script is SIGKILLed the child dies with it
    (:func:`_die_with_parent`) and a watchdog kills what is left of its group (mutmut's type checker, its
    fork server's workers), which the kernel's parent-death signal does not reach."""
    import signal

    linux = sys.platform.startswith("linux")
    watchdog = _reaper()
    child = subprocess.Popen(
        command, env=env, start_new_session=True, preexec_fn=_die_with_parent if linux else None
    )
    watchdog.tell("group", child.pid)
    try:
        return child.wait()
    except BaseException:
        _signal_group(child.pid, signal.SIGTERM)  # in a session of its own, it missed this script's signal
        try:
            # Less than the 15 s ``make mutation``'s ``timeout -k 15`` allows before it kills this script.
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        raise
    finally:
        _signal_group(child.pid, signal.SIGKILL)  # whatever of the group outlived its leader
        watchdog.release()


def _signal_group(pid: int, sig: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _reaper() -> Any:
    """A watchdog (tests/support/reaper.py) for what this script starts."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from tests.support.reaper import Reaper

    return Reaper()


def source_path(mutant: str) -> str:
    """``airflow_provider_imagesearch.imports.engine.x_f__mutmut_3`` -> ``airflow_provider_imagesearch/imports/engine.py``."""
    return "airflow_provider_imagesearch/" + module_of(mutant)


def _chdir_repo() -> None:
    # mutmut reads setup.cfg and writes mutants/ relative to the working directory.
    os.chdir(REPO)


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


@dataclass
class Provenance:
    """The code results are of: the commit, and the files that differ from it (tests included)."""

    commit: str
    commit_date: str
    uncommitted: list[str]

    def describe(self) -> str:
        changes = (
            f"uncommitted changes to {', '.join(self.uncommitted)}"
            if self.uncommitted
            else "no uncommitted changes"
        )
        return f"commit `{self.commit}` of {self.commit_date}, {changes}"


def provenance() -> Provenance:
    # Names only: _git strips its output, and with it the first line's leading status column.
    status = _git(
        "status", "--porcelain", "--no-renames", "--", "airflow_provider_imagesearch", "tests", "dags"
    )
    changed = _git("diff", "--name-only", "HEAD", "--", "airflow_provider_imagesearch", "tests", "dags")
    untracked = [line[3:] for line in status.splitlines() if line.startswith("??")]
    return Provenance(
        commit=_git("rev-parse", "HEAD") or "unknown",
        commit_date=_git("show", "-s", "--format=%cI", "HEAD") or "unknown",
        uncommitted=sorted({*changed.splitlines(), *untracked} - {""}),
    )


def _fresh_copies() -> None:
    """Drop mutmut's copies of tests/ and dags/ so that a test file deleted or renamed since the last run
    is not collected from mutants/ (mutmut copies them over the old copy, never deleting)."""
    import shutil

    for name in ("tests", "dags"):
        shutil.rmtree(MUTANTS / name, ignore_errors=True)


def module_of(mutant: str) -> str:
    """``airflow_provider_imagesearch.imports.engine.xǁImportEngineǁrun__mutmut_3`` -> ``imports/engine.py``."""
    from mutmut.utils.format_utils import get_module_from_key

    module = get_module_from_key(mutant.partition("__mutmut_")[0])
    return module.removeprefix("airflow_provider_imagesearch.").replace(".", "/") + ".py"


def function_of(mutant: str) -> str:
    return mutant.partition("__mutmut_")[0]


def diff_of(mutant: str, path: str) -> str:
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    return str(get_diff_for_mutant(mutant, path=path))


def diff_key(diff: str) -> str:
    """A hash of the lines a mutant removes and adds, whitespace aside: stable while they are."""
    changed = [
        line[0] + line[1:].strip()
        for line in diff.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    return hashlib.sha256("\n".join(changed).encode()).hexdigest()[:10]


def changed_lines(diff: str) -> list[str]:
    return [line for line in diff.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---"))]


# --- equivalence notes -------------------------------------------------------------------------------


def load_equivalents(path: Path = EQUIVALENT_FILE) -> dict[tuple[str, str], str]:
    """``function diff_key reason`` per line (``#`` comments): mutants no observable behaviour tells apart."""
    notes: dict[tuple[str, str], str] = {}
    if not path.exists():
        return notes
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 2)
        if len(parts) < 3:
            raise SystemExit(f"{path}:{number}: expected 'function diff_key reason', got {raw!r}")
        notes[(parts[0], parts[1])] = parts[2]
    return notes


# --- results -----------------------------------------------------------------------------------------


@dataclass
class Mutant:
    name: str
    path: str
    status: str
    diff: str = ""
    note: str | None = None
    #: mypy's error, for a mutant caught by mypy.
    type_error: str | None = None

    @property
    def module(self) -> str:
        return module_of(self.name)


@dataclass
class ModuleRow:
    module: str
    mutants: int = 0
    killed: int = 0
    survived: int = 0
    no_tests: int = 0
    timeout: int = 0
    caught_by_mypy: int = 0
    equivalent: int = 0
    not_checked: int = 0
    survivors: list[Mutant] = field(default_factory=list)
    caught: list[Mutant] = field(default_factory=list)

    @property
    def detected(self) -> int:
        return self.killed + self.caught_by_mypy

    @property
    def ratio(self) -> float | None:
        judged = self.detected + self.survived + self.no_tests
        return None if judged == 0 else self.detected / judged

    @property
    def test_ratio(self) -> float | None:
        """The tests' own share: of the mutants mypy lets through, those a test kills."""
        judged = self.killed + self.survived + self.no_tests
        return None if judged == 0 else self.killed / judged


def load_results() -> list[Mutant]:
    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.utils.file_utils import walk_mutatable_files

    mutants = []
    for path in walk_mutatable_files():
        data = SourceFileMutationData(path=path)
        data.load()
        errors = getattr(data, "type_check_error_by_key", {})
        for name, code in data.exit_code_by_key.items():
            mutants.append(
                Mutant(name=name, path=str(path), status=status_of(code), type_error=errors.get(name))
            )
    return mutants


def tabulate(mutants: list[Mutant], equivalents: dict[tuple[str, str], str]) -> dict[str, ModuleRow]:
    rows: dict[str, ModuleRow] = {}
    for mutant in mutants:
        row = rows.setdefault(mutant.module, ModuleRow(mutant.module))
        row.mutants += 1
        if mutant.status in KILLED:
            row.killed += 1
            row.timeout += mutant.status == "timeout"
            continue
        if mutant.status == CAUGHT_BY_MYPY:
            row.caught_by_mypy += 1
            row.caught.append(mutant)
            continue
        if mutant.status == "not checked":
            row.not_checked += 1
            continue
        mutant.diff = diff_of(mutant.name, mutant.path)
        mutant.note = equivalents.get((function_of(mutant.name), diff_key(mutant.diff)))
        if mutant.note is not None:
            row.equivalent += 1
        elif mutant.status == "no tests":
            row.no_tests += 1
            row.survivors.append(mutant)
        else:
            row.survived += 1
            row.survivors.append(mutant)
    return dict(sorted(rows.items()))


def total_row(rows: dict[str, ModuleRow]) -> ModuleRow:
    total = ModuleRow("total")
    for row in rows.values():
        for name in (
            "mutants", "killed", "caught_by_mypy", "survived", "no_tests", "timeout", "equivalent",
            "not_checked",
        ):  # fmt: skip
            setattr(total, name, getattr(total, name) + getattr(row, name))
    return total


def _ratio(row: ModuleRow) -> str:
    return "-" if row.ratio is None else f"{100 * row.ratio:.1f}%"


def _test_ratio(row: ModuleRow) -> str:
    return "-" if row.test_ratio is None else f"{100 * row.test_ratio:.1f}%"


def render_table(rows: dict[str, ModuleRow]) -> list[str]:
    header = (
        "module",
        "mutants",
        "caught by mypy",
        "killed by tests",
        "survived",
        "no tests",
        "equivalent",
        "not checked",
        "kill ratio",
        "tests' ratio",
    )
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in [*rows.values(), total_row(rows)]:
        cells = (
            row.module,
            row.mutants,
            row.caught_by_mypy,
            row.killed,
            row.survived,
            row.no_tests,
            row.equivalent,
            row.not_checked,
            _ratio(row),
            _test_ratio(row),
        )
        lines.append("| " + " | ".join(str(cell) for cell in cells) + " |")
    return lines


def write_report(
    rows: dict[str, ModuleRow], seconds: float | None, scope: list[str] | None = None
) -> ModuleRow:
    total = total_row(rows)
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    code = provenance()
    budget = os.environ.get("IMAGESEARCH_MUTATION_BUDGET")
    command = (
        (f"IMAGESEARCH_MUTATION_BUDGET={budget} " if budget else "")
        + "make mutation"
        + (f" MUTATION_SCOPE='{' '.join(scope)}'" if scope else "")
    )
    md = [
        "# Mutation report",
        "",
        f"Written {when} (mutmut {_mutmut_version()}; setup.cfg `[mutmut]`).",
        f"Command: `{command}`" + (" (only these mutants)." if scope else " (every mutant)."),
        f"Code: {code.describe()}.",
        *_resumed_line(),
        "Kill ratio = (caught by mypy + killed by tests) / (those + survived + no tests): equivalent and"
        " not-checked mutants are left out; a timeout counts as killed. Tests' ratio = killed by tests /"
        " (killed by tests + survived + no tests): the share of the mutants mypy lets through that a test"
        " kills.",
        "",
    ]
    if seconds is not None:
        md += [f"Run time: {seconds / 60:.1f} min.", ""]
    md += render_table(rows)
    md += ["", "## Survivors", ""]
    survivors = [m for row in rows.values() for m in row.survivors]
    if not survivors:
        md.append("None.")
    for mutant in survivors:
        md += [
            f"### `{mutant.name}` ({mutant.status})",
            "",
            f"Equivalence key: `{function_of(mutant.name)} {diff_key(mutant.diff)}`",
            "",
            "```diff",
            *changed_lines(mutant.diff),
            "```",
            "",
        ]
    caught = [m for row in rows.values() for m in row.caught]
    md += ["## Caught by mypy", ""]
    md += [f"- `{m.name}`: {m.type_error}" for m in caught] or ["None."]
    md += ["", "## Equivalent (tests/mutation/equivalent.txt)", ""]
    (REPORT_DIR / "report.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    payload = {
        "written": when,
        "command": command,
        "commit": code.commit,
        "commit_date": code.commit_date,
        "uncommitted": code.uncommitted,
        "seconds": seconds,
        "modules": {
            name: {
                "mutants": row.mutants,
                "killed": row.killed,
                "caught_by_mypy": row.caught_by_mypy,
                "survived": row.survived,
                "no_tests": row.no_tests,
                "timeout": row.timeout,
                "equivalent": row.equivalent,
                "not_checked": row.not_checked,
                "kill_ratio": row.ratio,
                "tests_ratio": row.test_ratio,
                "survivors": [m.name for m in row.survivors],
            }
            for name, row in rows.items()
        },
        "total": {
            "mutants": total.mutants,
            "killed": total.killed,
            "caught_by_mypy": total.caught_by_mypy,
            "survived": total.survived,
            "no_tests": total.no_tests,
            "equivalent": total.equivalent,
            "not_checked": total.not_checked,
            "kill_ratio": total.ratio,
            "tests_ratio": total.test_ratio,
        },
    }
    (REPORT_DIR / "report.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return total


def _resumed_line() -> list[str]:
    if not RESUMED_MARK.exists():
        return []
    commit = json.loads(RESUMED_MARK.read_text(encoding="utf-8"))["commit"]
    return [
        f"Resumed from `{RESULTS_FILE.relative_to(REPO)}` (saved at {commit[:7]}): its verdicts were kept for"
        " the functions whose code is unchanged since, the other mutants were run again."
    ]


def _mutmut_version() -> str:
    from importlib.metadata import version

    return version("mutmut")


def report(seconds: float | None = None, min_ratio: float = MIN_RATIO, scope: list[str] | None = None) -> int:
    """Tabulate the results in mutants/; ``scope`` (mutmut names or globs) limits it to those mutants."""
    _chdir_repo()
    equivalents = load_equivalents()
    mutants = load_results()
    if scope:
        mutants = [m for m in mutants if any(fnmatch.fnmatchcase(m.name, pattern) for pattern in scope)]
    if not mutants:
        print("no mutation results in mutants/: run `make mutation` first", file=sys.stderr)
        return 2
    rows = tabulate(mutants, equivalents)
    total = write_report(rows, seconds, scope)
    # The equivalent mutants' notes, appended to the markdown report.
    with (REPORT_DIR / "report.md").open("a", encoding="utf-8") as out:
        for mutant in mutants:
            if mutant.note is not None:
                out.write(f"- `{mutant.name}`: {mutant.note}\n")
    print("\n".join(render_table(rows)))
    print(f"\nreport: {(REPORT_DIR / 'report.md').relative_to(REPO)}")
    if total.not_checked:
        print(f"{total.not_checked} mutants not checked: the run was interrupted", file=sys.stderr)
        return 1
    # The gate is the tests' own ratio: mypy's catches only spare the run the mutants that could not land.
    if total.test_ratio is not None and total.test_ratio < min_ratio:
        print(
            f"the tests kill {_test_ratio(total)} of the mutants mypy lets through: under"
            f" {100 * min_ratio:.0f}%",
            file=sys.stderr,
        )
        return 1
    return 0


def _results_selected(names: list[str]) -> Iterator[tuple[Any, list[str]]]:
    """Each source file's mutmut results (``mutants/``) with the mutants ``names`` (mutmut names or globs
    over them) select in it, for the files where they select some."""
    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.utils.file_utils import walk_mutatable_files

    if not MUTANTS.exists():
        return
    for path in walk_mutatable_files():
        data = SourceFileMutationData(path=path)
        try:
            data.load()
        except FileNotFoundError:
            continue
        chosen = [m for m in data.exit_code_by_key if any(fnmatch.fnmatchcase(m, n) for n in names)]
        if chosen:
            yield data, chosen


def _selected(names: list[str]) -> list[str]:
    """The mutants ``names`` select, by name.

    mutmut chooses a mutant's tests by its function's name, which a glob over mutant names
    (``f__mutmut_*``) never matches: given one, its clean run would take every test of the selection
    (20 minutes here) instead of the tests of the mutants chosen. Globs are given to it expanded."""
    return [mutant for _, chosen in _results_selected(names) for mutant in chosen]


def _forget(names: list[str]) -> None:
    """Clear the last results of the mutants ``names`` selects. mutmut runs every named mutant again but
    writes each result only when it has one: a run stopped half-way would report the others' old results
    as this run's. Cleared, they are counted as not checked."""
    for data, chosen in _results_selected(names):
        for mutant in chosen:
            data.exit_code_by_key[mutant] = None
        data.save()


def _plugin() -> Any:
    """tests/mutation/plugin.py, the run's pytest plugin: its file names and exit codes are this script's too."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from tests.mutation import plugin

    return plugin


def _killers_file() -> Path:
    """Where the run's pytest plugin records which test killed a mutant of which function."""
    return MUTANTS / _plugin().KILLERS_FILE


def _remember_kills(lines: list[str]) -> None:
    """Add kills (the plugin's lines) to those this checkout's run knows: saved ones on resuming, and those
    ``check`` proved, so that the run tries a test written for a function first on its other mutants."""
    if lines:
        MUTANTS.mkdir(exist_ok=True)
        with _killers_file().open("a", encoding="utf-8") as killers:
            killers.write("".join(f"{line}\n" for line in lines))


def save_results(path: Path = RESULTS_FILE) -> int:
    """Keep mutmut's verdicts (``mutants/**/*.meta``: each mutant's result and each function's hash) in
    ``path``, so that a run on another checkout of this code resumes where this one stopped. A full run
    takes hours on 2 cores: longer than one sitting of the machine it was started on."""
    from mutmut.utils.file_utils import walk_mutatable_files

    _chdir_repo()
    files: dict[str, dict[str, Any]] = {}
    for source in walk_mutatable_files():
        meta = MUTANTS / (str(source) + ".meta")
        if meta.exists():
            try:
                data = json.loads(meta.read_text(encoding="utf-8"))
            except ValueError:  # mutmut rewrites it in place: a run killed in that write leaves it cut short
                print(f"{meta.relative_to(REPO)} is cut short: its verdicts are not saved", file=sys.stderr)
                continue
            files[str(source)] = {key: data.get(key, {}) for key in _KEPT_META}
    if not files:
        print("no mutation results in mutants/: nothing to save", file=sys.stderr)
        return 2
    kept = _keep_earlier_verdicts(files, path)
    payload: dict[str, Any] = {"mutmut": _mutmut_version(), "commit": provenance().commit, "files": files}
    stats = MUTANTS / "mutmut-stats.json"
    if stats.exists():
        # Which tests cover which function, and their durations: a resumed run then skips the stats run
        # (about 20 minutes here) and collects stats only for tests that are new.
        payload["stats"] = json.loads(stats.read_text(encoding="utf-8"))
    killers = _killers_file()
    if killers.exists():
        # Which test killed which function's mutants: a resumed run tries those tests first.
        payload["killers"] = sorted(killers.read_text(encoding="utf-8").splitlines())
    path.parent.mkdir(parents=True, exist_ok=True)
    # mtime=0: the same results give the same bytes, so git sees a change only when a verdict changes.
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
        out.write(json.dumps(payload, sort_keys=True).encode())
    codes = [c for f in files.values() for c in f["exit_code_by_key"].values()]
    checked = sum(code is not None for code in codes)
    print(
        f"{checked} of {len(codes)} verdicts saved in {path.relative_to(REPO)}"
        + (f" ({kept} of them kept from the file: mutants this run did not check)" if kept else "")
    )
    return 0


def _unchanged(mutant: str, hashes: dict[str, str], hashes_then: dict[str, str]) -> bool:
    """Whether the function ``mutant`` mutates has the same code now (``hashes``, mutmut's
    ``hash_by_function_name``) as when a verdict was saved (``hashes_then``)."""
    function = mutant.rsplit("__mutmut_", 1)[0].rsplit(".", 1)[-1]
    return hashes.get(function) is not None and hashes[function] == hashes_then.get(function)


def _keep_earlier_verdicts(files: dict[str, dict[str, Any]], path: Path) -> int:
    """Into ``files`` (this checkout's verdicts), the verdict ``path`` holds for each mutant this run has
    none for, while its function's code is unchanged; the number kept.

    A resumed run holds no verdict for the survivors it runs again, nor for the mutants a
    ``MUTATION_SCOPE`` cleared: a run scoped to a few mutants, or stopped before it reached them, would
    otherwise save them as not checked, and the file would lose what earlier runs found."""
    if not path.exists():
        return 0
    try:
        earlier = json.loads(gzip.decompress(path.read_bytes()))
    except (OSError, ValueError, EOFError):
        return 0
    if earlier.get("mutmut") != _mutmut_version():
        return 0
    kept = 0
    for source, data in files.items():
        before = earlier.get("files", {}).get(source)
        if not before:
            continue
        hashes, hashes_before = data.get("hash_by_function_name", {}), before.get("hash_by_function_name", {})
        codes, codes_before = data["exit_code_by_key"], before.get("exit_code_by_key", {})
        errors, errors_before = (
            data.get("type_check_error_by_key", {}),
            before.get("type_check_error_by_key", {}),
        )
        for name, code in codes.items():
            if (
                code is None
                and codes_before.get(name) is not None
                and _unchanged(name, hashes, hashes_before)
            ):
                codes[name] = codes_before[name]
                if name in errors_before:
                    errors[name] = errors_before[name]
                kept += 1
    return kept


def _resume_results(path: Path = RESULTS_FILE) -> None:
    """On a checkout with no results of its own (a fresh clone), put the recorded verdicts where mutmut
    keeps them. mutmut keeps a verdict only while the mutated function's code is unchanged (it compares a
    hash of each function) and runs the others. A survivor is run again too: tests written since may kill
    it, and mutmut would not run them against a mutant it has a verdict for."""
    if not path.exists() or any(MUTANTS.glob("**/*.meta")):
        return
    payload = json.loads(gzip.decompress(path.read_bytes()))
    if payload["mutmut"] != _mutmut_version():
        print(f"not resumed from {path.relative_to(REPO)}: it was written by mutmut {payload['mutmut']}")
        return
    for source, data in payload["files"].items():
        data["exit_code_by_key"] = {
            name: None if code is None or status_of(code) in NOT_KILLED else code
            for name, code in data["exit_code_by_key"].items()
        }
        meta = MUTANTS / (source + ".meta")
        meta.parent.mkdir(parents=True, exist_ok=True)
        meta.write_text(
            json.dumps({**data, "durations_by_key": {}, "estimated_durations_by_key": {}}), encoding="utf-8"
        )
    if "stats" in payload and not (MUTANTS / "mutmut-stats.json").exists():
        (MUTANTS / "mutmut-stats.json").write_text(json.dumps(payload["stats"]), encoding="utf-8")
    if "killers" in payload:
        _remember_kills(payload["killers"])
    RESUMED_MARK.write_text(json.dumps({"commit": payload["commit"]}), encoding="utf-8")
    checked = sum(c is not None for f in payload["files"].values() for c in f["exit_code_by_key"].values())
    print(
        f"resuming from {path.relative_to(REPO)} (saved at {payload['commit'][:7]}): {checked} verdicts of"
        " killed or mypy-caught mutants, kept for each function whose code is unchanged"
    )


def _keep_noted_survivors(path: Path = RESULTS_FILE) -> int:
    """After a resume and the mutants' generation, give back their verdict to the saved survivors a note
    calls equivalent, while their function's code is unchanged; the number given back.

    The resume sets every survivor to be run again, for the tests written since; but no test kills a
    mutant that no behaviour tells apart, and each would spend its whole time budget (a third of the
    survivors: about an hour of a run on 2 cores) surviving again."""
    from mutmut.mutation.data import SourceFileMutationData

    if not RESUMED_MARK.exists() or not path.exists():
        return 0
    payload = json.loads(gzip.decompress(path.read_bytes()))
    equivalents = load_equivalents()
    kept = 0
    for source, saved in payload["files"].items():
        data = SourceFileMutationData(path=Path(source))
        try:
            data.load()
        except FileNotFoundError:
            continue
        hashes, hashes_saved = data.hash_by_function_name, saved.get("hash_by_function_name", {})
        noted = []
        for name, code in saved["exit_code_by_key"].items():
            if (
                code is None
                or status_of(code) != "survived"
                or data.exit_code_by_key.get(name, 0) is not None
            ):
                continue
            if not _unchanged(name, hashes, hashes_saved):
                continue
            if (function_of(name), diff_key(diff_of(name, source))) in equivalents:
                noted.append((name, code))
        for name, code in noted:
            data.exit_code_by_key[name] = code
        if noted:
            data.save()
            kept += len(noted)
    if kept:
        print(f"{kept} survivors noted equivalent keep their verdict: no test can kill them")
    return kept


@contextmanager
def _sole_run() -> Iterator[None]:
    """Hold ``mutants/.run.lock`` for the whole run: a second run on the checkout would delete the first
    one's copy of the tests under its workers and write the same verdict files."""
    import fcntl

    MUTANTS.mkdir(exist_ok=True)
    with (MUTANTS / ".run.lock").open("a+", encoding="utf-8") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            raise SystemExit(
                f"another mutation run ({lock.read().strip() or 'pid unknown'}) is using {MUTANTS}: "
                "wait for it to end, or stop it"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()}")
        lock.flush()
        yield


def run(max_children: int, names: list[str]) -> int:
    _chdir_repo()
    with _sole_run():
        return _run(max_children, names)


def _run(max_children: int, names: list[str]) -> int:
    _fresh_copies()
    fresh = not (MUTANTS / "airflow_provider_imagesearch").exists()
    _resume_results()
    if fresh:
        # mutmut 3.8.1 with a type_check_command, started without a mutants/ of an earlier run, fails its
        # stats run ("No module named 'tests'"); started on one, it runs. Generated here first, as the
        # sample does.
        from mutmut.utils.file_utils import walk_mutatable_files

        _generate(str(path) for path in walk_mutatable_files())
        _keep_noted_survivors()
    if names:
        _forget(names)
        if any(set(name) & set("*?[") for name in names):
            names = _selected(names) or names
    started = time.monotonic()
    try:
        with _postgres_for_tests():
            code = _call(
                [sys.executable, "-m", "mutmut", "run", "--max-children", str(max_children), *names],
                env=_mutmut_env(),
            )
    finally:
        save_results()  # also after a run stopped half-way (its timeout, Ctrl-C): the next one resumes from it
    if code != 0:
        print(f"mutmut run exited {code}", file=sys.stderr)
        return code
    return report(seconds=time.monotonic() - started, scope=names)


# --- CI's sample -------------------------------------------------------------------------------------


@dataclass
class SampleEntry:
    function: str
    key: str
    tests: list[str]


def load_sample(path: Path = SAMPLE_FILE) -> list[SampleEntry]:
    entries = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        function, key, tests = line.split(None, 2)
        entries.append(SampleEntry(function, key, tests.split()))
    return entries


def _generate(paths: Iterable[str]) -> None:
    """Write ./mutants/ with the mutated copies of ``paths`` (mutmut's own generation step)."""
    import io
    from contextlib import redirect_stdout

    from mutmut.__main__ import create_file_mutants
    from mutmut.utils.file_utils import copy_also_copy_files, copy_src_dir

    Path("mutants").mkdir(exist_ok=True)
    # mutmut prints each file it copies or mutates: kept out of what the commands print (`key`'s
    # lines go into tests/mutation/equivalent.txt), shown only when the generation fails.
    chatter = io.StringIO()
    with redirect_stdout(chatter):
        copy_src_dir()
        copy_also_copy_files()
        for path in sorted(set(paths)):
            result = create_file_mutants(Path(path))
            if result.error:
                print(chatter.getvalue()[-3000:], file=sys.stderr)
                raise result.error


def _mutated(paths: set[str]) -> set[str]:
    """Those of ``paths`` that exist and setup.cfg's ``[mutmut]`` mutates: mutmut has mutants of no
    other (and fails to generate them for a file that is not there)."""
    from mutmut.utils.file_utils import walk_mutatable_files

    return paths & {str(path) for path in walk_mutatable_files()}


def _current_mutants(names: Iterable[str]) -> dict[str, str]:
    """Of ``names``, those that are mutants of the code in the working directory (a scratch checkout),
    each with its source file: the mutants of their modules are generated first. A name whose module
    does not exist or is not mutated (setup.cfg's ``only_mutate``) is none."""
    from mutmut.mutation.data import SourceFileMutationData

    paths = _mutated({source_path(name) for name in names})
    _generate(paths)
    found: dict[str, str] = {}
    for path in paths:
        data = SourceFileMutationData(path=Path(path))
        data.load()
        found.update(dict.fromkeys(data.exit_code_by_key, path))
    return {name: found[name] for name in names if name in found}


def _say_unknown(name: str) -> None:
    from mutmut.configuration import config

    path = source_path(name)
    if not Path(path).exists():
        why = f"{path} does not exist in this checkout"
    elif not config().should_mutate(path):
        why = f"{path} is not mutated (setup.cfg's only_mutate)"
    else:
        why = "this checkout's code has no such mutant (numbers move when a function is edited)"
    print(f"unknown  {name}: {why}", flush=True)


PACKAGE = "airflow_provider_imagesearch"
#: The package and what setup.cfg's also_copy names: mutmut copies them from a checkout into mutants/.
CHECKOUT_FOLDERS = (PACKAGE, "tests", "dags", "docs", "scripts")


@contextmanager
def _sample_checkout(folders: Iterable[str] = CHECKOUT_FOLDERS) -> Iterator[Path]:
    """A scratch copy of ``folders`` and the config for the block, where the sample makes its own
    mutants/: what it runs is this checkout's code, whatever an earlier full run left in ./mutants/
    (mutmut never refreshes a copied file that is not mutated), and it leaves that run's results alone.

    Removed after the block, and by a reaper (tests/support/reaper.py) should this process be killed
    first (SIGKILL, ``timeout -k``), when no ``finally`` runs: a copy of the checkout with its mutants
    would otherwise stay in the temporary folder for every such kill."""
    import shutil
    import tempfile

    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    try:
        from tests.support.reaper import Reaper
    except ImportError:  # a checkout of the package and scripts only (``key`` needs no tests)
        Reaper = None  # type: ignore[assignment,misc]

    scratch = Path(tempfile.mkdtemp(prefix="imagesearch-mutation-sample-"))
    reaper = Reaper() if Reaper is not None else None
    try:
        if reaper is not None:
            reaper.tell("rmtree", scratch)
        skip = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis")
        for name in folders:
            shutil.copytree(REPO / name, scratch / name, ignore=skip)
        for name in ("setup.cfg", "pyproject.toml", "README.md"):
            shutil.copy2(REPO / name, scratch / name)
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if reaper is not None:
            reaper.release()


def _mutants_of(function: str) -> dict[str, str]:
    """The current mutants of one function: diff_key -> mutant name."""
    from mutmut.mutation.data import SourceFileMutationData

    module = function.rpartition(".")[0]
    path = module.replace(".", "/") + ".py"
    data = SourceFileMutationData(path=path)
    data.load()
    found = {}
    for name in data.exit_code_by_key:
        if function_of(name) == function:
            found[diff_key(diff_of(name, path))] = name
    return found


def _pytest(tests: list[str], mutant: str, timeout: int = 600, mutants: Path = MUTANTS) -> int:
    return _pytest_output(tests, mutant, timeout, mutants)[0]


def _tests_env(mutants: Path, mutant: str) -> dict[str, str]:
    # check and the sample name their tests: all of them run, whatever the plugin's time budget.
    return {**_mutmut_env(mutants), "MUTANT_UNDER_TEST": mutant, "IMAGESEARCH_MUTATION_BUDGET": "1e9"}


def _pytest_output(
    tests: list[str], mutant: str, timeout: int = 600, mutants: Path = MUTANTS
) -> tuple[int, str]:
    """pytest's exit code and output for ``tests`` against ``mutant`` ("" for none) in ``mutants``."""
    command = [
        sys.executable, "-m", "pytest", "-x", "-q", "--no-header", "-p", "no:cacheprovider",
        "-p", "tests.mutation.plugin", "--timeout=120", "-W", "ignore", *tests,
    ]  # fmt: skip
    try:
        result = subprocess.run(
            command,
            cwd=mutants,
            env=_tests_env(mutants, mutant),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as stopped:
        partial = stopped.stdout.decode(errors="replace") if isinstance(stopped.stdout, bytes) else ""
        return TIMED_OUT, partial + f"\nstopped after {timeout} s"
    return result.returncode, result.stdout


#: pytest's "usage error" and "no tests collected": the tests did not run, so they killed nothing.
NOT_RUN = {4, 5}
#: What :func:`_pytest_output` returns for tests it stopped (``timeout``'s own code; pytest's are 0-5).
TIMED_OUT = 124
#: Seconds the unmutated tests of ``check`` and the sample get.
CONTROL_TIMEOUT = 600


def _control(tests: list[str], mutants: Path, what: str) -> float | None:
    """The control run: ``tests`` on the unmutated code, so that a failure against a mutant is the
    mutant's. Their duration in seconds, or None, said why, when they do not pass."""
    started = time.monotonic()
    code, output = _pytest_output(tests, mutant="", timeout=CONTROL_TIMEOUT, mutants=mutants)
    seconds = time.monotonic() - started
    left_out = re.search(r"(\d+) deselected", output)
    if left_out:
        print(
            f"{left_out[1]} of the named tests never run for a mutant (marked not_in_mutation_run):"
            " they are left out here too"
        )
    if code == 0:
        return seconds
    print("\n".join(output.splitlines()[-60:]), file=sys.stderr)
    if code in NOT_RUN:
        why = "none of the named tests ran: fix that first"
    elif code == TIMED_OUT:  # too slow, or the machine too loaded: no test failed
        why = f"{what} took longer than {CONTROL_TIMEOUT} s without any mutant: name fewer or faster tests"
    else:
        why = f"{what} fail without any mutant: fix that first"
    print(why)
    return None


def verdict(code: int) -> tuple[str, str]:
    """What pytest's exit ``code`` on a mutant says: ``killed`` or ``SURVIVED``, and a note why."""
    if code == 0:
        return "SURVIVED", ""
    if code in NOT_RUN:
        return "SURVIVED", f" (pytest exit {code}: the tests did not run)"
    if code == _plugin().SUSPICIOUS:
        return "SURVIVED", " (a setup or teardown error outside the mutated module: not the mutant's doing)"
    return "killed", ""


#: How a named test stands in the mutation run: it runs, the plugin leaves it out, or it is gone.
RUNS, LEFT_OUT, MISSING = "runs", "left out", "missing"

#: ``pytest --collect-only`` that also prints, after the tests that would run, each test the mutation
#: plugin deselects (pytest lists only the former).
_LISTING = """
import sys
import pytest

class Deselected:
    def __init__(self):
        self.ids = []
    def pytest_deselected(self, items):
        self.ids += [item.nodeid for item in items]

deselected = Deselected()
code = pytest.main(sys.argv[1:], plugins=[deselected])
print("\\n".join("deselected " + nodeid for nodeid in deselected.ids))
sys.exit(code)
"""


def _listed(files: list[str], mutants: Path) -> tuple[set[str], set[str]]:
    """The tests of ``files`` that a mutant's run runs, and those it leaves out (node ids)."""
    command = [
        sys.executable, "-c", _LISTING, "--collect-only", "-q", "-p", "no:cacheprovider",
        "-p", "tests.mutation.plugin", *files,
    ]  # fmt: skip
    listing = subprocess.run(
        command,
        cwd=mutants,
        env=_tests_env(mutants, mutant=""),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    lines = [line.strip() for line in listing.stdout.splitlines()]
    left_out = {line.removeprefix("deselected ") for line in lines if line.startswith("deselected ")}
    runs = {line for line in lines if "::" in line and not line.startswith("deselected ")}
    if not runs and not left_out:
        print(listing.stdout[-3000:], file=sys.stderr)
        raise SystemExit("the sample's test files could not be listed (pytest --collect-only above)")
    return runs, left_out


def _standing(named: list[str], mutants: Path) -> dict[str, str]:
    """How each of the ``named`` tests stands, listed as a mutant's run collects them. A test renamed or
    removed, or left out, is printed and not run: pytest would stop the whole sample on a missing one, and
    a mutant against only left-out tests runs none (pytest exit 5), which says nothing of the mutant."""
    # Listed by file, and only the files there are: a missing id or file would stop the whole listing
    # (and pytest given no file at all would collect the whole suite).
    files = sorted(
        {path for path in (test.partition("::")[0] for test in named) if (mutants / path).is_file()}
    )
    runs, left_out = _listed(files, mutants) if files else (set(), set())
    standing = {}
    for test in named:
        # A test function named without its parameters runs every parametrized case.
        if test in runs or test in {nodeid.partition("[")[0] for nodeid in runs}:
            standing[test] = RUNS
        elif test in left_out or test in {nodeid.partition("[")[0] for nodeid in left_out}:
            standing[test] = LEFT_OUT
            print(
                f"left-out test {test}: never runs for a mutant (tests/mutation/plugin.py: marked"
                " not_in_mutation_run), left out here too"
            )
        else:
            standing[test] = MISSING
            print(f"missing test {test}: renamed or removed since the sample was drawn")
    return standing


def _no_test_runs(tests: list[str], standing: dict[str, str]) -> str:
    """Why a sampled mutant none of whose ``tests`` runs is stale."""
    if all(standing[test] == MISSING for test in tests):
        return "none of its tests exists any more"
    if all(standing[test] == LEFT_OUT for test in tests):
        return "all its tests are left out of a mutant's run (marked not_in_mutation_run)"
    return "none of its tests runs for a mutant (removed, or marked not_in_mutation_run)"


def sample() -> int:
    _chdir_repo()
    entries = load_sample()
    equivalents = load_equivalents()
    started = time.monotonic()
    with _sample_checkout() as scratch:
        try:
            os.chdir(scratch)
            with _postgres_for_tests():
                return _run_sample(entries, equivalents, scratch / "mutants", started)
        finally:
            os.chdir(REPO)


def _run_sample(
    entries: list[SampleEntry], equivalents: dict[tuple[str, str], str], mutants: Path, started: float
) -> int:
    # A sampled function's module removed or moved since has no mutants: its entries are stale below.
    generated = _mutated({source_path(entry.function) for entry in entries})
    _generate(generated)
    standing = _standing(sorted({test for entry in entries for test in entry.tests}), mutants)
    runnable = [[test for test in entry.tests if standing[test] == RUNS] for entry in entries]
    all_tests = sorted({test for tests in runnable for test in tests})
    # With no test left every entry is stale, below; pytest given no test would run the whole suite.
    if all_tests and _control(all_tests, mutants, "the sample's tests") is None:
        return 1
    survived, stale, killed = [], [], 0
    for entry, tests in zip(entries, runnable, strict=True):
        current = _mutants_of(entry.function)
        name = current.get(entry.key)
        if name is None or not tests:
            stale.append(entry)
            if source_path(entry.function) not in generated:
                why = f"{source_path(entry.function)} does not exist or is not mutated any more"
            elif name is None:
                why = "the mutated line changed"
            else:
                why = _no_test_runs(entry.tests, standing)
            print(f"stale  {entry.function} {entry.key}: {why}")
            continue
        if (entry.function, entry.key) in equivalents:
            print(f"equivalent {name}")
            continue
        said, why = verdict(_pytest(tests, mutant=name, mutants=mutants))
        print(f"{said:8} {name}{why}")
        if said == "killed":
            killed += 1
        else:
            survived.append(name)
    print(
        f"\nsample: {killed} killed, {len(survived)} survived, {len(stale)} stale of {len(entries)}"
        f" in {time.monotonic() - started:.0f} s"
    )
    if survived:
        print("a sampled mutant survived: a test that killed it no longer does", file=sys.stderr)
        return 1
    if len(stale) * 2 > len(entries):
        print(
            "more than half the sample is stale: rebuild it (scripts/mutation.py build-sample)",
            file=sys.stderr,
        )
        return 1
    return 0


def build_sample(size: int, seed: int, budget: float) -> int:
    """Draw ``size`` killed mutants (seeded, every module at least once) from the last full run."""
    _chdir_repo()
    with _postgres_for_tests():  # as in the run and the sample: PostgreSQL tests are candidates too
        return _build_sample(size, seed, budget)


def _build_sample(size: int, seed: int, budget: float) -> int:
    stats = json.loads((MUTANTS / "mutmut-stats.json").read_text())
    tests_by_function: dict[str, list[str]] = stats["tests_by_mangled_function_name"]
    duration: dict[str, float] = stats["duration_by_test"]
    killed = [m for m in load_results() if m.status == "killed"]
    by_module: dict[str, list[Mutant]] = defaultdict(list)
    for mutant in killed:
        by_module[mutant.module].append(mutant)
    rng = random.Random(seed)
    order: list[Mutant] = []
    pools = {module: rng.sample(ms, len(ms)) for module, ms in sorted(by_module.items())}
    while any(pools.values()) and len(order) < 4 * size:
        for pool in pools.values():
            if pool:
                order.append(pool.pop())
    lines = [
        "# CI's mutation sample (make mutation-sample): function, diff_key, the tests to run.",
        f"# Drawn by scripts/mutation.py build-sample --size {size} --seed {seed} on {datetime.now(UTC):%Y-%m-%d}"
        f" from the killed mutants in mutants/ (code at commit {provenance().commit[:12]}); each checked killed"
        " by its tests.",
    ]
    chosen = 0
    modules_seen: Counter[str] = Counter()
    for mutant in order:
        if chosen >= size:
            break
        tests = sorted(
            # sample.txt separates node ids by whitespace: one that holds a space cannot be listed
            (
                t
                for t in tests_by_function.get(function_of(mutant.name), [])
                if not any(c.isspace() for c in t)
            ),
            key=lambda t: duration.get(t, 0.0),
        )
        picked: list[str] = []
        spent = 0.0
        for test in tests:
            if spent + duration.get(test, 0.0) > budget and picked:
                break
            picked.append(test)
            spent += duration.get(test, 0.0)
        if not picked or _pytest(picked, mutant=mutant.name) in {0, *NOT_RUN}:
            continue  # only the slow tests kill it: not for a quick sample
        key = diff_key(diff_of(mutant.name, mutant.path))
        lines.append(f"{function_of(mutant.name)} {key} {' '.join(picked)}")
        chosen += 1
        modules_seen[mutant.module] += 1
        print(f"{chosen:3} {mutant.name} ({len(picked)} tests, {spent:.1f} s)")
    SAMPLE_FILE.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{chosen} mutants from {len(modules_seen)} modules -> {SAMPLE_FILE.relative_to(REPO)}")
    return 0


def check(names: list[str], tests: list[str]) -> int:
    """Run ``tests`` against each of the mutants ``names`` in a scratch checkout: which of them the tests
    kill. How a new test is shown to kill the survivors it was written for, without a full run."""
    _chdir_repo()
    started = time.monotonic()
    survived: list[str] = []
    with _sample_checkout() as scratch:
        try:
            os.chdir(scratch)
            known = _current_mutants(names)
            unknown = [name for name in names if name not in known]
            for name in unknown:
                _say_unknown(name)
            if not known:  # the tests would say nothing: not run
                print(f"\nno mutant to check: {len(unknown)} unknown")
                return 1
            mutants = scratch / "mutants"
            with _postgres_for_tests():
                control_seconds = _control(tests, mutants, "the tests")
                if control_seconds is None:
                    return 1
                # A mutant that makes the tests hang is killed when they run this long: well past the
                # control's own time, so that load alone does not stop them.
                limit = max(600, int(5 * control_seconds))
                for name in names:
                    if name in unknown:
                        continue
                    said, why = verdict(_pytest(tests, mutant=name, timeout=limit, mutants=mutants))
                    print(f"{said:8} {name}{why}", flush=True)
                    if said != "killed":
                        survived.append(name)
            scratch_kills = mutants / _killers_file().name
            if scratch_kills.exists():
                _remember_kills(scratch_kills.read_text(encoding="utf-8").splitlines())
        finally:
            os.chdir(REPO)
    checked = len(names) - len(unknown)
    print(
        f"\n{checked - len(survived)} of {checked} killed in {time.monotonic() - started:.0f} s"
        + (f"; {len(unknown)} unknown" if unknown else "")
    )
    return 1 if survived or unknown else 0


def show_keys(names: list[str]) -> int:
    """``function diff_key`` (the start of a line of tests/mutation/equivalent.txt) and the change, of
    the mutants of this checkout's code: generated in a scratch copy, as ``check`` does, since a
    ``mutants/`` left by an earlier run may number them otherwise, or not be there at all."""
    _chdir_repo()
    with _sample_checkout(folders=(PACKAGE,)) as scratch:
        try:
            os.chdir(scratch)
            known = _current_mutants(names)
            for name in names:
                if name not in known:
                    _say_unknown(name)
                    continue
                diff = diff_of(name, known[name])
                print(f"{function_of(name)} {diff_key(diff)}")
                for line in changed_lines(diff):
                    print(f"    {line}")
        finally:
            os.chdir(REPO)
    return 0 if len(known) == len(set(names)) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="the full mutation run, then the report")
    p_run.add_argument("--max-children", type=int, default=2)
    p_run.add_argument("names", nargs="*", help="only these mutants (mutmut's names or globs)")
    p_report = sub.add_parser("report", help="the report of the last run")
    p_report.add_argument("names", nargs="*", help="only these mutants (mutmut's names or globs)")
    p_report.add_argument("--seconds", type=float, help="the run's duration, to record in the report")
    sub.add_parser("save-results", help=f"keep the verdicts in mutants/ in {RESULTS_FILE.relative_to(REPO)}")
    sub.add_parser("sample", help="CI's fixed sample")
    p_key = sub.add_parser("key", help="print the equivalence key and the change of mutants")
    p_key.add_argument("names", nargs="+")
    p_check = sub.add_parser("check", help="which of these mutants the given tests kill (no full run)")
    p_check.add_argument("names", nargs="+", help="mutmut's names of the mutants")
    p_check.add_argument("--tests", nargs="+", required=True, help="pytest node ids or files")
    p_build = sub.add_parser("build-sample", help="draw a new sample from the last full run")
    p_build.add_argument("--size", type=int, default=30)
    p_build.add_argument("--seed", type=int, default=25)
    p_build.add_argument("--budget", type=float, default=10.0, help="seconds of tests per mutant")
    args = parser.parse_args(argv)
    _stop_on_sigterm()
    if args.command == "run":
        return run(args.max_children, args.names)
    if args.command == "report":
        return report(seconds=args.seconds, scope=args.names)
    if args.command == "save-results":
        return save_results()
    if args.command == "sample":
        return sample()
    if args.command == "key":
        return show_keys(args.names)
    if args.command == "check":
        return check(args.names, args.tests)
    return build_sample(args.size, args.seed, args.budget)


if __name__ == "__main__":
    sys.exit(main())
