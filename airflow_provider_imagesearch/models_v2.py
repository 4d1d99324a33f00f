"""Typed results of the ImageSearch v2 (MMS) data API.

Parsed from the documented response bodies (``huaweicloudsdkimagesearch`` 3.1.219, ``v2/model``). Every
result has ``to_dict()``: JSON-safe, snake_case, what the operators push to XCom.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


def _str(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string")
    return value


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TypeError(f"{what} must be a finite number")
    return float(value)


def _int(value: object, what: str, default: int | None = None) -> int:
    if value is None and default is not None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an integer")
    return value


def _mapping(value: object, what: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{what} must be an object")
    return value


@dataclass(frozen=True, slots=True)
class LastItem:
    """The search-after cursor (``SearchAfterParam``): the score and id of the last result of a page.

    :param score: the last result's score.
    :param id: the last result's item id.
    """

    score: float
    id: str

    @classmethod
    def from_api(cls, body: object) -> LastItem | None:
        if body is None:
            return None
        data = _mapping(body, "last_item")
        return cls(score=_number(data["score"], "last_item.score"), id=_str(data["id"], "last_item.id"))

    def to_dict(self) -> dict[str, Any]:
        return {"score": self.score, "id": self.id}


@dataclass(frozen=True, slots=True)
class V2Item:
    """One item of a v2 service, as search and check return it (``SearchItem`` / ``ItemSource``).

    :param id: the item id.
    :param score: its match score (None where the call has no scores, e.g. an id check).
    :param desc: its description.
    :param custom_tags: its string tags.
    :param custom_num_tags: its numeric tags.
    :param keywords: its keywords.
    """

    id: str
    score: float | None = None
    desc: str | None = None
    custom_tags: dict[str, str] = field(default_factory=dict)
    custom_num_tags: dict[str, float] = field(default_factory=dict)
    keywords: tuple[str, ...] = ()

    @classmethod
    def from_source(cls, item_id: str, score: float | None, source: object) -> V2Item:
        data = _mapping(source, "source")
        desc = data.get("desc")
        keywords = data.get("keywords") or []
        if not isinstance(keywords, list):
            raise TypeError("source.keywords must be a list")
        return cls(
            id=item_id,
            score=score,
            desc=None if desc is None else _str(desc, "source.desc"),
            custom_tags={
                _str(k, "custom_tags key"): _str(v, "custom_tags value")
                for k, v in _mapping(data.get("custom_tags"), "source.custom_tags").items()
            },
            custom_num_tags={
                _str(k, "custom_num_tags key"): _number(v, "custom_num_tags value")
                for k, v in _mapping(data.get("custom_num_tags"), "source.custom_num_tags").items()
            },
            keywords=tuple(_str(k, "keyword") for k in keywords),
        )

    @classmethod
    def from_api(cls, body: object) -> V2Item:
        data = _mapping(body, "item")
        score = data.get("score")
        return cls.from_source(
            _str(data["id"], "item.id"),
            None if score is None else _number(score, "item.score"),
            data.get("source"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "score": self.score,
            "desc": self.desc,
            "custom_tags": dict(self.custom_tags),
            "custom_num_tags": dict(self.custom_num_tags),
            "keywords": list(self.keywords),
        }


@dataclass(frozen=True, slots=True)
class DetectedObject:
    """A subject the service found in an image (``AddDataRestInfoImageInfoObjects``)."""

    box: str | None
    category: int | None
    category_name: str | None

    @classmethod
    def from_api(cls, body: object) -> DetectedObject:
        data = _mapping(body, "object")
        box, category, name = data.get("box"), data.get("category"), data.get("category_name")
        return cls(
            box=None if box is None else _str(box, "box"),
            category=None if category is None else _int(category, "category"),
            category_name=None if name is None else _str(name, "category_name"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"box": self.box, "category": self.category, "category_name": self.category_name}


def _objects(image_info: Mapping[str, Any]) -> tuple[DetectedObject, ...]:
    objects = image_info.get("objects") or []
    if not isinstance(objects, list):
        raise TypeError("image_info.objects must be a list")
    return tuple(DetectedObject.from_api(o) for o in objects)


def _result(body: Mapping[str, Any]) -> str:
    return _str(body["result"], "result")


@dataclass(frozen=True, slots=True)
class V2AddResult:
    """``data/add``: ``result`` ("success") and the subjects detected in the image."""

    item_id: str
    result: str
    objects: tuple[DetectedObject, ...] = ()

    @classmethod
    def from_api(cls, body: Mapping[str, Any], item_id: str) -> V2AddResult:
        data = _mapping(body.get("data"), "data")
        return cls(item_id, _result(body), _objects(_mapping(data.get("image_info"), "image_info")))

    def to_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "result": self.result,
            "objects": [o.to_dict() for o in self.objects],
        }


@dataclass(frozen=True, slots=True)
class V2SearchResult:
    """``search``: the page of items and the search info (``SearchRestInfo``).

    :param items: the results, best first.
    :param total_num: results matching in all.
    :param return_num: results in this page.
    :param search_time: milliseconds the service spent.
    :param last_item: cursor for the next page (search-after), None when the service gave none.
    :param objects: subjects detected in the query image (image searches).
    """

    items: tuple[V2Item, ...]
    total_num: int
    return_num: int
    search_time: int | None = None
    last_item: LastItem | None = None
    objects: tuple[DetectedObject, ...] = ()

    @classmethod
    def from_api(cls, body: Mapping[str, Any]) -> V2SearchResult:
        _result(body)
        data = _mapping(body["data"], "data")
        raw_items = data.get("items") or []
        if not isinstance(raw_items, list):
            raise TypeError("data.items must be a list")
        items = tuple(V2Item.from_api(item) for item in raw_items)
        info = _mapping(data.get("search_info"), "search_info")
        search_time = info.get("search_time")
        return cls(
            items=items,
            total_num=_int(info.get("total_num"), "total_num", len(items)),
            return_num=_int(info.get("return_num"), "return_num", len(items)),
            search_time=None if search_time is None else _int(search_time, "search_time"),
            last_item=LastItem.from_api(info.get("last_item")),
            objects=_objects(_mapping(data.get("image_info"), "image_info")),
        )

    def next_cursor(self) -> LastItem | None:
        """The search-after cursor of the next page: the service's, else the last item's."""
        if self.last_item is not None:
            return self.last_item
        if self.items and self.items[-1].score is not None:
            last = self.items[-1]
            assert last.score is not None
            return LastItem(last.score, last.id)
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "items": [item.to_dict() for item in self.items],
            "total_num": self.total_num,
            "return_num": self.return_num,
            "search_time": self.search_time,
            "last_item": None if self.last_item is None else self.last_item.to_dict(),
            "objects": [o.to_dict() for o in self.objects],
        }


@dataclass(frozen=True, slots=True)
class V2CheckResult:
    """``data/check``: by id (``existed``, ``item``) or by condition (``items``, totals, cursor)."""

    existed: bool | None
    item: V2Item | None = None
    items: tuple[V2Item, ...] = ()
    total_num: int | None = None
    return_num: int | None = None
    last_item: LastItem | None = None

    @classmethod
    def from_api(cls, body: Mapping[str, Any], item_id: str | None) -> V2CheckResult:
        _result(body)
        data = _mapping(body["data"], "data")
        existed = data.get("existed")
        if existed is not None and not isinstance(existed, bool):
            raise TypeError("data.existed must be a boolean")
        if item_id is not None and existed is None:
            raise KeyError("data.existed")
        info = data.get("item_info")
        item = V2Item.from_source(item_id, None, info) if item_id is not None and info is not None else None
        raw_items = data.get("items") or []
        if not isinstance(raw_items, list):
            raise TypeError("data.items must be a list")
        check_info = _mapping(data.get("check_info"), "check_info")
        total, returned = check_info.get("total_num"), check_info.get("return_num")
        return cls(
            existed=existed,
            item=item,
            items=tuple(V2Item.from_api(i) for i in raw_items),
            total_num=None if total is None else _int(total, "total_num"),
            return_num=None if returned is None else _int(returned, "return_num"),
            last_item=LastItem.from_api(check_info.get("last_item")),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "existed": self.existed,
            "item": None if self.item is None else self.item.to_dict(),
            "items": [item.to_dict() for item in self.items],
            "total_num": self.total_num,
            "return_num": self.return_num,
            "last_item": None if self.last_item is None else self.last_item.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class V2DeleteResult:
    """``data/delete``: the ids deleted and the counts (at most 100 per conditional delete).

    ``gone_ids``: ids asked to be deleted (by id) that are not in the service, but whose deletion the
    caller cannot claim: the item was not there, another writer deleted it, or an earlier attempt whose
    answer was lost did. They are not in ``deleted_ids`` nor counted in ``delete_num``.
    """

    deleted_ids: tuple[str, ...]
    total_num: int | None = None
    delete_num: int | None = None
    gone_ids: tuple[str, ...] = ()

    @classmethod
    def deleted_item(cls, item_id: str) -> V2DeleteResult:
        """A delete by id that the service's answer says deleted the item."""
        return cls(deleted_ids=(item_id,), total_num=1, delete_num=1)

    @classmethod
    def gone_item(cls, item_id: str) -> V2DeleteResult:
        """A delete by id that found the item not there: gone, but not deleted by this call."""
        return cls(deleted_ids=(), total_num=0, delete_num=0, gone_ids=(item_id,))

    @classmethod
    def from_api(cls, body: Mapping[str, Any]) -> V2DeleteResult:
        _result(body)
        data = _mapping(body.get("data"), "data")
        raw_items = data.get("items") or []
        if not isinstance(raw_items, list):
            raise TypeError("data.items must be a list")
        info = _mapping(data.get("delete_info"), "delete_info")
        total, deleted = info.get("total_num"), info.get("delete_num")
        return cls(
            deleted_ids=tuple(_str(_mapping(i, "item")["id"], "item.id") for i in raw_items),
            total_num=None if total is None else _int(total, "total_num"),
            delete_num=None if deleted is None else _int(deleted, "delete_num"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "deleted_ids": list(self.deleted_ids),
            "total_num": self.total_num,
            "delete_num": self.delete_num,
            "gone_ids": list(self.gone_ids),
        }
