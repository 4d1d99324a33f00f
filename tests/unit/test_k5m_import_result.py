"""The import's result as a DAG reads it from XCom: every count, the figures rounded to milliseconds
(seconds and each phase), the rows left for the next run. ``ImportResult.to_dict`` is what the import
operator returns.
"""

from __future__ import annotations

import json
from collections import Counter

from airflow_provider_imagesearch.imports.engine import ImportResult


def test_the_result_rounds_seconds_and_phases_to_milliseconds_and_keeps_remaining() -> None:
    """Timings are rounded to 3 decimals (not to whole seconds, not to 4 decimals); ``remaining`` and
    ``phases`` are the run's own values, and the whole result is plain JSON."""
    result = ImportResult(
        counts=Counter(added=2, failed=1),
        seconds=12.3456789,
        rows=5,
        remaining=2,
        phases={"read": 0.1234567, "send": 7.0004999},
        shard=(1, 3),
    )
    shown = result.to_dict()
    assert shown["seconds"] == 12.346
    assert shown["phases"] == {"read": 0.123, "send": 7.0}
    assert shown["remaining"] == 2
    assert (shown["added"], shown["failed"], shown["rows"], shown["shard"]) == (2, 1, 5, [1, 3])
    assert json.loads(json.dumps(shown)) == shown


def test_a_result_without_phases_shows_an_empty_mapping() -> None:
    """A run that timed nothing still shows ``phases`` as a mapping a DAG can iterate."""
    shown = ImportResult(seconds=0.0004).to_dict()
    assert shown["phases"] == {}
    assert shown["seconds"] == 0.0
    assert shown["remaining"] == 0
