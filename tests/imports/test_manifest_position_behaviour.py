"""How far the reading of a manifest got (``read_chunks(position=...)``: the progress lines of an import),
and file manifests that cannot seek.

A CSV or JSON-lines file reports its size in bytes as the total, a Parquet file and a list their rows;
at the end a JSON-lines read reports all of it. A CSV written into a named pipe (no size, no seeking
back after a peek at its first bytes) is read whole, header included. A CSV in UTF-16 or UTF-32 is
refused naming its encoding (UTF-32 LE starts with UTF-16 LE's mark: the longer one is told).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from airflow_provider_imagesearch.errors import ImageSearchValidationError
from airflow_provider_imagesearch.imports.manifest import ReadPosition, read_chunks

ROWS = [{"path": f"https://shop.obs.x/{n}.jpg", "tag.color": "red"} for n in range(25)]
CSV = "path,tag.color\n" + "".join(f"{r['path']},red\n" for r in ROWS)


def _read(manifest: object, chunk_rows: int = 10) -> tuple[list[int], list[dict[str, object]], ReadPosition]:
    position = ReadPosition()
    chunks = list(read_chunks(manifest, chunk_rows=chunk_rows, position=position))
    return [len(c) for c in chunks], [row for c in chunks for row in c], position


def test_a_csv_reports_its_size_in_bytes(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text(CSV, "utf-8")
    sizes, rows, position = _read(str(path))
    assert (sizes, rows) == ([10, 10, 5], ROWS)
    assert position.total == os.path.getsize(path)
    assert 0 < position.done <= position.total


def test_a_tsv_is_read_with_tabs(tmp_path: Path) -> None:
    path = tmp_path / "m.tsv"
    path.write_text(CSV.replace(",", "\t"), "utf-8")
    assert _read(str(path))[1] == ROWS


def test_a_json_lines_file_reports_its_size_and_all_of_it_at_the_end(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS), "utf-8")
    sizes, rows, position = _read(str(path))
    assert (sizes, rows) == ([10, 10, 5], ROWS)
    assert position.total == os.path.getsize(path)
    assert position.done == position.total
    assert position.fraction() == (position.total, position.total)


def test_a_parquet_file_and_a_list_report_their_rows(tmp_path: Path) -> None:
    import pandas as pd

    path = tmp_path / "m.parquet"
    pd.DataFrame(ROWS).to_parquet(path, index=False)
    sizes, rows, position = _read(str(path))
    assert (sizes, rows, position.done, position.total) == ([10, 10, 5], ROWS, 25, 25)
    sizes, rows, position = _read([*ROWS, "not a row"])
    assert (sizes, position.done, position.total) == ([10, 10, 6], 26, 26)
    assert rows[:-1] == ROWS
    assert rows[-1] == {"path": None}  # a non-mapping is a row without a path: invalid, with its number


def test_a_list_read_without_a_position_is_read_whole() -> None:
    assert [len(c) for c in read_chunks(ROWS, chunk_rows=10)] == [10, 10, 5]
    assert [len(c) for c in read_chunks(tuple(ROWS), chunk_rows=25)] == [25]


def test_a_csv_from_a_named_pipe_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    os.mkfifo(path)

    def write() -> None:
        with path.open("w", encoding="utf-8") as pipe:
            pipe.write(CSV)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        _, rows, position = _read(str(path))
    finally:
        writer.join(timeout=10)
    assert rows == ROWS
    assert position.total is None  # a pipe has no size: progress by time, not percent


@pytest.mark.parametrize(
    ("encoding", "name"),
    [
        ("utf-16-le", "UTF-16 LE"),
        ("utf-16-be", "UTF-16 BE"),
        ("utf-32-le", "UTF-32 LE"),
        ("utf-32-be", "UTF-32 BE"),
    ],
)
def test_a_csv_in_a_wide_encoding_is_refused_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, encoding: str, name: str
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("m.csv").write_bytes(("\ufeff" + CSV).encode(encoding))
    with pytest.raises(ImageSearchValidationError) as raised:
        list(read_chunks("m.csv"))
    assert str(raised.value).startswith(
        f"Invalid manifest 'm.csv': must be UTF-8, not {name} (it starts with a {name} "
    ), str(raised.value)


def test_a_csv_is_read_from_its_first_byte_after_the_encoding_check(tmp_path: Path) -> None:
    """The first bytes are peeked at, then read again: a one-column CSV keeps its header and first row."""
    path = tmp_path / "m.csv"
    path.write_text("path\nab\n", "utf-8")
    assert _read(str(path))[1] == [{"path": "ab"}]


def test_a_one_byte_file_reports_its_size(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_bytes(b"\n")  # a blank line: no rows
    sizes, _, position = _read(str(path))
    assert (sizes, position.total) == ([], 1)


@pytest.mark.parametrize("name", ["m.csv", "m.jsonl", "m.csv.gz"])
def test_an_empty_file_has_no_rows(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"")
    assert _read(str(path))[:2] == ([], [])
