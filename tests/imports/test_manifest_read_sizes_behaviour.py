"""A manifest file is read in bounded pieces, never whole, and its size is found wherever its file
object keeps it: the progress of a read (``read_chunks(position=...)``) has a total for a local file,
an object-storage file that knows its ``size``, or one whose ``details`` hold it.

The files here are a manifest object's own (``manifest.open("rb")``, as an ``ObjectStoragePath`` gives),
recording every read asked of them.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from airflow_provider_imagesearch.imports.manifest import ReadPosition, read_chunks

ROWS = 20_000
CSV = ("path,tag.color\n" + "".join(f"https://shop.obs.x/{n}.jpg,red\n" for n in range(ROWS))).encode()
JSONL = "".join(json.dumps({"path": f"https://shop.obs.x/{n}.jpg"}) + "\n" for n in range(ROWS)).encode()


class _File(io.BytesIO):
    """A manifest's file that records the size of every read (None or -1: the whole rest of the file)."""

    def __init__(self, data: bytes, reads: list[int | None]) -> None:
        super().__init__(data)
        self.reads = reads

    def read(self, size: int | None = -1) -> bytes:
        self.reads.append(size)
        return super().read(size)

    def read1(self, size: int | None = -1) -> bytes:
        self.reads.append(size)
        return super().read1(size)

    def fileno(self) -> int:
        raise io.UnsupportedOperation("fileno")  # an object store's file has no descriptor


class _SizedFile(_File):
    @property
    def size(self) -> int:
        return len(self.getbuffer())


class _DetailedFile(_File):
    @property
    def details(self) -> dict[str, Any]:
        return {"name": "bucket/m", "size": len(self.getbuffer()), "type": "file"}


class _Manifest:
    def __init__(self, name: str, data: bytes, kind: type[_File] = _File) -> None:
        self.name, self.data, self.kind = name, data, kind
        self.reads: list[int | None] = []

    def open(self, mode: str) -> _File:
        assert mode == "rb"
        return self.kind(self.data, self.reads)

    def __str__(self) -> str:
        return self.name


@pytest.mark.parametrize(("name", "data"), [("m.csv", CSV), ("m.jsonl", JSONL)])
def test_a_manifest_file_is_never_read_whole(name: str, data: bytes) -> None:
    manifest = _Manifest(name, data)
    assert sum(len(chunk) for chunk in read_chunks(manifest)) == ROWS
    assert manifest.reads
    assert all(size is not None and 0 < size <= 262_144 for size in manifest.reads), sorted(
        set(map(str, manifest.reads))
    )


@pytest.mark.parametrize("kind", [_SizedFile, _DetailedFile])
@pytest.mark.parametrize(("name", "data"), [("m.csv", CSV), ("m.jsonl", JSONL)])
def test_a_store_files_size_is_the_reads_total(name: str, data: bytes, kind: type[_File]) -> None:
    position = ReadPosition()
    assert sum(len(chunk) for chunk in read_chunks(_Manifest(name, data, kind), position=position)) == ROWS
    assert position.total == len(data)


def test_a_file_that_keeps_no_size_has_no_total() -> None:
    position = ReadPosition()
    assert sum(len(chunk) for chunk in read_chunks(_Manifest("m.jsonl", JSONL), position=position)) == ROWS
    assert position.total is None
    assert position.fraction() is None
