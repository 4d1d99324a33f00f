"""The plan's progress lines (loading the ledger, a long diff) and a shard's share of the ledger."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.imports import plan as plan_module
from airflow_provider_imagesearch.imports.ledger import Ledger
from tests.imports.conftest import RunImport, library, obs

INSTANCE = "k6e-plan"


@pytest.fixture
def run(import_into: Callable[..., RunImport]) -> RunImport:
    return import_into(INSTANCE)


def _lines(text: str, start: str) -> list[str]:
    return [m.group(0) for m in re.finditer(re.escape(start) + r"[^\[]*?(?= \[|$)", text, re.MULTILINE)]


def test_loading_the_ledger_reports_rows_loaded_of_the_total(
    run: RunImport, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    manifest = [{"path": obs(f"k6e/ledger{i}.jpg")} for i in range(5)]
    run(manifest)
    stream = Ledger.stream
    monkeypatch.setattr(Ledger, "stream", lambda self, chunk_rows=2: stream(self, chunk_rows))
    capfd.readouterr()
    assert run(manifest)["unchanged"] == 5
    lines = _lines("".join(capfd.readouterr()), "Loading the ledger: ")
    assert [line.partition(", ETA")[0] for line in lines] == [
        "Loading the ledger: 2/5 rows (40%)",
        "Loading the ledger: 4/5 rows (80%)",
        "Loading the ledger: 5/5 rows (100%)",
    ]


class _DiffClock:
    """Still, except that each time SQLite's progress handler of the diff reads the clock it is ten
    seconds later than the last time it did (still: a loaded machine's slower diff shows the same)."""

    def __init__(self) -> None:
        self.handler_reads = 0

    def monotonic(self) -> float:
        if sys._getframe(1).f_code.co_name == "still_diffing":
            self.handler_reads += 1
        return 1000.0 + 10.0 * self.handler_reads

    @staticmethod
    def time() -> float:
        return time.time()

    @staticmethod
    def sleep(seconds: float) -> None:
        time.sleep(seconds)


def test_a_long_diff_says_so_every_thirty_seconds(
    run: RunImport, emulator: Emulator, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """A diff long enough for SQLite to call the progress handler a few times (160,000 rows, four
    paths): the first "still diffing" line comes thirty seconds in, at the third call, not before."""
    clock = _DiffClock()
    monkeypatch.setattr(plan_module, "time", clock)
    manifest = [{"path": obs(f"k6e/diff{i % 4}.jpg")} for i in range(160_000)]
    result = run(manifest)
    assert (result["added"], result["duplicates"]) == (4, 159_996), result
    assert clock.handler_reads >= 3, "the manifest no longer makes a long enough diff for this test"
    lines = _lines("".join(capfd.readouterr()), "Diffing the manifest against the ledger: ")
    assert lines[0] == "Diffing the manifest against the ledger: 30 s so far", lines
    assert len(lines) == clock.handler_reads // 3, lines
    assert len(library(emulator, INSTANCE)) == 4


def test_a_shard_loads_only_its_own_paths_of_the_ledger(run: RunImport, emulator: Emulator) -> None:
    """Each of two shards, run with prune, finds every path of its slice unchanged and prunes nothing: the
    other shard's ledger rows are not its to prune."""
    manifest = [{"path": obs(f"k6e/shard{i}.jpg")} for i in range(12)]
    run(manifest)
    outcomes: list[dict[str, Any]] = [run(manifest, shard=(index, 2), prune=True) for index in range(2)]
    assert [r["pruned"] for r in outcomes] == [0, 0], outcomes
    assert sum(r["unchanged"] for r in outcomes) == 12, outcomes
    assert len(library(emulator, INSTANCE)) == 12
