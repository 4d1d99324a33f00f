"""An archived row's ``tags`` column holds the JSON of the detail's tags.

A list or a tuple of tags is stored as its JSON array (``["a", "b"]``); anything else (no tags, a bare
string) as ``[]``, never NULL: a SQL query of the table can always parse the column as JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas  # noqa: F401  (its one-time import at collection, not in a test's call time)
import sqlalchemy as sa

from airflow_provider_imagesearch.archive import details_frame, write_frame


def test_tags_are_archived_as_the_json_of_the_list(tmp_path: Path) -> None:
    details: list[dict[str, Any]] = [
        {"instance_name": "a-list", "tags": ["a", "b"]},
        {"instance_name": "b-tuple", "tags": ("x", "é")},
        {"instance_name": "c-string", "tags": "not-a-list"},
        {"instance_name": "d-none", "tags": None},
    ]
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'archive.db'}")
    try:
        write_frame(engine, "archive", details_frame(details, run_id="run-1", logical_date=None), "run-1")
        with engine.connect() as connection:
            rows = connection.exec_driver_sql("SELECT instance_name, tags FROM archive ORDER BY 1").all()
    finally:
        engine.dispose()
    assert [tuple(row) for row in rows] == [
        ("a-list", '["a", "b"]'),
        ("b-tuple", '["x", "é"]'),
        ("c-string", "[]"),
        ("d-none", "[]"),
    ]
    assert [json.loads(tags) for _, tags in rows] == [["a", "b"], ["x", "é"], [], []]
