"""The plan's timings and what it hands on: the ledger and diff phases in the task's result, the first
"still diffing" line at thirty seconds sharp, what the library still holds for a row that turned invalid."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_imagesearch.imports import plan as plan_module
from airflow_provider_imagesearch.imports.ledger import Ledger
from airflow_provider_imagesearch.imports.manifest import ManifestRow
from airflow_provider_imagesearch.imports.plan import Plan
from tests.imports.conftest import LogLines, RunImport, obs, sqlite_ledger_rows

INSTANCE = "k6p-plan"


class _StepClock:
    """The plan's clock: ``step`` seconds later at each read."""

    def __init__(self, step: float) -> None:
        self.now = 1000.0
        self.step = step

    def monotonic(self) -> float:
        self.now += self.step
        return self.now


def test_the_result_gives_the_seconds_spent_loading_the_ledger_and_diffing(
    import_into: Callable[..., RunImport], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each phase reads the plan's clock when it starts and when it ends: one step of 1.5 s each."""
    run = import_into(INSTANCE)
    monkeypatch.setattr(plan_module, "time", _StepClock(1.5))
    result = run([{"path": obs("k6p/phase0.jpg")}, {"path": obs("k6p/phase1.jpg")}])
    assert result["added"] == 2, result
    assert (result["phases"]["ledger"], result["phases"]["diff"]) == (1.5, 1.5), result["phases"]


class _DiffClock:
    """Still, except that it is thirty seconds later each time the diff's progress handler reads it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.handler_reads = 0

    def monotonic(self) -> float:
        if sys._getframe(1).f_code.co_name == "still_diffing":
            self.handler_reads += 1
            self.now += 30.0
        return self.now


def test_the_first_still_diffing_line_comes_at_thirty_seconds_sharp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, logged: tuple[logging.Logger, LogLines]
) -> None:
    """40,000 paths make a diff long enough for SQLite to call the progress handler; each call is thirty
    seconds after the one before (or the start), so each says so, the first with "30 s"."""
    import sqlalchemy as sa

    clock = _DiffClock()
    monkeypatch.setattr(plan_module, "time", clock)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger = Ledger(engine, "imagesearch_import_ledger", INSTANCE, "run-1")
    ledger.create_if_missing()
    logger, lines = logged
    rows = [{"path": obs(f"k6p/diff{i}.jpg")} for i in range(40_000)]

    def check(raw: dict[str, Any], number: int, *, region: str | None) -> ManifestRow:
        return ManifestRow(number, raw["path"], {}, None, "f" * 32)

    try:
        with Plan(logger=logger) as plan:
            plan.load_manifest([rows[:20_000], rows[20_000:]], region=None, check=check)
            plan.load_ledger(ledger)
            assert plan.summary.paths == 40_000
    finally:
        engine.dispose()
    assert clock.handler_reads >= 1, "the manifest no longer makes a long enough diff for this test"
    said = [line for line in lines.lines if line.startswith("Diffing the manifest")]
    assert said[0] == "Diffing the manifest against the ledger: 30 s so far", said
    assert len(said) == clock.handler_reads, said


def test_a_row_turned_invalid_leaves_the_ledger_saying_the_library_holds_the_last_content_sent(
    import_into: Callable[..., RunImport], sqlite_ledger: Path
) -> None:
    """The invalid row is not sent: the image added by the first run, with its fingerprint, is still
    what the library holds for the path."""
    run = import_into(INSTANCE)
    path = obs("k6p/turned-invalid.jpg")
    run([{"path": path, "tags": {"color": "red"}}])
    added = sqlite_ledger_rows(sqlite_ledger, INSTANCE)[path]
    assert added["outcome"] == "added"

    result = run([{"path": path, "tags": "red"}], max_failed=1)

    assert result["invalid"] == 1, result
    row = sqlite_ledger_rows(sqlite_ledger, INSTANCE)[path]
    assert row["outcome"] == "invalid"
    assert row["fingerprint"] != added["fingerprint"]
    assert row["held_fingerprint"] == added["fingerprint"]
