"""Which manifest sources ``read_chunks`` takes, and what a user reads when one is refused.

Exactly one source: ``manifest`` (a list of dicts, a path or URL of a CSV / TSV / JSON-lines / Parquet
file, compressed or not) or ``manifest_sql`` with the SQL connection it runs on. ``manifest_conn_id``
goes only with ``manifest_sql`` or an object-storage URL (``s3://``, ``gs://``; not http(s), not
``file://``, not a local path). Each refusal names the field and the form it must have.
"""

from __future__ import annotations

import pytest

from airflow_provider_imagesearch.errors import ImageSearchValidationError
from airflow_provider_imagesearch.imports.manifest import (
    is_object_storage_url,
    manifest_format,
    read_chunks,
    validate_source,
)


def _refusal(**kwargs: object) -> str:
    with pytest.raises(ImageSearchValidationError) as raised:
        list(read_chunks(**kwargs))  # type: ignore[arg-type]
    return str(raised.value)


def test_both_sources_are_refused() -> None:
    assert _refusal(manifest=[{"path": "x"}], manifest_sql="SELECT 1", manifest_conn_id="db") == (
        "Invalid manifest/manifest_sql 'both given': one of manifest or manifest_sql, not both"
    )


@pytest.mark.parametrize("sql", ["", "   ", 12])
def test_an_empty_query_is_refused(sql: object) -> None:
    assert (
        _refusal(manifest_sql=sql, manifest_conn_id="db")
        == f"Invalid manifest_sql {sql!r}: a non-empty SQL query"
    )


@pytest.mark.parametrize("conn_id", [None, "", 3])
def test_a_query_without_its_connection_is_refused(conn_id: object) -> None:
    assert _refusal(manifest_sql="SELECT 1", manifest_conn_id=conn_id) == (
        f"Invalid manifest_conn_id {conn_id!r}: the id of the SQL connection manifest_sql runs on"
    )


def test_no_source_is_refused() -> None:
    assert _refusal() == (
        "Invalid manifest None: a list of dicts, a CSV/JSON-lines/Parquet path or URL, or use manifest_sql"
    )


@pytest.mark.parametrize(
    "manifest",
    ["catalogue.csv", "https://b.obs.x.com/m.csv?X-Amz-Signature=abc", "file:///data/m.csv", [{"path": "x"}]],
)
def test_a_connection_beside_a_source_that_needs_none_is_refused(manifest: object) -> None:
    message = _refusal(manifest=manifest, manifest_conn_id="aws_default")
    assert message.startswith(
        "Invalid manifest_conn_id 'aws_default': the connection of manifest_sql, or of an "
    ), message


@pytest.mark.parametrize("manifest", ["", "  "])
def test_an_empty_path_is_refused(manifest: str) -> None:
    assert _refusal(manifest=manifest) == f"Invalid manifest {manifest!r}: a non-empty path or URL"


@pytest.mark.parametrize("manifest", [42, {"path": "x"}, 3.5])
def test_a_manifest_of_another_type_is_refused_naming_its_type(manifest: object) -> None:
    assert _refusal(manifest=manifest) == (
        f"Invalid manifest {type(manifest).__name__!r}: a list of dicts, a CSV/JSON-lines/Parquet path or URL"
    )


def test_a_list_a_tuple_and_a_connection_free_query_source_pass() -> None:
    validate_source([{"path": "x"}], None, None)
    validate_source(({"path": "x"},), None, None)
    validate_source(None, "SELECT 1", "db")
    validate_source("s3://bucket/m.csv", None, "aws_default")


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("m.csv", "csv"),
        ("M.CSV", "csv"),
        ("m.tsv", "csv"),
        ("m.csv.gz", "csv"),
        ("m.tsv.bz2", "csv"),
        ("m.csv.zip", "csv"),
        ("m.csv.xz", "csv"),
        ("m.csv.zst", "csv"),
        ("m.jsonl", "jsonl"),
        ("m.ndjson", "jsonl"),
        ("m.json", "jsonl"),
        ("m.jsonl.gz", "jsonl"),
        ("m.parquet", "parquet"),
        ("m.pq", "parquet"),
        ("https://b.obs.x.com/m.parquet?X-Amz-Signature=abc.csv", "parquet"),
        ("https://b.obs.x.com/m.parquet?next=/x?y.csv", "parquet"),
    ],
)
def test_the_format_is_told_by_the_file_name(name: str, kind: str) -> None:
    assert manifest_format(name) == kind


@pytest.mark.parametrize("name", ["m.xlsx", "m.csv.tar", "m", "https://b.obs.x.com/m.txt?name=m.csv"])
def test_another_file_name_is_refused_listing_the_suffixes(name: str) -> None:
    with pytest.raises(ImageSearchValidationError) as raised:
        manifest_format(name)
    assert str(raised.value).endswith(
        ": a file name ending in one of .csv, .tsv, .jsonl, .ndjson, .json, .parquet, .pq (CSV, JSON lines, Parquet)"
    ), str(raised.value)


@pytest.mark.parametrize(
    ("manifest", "expected"),
    [
        ("s3://bucket/m.csv", True),
        ("S3://bucket/m.csv", True),
        ("gs://bucket/m.csv", True),
        ("abfs://container/m.csv", True),
        ("http://h/m.csv", False),
        ("https://h/m.csv?redirect=s3://bucket/x.csv", False),
        ("HTTPS://h/m.csv", False),
        ("file:///data/m.csv", False),
        ("/data/m.csv", False),
        ("m.csv", False),
        (["s3://bucket/m.csv"], False),
    ],
)
def test_object_storage_urls_are_those_airflow_opens(manifest: object, expected: bool) -> None:
    assert is_object_storage_url(manifest) is expected


class _Catalogue:
    """A manifest given as an object with ``open()`` that is not a path (as a user's own store object)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def open(self, mode: str) -> object:
        raise AssertionError("not opened by a check")

    def __str__(self) -> str:
        return self.name


def test_an_object_with_open_is_a_file_manifest_checked_by_its_name() -> None:
    validate_source(_Catalogue("catalogue/m.jsonl"), None, None)
    with pytest.raises(ImageSearchValidationError) as raised:
        validate_source(_Catalogue("catalogue/m.xlsx"), None, None)
    assert str(raised.value).endswith(
        ": a file name ending in one of .csv, .tsv, .jsonl, .ndjson, .json, .parquet, .pq (CSV, JSON lines, Parquet)"
    ), str(raised.value)
