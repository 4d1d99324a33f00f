"""The request builders and response parsers of the ImageSearch v2 (MMS) data API.

The v2 twin of :mod:`airflow_provider_imagesearch.api`: the same :class:`~.api.ApiRequest`, error
mapping and JSON handling, with ``service="mms"`` so the request goes to the v2 endpoint. Every
documented constraint (``huaweicloudsdkimagesearch`` 3.1.219, ``v2/model``) is checked here, naming the
field, so a bad value never leaves the process. All five calls are ``POST
/v2/{project_id}/mms/{service_name}/...``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_provider_imagesearch import api, validation
from airflow_provider_imagesearch.api import ApiRequest, ErrorCodes
from airflow_provider_imagesearch.errors import ImageSearchValidationError
from airflow_provider_imagesearch.models_v2 import (
    LastItem,
    V2AddResult,
    V2CheckResult,
    V2DeleteResult,
    V2SearchResult,
)

MMS = "mms"
#: v2 errors, classified from the v2 table (page imagesearch_02_0043), never by v1's codes: v2 answers
#: ``MMS.*``, ``ModelArts.*``, ``APIGW.*`` or ``APIG.*``.
#: MMS.0001 "Request is unauthorized." (the service is not enabled), MMS.0002 "Request cannot be accessed
#: by the current authorization." and ModelArts.4204 "Request api error! The API is not subscribed." refuse
#: the caller; MMS.1001 "Service instance not found."; MMS.1014 "Build BIZ failed.", MMS.1015 "Process BIZ
#: failed." and MMS.1016 "Process INDEX failed" are "network jitter, try again later" (稍后重试). MMS.0003
#: "Invalid parameter." / "Required parameter is empty." refuses the request: an ordinary error.
V2_ERROR_CODES = ErrorCodes(
    token_rejected=api.GATEWAY_TOKEN_REJECTED_CODES,
    auth=frozenset({"MMS.0001", "MMS.0002", "ModelArts.4204"}),
    not_found=frozenset({"MMS.1001"}),
    transient=frozenset({"MMS.1014", "MMS.1015", "MMS.1016"}),
)
ITEM_ID_RANGE = (1, 256)
DESC_RANGE = (1, 2048)
TAG_VALUE_RANGE = (1, 64)
TAG_FILTER_VALUES_RANGE = (1, 32)
KEYWORD_RANGE = (1, 64)
ADD_KEYWORDS_RANGE = (1, 100)
SEARCH_KEYWORDS_RANGE = (1, 10)
IMAGE_URL_RANGE = (1, 4096)
TEXT_RANGE = (1, 512)
SEARCH_LIMIT_RANGE = (1, 1000)
#: offset + limit may not pass this (the search-after cursor goes further).
MAX_SEARCH_WINDOW = 1000
CHECK_LIMIT_RANGE = (1, 100)
#: The most items one conditional delete removes (the service's batch): its repeat deletes the next ones.
DELETE_BATCH = 100
#: The search types the service documents; the enum's values (``IMAGE`` is 0) may change, names do not.
SEARCH_TYPES = ("IMAGE", "CATEGORY", "KEYWORD", "TEXT")
#: The enum's values the docs give (page imagesearch_02_0039: the name or the value is accepted), by name.
#: Only ``IMAGE``'s is documented; the docs warn the values may change, so no other is guessed.
SEARCH_TYPE_VALUES = {"0": "IMAGE"}
#: Search types that search by an image and so need exactly one of image_url / image_base64.
IMAGE_SEARCH_TYPES = frozenset({"IMAGE", "CATEGORY"})
# The SDK does not document the service name's form; this is what is safe as one path segment.
SERVICE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
SERVICE_NAME_FORM = "1-64 characters of letters, digits, '-', '_' or '.', starting with a letter or digit"
BOX_RE = re.compile(r"\d+,\d+,\d+,\d+")


# --- field checks ----------------------------------------------------------------------------------


def service_name(value: object, field: str = "service_name") -> str:
    if not isinstance(value, str) or not SERVICE_NAME_RE.fullmatch(value):
        raise ImageSearchValidationError(field, SERVICE_NAME_FORM, value)
    return value


def _text(value: object, field: str, bounds: tuple[int, int]) -> str:
    low, high = bounds
    if not isinstance(value, str) or not low <= len(value) <= high or not value.strip():
        raise ImageSearchValidationError(field, f"a string of {low}-{high} characters, not blank", value)
    return value


def item_id(value: object, field: str = "item_id") -> str:
    return _text(value, field, ITEM_ID_RANGE)


def _is_number(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def _int_in(value: object, field: str, low: int, high: int | None = None) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        allowed = f"an integer from {low} to {high}" if high is not None else f"an integer >= {low}"
        raise ImageSearchValidationError(field, allowed, value)
    return value


def _keys(value: object, field: str, form: str) -> Mapping[str, Any]:
    if (
        not isinstance(value, Mapping)
        or not value
        or not all(isinstance(k, str) and k.strip() for k in value)
    ):
        raise ImageSearchValidationError(field, form, value)
    return value


def custom_tags(value: object, field: str = "custom_tags") -> dict[str, str]:
    """An item's string tags: ``{key: value}``, values of 1-64 characters."""
    low, high = TAG_VALUE_RANGE
    tags = _keys(value, field, f"a non-empty mapping of tag names to strings of {low}-{high} characters")
    for key, tag_value in tags.items():
        _text(tag_value, f"{field}[{key!r}]", TAG_VALUE_RANGE)
    return dict(tags)


def custom_num_tags(value: object, field: str = "custom_num_tags") -> dict[str, float]:
    """An item's numeric tags: ``{key: number}`` (finite; booleans are not numbers)."""
    tags = _keys(value, field, "a non-empty mapping of tag names to numbers")
    for key, number in tags.items():
        if not _is_number(number):
            raise ImageSearchValidationError(f"{field}[{key!r}]", "a finite number", number)
    return dict(tags)


def tag_filter(value: object, field: str = "custom_tags") -> dict[str, list[str]]:
    """A string-tag condition: ``{key: [values]}`` (any value matches); a lone string is one value."""
    low, high = TAG_FILTER_VALUES_RANGE
    tags = _keys(value, field, "a non-empty mapping of tag names to lists of strings")
    result: dict[str, list[str]] = {}
    for key, values in tags.items():
        name = f"{field}[{key!r}]"
        listed = [values] if isinstance(values, str) else values
        if not isinstance(listed, list | tuple) or not low <= len(listed) <= high:
            raise ImageSearchValidationError(
                name, f"a list of {low}-{high} strings of 1-64 characters", values
            )
        result[key] = [_text(v, name, TAG_VALUE_RANGE) for v in listed]
    return result


def range_filter(value: object, field: str = "custom_num_tags") -> dict[str, dict[str, float]]:
    """A numeric-tag condition: ``{key: {"from": low, "to": high}}``, bounds inclusive, one may be left out."""
    form = "a mapping of {'from': number, 'to': number} (inclusive; at least one, from <= to)"
    tags = _keys(value, field, "a non-empty mapping of tag names to ranges")
    result: dict[str, dict[str, float]] = {}
    for key, bounds in tags.items():
        name = f"{field}[{key!r}]"
        if not isinstance(bounds, Mapping) or not bounds or set(bounds) - {"from", "to"}:
            raise ImageSearchValidationError(name, form, bounds)
        if not all(_is_number(v) for v in bounds.values()):
            raise ImageSearchValidationError(name, form, bounds)
        if "from" in bounds and "to" in bounds and bounds["from"] > bounds["to"]:
            raise ImageSearchValidationError(name, form, bounds)
        result[key] = dict(bounds)
    return result


def keywords(
    value: object, field: str = "keywords", bounds: tuple[int, int] = ADD_KEYWORDS_RANGE
) -> list[str]:
    low, high = bounds
    klow, khigh = KEYWORD_RANGE
    form = f"a list of {low}-{high} keywords of {klow}-{khigh} characters"
    if isinstance(value, str) or not isinstance(value, list | tuple) or not low <= len(value) <= high:
        raise ImageSearchValidationError(field, form, value)
    return [_text(k, f"{field}[{i}]", KEYWORD_RANGE) for i, k in enumerate(value)]


def last_item(value: object, field: str = "last_item") -> dict[str, Any]:
    """The search-after cursor: a :class:`~.models_v2.LastItem` or ``{"score": number, "id": item id}``."""
    if isinstance(value, LastItem):
        value = value.to_dict()
    form = "a mapping {'score': number, 'id': item id} (a previous page's last_item)"
    if not isinstance(value, Mapping) or set(value) != {"score", "id"} or not _is_number(value["score"]):
        raise ImageSearchValidationError(field, form, value)
    return {"score": value["score"], "id": item_id(value["id"], f"{field}.id")}


def search_type(value: object, field: str = "search_type") -> str:
    """The search type's name: ``value`` is the enum's name, or its documented value (``"0"``: IMAGE)."""
    if isinstance(value, str) and value in SEARCH_TYPES:
        return value
    if isinstance(value, str) and value in SEARCH_TYPE_VALUES:
        return SEARCH_TYPE_VALUES[value]
    values = ", ".join(f"{number!r} for {name}" for number, name in SEARCH_TYPE_VALUES.items())
    raise ImageSearchValidationError(
        field, f"one of {', '.join(SEARCH_TYPES)} (or the value {values})", value
    )


def min_score(value: object, field: str = "min_score") -> float:
    if not _is_number(value) or not 0 <= value <= 1:  # type: ignore[operator]
        raise ImageSearchValidationError(field, "a number from 0 to 1", value)
    return value  # type: ignore[return-value]


def _image(body: dict[str, Any], image_url: str | None, image_base64: str | None, *, required: bool) -> None:
    """Exactly one of image_url / image_base64 (or neither, when ``required`` is False)."""
    if image_url is not None and image_base64 is not None:
        raise ImageSearchValidationError(
            "image_url/image_base64", "give the image as image_url or image_base64, not both", "both"
        )
    if image_url is None and image_base64 is None:
        if required:
            raise ImageSearchValidationError(
                "image_url/image_base64", "give the image as image_url or image_base64", None
            )
        return
    if image_url is not None:
        body["image_url"] = _text(image_url, "image_url", IMAGE_URL_RANGE)
    else:
        body["image_base64"] = validation.non_empty_str(image_base64, "image_base64")


def _optional_params(value: object, field: str = "optional_params") -> dict[str, Any]:
    """Passed through after a shape check: the service documents its keys per service type."""
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ImageSearchValidationError(field, "a mapping of option names to values", value)
    box = value.get("box")
    if box is not None and (not isinstance(box, str) or not BOX_RE.fullmatch(box)):
        raise ImageSearchValidationError(f"{field}['box']", "'x1,y1,x2,y2' (integers, no spaces)", box)
    return dict(value)


def _force(value: object, field: str = "force") -> bool:
    if not isinstance(value, bool):
        raise ImageSearchValidationError(field, "true or false", value)
    return value


def _path(project_id: str, name: str, suffix: str) -> str:
    validation.project_id(project_id)
    service_name(name)
    return f"/v2/{api._segment(project_id)}/mms/{api._segment(name)}/{suffix}"


def _conditions(
    body: dict[str, Any],
    item: str | None,
    tags: Mapping[str, Any] | None,
    num_tags: Mapping[str, Any] | None,
) -> None:
    """item_id, or tag conditions: at least one (an id wins: the service then ignores the tags)."""
    if item is None and tags is None and num_tags is None:
        raise ImageSearchValidationError(
            "item_id/custom_tags/custom_num_tags", "give an item_id, or custom_tags / custom_num_tags", None
        )
    if item is not None:
        body["item_id"] = item_id(item)
    if tags is not None:
        body["custom_tags"] = tag_filter(tags)
    if num_tags is not None:
        body["custom_num_tags"] = range_filter(num_tags)


# --- the five builders -------------------------------------------------------------------------------


def add_data(
    project_id: str,
    service: str,
    *,
    item_id: str,
    image_url: str | None = None,
    image_base64: str | None = None,
    desc: str | None = None,
    custom_tags: Mapping[str, str] | None = None,
    custom_num_tags: Mapping[str, float] | None = None,
    keywords: Sequence[str] | None = None,
    optional_params: Mapping[str, Any] | None = None,
    force: bool = False,
) -> ApiRequest:
    """``POST .../data/add``. Not idempotent (a repeat of an add that took effect is refused) unless
    ``force`` (overwrite), which makes a repeat harmless."""
    path = _path(project_id, service, "data/add")
    body: dict[str, Any] = {"item_id": _item_id(item_id)}
    _image(body, image_url, image_base64, required=True)
    if _force(force):
        body["force"] = True
    _item_fields(body, desc, custom_tags, custom_num_tags)
    if keywords is not None:
        body["keywords"] = _keywords(keywords)
    if optional_params is not None:
        body["optional_params"] = _optional_params(optional_params)
    return ApiRequest("v2_add_data", "POST", path, body, force, project_id, MMS)


def update_data(
    project_id: str,
    service: str,
    *,
    item_id: str,
    desc: str | None = None,
    custom_tags: Mapping[str, str] | None = None,
    custom_num_tags: Mapping[str, float] | None = None,
) -> ApiRequest:
    """``POST .../data/update``: replace an item's description and tags (idempotent)."""
    path = _path(project_id, service, "data/update")
    body: dict[str, Any] = {"item_id": _item_id(item_id)}
    if desc is None and custom_tags is None and custom_num_tags is None:
        raise ImageSearchValidationError(
            "desc/custom_tags/custom_num_tags", "give at least one field to update", None
        )
    _item_fields(body, desc, custom_tags, custom_num_tags)
    return ApiRequest("v2_update_data", "POST", path, body, True, project_id, MMS)


def delete_data(
    project_id: str,
    service: str,
    *,
    item_id: str | None = None,
    custom_tags: Mapping[str, Any] | None = None,
    custom_num_tags: Mapping[str, Any] | None = None,
    force: bool = False,
) -> ApiRequest:
    """``POST .../data/delete``: one item by id, or up to 100 matching the tag conditions per call.

    ``force``: deleting a missing item id succeeds (idempotent delete). A delete by id is idempotent and
    retried as such; a conditional one is not: its repeat deletes the *next* batch of up to 100, so it is
    retried only when the request provably never left.
    """
    path = _path(project_id, service, "data/delete")
    body: dict[str, Any] = {}
    if _force(force):
        body["force"] = True
    _conditions(body, item_id, custom_tags, custom_num_tags)
    return ApiRequest("v2_delete_data", "POST", path, body, item_id is not None, project_id, MMS)


def check_data(
    project_id: str,
    service: str,
    *,
    item_id: str | None = None,
    custom_tags: Mapping[str, Any] | None = None,
    custom_num_tags: Mapping[str, Any] | None = None,
    limit: int | None = None,
    last_item: Mapping[str, Any] | LastItem | None = None,
) -> ApiRequest:
    """``POST .../data/check``: whether an item id exists, or which items match tag conditions."""
    path = _path(project_id, service, "data/check")
    body: dict[str, Any] = {}
    _conditions(body, item_id, custom_tags, custom_num_tags)
    if limit is not None:
        body["limit"] = _int_in(limit, "limit", *CHECK_LIMIT_RANGE)
    if last_item is not None:
        body["last_item"] = _last_item(last_item)
    return ApiRequest("v2_check_data", "POST", path, body, True, project_id, MMS)


def search(
    project_id: str,
    service: str,
    *,
    search_type: str = "IMAGE",
    image_url: str | None = None,
    image_base64: str | None = None,
    keywords: Sequence[str] | None = None,
    text: str | None = None,
    limit: int = 10,
    offset: int = 0,
    last_item: Mapping[str, Any] | LastItem | None = None,
    min_score: float | None = None,
    custom_tags: Mapping[str, Any] | None = None,
    custom_num_tags: Mapping[str, Any] | None = None,
    optional_params: Mapping[str, Any] | None = None,
) -> ApiRequest:
    """``POST .../search``: ``IMAGE``/``CATEGORY`` by an image, ``KEYWORD`` by keywords, ``TEXT`` by text.

    ``limit`` 1-1000 and ``offset + limit`` <= 1000; page further with ``last_item`` (search-after).
    """
    path = _path(project_id, service, "search")
    kind = _search_type(search_type)
    # Sent as given (the service takes the name or the value); checked below by its name.
    body: dict[str, Any] = {"search_type": search_type}
    body["limit"] = _int_in(limit, "limit", *SEARCH_LIMIT_RANGE)
    body["offset"] = _int_in(offset, "offset", 0)
    if offset + limit > MAX_SEARCH_WINDOW:
        raise ImageSearchValidationError(
            "offset+limit",
            f"at most {MAX_SEARCH_WINDOW} (page further with last_item, as search_all does)",
            offset + limit,
        )
    _image(body, image_url, image_base64, required=kind in IMAGE_SEARCH_TYPES)
    if keywords is not None:
        body["keywords"] = _keywords(keywords, bounds=SEARCH_KEYWORDS_RANGE)
    elif kind == "KEYWORD":
        raise ImageSearchValidationError("keywords", "required for search_type KEYWORD", None)
    if text is not None:
        body["text"] = _text(text, "text", TEXT_RANGE)
    elif kind == "TEXT":
        raise ImageSearchValidationError("text", "required for search_type TEXT", None)
    if last_item is not None:
        body["last_item"] = _last_item(last_item)
    if min_score is not None:
        body["min_score"] = _min_score(min_score)
    if custom_tags is not None:
        body["custom_tags"] = tag_filter(custom_tags)
    if custom_num_tags is not None:
        body["custom_num_tags"] = range_filter(custom_num_tags)
    if optional_params is not None:
        body["optional_params"] = _optional_params(optional_params)
    return ApiRequest("v2_search", "POST", path, body, True, project_id, MMS)


# The builders' keyword arguments shadow the checks' names; these aliases keep both readable.
_item_id, _keywords, _last_item, _search_type, _min_score = (
    item_id,
    keywords,
    last_item,
    search_type,
    min_score,
)
_custom_tags, _custom_num_tags = custom_tags, custom_num_tags


def _item_fields(
    body: dict[str, Any],
    desc: str | None,
    tags: Mapping[str, str] | None,
    num_tags: Mapping[str, float] | None,
) -> None:
    if desc is not None:
        body["desc"] = _text(desc, "desc", DESC_RANGE)
    if tags is not None:
        body["custom_tags"] = _custom_tags(tags)
    if num_tags is not None:
        body["custom_num_tags"] = _custom_num_tags(num_tags)


# --- responses ---------------------------------------------------------------------------------------


def _body_item_id(request: ApiRequest) -> str | None:
    value = (request.body or {}).get("item_id")
    return value if isinstance(value, str) else None


def _with_data(body: Mapping[str, Any]) -> Mapping[str, Any]:
    """The answer with ``data`` as the SDK models it: optional. Absent, it reads as empty (no results,
    no items); an id check's ``existed`` is still required (whether the item exists cannot be read from
    nothing)."""
    return body if "data" in body else {**body, "data": None}


def _delete_result(request: ApiRequest, body: Mapping[str, Any]) -> V2DeleteResult:
    """A conditional delete answers ``data``; a delete by id answers none ("仅在条件删除时存在该字段").

    Nothing is invented. Success of a delete by id without ``force`` means the item was there and is gone
    (a missing item is refused): one deleted. With ``force`` the answer is the same whether or not the item
    was there: no id and no count (None); ``ImageSearchV2DeleteDataOperator`` sends its forced delete
    without ``force`` (and takes "not there" for success) to report a count.
    """
    item = _body_item_id(request)
    if item is None or body.get("data") is not None:
        return V2DeleteResult.from_api(_with_data(body))
    api._result_string(body)
    if (request.body or {}).get("force"):
        return V2DeleteResult(deleted_ids=())
    return V2DeleteResult.deleted_item(item)


api.register_error_codes(MMS, V2_ERROR_CODES)
api.register_result_parsers(
    {
        "v2_add_data": lambda req, body: V2AddResult.from_api(body, _body_item_id(req) or ""),
        "v2_update_data": lambda req, body: api._result_string(body),
        "v2_delete_data": _delete_result,
        "v2_check_data": lambda req, body: V2CheckResult.from_api(_with_data(body), _body_item_id(req)),
        "v2_search": lambda req, body: V2SearchResult.from_api(_with_data(body)),
    }
)
