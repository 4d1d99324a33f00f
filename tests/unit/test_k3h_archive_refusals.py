"""The archive refuses a run id or an instance name it could not key a row by, naming the argument.

The table's key is ``(instance_name, run_id)``: an empty or non-string run id, or a detail whose
``instance_name`` is empty or not a string, is refused with :class:`ImageSearchValidationError` before
anything is written, not only when the value is missing altogether.
"""

from __future__ import annotations

import re
from typing import Any

import pandas  # noqa: F401  (its one-time import at collection, not in a test's call time)
import pytest

from airflow_provider_imagesearch.archive import details_frame
from airflow_provider_imagesearch.errors import ImageSearchValidationError


@pytest.mark.parametrize("run_id", ["", 123])
def test_an_empty_or_non_string_run_id_is_refused(run_id: Any) -> None:
    with pytest.raises(ImageSearchValidationError, match=re.escape(f"Invalid run_id {run_id!r}")):
        details_frame([{"instance_name": "shop-a"}], run_id=run_id, logical_date=None)


@pytest.mark.parametrize("name", ["", 123])
def test_a_detail_with_an_empty_or_non_string_instance_name_is_refused(name: Any) -> None:
    details = [{"instance_name": "shop-a"}, {"instance_name": name}]
    with pytest.raises(
        ImageSearchValidationError, match=re.escape(f"Invalid details[1].instance_name {name!r}")
    ):
        details_frame(details, run_id="run-1", logical_date=None)
