"""The five ImageSearch v2 (MMS) data routes, validated and answered as the SDK 3.1.219 models describe.

All are ``POST /v2/{project_id}/mms/{service_name}/data/add | data/check | data/delete | data/update`` and
``POST /v2/{project_id}/mms/{service_name}/search``. v2 services live per (project, service name), apart
from v1 instances; they are created in the console, so the emulator has them from the seed
(``v2_services``) or ``POST /_emulator/v2-services``. Authentication, projects and faults are v1's.

The v2 error codes are not documented in the SDK; the emulator answers v1's shape and codes (HTTP 400
``{"error_code": "IS.xxxx", "error_msg"}``): IS.0001 missing field, IS.0002 wrong type or out of range,
IS.0007 unknown service, IS.0008 bad JSON, IS.0014 item not found (update; delete by id without
``force``), IS.0016 a tag key the service does not define (when the seed lists its keys), and the
emulator-specific **IS.0017** item already exists (add without ``force``).

Scores: ``IMAGE``/``CATEGORY`` compare image digests (1.0 for the same bytes or URL), ``KEYWORD`` is the
share of the query's keywords the item has, ``TEXT`` the share of the text's words found in the item's
description and keywords; items scoring 0 are not results. Order: score descending, then id; the
search-after cursor ``last_item`` continues strictly after its (score, id).
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Callable
from typing import Any

from airflow_provider_imagesearch.emulator import constants as c
from airflow_provider_imagesearch.emulator.routes import ServiceError, _body, service_error
from airflow_provider_imagesearch.emulator.state import (
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
SEARCH_TYPES = frozenset({"IMAGE", "CATEGORY", "KEYWORD", "TEXT"})
#: At most this many items per conditional delete (documented on DeleteInfo.delete_num).
DELETE_BATCH = 100


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


# --- field checks (IS.0001 missing, IS.0002 wrong type or out of range) -------------------------------


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _string(value: Any, low: int, high: int) -> str:
    if not isinstance(value, str) or not low <= len(value) <= high:
        raise ServiceError(c.IS_BAD_TYPE)
    return value


def _required(body: dict[str, Any], key: str) -> Any:
    value = body.get(key)
    if value is None or value == "":
        raise ServiceError(c.IS_MISSING)
    return value


def _item_id(body: dict[str, Any]) -> str:
    return _string(_required(body, "item_id"), 1, 256)


def _check_keys(keys: Any, allowed: list[str] | None) -> None:
    if allowed is not None and not set(keys) <= set(allowed):
        raise ServiceError(c.IS_UNKNOWN_TAG)


def _custom_tags(value: Any, service: V2Service) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ServiceError(c.IS_BAD_TYPE)
    for tag_value in value.values():
        _string(tag_value, 1, 64)
    _check_keys(value, service.custom_tags)
    return dict(value)


def _custom_num_tags(value: Any, service: V2Service) -> dict[str, float]:
    if not isinstance(value, dict) or not all(_is_number(v) for v in value.values()):
        raise ServiceError(c.IS_BAD_TYPE)
    _check_keys(value, service.custom_num_tags)
    return {k: float(v) for k, v in value.items()}


def _keywords(value: Any, high: int) -> list[str]:
    if not isinstance(value, list) or not 1 <= len(value) <= high:
        raise ServiceError(c.IS_BAD_TYPE)
    return [_string(k, 1, 64) for k in value]


def _tag_filter(value: Any, service: V2Service) -> dict[str, list[str]]:
    if not isinstance(value, dict):
        raise ServiceError(c.IS_BAD_TYPE)
    for values in value.values():
        if not isinstance(values, list) or not 1 <= len(values) <= 32:
            raise ServiceError(c.IS_BAD_TYPE)
        for v in values:
            _string(v, 1, 64)
    _check_keys(value, service.custom_tags)
    return dict(value)


def _range_filter(value: Any, service: V2Service) -> dict[str, dict[str, float]]:
    if not isinstance(value, dict):
        raise ServiceError(c.IS_BAD_TYPE)
    for bounds in value.values():
        if not isinstance(bounds, dict) or set(bounds) - {"from", "to"}:
            raise ServiceError(c.IS_BAD_TYPE)
        if not all(_is_number(v) for v in bounds.values()):
            raise ServiceError(c.IS_BAD_TYPE)
    _check_keys(value, service.custom_num_tags)
    return dict(value)


def _last_item(value: Any) -> tuple[float, str]:
    if (
        not isinstance(value, dict)
        or not _is_number(value.get("score"))
        or not isinstance(value.get("id"), str)
    ):
        raise ServiceError(c.IS_BAD_TYPE)
    return float(value["score"]), value["id"]


def _image_digest(body: dict[str, Any], *, required: bool) -> str | None:
    url, data = body.get("image_url"), body.get("image_base64")
    if url not in (None, "") and data not in (None, ""):
        raise ServiceError(c.IS_BAD_TYPE)
    if data not in (None, ""):
        if not isinstance(data, str):
            raise ServiceError(c.IS_BAD_TYPE)
        try:
            raw = base64.b64decode(data.strip(), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ServiceError(c.IS_BAD_TYPE) from exc
        if not (raw.startswith(_IMAGE_MAGIC) or (raw[:4] == b"RIFF" and raw[8:12] == b"WEBP")):
            raise ServiceError(c.IS_BAD_TYPE)
        return bytes_digest(raw)
    if url not in (None, ""):
        return path_digest(_string(url, 1, 4096))
    if required:
        raise ServiceError(c.IS_MISSING)
    return None


def _matches(item: V2Data, tags: dict[str, list[str]], ranges: dict[str, dict[str, float]]) -> bool:
    for key, values in tags.items():
        if item.custom_tags.get(key) not in values:
            return False
    for key, bounds in ranges.items():
        number = item.custom_num_tags.get(key)
        if number is None or number < bounds.get("from", -math.inf) or number > bounds.get("to", math.inf):
            return False
    return True


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

    def __init__(self, state: State) -> None:
        self.state = state
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
                raise ServiceError(c.IS_BAD_INSTANCE)
            return self._routes[route](_body(request), service)
        except ServiceError as exc:
            return service_error(exc.error)

    def _add(self, body: dict[str, Any], service: V2Service) -> Response:
        item_id = _item_id(body)
        force = body.get("force", False)
        if not isinstance(force, bool):
            raise ServiceError(c.IS_BAD_TYPE)
        digest = _image_digest(body, required=True)
        assert digest is not None
        desc = body.get("desc")
        item = V2Data(
            digest=digest,
            desc=None if desc is None else _string(desc, 1, 2048),
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
            raise ServiceError(c.IS_ITEM_EXISTS)
        service.items[item_id] = item
        objects = [{"box": "0,0,64,64", "category": 0, "category_name": "other"}]
        return _ok({"image_info": {"objects": objects}})

    def _update(self, body: dict[str, Any], service: V2Service) -> Response:
        item_id = _item_id(body)
        item = service.items.get(item_id)
        desc, tags, num_tags = body.get("desc"), body.get("custom_tags"), body.get("custom_num_tags")
        new_desc = None if desc is None else _string(desc, 1, 2048)
        new_tags = None if tags is None else _custom_tags(tags, service)
        new_num = None if num_tags is None else _custom_num_tags(num_tags, service)
        if item is None:
            raise ServiceError(c.IS_IMAGE_NOT_FOUND)
        if new_desc is not None:
            item.desc = new_desc
        if new_tags is not None:
            item.custom_tags = new_tags
        if new_num is not None:
            item.custom_num_tags = new_num
        return _ok()

    def _conditions(self, body: dict[str, Any], service: V2Service) -> list[str]:
        """Ids matching the body's tag conditions, in id order; IS.0001 when there is no condition."""
        tags, ranges = body.get("custom_tags"), body.get("custom_num_tags")
        if tags is None and ranges is None:
            raise ServiceError(c.IS_MISSING)
        wanted = _tag_filter(tags, service) if tags is not None else {}
        bounds = _range_filter(ranges, service) if ranges is not None else {}
        return sorted(i for i, item in service.items.items() if _matches(item, wanted, bounds))

    def _check(self, body: dict[str, Any], service: V2Service) -> Response:
        limit = body.get("limit", 10)
        if not _is_int(limit) or not 1 <= limit <= 100:
            raise ServiceError(c.IS_BAD_TYPE)
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
        force = body.get("force", False)
        if not isinstance(force, bool):
            raise ServiceError(c.IS_BAD_TYPE)
        if body.get("item_id") is not None:
            item_id = _item_id(body)
            if service.items.pop(item_id, None) is None:
                if not force:
                    raise ServiceError(c.IS_IMAGE_NOT_FOUND)
                return _ok({"items": [], "delete_info": {"total_num": 0, "delete_num": 0}})
            return _ok({"items": [{"id": item_id}], "delete_info": {"total_num": 1, "delete_num": 1}})
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

    def _search(self, body: dict[str, Any], service: V2Service) -> Response:
        kind = _required(body, "search_type")
        if kind not in SEARCH_TYPES:
            raise ServiceError(c.IS_BAD_TYPE)
        limit, offset = body.get("limit", 10), body.get("offset", 0)
        if not _is_int(limit) or not _is_int(offset) or not 1 <= limit <= 1000 or offset < 0:
            raise ServiceError(c.IS_BAD_TYPE)
        if offset + limit > 1000:
            raise ServiceError(c.IS_BAD_TYPE)
        min_score = body.get("min_score")
        if min_score is not None and (not _is_number(min_score) or not 0 <= min_score <= 1):
            raise ServiceError(c.IS_BAD_TYPE)
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
            if value <= 0 or (min_score is not None and kind in ("IMAGE", "CATEGORY") and value < min_score):
                continue
            hits.append((value, item_id))
        hits.sort(key=lambda hit: (-hit[0], hit[1]))
        remaining = hits
        if body.get("last_item") is not None:
            after = _last_item(body["last_item"])
            remaining = [h for h in hits if (-h[0], h[1]) > (-after[0], after[1])]
        page = remaining[offset : offset + limit]
        info: dict[str, Any] = {"total_num": len(hits), "return_num": len(page), "search_time": 1}
        if page:
            info["last_item"] = {"score": page[-1][0], "id": page[-1][1]}
        items = [{"id": i, "score": s, "source": _source(service.items[i])} for s, i in page]
        return _ok({"items": items, "search_info": info})

    @staticmethod
    def _scorer(kind: str, body: dict[str, Any]) -> Callable[[V2Data], float]:
        if kind in ("IMAGE", "CATEGORY"):
            digest = _image_digest(body, required=True)
            assert digest is not None
            return lambda item: similarity(digest, item.digest)
        if kind == "KEYWORD":
            wanted = [k.lower() for k in _keywords(_required(body, "keywords"), 10)]
            return lambda item: round(
                sum(k in {w.lower() for w in item.keywords} for k in wanted) / len(wanted), 4
            )
        words = _string(_required(body, "text"), 1, 512).lower().split()

        def text_score(item: V2Data) -> float:
            haystack = " ".join([item.desc or "", *item.keywords]).lower().split()
            return round(sum(w in haystack for w in words) / len(words), 4) if words else 0.0

        return text_score
