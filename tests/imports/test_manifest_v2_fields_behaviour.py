"""The v2 (MMS) row checks a user meets: each refusal names its field, images are held to the API's 5 MB
whatever their source (``image_base64`` text, a local ``file``), and base64 with stray characters is
refused rather than decoded into other bytes. A row's fingerprint, stored in the ledger, is pinned for
each image source: runs after an upgrade compare with what runs before it stored.
"""

from __future__ import annotations

import base64
from pathlib import Path

from airflow_provider_imagesearch.imports.manifest_v2 import MAX_IMAGE_BYTES, check_row

IMAGE = "https://shop.example.com/1.jpg"


def _invalid(raw: dict[str, object]) -> str:
    row = check_row({"item_id": "sku-1", **raw}, 1)
    assert row.invalid is not None
    assert row.tags == {}
    return row.invalid


def test_an_image_url_too_long_is_refused_naming_image_url() -> None:
    assert _invalid({"image_url": "https://x/" + "a" * 4096}).startswith("Invalid image_url ")


def test_a_description_too_long_is_refused_naming_desc() -> None:
    assert _invalid({"image_url": IMAGE, "desc": "d" * 2049}).startswith("Invalid desc ")


def test_an_item_id_that_is_not_valid_unicode_is_refused_naming_item_id() -> None:
    reason = _invalid({"item_id": "sku-\udcff", "image_url": IMAGE})
    assert reason.startswith("Invalid item_id "), reason
    assert "lone surrogate" in reason


def test_base64_with_stray_characters_is_refused_not_decoded_into_other_bytes() -> None:
    text = base64.b64encode(b"\x89PNG\r\n\x1a\n" * 4).decode("ascii")
    reason = _invalid({"image_base64": text[:8] + "*" + text[8:]})
    assert reason.startswith("Invalid image_base64 'not base64': base64 of an image of at most "), reason


def test_a_base64_image_of_5_mb_is_sent_and_one_byte_more_is_refused() -> None:
    exact = base64.b64encode(b"\xff" * MAX_IMAGE_BYTES).decode("ascii")
    row = check_row({"item_id": "sku-1", "image_base64": exact}, 1)
    assert row.invalid is None, row.invalid
    assert row.tags == {"image_base64": exact}
    over = base64.b64encode(b"\xff" * (MAX_IMAGE_BYTES + 1)).decode("ascii")
    reason = _invalid({"image_base64": over})
    assert reason == (
        f"Invalid image_base64 '{MAX_IMAGE_BYTES + 1} bytes': base64 of an image of at most {MAX_IMAGE_BYTES} "
        "bytes (JPEG, PNG, BMP, WEBP)"
    )


def test_a_local_file_over_5_mb_is_refused(tmp_path: Path) -> None:
    """The v2 API takes images of at most 5 MB (v1 takes 8 MiB files): a bigger file fails its row."""
    exact, over = tmp_path / "exact.jpg", tmp_path / "over.jpg"
    exact.write_bytes(b"\xff" * MAX_IMAGE_BYTES)
    over.write_bytes(b"\xff" * (MAX_IMAGE_BYTES + 1))
    assert check_row({"item_id": "sku-1", "file": str(exact)}, 1).invalid is None
    reason = _invalid({"file": str(over)})
    assert f"is {MAX_IMAGE_BYTES + 1} bytes, more than the {MAX_IMAGE_BYTES} allowed" in reason, reason


def test_the_fingerprint_of_each_image_source_is_the_one_earlier_runs_stored(tmp_path: Path) -> None:
    image = tmp_path / "1.jpg"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" * 4)
    encoded = base64.b64encode(image.read_bytes()).decode("ascii")
    fingerprints = {
        source: check_row({"item_id": "sku-1", **raw}, 1).fingerprint
        for source, raw in {
            "url": {"image_url": IMAGE},
            "base64": {"image_base64": encoded},
            "file": {"file": str(image)},
        }.items()
    }
    assert fingerprints == {
        "url": "e8eb4913722380e639dec72ad093e656",
        "base64": "9fa14e54a004e6c439dec72ad093e656",
        "file": "9fa14e54a004e6c439dec72ad093e656",
    }
    # The same bytes sent as base64 or from a file are the same image.
    assert fingerprints["base64"] == fingerprints["file"]


def test_a_field_that_is_not_valid_unicode_fails_its_row_before_any_request() -> None:
    """A lone surrogate (a broken decode upstream) in a sent field cannot be encoded as UTF-8 JSON: the
    row is invalid with the reason, rather than failing its request (or the whole batch)."""
    reason = _invalid({"image_url": IMAGE, "desc": "rouge \udcff"})
    assert reason.startswith("Invalid the row's fields "), reason
    assert reason.endswith(": valid Unicode text (it holds a lone surrogate, which cannot be encoded)"), (
        reason
    )


def test_the_fingerprint_of_an_invalid_row_is_the_one_earlier_runs_stored() -> None:
    """An invalid row is remembered in the ledger by this fingerprint: a rerun with the row unchanged
    knows it was refused before."""
    row = check_row({"item_id": "sku-1"}, 1)
    assert row.invalid is not None
    assert row.fingerprint == "fb9b33c68a3a4dad3c07ae4678f1634e"
