"""Write the example catalogue DAG's sample data: ``dags/data/sample_catalog.csv`` and ``sample_searches.csv``.

Deterministic (no randomness, no clock): running it again rewrites the same bytes, and
``tests/dags/test_catalog_import_dag.py`` checks that the committed files are what it writes.

The catalogue has :data:`ROWS` rows, ``path`` (an OBS HTTPS URL of cn-north-4) and ``tags`` (a JSON
object of ``color`` and ``size``). :data:`INVALID_ROWS` of them are invalid on purpose, three kinds of
six: no path, tags that are not a flat map of strings, a path that is not an OBS HTTPS URL. The
searches are ``query_id``, ``path`` (a valid catalogue image), ``tags`` (an optional filter), ``limit``.

Usage: ``python scripts/make_sample_catalog.py [output directory]`` (default ``dags/data``).
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

BUCKET = "https://shop-images.obs.cn-north-4.myhuaweicloud.com"
ROWS = 300
INVALID_ROWS = 18
COLORS = ("red", "blue", "green", "black", "white")
SIZES = ("S", "M", "L", "XL")
CATEGORIES = ("shirts", "dresses", "shoes", "bags", "hats", "scarves")
SEARCHES = 24
CATALOG_FILE = "sample_catalog.csv"
SEARCHES_FILE = "sample_searches.csv"


def catalog_rows() -> list[dict[str, str]]:
    rows = []
    for i in range(ROWS):
        category = CATEGORIES[i % len(CATEGORIES)]
        path = f"{BUCKET}/catalog/{category}/{i:04d}.jpg"
        tags: dict[str, object] = {"color": COLORS[i % len(COLORS)], "size": SIZES[(i // 5) % len(SIZES)]}
        if i % 50 == 7:
            path = ""  # no path
        elif i % 50 == 17:
            tags = {"color": {"shade": "dark"}}  # not a flat map of strings
        elif i % 50 == 27:
            path = f"obs://shop-images/catalog/{category}/{i:04d}.jpg"  # not an OBS HTTPS URL
        rows.append({"path": path, "tags": json.dumps(tags, sort_keys=True)})
    return rows


def valid_paths() -> list[str]:
    return [row["path"] for i, row in enumerate(catalog_rows()) if i % 50 not in (7, 17, 27)]


def search_rows() -> list[dict[str, str]]:
    paths = valid_paths()
    rows = []
    for n in range(SEARCHES):
        path = paths[(n * 11) % len(paths)]
        tags = json.dumps({"color": COLORS[n % len(COLORS)]}) if n % 3 == 0 else ""
        rows.append({"query_id": f"q{n:03d}", "path": path, "tags": tags, "limit": str(5 + n % 6)})
    return rows


def to_csv(rows: list[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def main(argv: list[str]) -> None:
    target = Path(argv[0]) if argv else Path(__file__).resolve().parents[1] / "dags" / "data"
    target.mkdir(parents=True, exist_ok=True)
    (target / CATALOG_FILE).write_text(to_csv(catalog_rows()), encoding="utf-8")
    (target / SEARCHES_FILE).write_text(to_csv(search_rows()), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
