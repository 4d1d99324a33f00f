"""Archive value preparation: what reaches the table is what json.dumps and SQLAlchemy would write."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_imagesearch.archive import _tags_json, details_frame, validate_table_name
from airflow_provider_imagesearch.errors import ImageSearchValidationError


@pytest.mark.parametrize("tags", [["a", "b"], ['é"x\n'], [], None, ("x",), [1, "a"], "not-a-list"])
def test_tags_json_matches_json_dumps(tags: Any) -> None:
    expected = json.dumps(list(tags) if isinstance(tags, list | tuple) else [], ensure_ascii=False)
    assert _tags_json(tags) == expected


@pytest.mark.parametrize("table", ["x; DROP TABLE y", "1abc", "a.b.c", "", "a-b", 'a"b', None])
def test_hostile_table_names(table: Any) -> None:
    with pytest.raises(ImageSearchValidationError, match="Invalid table"):
        validate_table_name(table)


def test_details_frame_requires_an_instance_name() -> None:
    with pytest.raises(ImageSearchValidationError, match=r"details\[1\]\.instance_name"):
        details_frame([{"instance_name": "a"}, {"status": "NORMAL"}], run_id="r", logical_date=None)
