"""A row whose key could not be read refuses ``prune`` before any delete, whatever ``max_failed``.

Such a row (a JSON line that does not parse, a row without a usable path / item_id) may list an image the
library holds: pruning "what the manifest no longer lists" would delete it. The rest of the import goes on.
Against the emulator over loopback HTTP, the ledger on real SQLite.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from tests.imports.conftest import LEDGER_CONN, library, obs, v2_items
from tests.imports.test_v2_import import CDN
from tests.support.connections import set_connection


@pytest.fixture(autouse=True)
def _sqlite_ledger(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    set_connection(monkeypatch, LEDGER_CONN, conn_type="sqlite", host=str(tmp_path / "ledger.db"))


def _line(path: str) -> bytes:
    return json.dumps({"path": path, "tags": {"color": "red"}}).encode() + b"\n"


#: Day 2's third line, for an image day 1 added at ``obs("kl/café.jpg")``.
UNREADABLE_LINES = {
    # a stray NUL inside the JSON text: json refuses the line
    "stray NUL": lambda path: b'{"path": "' + path.encode() + b'\x00", "tags": {}}\n',
    # the path written in Latin-1 by a tool that was not told UTF-8: a lone surrogate, no storable key
    "Latin-1 byte in the path": lambda path: (
        json.dumps({"path": path}, ensure_ascii=False).encode("latin-1") + b"\n"
    ),
    "no path": lambda path: b'{"tags": {"color": "red"}}\n',
    "path not a string": lambda path: b'{"path": 12}\n',
}


@pytest.mark.parametrize("unreadable", UNREADABLE_LINES)
def test_an_unreadable_json_line_refuses_prune_whatever_max_failed(
    unreadable: str,
    run_import: Callable[..., dict[str, Any]],
    emulator: Emulator,
    catalog: str,
    tmp_path: Path,
) -> None:
    paths = [obs("kl/0.jpg"), obs("kl/1.jpg"), obs("kl/café.jpg")]
    day1 = tmp_path / "day1.jsonl"
    day1.write_bytes(b"".join(_line(p) for p in paths))
    run_import(str(day1))
    day2 = tmp_path / "day2.jsonl"
    new = obs("kl/new.jpg")
    day2.write_bytes(_line(paths[0]) + _line(new) + UNREADABLE_LINES[unreadable](paths[2]))
    result = run_import(str(day2), prune=True, max_failed=10)
    assert set(library(emulator)) == {*paths, new}, result  # nothing deleted; the new row was added
    assert (result["pruned"], result["added"], result["invalid"]) == (0, 1, 1), result
    refused = result["prune_refused"]
    assert refused.startswith("prune refused before any delete: 1 row has no readable key (rows 3:"), refused
    assert "no usable path" in refused, refused


def test_keyless_rows_are_named_first_ten_and_counted(
    run_import: Callable[..., dict[str, Any]], emulator: Emulator, catalog: str, tmp_path: Path
) -> None:
    """A CSV with 12 rows without a path: the refusal names rows 2-11 and counts the 2 more."""
    kept, gone = obs("csv/kept.jpg"), obs("csv/gone.jpg")
    run_import([{"path": kept}, {"path": gone}])
    manifest = tmp_path / "day2.csv"
    manifest.write_text("path,tags\n" + f"{kept},\n" + ",\n" * 12, "utf-8")
    result = run_import(str(manifest), prune=True, max_failed=100)
    assert gone in library(emulator), result
    assert (
        "12 rows have no readable key (rows 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 and 2 more:"
        in (result["prune_refused"])
    ), result


def test_without_keyless_rows_prune_runs(
    run_import: Callable[..., dict[str, Any]], emulator: Emulator, catalog: str, tmp_path: Path
) -> None:
    """Control: an invalid row that keeps its path (a bad tag) does not stop the prune."""
    kept, gone = obs("ok/kept.jpg"), obs("ok/gone.jpg")
    run_import([{"path": kept}, {"path": gone}])
    result = run_import(
        [{"path": kept}, {"path": obs("ok/bad.jpg"), "tags": "[1]"}], prune=True, max_failed=1
    )
    assert (result["prune_refused"], result["pruned"]) == (None, 1), result
    assert set(library(emulator)) == {kept}


def test_parquet_row_without_item_id_refuses_a_v2_prune(
    run_v2_import: Callable[..., dict[str, Any]], emulator: Emulator, tmp_path: Path
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    urls = [f"{CDN}/a.jpg", f"{CDN}/b.jpg"]
    run_v2_import([{"item_id": "a", "image_url": urls[0]}, {"item_id": "b", "image_url": urls[1]}])
    manifest = tmp_path / "day2.parquet"
    pq.write_table(pa.table({"item_id": ["a", None], "image_url": urls}), manifest)
    result = run_v2_import(str(manifest), prune=True, max_failed=1)
    assert set(v2_items(emulator)) == {"a", "b"}, result
    assert "rows 2:" in result["prune_refused"], result
    assert "no usable item_id" in result["prune_refused"], result


def test_every_shard_refuses_prune_for_a_keyless_row_of_any_slice(
    run_import: Callable[..., dict[str, Any]], emulator: Emulator, catalog: str
) -> None:
    """A keyless row is reported by shard 0 only, but no shard knows which slice its path hashes to: each
    shard refuses its prune (the row numbers are the manifest's)."""
    paths = [obs(f"sh/{i}.jpg") for i in range(8)]
    run_import([{"path": p} for p in paths])
    day2 = [{"path": p} for p in paths[:4]] + [{"tags": {"color": "red"}}]
    for index in range(2):
        result = run_import(day2, shard=(index, 2), prune=True, max_failed=1)
        assert "1 row has no readable key (rows 5:" in (result["prune_refused"] or ""), result
        assert result["pruned"] == 0, result
    assert set(library(emulator)) == set(paths)
