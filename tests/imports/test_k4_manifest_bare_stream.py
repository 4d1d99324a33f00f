"""A manifest given as an object with ``open()`` (a path-like from another library) whose stream cannot
tell its position: a bare reader (``read`` only, like some SDKs' download streams) or one whose
``tell()`` raises ``ValueError``. The rows are read all the same; only the progress estimate is lost."""

from __future__ import annotations

import io
from typing import Any

import pytest

from airflow_provider_imagesearch.imports.manifest import read_chunks

CSV = b"path,tag.color\nhttps://shop.obs.x/0.jpg,red\nhttps://shop.obs.x/1.jpg,blue\n"
ROWS = [
    {"path": "https://shop.obs.x/0.jpg", "tag.color": "red"},
    {"path": "https://shop.obs.x/1.jpg", "tag.color": "blue"},
]


class _BareReader:
    """Only ``read``: no ``tell``, ``seek`` or ``fileno``."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._data.read(size)

    def __enter__(self) -> _BareReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._data.close()


class _TellRefusingReader(_BareReader):
    def tell(self) -> int:
        raise ValueError("tell() is not supported on this stream")


class _PathLike:
    """Named like a CSV file; ``open("rb")`` gives the stream."""

    def __init__(self, stream: type[_BareReader]) -> None:
        self._stream = stream

    def __str__(self) -> str:
        return "exports/manifest.csv"

    def open(self, mode: str = "r") -> _BareReader:
        assert mode == "rb"
        return self._stream(CSV)


@pytest.mark.parametrize(
    "stream", [_BareReader, _TellRefusingReader], ids=["no-tell", "tell-raises-valueerror"]
)
def test_a_stream_that_cannot_tell_its_position_still_yields_every_row(stream: type[_BareReader]) -> None:
    rows: list[dict[str, Any]] = [
        row for chunk in read_chunks(_PathLike(stream), chunk_rows=1) for row in chunk
    ]
    assert rows == ROWS
