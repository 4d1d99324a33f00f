"""Reading a JSON-lines manifest: what a user gets for compressed files, wide encodings, bad lines, and a
manifest streamed through a named pipe.

A ``.jsonl.bz2`` / ``.xz`` / ``.zip`` manifest is read like a plain one. A manifest in UTF-16 is refused at
once naming the manifest; a line of bad bytes further down is that row's problem only (it is invalid, the
others import). A line that is not JSON is an invalid row whose reason gives the parser's error kind and
text; a line nested too deeply says so. A named pipe (a manifest written by another process as it is
read) and a manifest object whose file has no ``tell`` at all cannot tell their position: they are read
whole all the same.
"""

from __future__ import annotations

import bz2
import io
import json
import lzma
import os
import threading
import zipfile
from pathlib import Path

import pytest

from airflow_provider_imagesearch.errors import ImageSearchValidationError
from airflow_provider_imagesearch.imports.manifest import ManifestRow, check_row, read_chunks

ROWS = [{"path": f"https://shop.obs.x/{n}.jpg", "tag.color": "red"} for n in range(3)]
TEXT = "".join(json.dumps(row) + "\n" for row in ROWS).encode("utf-8")


def _checked(manifest: str, **kwargs: object) -> list[ManifestRow]:
    raws = [raw for chunk in read_chunks(manifest, **kwargs) for raw in chunk]  # type: ignore[arg-type]
    return [check_row(raw, number, region=None) for number, raw in enumerate(raws, 1)]


def _zip(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("m.jsonl", data)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("suffix", "compress"), [(".bz2", bz2.compress), (".xz", lzma.compress), (".zip", _zip)]
)
def test_a_compressed_json_lines_manifest_is_read(tmp_path: Path, suffix: str, compress: object) -> None:
    path = tmp_path / f"m.jsonl{suffix}"
    path.write_bytes(compress(TEXT))  # type: ignore[operator]
    rows = _checked(str(path))
    assert [(row.path, row.tags, row.invalid) for row in rows] == [
        (r["path"], {"color": "red"}, None) for r in ROWS
    ]


def test_a_utf16_json_lines_manifest_is_refused_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("m.jsonl").write_bytes(TEXT.decode("utf-8").encode("utf-16"))  # with its BOM, as PowerShell 5 writes
    with pytest.raises(ImageSearchValidationError) as raised:
        list(read_chunks("m.jsonl"))
    message = str(raised.value)
    assert message.startswith("Invalid manifest 'm.jsonl': must be UTF-8, not UTF-16 LE"), message


def test_a_later_line_of_bad_bytes_is_its_rows_problem_only(tmp_path: Path) -> None:
    """Bytes that read like a UTF-16 byte order mark at the start of line 2 are not the file's encoding:
    only the first line tells it. Row 2 is invalid, rows 1 and 3 are read."""
    lines = TEXT.splitlines(keepends=True)
    path = tmp_path / "m.jsonl"
    path.write_bytes(lines[0] + b"\xff\xfe" + lines[1] + lines[2])
    rows = _checked(str(path))
    assert [row.invalid is None for row in rows] == [True, False, True]
    assert rows[1].invalid is not None
    assert rows[1].invalid.startswith("not a JSON object (JSONDecodeError: ")


def test_a_line_that_is_not_json_is_an_invalid_row_with_the_parsers_error(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_bytes(TEXT + b"path=https://shop.obs.x/9.jpg\n")
    rows = _checked(str(path))
    assert rows[3].invalid == "not a JSON object (JSONDecodeError: Expecting value: line 1 column 1 (char 0))"
    assert [row.invalid for row in rows[:3]] == [None, None, None]


def test_a_line_nested_too_deeply_is_an_invalid_row_saying_so(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_bytes(TEXT + b'{"path": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n")
    rows = _checked(str(path))
    assert rows[3].invalid == "not a JSON object (nested too deeply)"
    assert len(rows) == 4


def test_a_json_lines_manifest_from_a_named_pipe_is_read_whole(tmp_path: Path) -> None:
    """A pipe has no position to report (``tell`` fails with OSError): progress is unknown, the rows are not."""
    path = tmp_path / "m.jsonl"
    os.mkfifo(path)
    many = [{"path": f"https://shop.obs.x/p{n}.jpg"} for n in range(25)]

    def write() -> None:
        with path.open("wb") as pipe:
            pipe.write("".join(json.dumps(row) + "\n" for row in many).encode("utf-8"))

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        chunks = list(read_chunks(str(path), chunk_rows=10))
    finally:
        writer.join(timeout=10)
    assert [len(chunk) for chunk in chunks] == [10, 10, 5]
    assert [raw for chunk in chunks for raw in chunk] == many


class _BareStream:
    """A file of a manifest object's own ``open()``: reads, and nothing to tell a position with."""

    closed = False

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._data.read(size)

    def read1(self, size: int = -1) -> bytes:
        return self._data.read1(size)

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> _BareStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Catalogue:
    """A manifest given as an object with ``open()`` (as an ``ObjectStoragePath`` is)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def open(self, mode: str) -> _BareStream:
        assert mode == "rb"
        return _BareStream(self.data)

    def __str__(self) -> str:
        return "catalogue/m.jsonl"


def test_a_manifest_whose_file_cannot_tell_its_position_is_read_whole() -> None:
    many = [{"path": f"https://shop.obs.x/b{n}.jpg"} for n in range(25)]
    data = "".join(json.dumps(row) + "\n" for row in many).encode("utf-8")
    chunks = list(read_chunks(_Catalogue(data), chunk_rows=10))
    assert [len(chunk) for chunk in chunks] == [10, 10, 5]
    assert [raw for chunk in chunks for raw in chunk] == many
