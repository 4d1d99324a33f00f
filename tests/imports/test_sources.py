"""Manifest sources: list, CSV, JSON lines, Parquet, a URL / ObjectStoragePath, a SQL query; in chunks."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.errors import ImageSearchValidationError
from airflow_provider_imagesearch.imports.manifest import check_row, read_chunks
from tests.imports.conftest import library, obs
from tests.support.connections import set_connection

RunImport = Callable[..., dict[str, Any]]

ROWS = [
    {"path": obs("a/1.jpg"), "tag.color": "red", "tag.size": ""},
    {"path": obs("a/2.jpg"), "tags": json.dumps({"color": "blue", "size": ["S", "M"]})},
    {"path": obs("a/3 é.jpg"), "tag.color": "green", "tag.size": "L"},
]
EXPECTED = {
    obs("a/1.jpg"): {"color": "red"},
    obs("a/2.jpg"): {"color": "blue", "size": ["S", "M"]},
    obs("a/3 é.jpg"): {"color": "green", "size": "L"},
}


def _write(tmp_path: Path, kind: str) -> Path:
    import pandas as pd

    frame = pd.DataFrame(ROWS).fillna("")
    path = tmp_path / f"manifest.{kind}"
    if kind == "csv":
        frame.to_csv(path, index=False)
    elif kind == "jsonl":
        path.write_text("".join(json.dumps({k: v for k, v in r.items() if v}) + "\n" for r in ROWS), "utf-8")
    else:
        frame.to_parquet(path, index=False)
    return path


@pytest.mark.parametrize("kind", ["csv", "jsonl", "parquet"])
def test_file_manifests(
    run_import: RunImport, emulator: Emulator, ledger_conn: dict[str, Any], tmp_path: Path, kind: str
) -> None:
    if ledger_conn["name"] != "sqlite":
        pytest.skip("the source does not depend on the ledger's database")
    result = run_import(str(_write(tmp_path, kind)))
    assert result["added"] == 3
    assert library(emulator) == EXPECTED


def test_objectstoragepath_url_manifest(
    run_import: RunImport, emulator: Emulator, ledger_conn: dict[str, Any], tmp_path: Path
) -> None:
    """A ``file://`` URL goes through ``airflow.sdk.ObjectStoragePath`` like ``s3://`` would.

    An S3-compatible store (moto's server, presigned URLs) is in test_object_store.py.
    """
    from airflow.sdk import ObjectStoragePath

    path = _write(tmp_path, "csv")
    assert run_import(ObjectStoragePath(f"file://{path}"))["added"] == 3
    assert library(emulator) == EXPECTED


def test_sql_manifest(
    run_import: RunImport,
    emulator: Emulator,
    ledger_conn: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sqlite3

    db = tmp_path / "catalog.db"
    with sqlite3.connect(db) as connection:
        connection.execute("CREATE TABLE products (sku TEXT, image TEXT, color TEXT)")
        connection.executemany(
            "INSERT INTO products VALUES (?, ?, ?)",
            [(f"sku{i}", obs(f"sql/{i}.jpg"), "red" if i % 2 else "blue") for i in range(25)],
        )
    set_connection(monkeypatch, "catalog_db", conn_type="sqlite", host=str(db))
    result = run_import(
        manifest_sql='SELECT image AS path, color AS "tag.color" FROM products',
        manifest_conn_id="catalog_db",
    )
    assert result["added"] == 25
    assert library(emulator)[obs("sql/3.jpg")] == {"color": "red"}


@pytest.mark.parametrize("content", [b"", b"path,tag.color\n"])
def test_empty_manifests_import_nothing(
    run_import: RunImport, emulator: Emulator, ledger_conn: dict[str, Any], tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(content)
    emulator.reset_stats()
    result = run_import(str(path))
    assert result["rows"] == 0
    assert result["added"] == 0
    assert emulator.stats()["requests_total"] == 0


def test_manifests_are_read_in_chunks(tmp_path: Path) -> None:
    import pandas as pd

    rows = [{"path": obs(f"c/{i}.jpg"), "tag.color": "red"} for i in range(2_500)]
    for kind in ("csv", "jsonl", "parquet"):
        path = tmp_path / f"big.{kind}"
        frame = pd.DataFrame(rows)
        if kind == "csv":
            frame.to_csv(path, index=False)
        elif kind == "jsonl":
            frame.to_json(path, orient="records", lines=True)
        else:
            frame.to_parquet(path, index=False)
        sizes = [len(chunk) for chunk in read_chunks(str(path), chunk_rows=1_000)]
        assert sizes == [1_000, 1_000, 500], kind
    assert [len(c) for c in read_chunks(rows, chunk_rows=1_000)] == [1_000, 1_000, 500]


def test_bad_sources_are_refused_naming_the_field() -> None:
    with pytest.raises(ImageSearchValidationError, match="manifest"):
        list(read_chunks("catalogue.xlsx"))
    with pytest.raises(ImageSearchValidationError, match="manifest_conn_id"):
        list(read_chunks(manifest_sql="SELECT 1"))
    with pytest.raises(ImageSearchValidationError, match="not both"):
        list(read_chunks([{"path": "x"}], manifest_sql="SELECT 1", manifest_conn_id="db"))


def test_row_checks() -> None:
    region = "cn-north-4"
    ok = check_row({"path": obs("x.jpg"), "tags": {"color": ["a", "b"]}}, 1, region=region)
    assert ok.invalid is None
    assert ok.tags == {"color": ["a", "b"]}
    assert (
        check_row({"path": obs("x.jpg"), "tags": {"color": ["a"]}}, 1, region=region).fingerprint
        != ok.fingerprint
    )
    assert "OBS HTTPS URL" in (
        check_row({"path": "https://b.obs.eu-west-0.myhuaweicloud.com/x"}, 1, region=region).invalid or ""
    )
    assert "JSON object" in (check_row({"path": obs("x"), "tags": "[1]"}, 1, region=region).invalid or "")
    assert "nested" not in (
        check_row({"path": obs("x"), "tags": {"a": {"b": "c"}}}, 1, region=region).invalid or "nested"
    )


def test_json_lines_lines_that_are_not_rows_fail_their_row_only(tmp_path: Path) -> None:
    """Python's ``json`` reads a JSON-lines file line by line: a byte order mark is dropped, an integer
    keeps its value, a line that is not a JSON object and bytes that are not UTF-8 make invalid rows
    (numbered like the others), blank lines are skipped, compression is read."""
    import gzip

    region = "cn-north-4"
    body = (
        b"\xef\xbb\xbf"
        + json.dumps({"path": obs("j/1.jpg"), "n": 10**20}).encode()
        + b"\r\n\r\n[1, 2]\n{not json\n"
        + b'{"path": "'
        + obs("j/\xff.jpg").encode("latin-1")
        + b'"}\n'
        + json.dumps({"path": obs("j/2.jpg")}).encode()
        + b"\n"
    )
    for name, data in (("m.jsonl", body), ("m.jsonl.gz", gzip.compress(body))):
        path = tmp_path / name
        path.write_bytes(data)
        rows = [row for chunk in read_chunks(str(path), chunk_rows=2) for row in chunk]
        assert len(rows) == 5, name
        assert rows[0] == {"path": obs("j/1.jpg"), "n": 10**20}
        checked = [check_row(raw, number, region=region) for number, raw in enumerate(rows, 1)]
        assert [row.invalid is None for row in checked] == [True, False, False, False, True], name
        assert "JSON list, not an object" in (checked[1].invalid or "")
        assert "not a JSON object" in (checked[2].invalid or "")
        assert "lone surrogate" in (checked[3].invalid or "")


def test_a_json_lines_line_that_is_not_an_object_is_an_invalid_row_of_the_import(
    run_import: RunImport, emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_imagesearch.version_compat import AirflowFailException

    set_connection(monkeypatch, "imagesearch_archive_db", conn_type="sqlite", host=str(tmp_path / "l.db"))
    path = tmp_path / "catalog.jsonl"
    path.write_text(
        json.dumps({"path": obs("k/1.jpg")}) + "\n{broken\n" + json.dumps({"path": obs("k/2.jpg")}) + "\n",
        "utf-8",
    )
    with pytest.raises(AirflowFailException, match=r"row 2 \(None\): INVALID_ROW not a JSON object"):
        run_import(str(path))
    assert set(library(emulator)) == {obs("k/1.jpg"), obs("k/2.jpg")}


def test_v2_numeric_tags_take_integers_a_double_holds_exactly_whatever_the_source() -> None:
    """An integer beyond 2**53 (a double, the API's number, would send another value) fails its row the
    same way from an int, an integral ``Decimal`` or CSV text; floats and smaller integers pass."""
    from decimal import Decimal

    from airflow_provider_imagesearch.imports.manifest_v2 import check_row as check_v2

    def checked(value: Any) -> Any:
        return check_v2({"item_id": "s", "image_url": "https://cdn.example.com/s.jpg", "num.p": value}, 1)

    for value in (2**53 + 1, -(2**53) - 1, 10**20, Decimal("1E+20"), "100000000000000000000"):
        assert "integer within +-2**53" in (checked(value).invalid or ""), value
    for value, sent in ((2**53, float(2**53)), (-(2**53), -float(2**53)), ("19", 19.0), (1e20, 1e20)):
        row = checked(value)
        assert row.invalid is None, value
        assert row.tags["custom_num_tags"] == {"p": sent}
    assert checked(Decimal("12.5")).tags["custom_num_tags"] == {"p": 12.5}


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32", "utf-32-be"])
@pytest.mark.parametrize("name", ["m.jsonl", "m.csv", "m.jsonl.gz"])
def test_a_utf16_or_utf32_manifest_is_refused_at_once_naming_its_encoding(
    encoding: str, name: str, tmp_path: Path
) -> None:
    """PowerShell 5 writes UTF-16 LE with a BOM: refused before any row, with the field and the form."""
    import gzip

    if name.endswith(".csv"):
        text = "path\r\n" + "".join(f"{obs(f'w/{i}.jpg')}\r\n" for i in range(3))
    else:
        text = "".join(json.dumps({"path": obs(f"w/{i}.jpg")}) + "\r\n" for i in range(3))
    data = ("\ufeff" if encoding.endswith("-be") else "").encode(encoding) + text.encode(encoding)
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    with pytest.raises(ImageSearchValidationError) as raised:
        list(read_chunks(str(path)))
    shown = {"utf-16": "UTF-16 LE", "utf-16-be": "UTF-16 BE", "utf-32": "UTF-32 LE", "utf-32-be": "UTF-32 BE"}
    assert raised.value.field == "manifest"
    assert f"must be UTF-8, not {shown[encoding]}" in str(raised.value)


def test_a_utf8_bom_manifest_is_read(tmp_path: Path) -> None:
    """Control: the UTF-8 byte order mark (Notepad, .NET) is no reason to refuse."""
    for name, text in (
        ("b.jsonl", json.dumps({"path": obs("b.jpg")}) + "\n"),
        ("b.csv", f"path\n{obs('b.jpg')}\n"),
    ):
        path = tmp_path / name
        path.write_bytes(b"\xef\xbb\xbf" + text.encode())
        assert [row["path"] for chunk in read_chunks(str(path)) for row in chunk] == [obs("b.jpg")], name
