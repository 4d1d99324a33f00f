"""Reading the manifest into the plan: a progress line every 5% of a source whose size is known in other
units than rows (bytes), and the read phase's seconds, the time the reading took."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

from airflow_provider_imagesearch.imports.plan import Plan
from tests.imports.conftest import LogLines, obs


def _chunks(read: list[int]) -> Iterator[list[dict[str, Any]]]:
    """Four chunks of five rows, each a quarter of a 1,000-byte file (``read``: the bytes read so far)."""
    for chunk in range(4):
        read.append(250 * (chunk + 1))
        yield [{"path": obs(f"k8b/read{chunk}-{i}.jpg")} for i in range(5)]


def test_a_source_sized_in_bytes_reports_the_share_of_its_bytes_read(
    logged: tuple[logging.Logger, LogLines],
) -> None:
    logger, lines = logged
    read: list[int] = []
    with Plan(logger=logger) as plan:
        plan.load_manifest(_chunks(read), region=None, position=lambda: (read[-1], 1000))
        assert plan.summary.rows == 20
    progress = [line.partition(", ETA")[0] for line in lines.lines if line.startswith("Reading manifest:")]
    assert progress == [
        "Reading manifest: 5 rows read and checked (25%",
        "Reading manifest: 10 rows read and checked (50%",
        "Reading manifest: 15 rows read and checked (75%",
        "Reading manifest: 20 rows read and checked (100%",
    ]


def test_the_read_phase_is_the_time_the_reading_took(logged: tuple[logging.Logger, LogLines]) -> None:
    logger, lines = logged
    read: list[int] = []
    with Plan(logger=logger) as plan:
        before = time.monotonic()
        plan.load_manifest(_chunks(read), region=None)
        took = time.monotonic() - before
        seconds = plan.summary.phases["read"]
    assert 0 <= seconds <= took
    assert f"Read the manifest: 20 rows in {seconds:.1f} s" in lines.lines
