"""The five ImageSearch v2 (MMS) data routes, validated and answered as the v2 pages and SDK describe.

All are ``POST /v2/{project_id}/mms/{service_name}/data/add | data/check | data/delete | data/update`` and
``POST /v2/{project_id}/mms/{service_name}/search``, shaped as ``huaweicloudsdkimagesearch`` 3.1.219's v2
models. v2 services live per (project, service name), apart from v1 instances; they are created in the
console, so the emulator has them from the seed (``v2_services``) or ``POST /_emulator/v2-services``.
Authentication, projects and gateway faults are v1's.

Errors are HTTP 400 in the v2 families (page imagesearch_02_0043), never ``IS.*``: MMS.0003 with the field
(``"Invalid parameter: item_id"``, ``"Required parameter is empty: search_type"``, and ``"Invalid parameter:
custom_tags"`` for a tag key the service does not define, as the update page's example), MMS.1001 an
unknown service. Where the docs give no code the emulator uses its own (:data:`~.constants.EMULATOR_OWN_CODES`):
MMS.9001 add without ``force`` of an existing item, MMS.9002 update or delete-by-id of a missing item.

Behaviour from the pages: delete by ``item_id`` answers ``{"result": "success"}`` without ``data`` (``data``
is for a conditional delete only; ``force`` only matters for an id); ``search_type`` is the enum's name or
its value (``IMAGE`` or ``"0"``, the one value the docs give); ``optional_params.collapse_key`` keeps the
best-scoring result per value of that tag and drops results without it; image searches answer
``image_info`` (the subject searched for and the subjects found in the query image).

Scores: ``IMAGE``/``CATEGORY`` compare image digests (1.0 for the same bytes or URL), ``KEYWORD`` is the
share of the query's keywords the item has, ``TEXT`` the share of the text's words found in the item's
description and keywords; items scoring 0 are not results. Order: score descending, then id; the
search-after cursor ``last_item`` continues strictly after its (score, id).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable
from typing import Any

from airflow_provider_imagesearch.emulator import constants as c
from airflow_provider_imagesearch.emulator.routes import ServiceError, Settings, _no_constant, service_error
from airflow_provider_imagesearch.emulator.state import (
    V2_SEARCH_TYPES,
    State,
    V2Data,
    V2Service,
    bytes_digest,
    path_digest,
    similarity,
)
from airflow_provider_imagesearch.emulator.wire import Request, Response

R2_ADD = "POST /v2/{project_id}/mms/{service_name}/data/add"
R2_CHECK = "POST /v2/{project_id}/mms/{service_name}/data/check"
R2_DELETE = "POST /v2/{project_id}/mms/{service_name}/data/delete"
R2_UPDATE = "POST /v2/{project_id}/mms/{service_name}/data/update"
R2_SEARCH = "POST /v2/{project_id}/mms/{service_name}/search"
V2_ROUTES = frozenset({R2_ADD, R2_CHECK, R2_DELETE, R2_UPDATE, R2_SEARCH})
_DATA_ROUTES = {"add": R2_ADD, "check": R2_CHECK, "delete": R2_DELETE, "update": R2_UPDATE}
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM")
SEARCH_TYPES = V2_SEARCH_TYPES
#: ``search_type`` may be the enum's value; the docs give one (``IMAGE/0``) and say values may change.
SEARCH_TYPE_VALUES = {"0": "IMAGE"}
IMAGE_SEARCH_TYPES = frozenset({"IMAGE", "CATEGORY"})
#: At most this many items per conditional delete (documented on DeleteInfo.delete_num).
DELETE_BATCH = 100
#: ``image_base64``: "图像文件大小要求不超过5M".
MAX_IMAGE_BYTES = 5 * 1024 * 1024
#: The keys of ``AddDataOptionalParam`` / ``SearchOptionalParam`` (3.1.219); any other key is refused.
ADD_OPTIONS = frozenset({"do_det", "box", "do_cls", "category"})
SEARCH_OPTIONS = ADD_OPTIONS | {"collapse_key", "max_scan_num", "nprobe", "text_lang"}
#: ``box``: "x1,y1,x2,y2" (no spaces), x1 < x2, y1 < y2, and by default at least 15 px each way.
BOX_RE = re.compile(r"(\d+),(\d+),(\d+),(\d+)")
MIN_BOX_SIDE = 15
#: What ``image_info`` reports when no ``box``/``category`` is given: the emulator detects no real
#: subject, so it reports one whole-image subject of category 0 (its own choice of box and name).
DEFAULT_OBJECT = {"box": "0,0,64,64", "category": 0, "category_name": "other"}


def match_v2(method: str, path: str) -> tuple[str, str, str | None] | None:
    """``(route, project_id, service_name)`` of a v2 route, or None."""
    parts = path.split("/")
    if (
        len(parts) < 6
        or parts[0] != ""
        or parts[1] != "v2"
        or parts[3] != "mms"
        or not parts[2]
        or not parts[4]
    ):
        return None
    if method != "POST":
        return None
    if len(parts) == 6 and parts[5] == "search":
        return R2_SEARCH, parts[2], parts[4]
    if len(parts) == 7 and parts[5] == "data" and parts[6] in _DATA_ROUTES:
        return _DATA_ROUTES[parts[6]], parts[2], parts[4]
    return None


# --- field checks (MMS.0003 naming the field) -----------------------------------------------------


def _invalid(field: str) -> ServiceError:
    return ServiceError(c.mms_invalid(field))


def _body(request: Request) -> dict[str, Any]:
    """The JSON object in the body (UTF-8, no ``NaN``), else MMS.0003."""
    if request.body and not request.headers.get("content-type", "").strip():
        raise _invalid("Content-Type")
    if len(request.body) > c.SERVICE_MAX_BODY:
        raise _invalid("request body")
    try:
        data = json.loads(request.body.decode("utf-8"), parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _invalid("request body") from exc
    if not isinstance(data, dict):
        raise _invalid("request body")
    return data


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _string(value: Any, low: int, high: int, field: str) -> str:
    if not isinstance(value, str) or not low <= len(value) <= high:
        raise _invalid(field)
    return value


def _required(body: dict[str, Any], key: str) -> Any:
    value = body.get(key)
    if value is None or value == "":
        raise ServiceError(c.mms_missing(key))
    return value


def _item_id(body: dict[str, Any]) -> str:
    return _string(_required(body, "item_id"), 1, 256, "item_id")


def _check_keys(keys: Any, allowed: list[str] | None, field: str) -> None:
    if allowed is not None and not set(keys) <= set(allowed):
        raise _invalid(field)


def _custom_tags(value: Any, service: V2Service) -> dict[str, str]:
    if not isinstance(value, dict):
        raise _invalid("custom_tags")
    for tag_value in value.values():
        _string(tag_value, 1, 64, "custom_tags")
    _check_keys(value, service.custom_tags, "custom_tags")
    return dict(value)


def _custom_num_tags(value: Any, service: V2Service) -> dict[str, float]:
    if not isinstance(value, dict) or not all(_is_number(v) for v in value.values()):
        raise _invalid("custom_num_tags")
    _check_keys(value, service.custom_num_tags, "custom_num_tags")
    return {k: float(v) for k, v in value.items()}


def _keywords(value: Any, high: int) -> list[str]:
    if not isinstance(value, list) or not 1 <= len(value) <= high:
        raise _invalid("keywords")
    return [_string(k, 1, 64, "keywords") for k in value]


def _tag_filter(value: Any, service: V2Service) -> dict[str, list[str]]:
    if not isinstance(value, dict):
        raise _invalid("custom_tags")
    for values in value.values():
        if not isinstance(values, list) or not 1 <= len(values) <= 32:
            raise _invalid("custom_tags")
        for v in values:
            _string(v, 1, 64, "custom_tags")
    _check_keys(value, service.custom_tags, "custom_tags")
    return dict(value)


def _range_filter(value: Any, service: V2Service) -> dict[str, dict[str, float]]:
    if not isinstance(value, dict):
        raise _invalid("custom_num_tags")
    for bounds in value.values():
        if not isinstance(bounds, dict) or set(bounds) - {"from", "to"}:
            raise _invalid("custom_num_tags")
        if not all(_is_number(v) for v in bounds.values()):
            raise _invalid("custom_num_tags")
    _check_keys(value, service.custom_num_tags, "custom_num_tags")
    return dict(value)


def _last_item(value: Any) -> tuple[float, str]:
    if (
        not isinstance(value, dict)
        or not _is_number(value.get("score"))
        or not isinstance(value.get("id"), str)
    ):
        raise _invalid("last_item")
    return float(value["score"]), value["id"]


def _force(body: dict[str, Any]) -> bool:
    force = body.get("force", False)
    if not isinstance(force, bool):
        raise _invalid("force")
    return force


def _image_digest(body: dict[str, Any], *, required: bool) -> str | None:
    url, data = body.get("image_url"), body.get("image_base64")
    if url not in (None, "") and data not in (None, ""):
        raise _invalid("image_url/image_base64")  # one or the other ("二选一")
    if data not in (None, ""):
        if not isinstance(data, str):
            raise _invalid("image_base64")
        try:
            raw = base64.b64decode(data.strip(), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise _invalid("image_base64") from exc
        if not (raw.startswith(_IMAGE_MAGIC) or (raw[:4] == b"RIFF" and raw[8:12] == b"WEBP")):
            raise _invalid("image_base64")
        if len(raw) > MAX_IMAGE_BYTES:
            raise _invalid("image_base64")
        return bytes_digest(raw)
    if url not in (None, ""):
        return path_digest(_string(url, 1, 4096, "image_url"))
    if required:
        raise ServiceError(c.mms_missing("image_url/image_base64"))
    return None


def _optional_params(body: dict[str, Any], allowed: frozenset[str], service: V2Service) -> dict[str, Any]:
    """``optional_params``, checked against the SDK model's keys and documented forms."""
    value = body.get("optional_params")
    if value is None:
        return {}
    if not isinstance(value, dict) or set(value) - allowed:
        raise _invalid("optional_params")
    for key in ("do_det", "do_cls"):
        if key in value and not isinstance(value[key], bool):
            raise _invalid(f"optional_params.{key}")
    box = value.get("box")
    if box is not None:
        match = BOX_RE.fullmatch(box) if isinstance(box, str) else None
        if match is None:
            raise _invalid("optional_params.box")
        x1, y1, x2, y2 = (int(n) for n in match.groups())
        if x2 - x1 < MIN_BOX_SIDE or y2 - y1 < MIN_BOX_SIDE:
            raise _invalid("optional_params.box")
    category = value.get("category")
    if category is not None and (not _is_int(category) or category < 0):
        raise _invalid("optional_params.category")
    for key in ("max_scan_num", "nprobe"):
        if key in value and (not _is_int(value[key]) or value[key] < 1):
            raise _invalid(f"optional_params.{key}")
    if "text_lang" in value and (not isinstance(value["text_lang"], str) or not value["text_lang"]):
        raise _invalid("optional_params.text_lang")
    collapse_key = value.get("collapse_key")
    if collapse_key is not None:
        # "必须为服务实例custom_tags中已存在的key"
        if not isinstance(collapse_key, str) or not collapse_key:
            raise _invalid("optional_params.collapse_key")
        if service.custom_tags is not None and collapse_key not in service.custom_tags:
            raise _invalid("optional_params.collapse_key")
    return dict(value)


def _subject(options: dict[str, Any]) -> dict[str, Any]:
    """The subject an add or an image search reports: the given ``box``/``category``, else the default."""
    subject = dict(DEFAULT_OBJECT)
    if options.get("box") is not None:
        subject["box"] = options["box"]
    if options.get("category") is not None:
        subject["category"] = options["category"]
        subject["category_name"] = f"category {options['category']}"
    return subject


def _matches(item: V2Data, tags: dict[str, list[str]], ranges: dict[str, dict[str, float]]) -> bool:
    for key, values in tags.items():
        if item.custom_tags.get(key) not in values:
            return False
    for key, bounds in ranges.items():
        number = item.custom_num_tags.get(key)
        if number is None or number < bounds.get("from", -math.inf) or number > bounds.get("to", math.inf):
            return False
    return True


def _collapse(hits: list[tuple[float, str]], service: V2Service, key: str) -> list[tuple[float, str]]:
    """The best hit per value of tag ``key`` (``hits`` are best first); hits without the tag are dropped."""
    seen: set[str] = set()
    kept = []
    for score, item_id in hits:
        value = service.items[item_id].custom_tags.get(key)
        if value is None or value in seen:
            continue
        seen.add(value)
        kept.append((score, item_id))
    return kept


def _source(item: V2Data) -> dict[str, Any]:
    source: dict[str, Any] = {
        "custom_tags": dict(item.custom_tags),
        "custom_num_tags": dict(item.custom_num_tags),
        "keywords": list(item.keywords),
    }
    if item.desc is not None:
        source["desc"] = item.desc
    return source


def _ok(data: dict[str, Any] | None = None) -> Response:
    return Response.json(200, {"result": "success"} if data is None else {"result": "success", "data": data})


class V2:
    """Handlers of the v2 routes."""

    def __init__(self, state: State, settings: Settings | None = None) -> None:
        self.state = state
        self.settings = settings or Settings()
        self._routes: dict[str, Callable[[dict[str, Any], V2Service], Response]] = {
            R2_ADD: self._add,
            R2_CHECK: self._check,
            R2_DELETE: self._delete,
            R2_UPDATE: self._update,
            R2_SEARCH: self._search,
        }

    def handle(self, route: str, request: Request, project_id: str, name: str | None) -> Response:
        try:
            service = self.state.services.get((project_id, name or ""))
            if service is None:
                raise ServiceError(c.MMS_SERVICE_NOT_FOUND)
            return self._routes[route](_body(request), service)
        except ServiceError as exc:
            return service_error(exc.error, self.settings.own_codes_as)

    def _add(self, body: dict[str, Any], service: V2Service) -> Response:
        item_id = _item_id(body)
        force = _force(body)
        digest = _image_digest(body, required=True)
        assert digest is not None
        desc = body.get("desc")
        options = _optional_params(body, ADD_OPTIONS, service)
        item = V2Data(
            digest=digest,
            desc=None if desc is None else _string(desc, 1, 2048, "desc"),
            custom_tags=_custom_tags(body["custom_tags"], service)
            if body.get("custom_tags") is not None
            else {},
            custom_num_tags=(
                _custom_num_tags(body["custom_num_tags"], service)
                if body.get("custom_num_tags") is not None
                else {}
            ),
            keywords=_keywords(body["keywords"], 100) if body.get("keywords") is not None else [],
        )
        if item_id in service.items and not force:
            raise ServiceError(c.MMS_ITEM_EXISTS)
        service.items[item_id] = item
        return _ok({"image_info": {"objects": [_subject(options)]}})

    def _update(self, body: dict[str, Any], service: V2Service) -> Response:
        item_id = _item_id(body)
        item = service.items.get(item_id)
        desc, tags, num_tags = body.get("desc"), body.get("custom_tags"), body.get("custom_num_tags")
        new_desc = None if desc is None else _string(desc, 1, 2048, "desc")
        new_tags = None if tags is None else _custom_tags(tags, service)
        new_num = None if num_tags is None else _custom_num_tags(num_tags, service)
        if item is None:
            raise ServiceError(c.MMS_ITEM_NOT_FOUND)
        if new_desc is not None:
            item.desc = new_desc
        if new_tags is not None:
            item.custom_tags = new_tags
        if new_num is not None:
            item.custom_num_tags = new_num
        return _ok()

    def _conditions(self, body: dict[str, Any], service: V2Service) -> list[str]:
        """Ids matching the body's tag conditions, in id order; MMS.0003 when there is no condition."""
        tags, ranges = body.get("custom_tags"), body.get("custom_num_tags")
        if tags is None and ranges is None:
            raise ServiceError(c.mms_missing("item_id/custom_tags/custom_num_tags"))
        wanted = _tag_filter(tags, service) if tags is not None else {}
        bounds = _range_filter(ranges, service) if ranges is not None else {}
        return sorted(i for i, item in service.items.items() if _matches(item, wanted, bounds))

    def _check(self, body: dict[str, Any], service: V2Service) -> Response:
        limit = body.get("limit", 10)
        if not _is_int(limit) or not 1 <= limit <= 100:
            raise _invalid("limit")
        if body.get("item_id") is not None:
            item_id = _item_id(body)
            item = service.items.get(item_id)
            if item is None:
                return _ok({"existed": False})
            return _ok({"existed": True, "item_info": _source(item)})
        ids = self._conditions(body, service)
        if body.get("last_item") is not None:
            _, after = _last_item(body["last_item"])
            ids = [i for i in ids if i > after]
        page = ids[:limit]
        info: dict[str, Any] = {"total_num": len(ids), "return_num": len(page)}
        if page:
            info["last_item"] = {"score": 1.0, "id": page[-1]}
        items = [{"id": i, "score": 1.0, "source": _source(service.items[i])} for i in page]
        return _ok({"items": items, "check_info": info})

    def _delete(self, body: dict[str, Any], service: V2Service) -> Response:
        force = _force(body)  # "仅对指定ID删除生效": it only matters for a delete by id
        if body.get("item_id") is not None:
            item_id = _item_id(body)
            if service.items.pop(item_id, None) is None and not force:
                raise ServiceError(c.MMS_ITEM_NOT_FOUND)
            return _ok()  # the delete page: data is there "仅在条件删除时" (for a conditional delete only)
        ids = self._conditions(body, service)
        batch = ids[:DELETE_BATCH]
        for item_id in batch:
            del service.items[item_id]
        return _ok(
            {
                "items": [{"id": i} for i in batch],
                "delete_info": {"total_num": len(ids), "delete_num": len(batch)},
            }
        )

    @staticmethod
    def _search_type(body: dict[str, Any], service: V2Service) -> str:
        """The enum's name, or its value (``"0"``); one the service offers (its ``search_types``)."""
        value = _required(body, "search_type")
        kind = SEARCH_TYPE_VALUES.get(value, value) if isinstance(value, str) else None
        if kind not in SEARCH_TYPES:
            raise _invalid("search_type")
        if service.search_types is not None and kind not in service.search_types:
            raise _invalid("search_type")
        assert kind is not None
        return kind

    def _search(self, body: dict[str, Any], service: V2Service) -> Response:
        kind = self._search_type(body, service)
        limit, offset = body.get("limit", 10), body.get("offset", 0)
        if not _is_int(limit) or not 1 <= limit <= 1000:
            raise _invalid("limit")
        if not _is_int(offset) or offset < 0 or offset + limit > 1000:
            raise _invalid("offset")
        min_score = body.get("min_score")
        if min_score is not None and (not _is_number(min_score) or not 0 <= min_score <= 1):
            raise _invalid("min_score")
        options = _optional_params(body, SEARCH_OPTIONS, service)
        score = self._scorer(kind, body)
        wanted = _tag_filter(body["custom_tags"], service) if body.get("custom_tags") is not None else {}
        bounds = (
            _range_filter(body["custom_num_tags"], service) if body.get("custom_num_tags") is not None else {}
        )
        hits: list[tuple[float, str]] = []
        for item_id, item in service.items.items():
            if not _matches(item, wanted, bounds):
                continue
            value = score(item)
            if value <= 0 or (min_score is not None and kind in IMAGE_SEARCH_TYPES and value < min_score):
                continue
            hits.append((value, item_id))
        hits.sort(key=lambda hit: (-hit[0], hit[1]))
        if options.get("collapse_key") is not None:
            hits = _collapse(hits, service, options["collapse_key"])
        remaining = hits
        if body.get("last_item") is not None:
            after = _last_item(body["last_item"])
            remaining = [h for h in hits if (-h[0], h[1]) > (-after[0], after[1])]
        page = remaining[offset : offset + limit]
        info: dict[str, Any] = {"total_num": len(hits), "return_num": len(page), "search_time": 1}
        if page:
            info["last_item"] = {"score": page[-1][0], "id": page[-1][1]}
        items = [{"id": i, "score": s, "source": _source(service.items[i])} for s, i in page]
        data: dict[str, Any] = {"items": items, "search_info": info}
        if kind in IMAGE_SEARCH_TYPES:
            subject = _subject(options)
            data["image_info"] = {**subject, "objects": [subject]}
        return _ok(data)

    @staticmethod
    def _scorer(kind: str, body: dict[str, Any]) -> Callable[[V2Data], float]:
        if kind in IMAGE_SEARCH_TYPES:
            digest = _image_digest(body, required=True)
            assert digest is not None
            return lambda item: similarity(digest, item.digest)
        if kind == "KEYWORD":
            wanted = [k.lower() for k in _keywords(_required(body, "keywords"), 10)]
            return lambda item: round(
                sum(k in {w.lower() for w in item.keywords} for k in wanted) / len(wanted), 4
            )
        words = _string(_required(body, "text"), 1, 512, "text").lower().split()

        def text_score(item: V2Data) -> float:
            haystack = " ".join([item.desc or "", *item.keywords]).lower().split()
            return round(sum(w in haystack for w in words) / len(words), 4) if words else 0.0

        return text_score
