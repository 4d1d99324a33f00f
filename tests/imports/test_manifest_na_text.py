"""A CSV manifest's cells are the text they hold: ``NA``, ``null``, ``N/A`` and an empty cell are not
missing values. A tag ``NA`` (a country code, a size) reaches the library as ``NA``, and an empty cell is
an empty text the row checks then judge, never a float ``nan``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from airflow_provider_imagesearch.imports.manifest import read_chunks


def test_cells_pandas_would_read_as_missing_keep_their_text(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "path,tag.country,tag.size\nhttps://shop.obs.x/0.jpg,NA,null\nhttps://shop.obs.x/1.jpg,N/A,\n",
        encoding="utf-8",
    )
    rows: list[dict[str, Any]] = [row for chunk in read_chunks(str(manifest)) for row in chunk]
    assert rows == [
        {"path": "https://shop.obs.x/0.jpg", "tag.country": "NA", "tag.size": "null"},
        {"path": "https://shop.obs.x/1.jpg", "tag.country": "N/A", "tag.size": ""},
    ]
