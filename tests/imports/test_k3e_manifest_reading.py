"""How a local manifest is read: named as a ``file://`` URL, through an ``ObjectStoragePath`` scheme
whose path holds ``://``, with a ``?`` in its file name, compressed with zstd, and with values that
look like numbers (which stay the text the manifest holds). Local files only: each test is fast."""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_imagesearch.imports.manifest import read_chunks

CSV = b"path,tag.code\nhttps://shop.obs.x/0.jpg,00123\nhttps://shop.obs.x/1.jpg,1.0\n"
ROWS = [
    {"path": "https://shop.obs.x/0.jpg", "tag.code": "00123"},
    {"path": "https://shop.obs.x/1.jpg", "tag.code": "1.0"},
]


def _rows(manifest: Any) -> list[dict[str, Any]]:
    return [row for chunk in read_chunks(manifest) for row in chunk]


def test_a_manifest_named_as_a_file_url_string_is_read_from_that_file(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_bytes(CSV)
    assert _rows(f"file://{manifest}") == ROWS


def test_values_that_look_like_numbers_keep_the_manifests_text(tmp_path: Path) -> None:
    """A tag "00123" stays "00123" (not 123), "1.0" stays "1.0" (not 1.0 or 1)."""
    manifest = tmp_path / "m.csv"
    manifest.write_bytes(CSV)
    rows = _rows(str(manifest))
    assert [row["tag.code"] for row in rows] == ["00123", "1.0"]
    assert all(isinstance(row["tag.code"], str) for row in rows)


def test_a_store_url_whose_path_holds_the_scheme_separator_is_read_through_its_scheme(tmp_path: Path) -> None:
    """``local:///dir/a://b.csv``: the scheme is what comes before the FIRST ``://``."""
    (tmp_path / "a:").mkdir()
    (tmp_path / "a:" / "b.csv").write_bytes(CSV)
    assert _rows(f"local://{tmp_path}/a://b.csv") == ROWS


def test_a_gzip_manifest_whose_name_holds_two_question_marks_is_decompressed(tmp_path: Path) -> None:
    """The format and compression come from the name before the FIRST ``?``: ``m.csv.gz?a=1?b``
    is a gzip-compressed CSV."""
    manifest = tmp_path / "m.csv.gz?a=1?b"
    manifest.write_bytes(gzip.compress(CSV))
    assert _rows(str(manifest)) == ROWS


def test_a_zst_manifest_is_read_as_zstd(tmp_path: Path) -> None:
    """``.zst`` is zstd: read when the ``zstandard`` package is installed, otherwise the read fails
    naming that package to install (not an unknown compression)."""
    manifest = tmp_path / "m.csv.zst"
    if importlib.util.find_spec("zstandard") is not None:
        import zstandard

        manifest.write_bytes(zstandard.ZstdCompressor().compress(CSV))
        assert _rows(str(manifest)) == ROWS
    else:
        manifest.write_bytes(b"\x28\xb5\x2f\xfd" + CSV)
        with pytest.raises(ImportError, match="zstandard"):
            _rows(str(manifest))
