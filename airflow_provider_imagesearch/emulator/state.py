"""The emulator's data: projects, users, keys, tokens, instances and their images.

Also the seed/state JSON format (load and dump) and the lazy status transitions: an instance may carry
``transition_at`` (epoch seconds) and ``next_status``; every read goes through :meth:`State.instance`,
which applies a due transition first (``next_status`` None = the instance disappears). So no background
thread is needed and the timings survive a save/load round trip.

Seed format (every top-level key optional; a missing ``projects``/``users``/``access_keys``/``ready_tokens``
key gets the defaults from :func:`~.constants.default_seed`)::

    {"projects": {"cn-north-4": "<project id>", "cn-north-4_reporting": "<sub-project id>"},
     "users": [{"name": "...", "password": "...", "domain": "..."}],
     "access_keys": [{"access_key": "...", "secret_key": "...", "security_token": "..."?}],
     "ready_tokens": ["..."],
     "instances": [{"project_id"?, "name", "model"?, "description"?, "level"?, "tags"?: [...], "status"?,
                    "register_date_ms"?, "expired_date_ms"? (-1 = never), "transition_after_s"?,
                    "transition_at_ms"? (absolute, what a saved state uses), "next_status"?}],
     "images": {"<project_id>/<instance>": {"<path>": {"tags": {...}, "digest"?: "..."}}},
     "v2_services": [{"project_id"?, "name", "custom_tags"?: [keys], "custom_num_tags"?: [keys],
                      "search_types"?: ["IMAGE", "CATEGORY", "KEYWORD", "TEXT"],
                      "items"?: {"<item_id>": {"image_url"? | "digest"?, "desc"?, "custom_tags"?,
                                               "custom_num_tags"?, "keywords"?}}}],
     "tokens": [...]}   # only in saved states: IAM tokens still valid when the state was saved

``next_status`` absent means: ``CREATION`` -> ``NORMAL``, ``DELETING`` -> gone, anything else -> unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_imagesearch.emulator import constants as c


class SeedError(ValueError):
    """A seed/state document (or a control-endpoint instance) is not in the documented format."""


_AUTO = object()  # "next_status not given": pick the natural one for the status
#: The v2 search types (``SearchParam.search_type``).
V2_SEARCH_TYPES = ("IMAGE", "CATEGORY", "KEYWORD", "TEXT")


def path_digest(path: str) -> str:
    """Digest of an image known only by its path (as if the service had downloaded it from OBS)."""
    return hashlib.sha256(b"path:" + path.encode("utf-8")).hexdigest()


def bytes_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def similarity(query_digest: str, image_digest: str) -> float:
    """Deterministic, symmetric pseudo-similarity: 1.0 for identical images, otherwise in [0.05, 0.95]."""
    if query_digest == image_digest:
        return 1.0
    low, high = sorted((query_digest, image_digest))
    mixed = hashlib.sha256(f"{low}|{high}".encode()).digest()
    fraction = int.from_bytes(mixed[:4], "big") / 0xFFFFFFFF
    return round(0.05 + 0.9 * fraction, 4)


def _natural_next(status: str) -> str | None:
    if status == "CREATION":
        return "NORMAL"
    if status == "DELETING":
        return None
    return status


@dataclass
class Image:
    tags: dict[str, Any]
    digest: str


@dataclass
class Instance:
    project_id: str
    name: str
    model: str = c.DEFAULT_MODEL
    description: str = ""
    level: int = c.DEFAULT_LEVEL
    tags: list[str] = field(default_factory=list)
    status: str = "NORMAL"
    register_date_ms: int = 0
    expired_date_ms: int = -1
    transition_at: float | None = None
    next_status: str | None = None
    images: dict[str, Image] = field(default_factory=dict)

    def to_api(self) -> dict[str, Any]:
        """The documented response body of create/query instance (camelCase, epoch ms)."""
        return {
            "domain": c.MODEL_DISPLAY_NAMES.get(self.model, self.model),
            "desc": self.description,
            "registerDate": self.register_date_ms,
            "expiredDate": self.expired_date_ms,
            "level": self.level,
            "tags": list(self.tags),
            "status": self.status,
            "instanceName": self.name,
        }

    def to_seed(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "project_id": self.project_id,
            "name": self.name,
            "model": self.model,
            "description": self.description,
            "level": self.level,
            "tags": list(self.tags),
            "status": self.status,
            "register_date_ms": self.register_date_ms,
            "expired_date_ms": self.expired_date_ms,
        }
        if self.transition_at is not None:
            data["transition_at_ms"] = int(self.transition_at * 1000)
            data["next_status"] = self.next_status
        return data


@dataclass
class V2Data:
    """An item of a v2 (MMS) service."""

    digest: str
    desc: str | None = None
    custom_tags: dict[str, str] = field(default_factory=dict)
    custom_num_tags: dict[str, float] = field(default_factory=dict)
    keywords: list[str] = field(default_factory=list)

    def to_seed(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "digest": self.digest,
            "custom_tags": dict(self.custom_tags),
            "custom_num_tags": dict(self.custom_num_tags),
            "keywords": list(self.keywords),
        }
        if self.desc is not None:
            data["desc"] = self.desc
        return data


@dataclass
class V2Service:
    """A v2 (MMS) service: created in the console, so it comes from the seed. ``custom_tags`` /
    ``custom_num_tags``: the tag keys it defines (None: any key is accepted); ``search_types``: the
    search types it was created with (None: all four)."""

    project_id: str
    name: str
    custom_tags: list[str] | None = None
    custom_num_tags: list[str] | None = None
    items: dict[str, V2Data] = field(default_factory=dict)
    search_types: list[str] | None = None

    def to_seed(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "project_id": self.project_id,
            "name": self.name,
            "items": {item_id: item.to_seed() for item_id, item in self.items.items()},
        }
        if self.custom_tags is not None:
            data["custom_tags"] = list(self.custom_tags)
        if self.custom_num_tags is not None:
            data["custom_num_tags"] = list(self.custom_num_tags)
        if self.search_types is not None:
            data["search_types"] = list(self.search_types)
        return data


def load_v2_items(entries: Any) -> dict[str, V2Data]:
    """Seed-form v2 items (``{item_id: {"image_url"? | "digest"?, "desc"?, tags..., "keywords"?}}``)."""
    _require(isinstance(entries, dict), "items of a v2 service must be an object of item_id -> item")
    items = {}
    for item_id, entry in entries.items():
        _require(isinstance(entry, dict), f"v2 item {item_id!r} must be an object")
        digest = entry.get("digest") or path_digest(str(entry.get("image_url") or item_id))
        _require(isinstance(digest, str), f"digest of v2 item {item_id!r} must be a string")
        items[item_id] = V2Data(
            digest=digest,
            desc=entry.get("desc"),
            custom_tags=dict(entry.get("custom_tags") or {}),
            custom_num_tags={k: float(v) for k, v in (entry.get("custom_num_tags") or {}).items()},
            keywords=_str_list(entry.get("keywords") or [], "keywords"),
        )
    return items


@dataclass
class AccessKey:
    secret_key: str
    security_token: str | None = None


@dataclass
class Token:
    """An IAM token. ``project_id``/``domain`` None means not scoped to one; ``ready`` tokens fit every project."""

    token: str
    user: str
    domain: str
    project_id: str | None
    scoped_domain: str | None
    issued_at: float
    expires_at: float | None
    ready: bool = False
    revoked: bool = False


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise SeedError(message)


def _str_list(value: Any, what: str) -> list[str]:
    _require(
        isinstance(value, list) and all(isinstance(v, str) for v in value),
        f"{what} must be a list of strings",
    )
    return list(value)


class State:
    """All mutable emulator data. Accessed only from the server's event loop thread."""

    def __init__(self) -> None:
        self.projects: dict[str, str] = {}
        #: project id -> region (the project name up to the first ``_``) and -> project name.
        self.project_regions: dict[str, str] = {}
        self.project_names: dict[str, str] = {}
        self.users: dict[tuple[str, str], str] = {}
        self.access_keys: dict[str, AccessKey] = {}
        self.tokens: dict[str, Token] = {}
        self.instances: dict[tuple[str, str], Instance] = {}
        #: v2 (MMS) services, apart from v1 instances: (project id, service name) -> service.
        self.services: dict[tuple[str, str], V2Service] = {}

    # --- loading ----------------------------------------------------------------------------------
    @classmethod
    def from_seed(cls, seed: dict[str, Any] | None, now: float | None = None) -> State:
        now = time.time() if now is None else now
        seed = {} if seed is None else seed
        _require(isinstance(seed, dict), "seed must be a JSON object")
        merged = c.default_seed()
        merged.update(seed)
        unknown = sorted(set(merged) - {*c.default_seed(), "tokens"})
        _require(not unknown, f"unknown seed key(s): {unknown}")
        state = cls()
        projects = merged["projects"]
        _require(
            isinstance(projects, dict)
            and bool(projects)
            and all(
                isinstance(k, str) and c.region_of(k) and isinstance(v, str) and v
                for k, v in projects.items()
            )
            and len(set(projects.values())) == len(projects),
            "projects must be a non-empty object of project name ('{region}' or '{region}_{suffix}') -> "
            "unique project id",
        )
        state.projects = dict(projects)
        state.project_regions = {pid: c.region_of(name) for name, pid in projects.items()}
        state.project_names = {pid: name for name, pid in projects.items()}
        _require(isinstance(merged["users"], list), "users must be a list")
        for user in merged["users"]:
            _require(
                isinstance(user, dict)
                and all(isinstance(user.get(k), str) for k in ("name", "password", "domain")),
                "each user needs string name, password and domain",
            )
            state.users[(user["domain"], user["name"])] = user["password"]
        _require(isinstance(merged["access_keys"], list), "access_keys must be a list")
        for key in merged["access_keys"]:
            _require(
                isinstance(key, dict)
                and isinstance(key.get("access_key"), str)
                and isinstance(key.get("secret_key"), str)
                and isinstance(key.get("security_token"), str | None),
                "each access key needs string access_key and secret_key (and optional security_token)",
            )
            state.access_keys[key["access_key"]] = AccessKey(key["secret_key"], key.get("security_token"))
        for token in _str_list(merged["ready_tokens"], "ready_tokens"):
            state.tokens[token] = Token(token, "", "", None, None, now, None, ready=True)
        for item in merged.get("tokens") or []:
            state._load_token(item)
        _require(isinstance(merged["instances"], list), "instances must be a list")
        for item in merged["instances"]:
            state.upsert_instance(item, now)
        images = merged["images"]
        _require(isinstance(images, dict), "images must be an object of '<project_id>/<instance>' -> images")
        for key, entries in images.items():
            project_id, _, name = str(key).partition("/")
            instance = state.instances.get((project_id, name))
            _require(instance is not None, f"images given for unknown instance {key!r}")
            assert instance is not None
            state._load_images(instance, entries)
        _require(isinstance(merged["v2_services"], list), "v2_services must be a list")
        for item in merged["v2_services"]:
            state.upsert_service(item)
        return state

    def upsert_service(self, item: Any) -> V2Service:
        """Create or replace a v2 service from its seed form; its items are kept unless given."""
        _require(isinstance(item, dict), "a v2 service must be an object")
        name = item.get("name")
        _require(isinstance(name, str) and bool(name), "a v2 service needs a non-empty string name")
        project_id = item.get("project_id", next(iter(self.projects.values())))
        _require(isinstance(project_id, str), "project_id must be a string")
        keys = {}
        for kind in ("custom_tags", "custom_num_tags", "search_types"):
            keys[kind] = None if item.get(kind) is None else _str_list(item[kind], kind)
        unknown = sorted(set(keys["search_types"] or ()) - set(V2_SEARCH_TYPES))
        _require(not unknown, f"search_types: unknown search type(s) {unknown}; known: {V2_SEARCH_TYPES}")
        service = V2Service(project_id, name, keys["custom_tags"], keys["custom_num_tags"])
        service.search_types = keys["search_types"]
        previous = self.services.get((project_id, name))
        if previous is not None:
            service.items = previous.items
        if "items" in item:
            service.items = load_v2_items(item["items"])
        self.services[(project_id, name)] = service
        return service

    def _load_token(self, item: Any) -> None:
        _require(
            isinstance(item, dict) and isinstance(item.get("token"), str), "each token needs a string token"
        )
        self.tokens[item["token"]] = Token(
            token=item["token"],
            user=str(item.get("user", "")),
            domain=str(item.get("domain", "")),
            project_id=item.get("project_id"),
            scoped_domain=item.get("scoped_domain"),
            issued_at=float(item.get("issued_at", 0.0)),
            expires_at=None if item.get("expires_at") is None else float(item["expires_at"]),
        )

    def _load_images(self, instance: Instance, entries: Any) -> None:
        _require(isinstance(entries, dict), "images of an instance must be an object of path -> image")
        for path, image in entries.items():
            _require(isinstance(image, dict), f"image {path!r} must be an object")
            tags = image.get("tags", {})
            _require(isinstance(tags, dict), f"tags of image {path!r} must be an object")
            digest = image.get("digest") or path_digest(path)
            _require(isinstance(digest, str), f"digest of image {path!r} must be a string")
            instance.images[path] = Image(dict(tags), digest)

    def upsert_instance(self, item: Any, now: float | None = None) -> Instance:
        """Create or replace an instance from its seed form; existing images and creation time are kept
        unless given."""
        now = time.time() if now is None else now
        _require(isinstance(item, dict), "an instance must be an object")
        name = item.get("name")
        _require(isinstance(name, str) and bool(name), "an instance needs a non-empty string name")
        project_id = item.get("project_id", next(iter(self.projects.values())))
        _require(isinstance(project_id, str), "project_id must be a string")
        status = item.get("status", "NORMAL")
        _require(isinstance(status, str) and bool(status), "status must be a non-empty string")
        for key, kind in (("model", str), ("description", str), ("level", int)):
            _require(key not in item or isinstance(item[key], kind), f"{key} must be a {kind.__name__}")
        previous = self.instances.get((project_id, name))
        # Replacing an instance's seed (a status flip in a test) is not creating it again: its creation
        # time stays unless given, as the service's does (a watcher tells re-created instances by it).
        created_ms = previous.register_date_ms if previous is not None else now * 1000
        instance = Instance(
            project_id=project_id,
            name=name,
            model=item.get("model", c.DEFAULT_MODEL),
            description=item.get("description", ""),
            level=item.get("level", c.DEFAULT_LEVEL),
            tags=_str_list(item.get("tags", []), "tags"),
            status=status,
            register_date_ms=int(item.get("register_date_ms", created_ms)),
            expired_date_ms=int(item.get("expired_date_ms", -1)),
        )
        if "transition_at_ms" in item or "transition_after_s" in item:
            when = item.get("transition_at_ms")
            if when is not None:
                _require(isinstance(when, int | float), "transition_at_ms must be a number")
                instance.transition_at = float(when) / 1000.0
            else:
                after = item["transition_after_s"]
                _require(
                    isinstance(after, int | float) and after >= 0, "transition_after_s must be a number >= 0"
                )
                instance.transition_at = now + float(after)
            nxt = item.get("next_status", _AUTO)
            _require(
                nxt is _AUTO or nxt is None or isinstance(nxt, str), "next_status must be a string or null"
            )
            instance.next_status = _natural_next(status) if nxt is _AUTO else nxt
        if previous is not None:
            instance.images = previous.images
        if "images" in item:
            instance.images = {}
            self._load_images(instance, item["images"])
        self.instances[(project_id, name)] = instance
        return instance

    # --- access -----------------------------------------------------------------------------------
    def instance(self, project_id: str, name: str, now: float) -> Instance | None:
        """The instance after applying any due status transition (None if absent or now gone)."""
        instance = self.instances.get((project_id, name))
        if instance is None or instance.transition_at is None or now < instance.transition_at:
            return instance
        if instance.next_status is None:
            del self.instances[(project_id, name)]
            return None
        instance.status = instance.next_status
        instance.transition_at = None
        instance.next_status = None
        return instance

    def settle(self, now: float) -> None:
        """Apply every due transition (before dumping, so the dump reflects what clients would see)."""
        for project_id, name in list(self.instances):
            self.instance(project_id, name, now)

    # --- dumping ----------------------------------------------------------------------------------
    def to_seed(self, now: float) -> dict[str, Any]:
        self.settle(now)
        images: dict[str, Any] = {}
        for instance in self.instances.values():
            if instance.images:
                images[f"{instance.project_id}/{instance.name}"] = {
                    path: {"tags": image.tags, "digest": image.digest}
                    for path, image in instance.images.items()
                }
        tokens = [
            {
                "token": t.token,
                "user": t.user,
                "domain": t.domain,
                "project_id": t.project_id,
                "scoped_domain": t.scoped_domain,
                "issued_at": t.issued_at,
                "expires_at": t.expires_at,
            }
            for t in self.tokens.values()
            if not t.ready and not t.revoked and t.expires_at is not None and t.expires_at > now
        ]
        return {
            "projects": dict(self.projects),
            "users": [{"name": n, "password": p, "domain": d} for (d, n), p in self.users.items()],
            "access_keys": [
                {"access_key": ak, "secret_key": k.secret_key}
                | ({"security_token": k.security_token} if k.security_token else {})
                for ak, k in self.access_keys.items()
            ],
            "ready_tokens": [t.token for t in self.tokens.values() if t.ready and not t.revoked],
            "instances": [instance.to_seed() for instance in self.instances.values()],
            "images": images,
            "v2_services": [service.to_seed() for service in self.services.values()],
            "tokens": tokens,
        }


def load_json_file(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    if not isinstance(data, dict):
        raise SeedError(f"{path}: expected a JSON object")
    return data


def save_json_file(path: str, data: dict[str, Any]) -> None:
    """Write atomically (temp file + rename) so a crash never leaves a half-written state file."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".emulator-state-", suffix=".json", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1, sort_keys=True)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
