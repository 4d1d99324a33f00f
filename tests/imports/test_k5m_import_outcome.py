"""What one import shows its DAG and its log: the result's timings (each phase as the import measured
it, the whole within the task's own time), the ``Import into ... done`` log line, and the failure's text
when bad rows pass ``max_failed``.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.imports import engine as engine_module
from airflow_provider_imagesearch.imports import plan as plan_module
from tests.imports.conftest import RunImport, library, obs, sqlite_ledger_rows

INSTANCE = "k5m-outcome"
OUTSIDE = "https://elsewhere.example.com/k5m.jpg"  # not an OBS URL of the region: an invalid row
PHASES = {"read", "lock_wait", "ledger", "diff", "send"}


@pytest.fixture
def run(import_into: Callable[..., RunImport]) -> RunImport:
    return import_into(INSTANCE)


class _TickingClock:
    """A monotonic clock one second further on each time it is read: every phase the import times lasts
    a whole number of seconds, at least one."""

    def __init__(self) -> None:
        self._now = time.monotonic()
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        with self._lock:
            self._now += 1.0
            return self._now

    @staticmethod
    def time() -> float:
        return time.time()

    @staticmethod
    def sleep(seconds: float) -> None:
        time.sleep(min(seconds, 0.01))


def test_the_result_shows_each_phase_as_the_import_timed_it(
    run: RunImport, monkeypatch: pytest.MonkeyPatch
) -> None:
    """read, ledger, diff and send are the plan's and the engine's own measurements (here at least one
    tick each), not a default; lock_wait is the lock's wait; nothing else is listed."""
    monkeypatch.setattr(plan_module, "time", _TickingClock())
    monkeypatch.setattr(engine_module, "time", _TickingClock())
    result = run([{"path": obs("k5m/phase.jpg"), "tags": {"color": "red"}}])
    assert result["added"] == 1, result
    assert set(result["phases"]) == PHASES, result
    for name in ("read", "ledger", "diff", "send"):
        assert result["phases"][name] >= 1.0, (name, result)
    assert 0.0 <= result["phases"]["lock_wait"] < result["seconds"] + 1e-3, result


def test_the_result_seconds_are_the_tasks_own_time(run: RunImport, emulator: Emulator) -> None:
    """The import's seconds lie between 0 and the time the task took as the caller measured it."""
    started = time.monotonic()
    result = run([{"path": obs(f"k5m/s{i}.jpg"), "tags": {"color": "red"}} for i in range(3)])
    took = time.monotonic() - started
    assert 0.0 <= result["seconds"] <= took + 1e-3, (result, took)
    assert result["added"] == 3, result
    assert set(result["phases"]) == PHASES, result
    assert len(library(emulator, INSTANCE)) == 3


def test_a_time_limit_the_import_keeps_sends_every_row(run: RunImport, emulator: Emulator) -> None:
    """A ten-minute limit on a three-row import: every row is sent, none left for the next run."""
    result = run(
        [{"path": obs(f"k5m/tl{i}.jpg"), "tags": {"color": "red"}} for i in range(3)], time_limit=600
    )
    assert (result["added"], result["remaining"]) == (3, 0), result


def test_the_done_line_names_the_target_and_the_result(
    run: RunImport, capfd: pytest.CaptureFixture[str]
) -> None:
    """The task log's summary line: ``Import into <instance> done: {<the XCom result>}``."""
    run([{"path": obs("k5m/done.jpg"), "tags": {"color": "red"}}])
    shown = "".join(capfd.readouterr())
    assert re.search(
        rf"(?<![A-Za-z])Import into {INSTANCE} done: \{{'added': 1, 'updated': 0, .*\}}\}} \[", shown
    ), shown


def test_bad_rows_past_max_failed_fail_the_task_with_counts_reasons_and_examples(run: RunImport) -> None:
    """The failure says how many rows were bad, the whole result, the reasons counted, and the first
    rows: nothing between the result and the reasons when prune was not refused."""
    from airflow_provider_imagesearch.version_compat import AirflowFailException

    with pytest.raises(AirflowFailException) as failed:
        run(
            [
                {"path": obs("k5m/ok.jpg"), "tags": {"color": "red"}},
                {"path": OUTSIDE},
                {"path": OUTSIDE + "?2"},
            ]
        )
    text = str(failed.value)
    assert text.startswith(
        f"Import into {INSTANCE}: 2 rows failed or were invalid (max_failed=0; every other row was processed: {{"
    ), text
    assert "'prune_refused': None" in text, text
    assert re.search(r"\}\)\. By reason: INVALID_ROW x2\. First 2: row 2 \('https://elsewhere", text), text


def test_the_ledger_names_the_run_that_wrote_each_row(run: RunImport, sqlite_ledger: Path) -> None:
    """A row written by a DAG run names that run; one written outside a DAG run (no run_id) names
    ``manual``."""
    run([{"path": obs("k5m/run1.jpg"), "tags": {"color": "red"}}])
    assert {row["run_id"] for row in sqlite_ledger_rows(sqlite_ledger, INSTANCE).values()} == {
        "k5m-outcome-run-1"
    }
    run([{"path": obs("k5m/run1.jpg"), "tags": {"color": "blue"}}], context={})
    assert {row["run_id"] for row in sqlite_ledger_rows(sqlite_ledger, INSTANCE).values()} == {"manual"}


def test_a_sharded_failure_says_the_other_shards_name_their_rows(run: RunImport) -> None:
    """Every shard checks the whole manifest: bad rows in the other shards' slices count against
    max_failed, and the failure says those shards list them."""
    from airflow_provider_imagesearch.version_compat import AirflowFailException

    manifest = [{"path": f"{OUTSIDE}?{i}"} for i in range(16)]
    with pytest.raises(AirflowFailException) as failed:
        run(manifest, shard=(0, 2))
    text = str(failed.value)
    assert "invalid in the other shards' slices)" in text, text
    assert re.search(r"\. First \d+ \(the other shards name theirs\): row ", text), text
