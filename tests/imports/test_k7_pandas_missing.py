"""Rows with pandas' missing values: ``pd.NA`` and ``pd.NaT`` are missing, like ``None`` or an empty cell.

A DataFrame's nullable columns hold ``pd.NA`` where a value is missing (a datetime column ``pd.NaT``), and
rows built from one carry them: such a tag is left out and the image imported with its other tags.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from airflow_provider_imagesearch.emulator import Emulator
from tests.imports.conftest import RunImport, library, obs

INSTANCE = "k7-pandas"


def test_a_missing_nullable_tag_is_left_out_and_the_image_imported(
    import_into: Callable[..., RunImport], emulator: Emulator
) -> None:
    rows = [
        {"path": obs("k7/red.jpg"), "tag.color": "red", "tag.size": "s"},
        {"path": obs("k7/plain.jpg"), "tag.color": pd.NA, "tag.size": "m"},
        {"path": obs("k7/undated.jpg"), "tag.color": "blue", "tag.size": pd.NaT},
    ]
    result = import_into(INSTANCE)(rows)
    assert (result["added"], result["invalid"]) == (3, 0)
    assert library(emulator, INSTANCE) == {
        obs("k7/red.jpg"): {"color": "red", "size": "s"},
        obs("k7/plain.jpg"): {"size": "m"},
        obs("k7/undated.jpg"): {"color": "blue"},
    }
