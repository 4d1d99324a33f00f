"""The public row-check helpers of a v1 manifest, as a user of the ledger and the XCom sees them.

``invalid_reason`` is the reason stored for an invalid row: a check's own message, or "unexpected value
(Kind: text)" for anything else (a lone surrogate's UnicodeError, an OverflowError), shown with
backslash escapes where text cannot be stored, and at most 1,000 characters. ``ledger_key`` is what an
invalid row is remembered by: None when it has no storable key. ``path_key`` and ``fingerprint`` are
stored in the ledger, so they are pinned: runs after an upgrade compare with what runs before stored.
A row with a file is held to the gateway's 12,000,000-byte body (base64 of the file plus its path and
tags), to the 8 MiB file limit, and to a file that exists and is not empty. ``ReadPosition.fraction``
is the progress a read reports: never past its total, none when the total is unknown.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from airflow_provider_imagesearch.errors import ImageSearchValidationError
from airflow_provider_imagesearch.imports.manifest import (
    MAX_BODY_BYTES,
    MAX_FILE_BYTES,
    ReadPosition,
    base64_size,
    check_row,
    fingerprint,
    invalid_reason,
    ledger_key,
    path_key,
)

REGION = "ap-southeast-1"
OBS = f"https://shop.obs.{REGION}.myhuaweicloud.com"


def test_the_reason_of_a_refused_value_is_the_checks_message() -> None:
    assert invalid_reason(ValueError("no path: the column 'path' is required")) == (
        "no path: the column 'path' is required"
    )
    error = ImageSearchValidationError("path", "text without control characters", "a\tb")
    assert invalid_reason(error) == str(error)


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            OverflowError("int too large to convert to float"),
            "unexpected value (OverflowError: int too large to convert to float)",
        ),
        (TypeError("unhashable type: 'list'"), "unexpected value (TypeError: unhashable type: 'list')"),
        (
            UnicodeEncodeError("utf-8", "a\udcffb", 1, 2, "surrogates not allowed"),
            "unexpected value (UnicodeEncodeError: 'utf-8' codec can't encode character '\\udcff' in position 1: "
            "surrogates not allowed)",
        ),
    ],
)
def test_the_reason_of_an_unexpected_error_names_its_kind(error: Exception, reason: str) -> None:
    assert invalid_reason(error) == reason


def test_a_reason_is_storable_text_of_at_most_1000_characters() -> None:
    reason = invalid_reason(ValueError("bad \udcff value " + "x" * 2000))
    assert reason.startswith("bad \\udcff value xxx")
    assert len(reason) == 1000
    reason.encode("utf-8")  # a lone surrogate would fail the ledger's write


@pytest.mark.parametrize(
    ("value", "key"),
    [
        (f"{OBS}/1.jpg", f"{OBS}/1.jpg"),
        (f" {OBS}/1.jpg", f" {OBS}/1.jpg"),  # kept as given: it is what the manifest said
        ("a\tb", "a\tb"),  # a tab is refused as an image id, but a ledger can store it
        (None, None),
        (12, None),
        ("", None),
        ("   ", None),
        ("a\x00b", None),
        ("a\udcffb", None),
    ],
)
def test_an_invalid_row_is_remembered_by_a_key_the_ledger_can_store(value: object, key: str | None) -> None:
    assert ledger_key(value) == key


def test_path_keys_and_fingerprints_are_the_ones_earlier_runs_stored() -> None:
    assert path_key(f"{OBS}/1.jpg") == "b398034b33a57ecbe12022ef4e117ebf"
    assert path_key("a\udcffb") == "253d5effb552378feaa3c06722519431"  # a lone surrogate has a key too
    assert fingerprint({"color": "red", "size": ["S", "M"]}, None) == "8e19adaf744f7337ed8851e447d56e19"
    assert fingerprint({"size": ["S", "M"], "color": "red"}, None) == "8e19adaf744f7337ed8851e447d56e19"
    assert fingerprint({"couleur": "été"}, "ab" * 32) == "e83034c49f54fd63595d4bc58baec587"
    row = check_row(
        {
            "path": f"{OBS}/é/1.jpg",
            "tags": '{"couleur": "rouge", "tailles": ["S", "M"]}',
            "tag.marque": "Été",
        },
        1,
        region=REGION,
    )
    assert row.invalid is None, row.invalid
    assert row.fingerprint == "ec1fe265c3485c2f87309c7dd864cefa"
    refused = check_row({"path": f"{OBS}/1.jpg", "tag.x": 5}, 1, region=REGION)
    assert refused.invalid == "tag 'x' must be a string or a non-empty list of strings, not 5"
    assert refused.fingerprint == "378193c0fad1c671da47d87eb5816b8a"


@pytest.mark.parametrize("size", range(0, 13))
def test_base64_size_is_the_length_of_the_base64_text(size: int) -> None:
    assert base64_size(size) == len(base64.b64encode(b"x" * size))


def _body(path: str, size: int) -> int:
    return base64_size(size) + len(json.dumps({"path": path, "tags": {}, "file": ""}, ensure_ascii=True))


def test_a_file_row_whose_body_is_exactly_the_limit_is_sent_and_one_byte_more_is_refused(
    tmp_path: Path,
) -> None:
    image = tmp_path / "big.jpg"
    image.write_bytes(b"\xff" * MAX_FILE_BYTES)
    short = "id-"
    path = short + "p" * (MAX_BODY_BYTES - _body(short, MAX_FILE_BYTES))
    assert _body(path, MAX_FILE_BYTES) == MAX_BODY_BYTES
    row = check_row({"path": path, "file": str(image)}, 1, region=REGION)
    assert row.invalid is None, (row.invalid or "")[:300]
    over = check_row({"path": path + "p", "file": str(image)}, 1, region=REGION)
    assert over.invalid == (
        f"file {str(image)!r} with this row's path and tags makes a request body of {MAX_BODY_BYTES + 1} bytes "
        f"(base64), more than the {MAX_BODY_BYTES} the API accepts"
    )


def test_a_file_of_8_mib_is_sent_and_one_byte_more_is_refused(tmp_path: Path) -> None:
    exact, over = tmp_path / "exact.jpg", tmp_path / "over.jpg"
    exact.write_bytes(b"\xff" * MAX_FILE_BYTES)
    over.write_bytes(b"\xff" * (MAX_FILE_BYTES + 1))
    assert check_row({"path": "sku-1", "file": str(exact)}, 1, region=REGION).invalid is None
    refused = check_row({"path": "sku-1", "file": str(over)}, 1, region=REGION)
    assert refused.invalid == (
        f"file {str(over)!r} is {MAX_FILE_BYTES + 1} bytes, more than the {MAX_FILE_BYTES} allowed"
    )


def test_a_missing_an_empty_or_an_unreadable_file_fails_its_row(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    reasons = [
        check_row({"path": "sku-1", "file": str(file)}, 1, region=REGION).invalid
        for file in (tmp_path / "missing.jpg", empty, tmp_path)
    ]
    assert reasons == [
        f"file {str(tmp_path / 'missing.jpg')!r} cannot be read (FileNotFoundError)",
        f"file {str(empty)!r} is empty",
        f"file {str(tmp_path)!r} cannot be read (IsADirectoryError)",
    ]


def test_every_byte_of_a_file_counts_in_its_fingerprint(tmp_path: Path) -> None:
    """A file of several MiB changed in its last byte only is a changed row: a rerun sends it again."""
    image = tmp_path / "1.jpg"
    data = bytearray(b"\x89PNG" * (3 * 1024 * 1024 // 4))
    image.write_bytes(bytes(data))
    before = check_row({"path": "sku-1", "file": str(image)}, 1, region=REGION).fingerprint
    data[-1] ^= 0xFF
    image.write_bytes(bytes(data))
    assert check_row({"path": "sku-1", "file": str(image)}, 1, region=REGION).fingerprint != before


@pytest.mark.parametrize(
    ("done", "total", "fraction"),
    [
        (0, 10, (0, 10)),
        (4, 10, (4, 10)),
        (10, 10, (10, 10)),
        (15, 10, (10, 10)),
        (4, None, None),
        (0, 0, None),
    ],
)
def test_a_reads_progress_never_passes_its_total(done: int, total: int | None, fraction: object) -> None:
    assert ReadPosition(done, total).fraction() == fraction
