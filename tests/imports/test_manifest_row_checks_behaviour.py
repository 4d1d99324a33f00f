"""Checking one v1 manifest row: the path, the tags (a JSON object, a Parquet map, ``tag.<key>`` columns)
and the file, each refusal the reason a user reads in the ledger and the task log.

A row check never raises: a bad row comes back invalid with its reason, keyed by its path when the
ledger can store it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_provider_imagesearch.imports.manifest import READ_ERROR, ManifestRow, check_row

REGION = "ap-southeast-1"
OBS = f"https://shop.obs.{REGION}.myhuaweicloud.com"
PATH = f"{OBS}/1.jpg"


def _row(raw: dict[str, Any], region: str | None = REGION) -> ManifestRow:
    return check_row(raw, 3, region=region)


@pytest.mark.parametrize(
    ("raw", "tags"),
    [
        ({"tags": '{"color": "red", "size": ["S", "M"]}'}, {"color": "red", "size": ["S", "M"]}),
        ({"tags": {"color": "red"}, "tag.size": "M"}, {"color": "red", "size": "M"}),
        ({"tags": '{"color": "red"}', "tag.color": "blue"}, {"color": "blue"}),  # the column wins
        ({"tags": '{"color": null, "size": "M"}', "tag.brand": "", "tag.fit": None}, {"size": "M"}),
        ({"tags": [("color", "red"), ("size", "M")]}, {"color": "red", "size": "M"}),  # a Parquet map
        ({"tags": []}, {}),  # an empty Parquet map
        ({"tags": ""}, {}),
        ({"tags": {f"k{n}": "v" for n in range(10)}}, {f"k{n}": "v" for n in range(10)}),
        ({"other": "ignored", 7: "not a column name"}, {}),
    ],
)
def test_tags_from_every_form_are_sent(raw: dict[str, Any], tags: dict[str, Any]) -> None:
    row = _row({"path": PATH, **raw})
    assert row.invalid is None, row.invalid
    assert (row.row, row.path, row.tags, row.file) == (3, PATH, tags, None)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ({"tags": "red"}, "tags must be a JSON object of tag name -> string or list of strings"),
        ({"tags": "[1, 2]"}, "tags must be a JSON object of tag name -> string or list of strings"),
        ({"tags": 5}, "tags must be a JSON object of tag name -> string or list of strings"),
        ({"tags": ["ab", "cd"]}, "tags must be a JSON object of tag name -> string or list of strings"),
        (
            {"tags": [("color", "red", "x")]},
            "tags must be a JSON object of tag name -> string or list of strings",
        ),
        ({"tags": '{"": "red"}'}, "tag names must be non-empty strings, not ''"),
        ({"tags": {1: "red"}}, "tag names must be non-empty strings, not 1"),
        ({"tags": '{"size": []}'}, "tag 'size' must be a string or a non-empty list of strings, not []"),
        (
            {"tags": '{"size": ["S", 2]}'},
            "tag 'size' must be a string or a non-empty list of strings, not ['S', 2]",
        ),
        ({"tag.size": 38}, "tag 'size' must be a string or a non-empty list of strings, not 38"),
        (
            {"tags": [("color", "red"), ("color", "blue")]},
            "Invalid tags \"'color' twice\": a map whose keys are all different",
        ),
        ({"tags": {f"k{n}": "v" for n in range(11)}}, "at most 10 tags per image, not 11"),
        ({"tags": {f"k{n}": "v" for n in range(10)}, "tag.more": "v"}, "at most 10 tags per image, not 11"),
    ],
)
def test_bad_tags_fail_their_row_with_the_reason(raw: dict[str, Any], reason: str) -> None:
    row = _row({"path": PATH, **raw})
    assert row.invalid == reason
    assert (row.path, row.tags, row.file) == (PATH, {}, None)


@pytest.mark.parametrize(
    ("path", "reason", "key"),
    [
        (None, "no path: the column 'path' is required", None),
        ("  ", "no path: the column 'path' is required", None),
        (float("nan"), "no path: the column 'path' is required", None),
        (17, "path must be a string, not int", None),
        (f"{OBS}/a\tb.jpg", None, f"{OBS}/a\tb.jpg"),
        (f"{OBS}/a\x00b.jpg", None, None),
        (f"{OBS}/a\udcffb.jpg", None, None),
        ("https://elsewhere.example.com/1.jpg", None, "https://elsewhere.example.com/1.jpg"),
        (
            "https://shop.obs.cn-north-4.myhuaweicloud.com/1.jpg",
            None,
            "https://shop.obs.cn-north-4.myhuaweicloud.com/1.jpg",
        ),
    ],
)
def test_a_bad_path_fails_its_row_keyed_by_what_the_ledger_can_store(
    path: Any, reason: str | None, key: str | None
) -> None:
    row = _row({"path": path, "tag.color": "red"})
    assert row.invalid is not None
    if reason is not None:
        assert row.invalid == reason
    assert row.path == key
    assert row.tags == {}


def test_a_path_outside_the_instances_region_is_refused_naming_the_form() -> None:
    row = _row({"path": "https://shop.obs.cn-north-4.myhuaweicloud.com/1.jpg"})
    assert row.invalid == (
        "path must be an OBS HTTPS URL of the instance's region, "
        f"https://{{bucket}}.obs.{REGION}.myhuaweicloud.com/{{key}} when no file is given"
    )


def test_a_control_character_or_a_lone_surrogate_in_a_path_is_refused_naming_path() -> None:
    broken = f"{OBS}/a\nb.jpg"
    assert _row({"path": broken}).invalid == (
        f"Invalid path {broken!r}: text without control characters (NUL, tab, line break)"
    )
    reason = _row({"path": f"{OBS}/a\udcffb.jpg"}).invalid
    assert reason is not None
    assert reason.startswith("Invalid path ")
    assert reason.endswith(": valid Unicode text (it holds a lone surrogate, which cannot be encoded)")


def test_a_tag_that_is_not_valid_unicode_is_refused_naming_tags() -> None:
    reason = _row({"path": PATH, "tag.color": "r\udcffd"}).invalid
    assert reason is not None
    assert reason.startswith("Invalid tags ")


def test_a_path_is_trimmed_and_checked_against_the_region_only_without_a_file(tmp_path: Path) -> None:
    assert _row({"path": f"  {PATH} "}).path == PATH
    image = tmp_path / "1.jpg"
    image.write_bytes(b"\x89PNG")
    row = _row({"path": "sku-1", "file": str(image)})
    assert (row.invalid, row.path, row.file) == (None, "sku-1", str(image))
    assert _row({"path": "anything at all"}, region=None).invalid is None
    assert _row({"path": PATH, "file": ""}).file is None
    assert _row({"path": PATH, "file": 5}).invalid == "file must be a local file path, not int"


def test_a_line_that_could_not_be_read_is_an_invalid_row_with_the_readers_reason() -> None:
    row = _row({READ_ERROR: "not a JSON object (JSONDecodeError: Expecting value)", "path": PATH})
    assert row.invalid == "not a JSON object (JSONDecodeError: Expecting value)"
    assert row.path == PATH


def test_rows_differing_only_in_their_reason_differ_in_fingerprint() -> None:
    """A rerun tells a row refused for another reason from the one it remembers."""
    one = _row({"path": PATH, "tags": "red"})
    other = _row({"path": PATH, "tag.size": 38})
    assert one.fingerprint != other.fingerprint
    assert one.fingerprint == _row({"path": PATH, "tags": "blue"}).fingerprint
