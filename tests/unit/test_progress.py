"""The progress pacer: a line every 5% or 30 s, one at the end, never two at the end."""

from __future__ import annotations

import time

import pytest

from airflow_provider_imagesearch.progress import ProgressPacer


def test_a_line_every_five_percent_and_one_at_the_end() -> None:
    pacer = ProgressPacer(100)
    lines = [done for done in range(1, 101) if pacer.due(done) is not None]
    assert lines == list(range(5, 101, 5))
    assert pacer.due(100) is None  # the end is logged once


def test_a_slow_run_logs_every_interval_between_percent_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    pacer = ProgressPacer(1_000_000, every_seconds=30.0)
    assert pacer.due(1) is None
    clock[0] += 31
    line = pacer.due(2)
    assert line is not None
    assert (line.done, line.percent, line.eta) == (2, 0, f"{(1_000_000 - 2) / (2 / 31):.0f}s")
    assert pacer.due(3) is None


def test_nothing_to_do_is_one_line() -> None:
    pacer = ProgressPacer(0)
    line = pacer.due(0)
    assert line is not None
    assert line.percent == 100
    assert pacer.due(0) is None
