"""Checking the rows of a v2 (MMS) import manifest: data items of a service.

Sources and chunking are v1's (:mod:`~airflow_provider_imagesearch.imports.manifest`); only the columns
differ. Columns: ``item_id`` (required, 1-256 characters: the ledger's key), the image as exactly one of
``image_url`` (1-4096 characters), ``image_base64`` or ``file`` (a local file whose bytes are sent as
``image_base64``), ``desc`` (1-2048 characters), ``custom_tags`` (a JSON object of strings) and/or
``tag.<key>`` columns (string values of 1-64 characters), ``custom_num_tags`` (a JSON object of numbers)
and/or ``num.<key>`` columns (numbers; a CSV's text is parsed), ``keywords`` (a list, a JSON list, or
comma-separated text; 1-100 keywords of 1-64 characters). An empty cell is an absent field. The limits
are those of ``huaweicloudsdkimagesearch`` 3.1.219's ``AddDataParam`` (images of at most 5 MB), checked
by :mod:`~airflow_provider_imagesearch.api_v2` so that a bad row is recorded ``invalid`` naming the
field, before any request.

The fingerprint covers every sent field, in two halves: 16 hex digits of what only an add can change
(the image's bytes or URL, the keywords, and which of desc / tag keys / numeric tag keys are present) and
16 of what ``data/update`` can change (desc and both tag maps' values). A changed row whose first half is
unchanged is sent as ``data/update``; otherwise as an add with ``force`` (see
:class:`~airflow_provider_imagesearch.imports.apis.V2DataApi`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from airflow_provider_imagesearch import api_v2
from airflow_provider_imagesearch.errors import ImageSearchValidationError
from airflow_provider_imagesearch.imports.manifest import (
    READ_ERROR,
    ManifestRow,
    _file_digest,
    _missing,
    _plain,
    check_encodable,
    check_no_control_characters,
    fingerprint,
    invalid_reason,
    ledger_key,
    map_pairs,
)

#: ``AddDataParam.image_base64``: "图像文件大小要求不超过5M" (the image file at most 5 MB; imagesearch-api.md
#: §4.2). Its base64 (6,990,508 bytes) plus the other fields at their documented maxima (item_id 256,
#: desc 2048, image_url 4096, 100 keywords of 64 characters, tags) stays far under API Gateway's 12 MB
#: body limit (§3.2; :data:`~airflow_provider_imagesearch.imports.manifest.MAX_BODY_BYTES`). The service's
#: own body limit (IS.0006) is undocumented: a row it refuses is invalid after one send (imports/apis.py).
MAX_IMAGE_BYTES = 5 * 1024 * 1024
TAG_PREFIX = "tag."
NUM_PREFIX = "num."
IMAGE_FIELDS = ("image_url", "image_base64", "file")
#: The payload keys a checked row carries (``ManifestRow.tags`` holds them for v2).
PAYLOAD_KEYS = ("image_url", "image_base64", "desc", "custom_tags", "custom_num_tags", "keywords")


def _digest(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def split_fingerprint(value: str | None) -> tuple[str | None, str | None]:
    """(the add-only half, the updatable half) of a v2 fingerprint."""
    if not value or len(value) != 32:
        return None, None
    return value[:16], value[16:]


def _get(raw: Mapping[str, Any], key: str) -> Any:
    value = raw.get(key)
    return None if _missing(value) else _plain(value)


def _json_object(value: Any, field: str, form: str) -> Mapping[str, Any]:
    value = map_pairs(value, field)  # a Parquet/Arrow MAP column
    if isinstance(value, list | tuple) and not value:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ImageSearchValidationError(field, form, value) from None
    if not isinstance(value, Mapping):
        raise ImageSearchValidationError(field, form, value)
    return value


def _custom_tags(raw: Mapping[str, Any]) -> dict[str, str] | None:
    tags: dict[str, Any] = {}
    value = _get(raw, "custom_tags")
    if value is not None:
        form = "a JSON object of tag name -> string of 1-64 characters"
        tags.update((k, v) for k, v in _json_object(value, "custom_tags", form).items() if v is not None)
    for column, tag in raw.items():
        if isinstance(column, str) and column.startswith(TAG_PREFIX) and not _missing(tag):
            tags[column[len(TAG_PREFIX) :]] = _plain(tag)
    return api_v2.custom_tags(tags) if tags else None


#: The largest integer magnitude a numeric tag takes: a double (the API's type for ``custom_num_tags``)
#: holds every integer up to 2**53 exactly and only some beyond, so a larger one (a 20-digit id, a
#: barcode exported as a number) would be sent as a different number than the catalogue's.
MAX_EXACT_INTEGER = 2**53
FINITE_FORM = "a finite number within a double's range"
INTEGER_FORM = (
    "an integer within +-2**53 (9,007,199,254,740,992: a double, the API's number, holds every integer up "
    "to it exactly and only some beyond)"
)


def _number(value: Any, field: str) -> float:
    """A finite float from text, an int, a float or a ``Decimal`` (numpy scalars arrive as Python ones).

    An integer (an ``int``, an integral ``Decimal``, integer text) beyond :data:`MAX_EXACT_INTEGER` is
    refused, not rounded: whatever its source (JSON lines, Parquet ``int64``, SQL ``NUMERIC``, CSV), the
    same value fails its row the same way.
    """
    value = _plain(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text) if text.lstrip("+-").isdigit() else float(text)
        except ValueError:
            raise ImageSearchValidationError(field, "a finite number", value) from None
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ImageSearchValidationError(field, "a finite number", value)
    integral = isinstance(value, int) or (
        isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value()
    )
    if integral and abs(Decimal(value)) > MAX_EXACT_INTEGER:
        raise ImageSearchValidationError(field, INTEGER_FORM, value)
    try:
        number = float(value)
    except (OverflowError, ValueError):  # beyond a double's range
        raise ImageSearchValidationError(field, FINITE_FORM, value) from None
    if not math.isfinite(number):
        raise ImageSearchValidationError(field, FINITE_FORM, value)
    return number


def _custom_num_tags(raw: Mapping[str, Any]) -> dict[str, float] | None:
    tags: dict[str, float] = {}
    value = _get(raw, "custom_num_tags")
    if value is not None:
        form = "a JSON object of tag name -> number"
        for key, number in _json_object(value, "custom_num_tags", form).items():
            if number is not None:
                if isinstance(number, str):  # inside a JSON object a number is a number
                    raise ImageSearchValidationError(f"custom_num_tags[{key!r}]", "a finite number", number)
                tags[key] = _number(number, f"custom_num_tags[{key!r}]")
    for column, number in raw.items():
        if isinstance(column, str) and column.startswith(NUM_PREFIX) and not _missing(number):
            key = column[len(NUM_PREFIX) :]
            # A CSV cell is text: "19.9" is the number 19.9.
            tags[key] = _number(_plain(number), f"custom_num_tags[{key!r}]")
    return api_v2.custom_num_tags(tags) if tags else None


def _keywords(raw: Mapping[str, Any]) -> list[str] | None:
    value = _get(raw, "keywords")
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                raise ImageSearchValidationError(
                    "keywords", "a list, a JSON list or comma-separated text", value
                ) from None
        else:
            value = [part.strip() for part in text.split(",") if part.strip()]
            if not value:
                return None
    return api_v2.keywords(value)


def _image(raw: Mapping[str, Any], payload: dict[str, Any]) -> tuple[str | None, Any]:
    """(the local file or None, the image's identity for the fingerprint); fills ``payload``."""
    given = [name for name in IMAGE_FIELDS if _get(raw, name) is not None]
    if len(given) != 1:
        raise ImageSearchValidationError(
            "image_url/image_base64",
            "exactly one of image_url, image_base64 or file (a local file sent as image_base64)",
            given or None,
        )
    if given[0] == "image_url":
        url = api_v2._text(_get(raw, "image_url"), "image_url", api_v2.IMAGE_URL_RANGE)
        payload["image_url"] = url
        return None, ["url", url]
    if given[0] == "image_base64":
        data = _get(raw, "image_base64")
        form = f"base64 of an image of at most {MAX_IMAGE_BYTES} bytes (JPEG, PNG, BMP, WEBP)"
        if not isinstance(data, str):
            raise ImageSearchValidationError("image_base64", form, type(data).__name__)
        try:
            decoded = base64.b64decode(data.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise ImageSearchValidationError("image_base64", form, "not base64") from None
        if not decoded or len(decoded) > MAX_IMAGE_BYTES:
            raise ImageSearchValidationError("image_base64", form, f"{len(decoded)} bytes")
        payload["image_base64"] = data.strip()
        return None, ["bytes", hashlib.sha256(decoded).hexdigest()]
    file = _get(raw, "file")
    if not isinstance(file, str):
        raise ImageSearchValidationError("file", "a local file path", type(file).__name__)
    return file, ["bytes", _file_digest(file, MAX_IMAGE_BYTES)]


def check_row(raw: Mapping[str, Any], row: int, *, region: str | None = None) -> ManifestRow:
    """Check one raw v2 row; never raises: a bad row comes back with ``invalid`` naming the field.

    ``path`` of the result is the item id (the ledger's key) and ``tags`` the payload to send
    (:data:`PAYLOAD_KEYS`); ``region`` is unused (a v2 image URL need not be in OBS).
    """
    item = _get(raw, "item_id")
    try:
        if READ_ERROR in raw:
            raise ValueError(raw[READ_ERROR])
        if item is None:
            raise ValueError("no item_id: the column 'item_id' is required")
        if not isinstance(item, str):
            raise ImageSearchValidationError(
                "item_id", "a string of 1-256 characters (quote numeric ids)", item
            )
        check_no_control_characters(api_v2.item_id(item), "item_id")
        check_encodable(item, "item_id")
        payload: dict[str, Any] = {}
        file, image = _image(raw, payload)
        desc = _get(raw, "desc")
        if desc is not None:
            payload["desc"] = api_v2._text(desc, "desc", api_v2.DESC_RANGE)
        tags = _custom_tags(raw)
        if tags is not None:
            payload["custom_tags"] = tags
        numbers = _custom_num_tags(raw)
        if numbers is not None:
            payload["custom_num_tags"] = numbers
        keywords = _keywords(raw)
        if keywords is not None:
            payload["keywords"] = keywords
        add_only = {
            "image": image,
            "keywords": keywords,
            "shape": [desc is not None, sorted(tags or {}), sorted(numbers or {})],
        }
        updatable = {"desc": payload.get("desc"), "tags": tags, "numbers": numbers}
        check_encodable(payload, "the row's fields")
        return ManifestRow(row, item, payload, file, _digest(add_only) + _digest(updatable))
    except Exception as error:  # never raises: any odd value fails its row only
        reason = invalid_reason(error)
        # Keyed by its id even when the id itself is refused (too long, a tab): the ledger remembers the
        # row; an id with a NUL, which the ledger cannot store, is reported by its row number only.
        return ManifestRow(row, ledger_key(item), {}, None, fingerprint({"invalid": reason}, None), reason)
