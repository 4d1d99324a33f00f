"""Typed results of the ImageSearch v1 API, and the instance status sets shared by sensor and trigger."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

NEVER_EXPIRES_MS = -1


class InstanceStatus(enum.StrEnum):
    """Instance status, with the API's wire values.

    ``CREATION_FAILD`` is the real (misspelt) wire value. An unknown value does not raise: it becomes a
    pseudo-member whose ``value`` is the raw string and whose :attr:`is_known` is False, so a status added
    by the service later still reaches the user intact.
    """

    NORMAL = "NORMAL"
    ARREARAGE = "ARREARAGE"
    CREATION = "CREATION"
    CREATION_FAILD = "CREATION_FAILD"
    DELETING = "DELETING"
    DELETING_FAILED = "DELETING_FAILED"
    ABNORMAL = "ABNORMAL"

    @classmethod
    def _missing_(cls, value: object) -> InstanceStatus | None:
        if not isinstance(value, str):
            return None
        member = str.__new__(cls, value)
        member._name_ = value
        member._value_ = value
        return member

    @property
    def is_known(self) -> bool:
        return self.value in type(self).__members__

    @property
    def meaning(self) -> str:
        return STATUS_MEANINGS.get(self.value, "a status this provider does not know")

    @classmethod
    def parse_names(cls, names: object, field_name: str) -> frozenset[InstanceStatus]:
        """Validate a user-given collection of status names (e.g. a sensor's ``target_statuses``)."""
        from airflow_provider_imagesearch.errors import ImageSearchValidationError

        allowed = ", ".join(cls.__members__)
        if isinstance(names, str) or not hasattr(names, "__iter__"):
            raise ImageSearchValidationError(field_name, f"a list of statuses among {allowed}", names)
        parsed: set[InstanceStatus] = set()
        for name in names:
            raw = name.value if isinstance(name, InstanceStatus) else name
            if not isinstance(raw, str) or raw not in cls.__members__:
                raise ImageSearchValidationError(field_name, f"each status must be one of {allowed}", name)
            parsed.add(cls(raw))
        if not parsed:
            raise ImageSearchValidationError(field_name, f"at least one status among {allowed}", names)
        return frozenset(parsed)


STATUS_MEANINGS: Mapping[str, str] = {
    "NORMAL": "the instance is ready to use",
    "ARREARAGE": "the account is in arrears; the instance stays unusable until the bill is paid",
    "CREATION": "the instance is being created",
    "CREATION_FAILD": "creating the instance failed; it must be deleted and created again",
    "DELETING": "the instance is being deleted and will not come back",
    "DELETING_FAILED": "deleting the instance failed; it needs manual action",
    "ABNORMAL": "the instance is abnormal and needs manual action",
}

#: Statuses a waiter should accept by default.
READY_STATUSES: frozenset[InstanceStatus] = frozenset({InstanceStatus.NORMAL})
#: Statuses that never turn into ``NORMAL`` without a person acting: waiting on them is pointless.
TERMINAL_FAILURE_STATUSES: frozenset[InstanceStatus] = frozenset(
    {
        InstanceStatus.CREATION_FAILD,
        InstanceStatus.DELETING,
        InstanceStatus.DELETING_FAILED,
        InstanceStatus.ABNORMAL,
        InstanceStatus.ARREARAGE,
    }
)


def _epoch_ms_to_datetime(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, tz=UTC)


def _isoformat(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class InstanceDetail:
    """Details of one instance, as returned by create and query.

    :param instance_name: the instance's name.
    :param status: its status (unknown wire values are kept, see :class:`InstanceStatus`).
    :param domain: the model's display name.
    :param description: the instance description (``desc`` on the wire).
    :param level: image capacity.
    :param tags: custom tag names defined on the instance.
    :param registered_at: creation time, timezone-aware UTC.
    :param expires_at: expiry time, timezone-aware UTC, ``None`` when it never expires.
    :param project_id: the project the instance belongs to (not on the wire; the hook adds it).
    """

    instance_name: str
    status: InstanceStatus
    domain: str | None = None
    description: str | None = None
    level: int | None = None
    tags: tuple[str, ...] = ()
    registered_at: datetime | None = None
    expires_at: datetime | None = None
    never_expires: bool = False
    project_id: str | None = None

    @classmethod
    def from_api(cls, body: Mapping[str, Any], project_id: str | None = None) -> InstanceDetail:
        """Build from a v1 response body; raises ``TypeError``/``ValueError``/``KeyError`` on a bad shape.

        The response parser turns those into :class:`~airflow_provider_imagesearch.errors.ImageSearchResponseError`.
        """
        name = body["instanceName"]
        status = body["status"]
        if not isinstance(name, str) or not name:
            raise TypeError("instanceName must be a non-empty string")
        if not isinstance(status, str) or not status:
            raise TypeError("status must be a non-empty string")
        expired_ms = _optional_int(body, "expiredDate")
        register_ms = _optional_int(body, "registerDate")
        tags = body.get("tags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise TypeError("tags must be a list of strings")
        never = expired_ms is not None and expired_ms < 0
        return cls(
            instance_name=name,
            status=InstanceStatus(status),
            domain=_optional_str(body, "domain"),
            description=_optional_str(body, "desc"),
            level=_optional_int(body, "level"),
            tags=tuple(tags),
            registered_at=_epoch_ms_to_datetime(register_ms) if register_ms is not None else None,
            expires_at=None if never or expired_ms is None else _epoch_ms_to_datetime(expired_ms),
            never_expires=never,
            project_id=project_id,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form for XCom: snake_case keys, ISO-8601 UTC times, the raw status string."""
        return {
            "instance_name": self.instance_name,
            "project_id": self.project_id,
            "status": self.status.value,
            "domain": self.domain,
            "description": self.description,
            "level": self.level,
            "tags": list(self.tags),
            "registered_at": _isoformat(self.registered_at),
            "expires_at": _isoformat(self.expires_at),
            "never_expires": self.never_expires,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InstanceDetail:
        """Inverse of :meth:`to_dict` (used by triggers, whose events must be JSON)."""

        def parse(value: str | None) -> datetime | None:
            return datetime.fromisoformat(value) if value else None

        return cls(
            instance_name=data["instance_name"],
            status=InstanceStatus(data["status"]),
            domain=data.get("domain"),
            description=data.get("description"),
            level=data.get("level"),
            tags=tuple(data.get("tags") or ()),
            registered_at=parse(data.get("registered_at")),
            expires_at=parse(data.get("expires_at")),
            never_expires=bool(data.get("never_expires")),
            project_id=data.get("project_id"),
        )


def _optional_int(body: Mapping[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{key} must be an integer")
    return value


def _optional_str(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{key} must be a string")
    return value


@dataclass(frozen=True)
class SearchHit:
    """One search result.

    :param path: the image's id in the library (its URL).
    :param similarity: ``sim`` on the wire; closer to 1 is more similar.
    :param tags: the image's custom tags.
    """

    path: str
    similarity: float
    tags: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "similarity": self.similarity, "tags": dict(self.tags)}


@dataclass(frozen=True)
class SearchResult:
    """Result of an image search.

    :param count: total number of matches (``count`` on the wire).
    :param hits: the page of hits, most similar first.
    """

    count: int
    hits: tuple[SearchHit, ...]

    @classmethod
    def from_api(cls, body: Mapping[str, Any]) -> SearchResult:
        count = body["count"]
        if isinstance(count, bool) or not isinstance(count, int):
            raise TypeError("count must be an integer")
        items = body["result"]
        if not isinstance(items, list):
            raise TypeError("result must be a list")
        hits = []
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("path"), str):
                raise TypeError("each result needs a string path")
            sim = item.get("sim", 0.0)
            if isinstance(sim, bool) or not isinstance(sim, int | float):
                raise TypeError("sim must be a number")
            tags = item.get("tags") or {}
            if not isinstance(tags, dict):
                raise TypeError("tags must be an object")
            hits.append(SearchHit(path=item["path"], similarity=float(sim), tags=tags))
        return cls(count=count, hits=tuple(hits))

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "hits": [hit.to_dict() for hit in self.hits]}
