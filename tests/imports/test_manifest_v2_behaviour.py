"""Checking v2 (MMS) manifest rows: what a user sees of a numeric tag and of a row's fingerprint.

A numeric tag given as signed integer text beyond +-2**53 is refused naming its field (a double would
silently send another number than the catalogue's), like unsigned text and a JSON integer are. A
boolean or a list is not a number either. ``custom_tags`` must be a JSON object (or a Parquet map, an
empty one arriving as an empty list): a non-empty list is refused naming the field. A row's
fingerprint is two halves of 16 hex digits: what only an add can change, then what ``data/update`` can
change (``split_fingerprint``), which together are the fingerprint.
"""

from __future__ import annotations

import pytest

from airflow_provider_imagesearch.imports.manifest_v2 import INTEGER_FORM, check_row, split_fingerprint

IMAGE = "https://shop.example.com/1.jpg"


@pytest.mark.parametrize("text", ["-9007199254740993", "+9007199254740993", "9007199254740993"])
def test_integer_text_beyond_2_53_is_refused_whatever_its_sign(text: str) -> None:
    row = check_row({"item_id": "sku-1", "image_url": IMAGE, "num.barcode": text}, 1)
    assert row.invalid is not None
    assert "custom_num_tags['barcode']" in row.invalid, row.invalid
    assert INTEGER_FORM in row.invalid, row.invalid
    assert row.tags == {}


@pytest.mark.parametrize(("text", "number"), [("-9007199254740992", -(2.0**53)), ("+12", 12.0), ("-3", -3.0)])
def test_signed_integer_text_within_2_53_is_sent_as_its_number(text: str, number: float) -> None:
    row = check_row({"item_id": "sku-1", "image_url": IMAGE, "num.barcode": text}, 1)
    assert row.invalid is None, row.invalid
    assert row.tags["custom_num_tags"] == {"barcode": number}


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"num.in_stock": True}, "custom_num_tags['in_stock']"),
        ({"custom_num_tags": '{"in_stock": false}'}, "custom_num_tags['in_stock']"),
        ({"custom_num_tags": '{"sizes": [38, 39]}'}, "custom_num_tags['sizes']"),
        ({"custom_num_tags": '{"size": null, "price": {"eur": 3}}'}, "custom_num_tags['price']"),
    ],
)
def test_a_numeric_tag_that_is_not_a_number_is_refused_naming_it(raw: dict[str, object], field: str) -> None:
    row = check_row({"item_id": "sku-1", "image_url": IMAGE, **raw}, 1)
    assert row.invalid is not None
    assert row.invalid.startswith(f"Invalid {field} "), row.invalid
    assert "a finite number" in row.invalid, row.invalid


@pytest.mark.parametrize(
    ("column", "form"),
    [
        ("custom_tags", "a JSON object of tag name -> string of 1-64 characters"),
        ("custom_num_tags", "a JSON object of tag name -> number"),
    ],
)
@pytest.mark.parametrize("value", [["red", "blue"], '["red", "blue"]', "red"])
def test_a_tag_map_that_is_not_an_object_is_refused_naming_it_and_its_form(
    column: str, form: str, value: object
) -> None:
    row = check_row({"item_id": "sku-1", "image_url": IMAGE, column: value}, 1)
    assert row.invalid is not None
    assert row.invalid.startswith(f"Invalid {column} "), row.invalid
    assert row.invalid.endswith(f": {form}"), row.invalid


@pytest.mark.parametrize("column", ["custom_tags", "custom_num_tags"])
def test_an_empty_map_is_no_tags(column: str) -> None:
    """An empty Parquet/Arrow map arrives as an empty list: the row has no such tags, and is valid."""
    row = check_row({"item_id": "sku-1", "image_url": IMAGE, column: []}, 1)
    assert row.invalid is None, row.invalid
    assert row.tags == {"image_url": IMAGE}


def test_a_fingerprint_splits_into_its_add_half_and_its_update_half() -> None:
    base = {"item_id": "sku-1", "image_url": IMAGE, "desc": "red shoe", "tag.color": "red"}
    row = check_row(base, 1)
    described = check_row({**base, "desc": "a red shoe"}, 1)
    moved = check_row({**base, "image_url": IMAGE.replace("1.jpg", "2.jpg")}, 1)
    add_half, update_half = split_fingerprint(row.fingerprint)
    assert add_half is not None
    assert update_half is not None
    assert (len(add_half), len(update_half)) == (16, 16)
    assert add_half + update_half == row.fingerprint
    # A new description changes only what data/update can send; a new image, only what an add can.
    assert split_fingerprint(described.fingerprint) == (add_half, split_fingerprint(described.fingerprint)[1])
    assert split_fingerprint(described.fingerprint)[1] != update_half
    assert split_fingerprint(moved.fingerprint) == (split_fingerprint(moved.fingerprint)[0], update_half)
    assert split_fingerprint(moved.fingerprint)[0] != add_half
    assert split_fingerprint(None) == (None, None)
    assert split_fingerprint("ab" * 8) == (None, None)  # not a v2 fingerprint (16 digits)


def test_a_rows_fingerprint_does_not_depend_on_the_order_of_its_tags() -> None:
    """A catalogue export that lists the same tags in another order is unchanged: a rerun sends nothing."""
    first = check_row(
        {
            "item_id": "sku-1",
            "image_url": IMAGE,
            "custom_tags": '{"color": "red", "size": "M"}',
            "num.a": 1,
            "num.b": 2,
        },
        1,
    )
    again = check_row(
        {
            "item_id": "sku-1",
            "image_url": IMAGE,
            "num.b": 2,
            "num.a": 1,
            "custom_tags": '{"size": "M", "color": "red"}',
        },
        7,
    )
    assert first.invalid is None, first.invalid
    assert again.fingerprint == first.fingerprint


def test_a_rows_fingerprint_is_the_one_earlier_runs_stored() -> None:
    """The fingerprint is stored in the ledger, and a run compares the manifest with what runs before it
    (before an upgrade too) stored: its computation is pinned, non-ASCII text included, or every row
    would be sent again once."""
    row = check_row(
        {
            "item_id": "sku-é",
            "image_url": "https://shop.example.com/é.jpg",
            "desc": "chaussure rouge à lacets",
            "tag.couleur": "rouge",
            "num.prix": "19.9",
            "keywords": "été, chaussure",
        },
        1,
    )
    assert row.invalid is None, row.invalid
    assert row.fingerprint == "81f32a60d8e86acd380d5a24056d6024"


def test_empty_cells_are_absent_fields() -> None:
    """A CSV row leaves the columns it does not use empty: they are not sent, and do not count as a
    second image source."""
    row = check_row(
        {
            "item_id": "sku-1",
            "image_url": IMAGE,
            "image_base64": "",
            "file": " ",
            "desc": "",
            "custom_tags": "",
            "custom_num_tags": float("nan"),
            "keywords": "",
        },
        1,
    )
    assert row.invalid is None, row.invalid
    assert row.tags == {"image_url": IMAGE}
    assert row.fingerprint == check_row({"item_id": "sku-1", "image_url": IMAGE}, 1).fingerprint
