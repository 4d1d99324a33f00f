"""The eight ImageSearch v1 operations, validated and answered as documented.

Every service error is HTTP 400 ``{"error_code": "IS.xxxx", "error_msg": "..."}``. A documented code
(IS.0001-IS.0016, :data:`~.constants.V1_DOCUMENTED_CODES`) is only ever used with its documented meaning:
IS.0003 a missing ``path``, IS.0007 an instance name that is malformed, reserved or unknown, IS.0014 an
image operation on an instance that is not ``NORMAL``, IS.0015 one on an instance whose model the service
lacks, IS.0016 a ``path`` the service cannot fetch, and so on. Where the docs give no code, the code is
the emulator's own, from :data:`~.constants.EMULATOR_OWN_CODES` (IS.9001 instance exists, IS.9002 image
not found, IS.9003 tag not defined); ``Settings.own_codes_as`` answers all of those as one other code.

Image paths: without ``file``, add needs ``path`` to be an OBS HTTPS URL of the instance's region,
``https://{bucket}.obs.{region}.myhuaweicloud.com/{key}`` (the service downloads it from OBS in its own
region), else IS.0016; with ``file``, ``path`` is only the image's id (any non-empty string), and so it is
for check, modify, delete and search.

Other choices the docs leave open: adding an existing ``path`` overwrites it; modify *replaces* the tags;
deleting an instance already ``DELETING`` succeeds again without restarting the timer; search returns all
images sorted by ``sim`` descending (ties by path), ``count`` is the total before paging, no cut-off.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from airflow_provider_imagesearch.emulator import constants as c
from airflow_provider_imagesearch.emulator.state import (
    Image,
    Instance,
    State,
    bytes_digest,
    path_digest,
    similarity,
)
from airflow_provider_imagesearch.emulator.wire import Request, Response

INSTANCE_NAME_RE = re.compile(r"[a-z][a-z0-9_-]{0,15}")
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM")

R_CREATE = "POST /v1/{project_id}/service"
R_QUERY = "GET /v1/{project_id}/service/{instance_name}"
R_DELETE_INSTANCE = "DELETE /v1/{project_id}/service/{instance_name}"
R_ADD = "POST /v1/{project_id}/{instance_name}/image"
R_MODIFY = "PUT /v1/{project_id}/{instance_name}/image"
R_DELETE_IMAGE = "DELETE /v1/{project_id}/{instance_name}/image"
R_SEARCH = "POST /v1/{project_id}/{instance_name}/image/search"
R_CHECK = "POST /v1/{project_id}/{instance_name}/image/check"
R_TOKENS = "POST /v3/auth/tokens"
R_PROJECTS = "GET /v3/projects"
R_UNKNOWN = "UNKNOWN"


@dataclass
class Settings:
    """Runtime-tunable timings (also settable through ``POST /_emulator/config``)."""

    token_lifetime: float = 86400.0
    creation_seconds: float = 5.0
    deletion_seconds: float = 5.0
    #: Answer every emulator-specific code (:data:`~.constants.EMULATOR_OWN_CODES`) as this code instead:
    #: a test that a client does not depend on the emulator's own choices. None: answer them as they are.
    own_codes_as: str | None = None


class ServiceError(Exception):
    def __init__(self, error: tuple[str, str]) -> None:
        super().__init__(error[1])
        self.error = error


def service_error(error: tuple[str, str], own_codes_as: str | None = None) -> Response:
    """HTTP 400 ``{"error_code", "error_msg"}``; an emulator-specific code becomes ``own_codes_as`` if set."""
    code, message = error
    if own_codes_as and code in c.EMULATOR_OWN_CODES:
        code = own_codes_as
    return Response.json(400, {"error_code": code, "error_msg": message})


def match(method: str, path: str) -> tuple[str, str, str | None] | None:
    """``(route key, project_id, instance name)`` for an API/IAM route, or None (-> 404 APIGW.0101)."""
    parts = path.split("/")
    n = len(parts)
    if n >= 4 and parts[1] == "v1" and parts[0] == "" and parts[2]:
        project_id = parts[2]
        if n == 4 and parts[3] == "service":
            return (R_CREATE, project_id, None) if method == "POST" else None
        if n == 5 and parts[3] == "service" and parts[4]:
            if method == "GET":
                return R_QUERY, project_id, parts[4]
            return (R_DELETE_INSTANCE, project_id, parts[4]) if method == "DELETE" else None
        if n == 5 and parts[4] == "image" and parts[3]:
            key = {"POST": R_ADD, "PUT": R_MODIFY, "DELETE": R_DELETE_IMAGE}.get(method)
            return (key, project_id, parts[3]) if key else None
        if n == 6 and parts[4] == "image" and parts[3] and method == "POST":
            if parts[5] == "search":
                return R_SEARCH, project_id, parts[3]
            if parts[5] == "check":
                return R_CHECK, project_id, parts[3]
        return None
    if path == "/v3/auth/tokens" and method == "POST":
        return R_TOKENS, "", None
    if path == "/v3/projects" and method == "GET":
        return R_PROJECTS, "", None
    return None


@functools.cache
def obs_url_pattern(region: str) -> re.Pattern[str]:
    """``https://{bucket}.obs.{region}.myhuaweicloud.com/{key}`` (OBS bucket naming rules, non-empty key)."""
    return re.compile(
        r"https://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\.obs\." + re.escape(region) + r"\.myhuaweicloud\.com/\S.*"
    )


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _body(request: Request, *, empty_ok: bool = False) -> dict[str, Any]:
    """The JSON object in the body; ``empty_ok``: no body at all reads as ``{}`` (DELETE image)."""
    if not request.body and empty_ok:
        return {}
    if request.body and not request.headers.get("content-type", "").strip():
        raise ServiceError(c.IS_HEADER_MISSING)
    if len(request.body) > c.SERVICE_MAX_BODY:
        raise ServiceError(c.IS_BODY_TOO_BIG)
    try:
        # JSON is UTF-8 on the wire (RFC 8259); json.loads on bytes would also guess UTF-16/32, and it
        # accepts NaN/Infinity, which are not JSON.
        data = json.loads(request.body.decode("utf-8"), parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ServiceError(c.IS_BAD_JSON) from exc
    if not isinstance(data, dict):
        raise ServiceError(c.IS_BAD_JSON)
    return data


def _path(body: dict[str, Any]) -> str:
    path = body.get("path")
    if path is None or path == "":
        raise ServiceError(c.IS_PATH_NULL)
    if not isinstance(path, str):
        raise ServiceError(c.IS_BAD_TYPE)
    if not path.strip():
        raise ServiceError(c.IS_PATH_NULL)
    return path


def _optional(body: dict[str, Any], key: str, default: Any) -> Any:
    value = body.get(key)
    return default if value is None else value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _tag_map(value: Any, instance: Instance) -> dict[str, Any]:
    if not isinstance(value, dict) or len(value) > c.MAX_TAGS:
        raise ServiceError(c.IS_BAD_TYPE)
    for key, tag_value in value.items():
        if isinstance(tag_value, list):
            if not all(isinstance(v, str) for v in tag_value):
                raise ServiceError(c.IS_BAD_TYPE)
        elif not isinstance(tag_value, str):
            raise ServiceError(c.IS_BAD_TYPE)
        if key not in instance.tags:
            raise ServiceError(c.IS_UNKNOWN_TAG)
    return dict(value)


def _image_digest(file_value: Any) -> str:
    """Digest of a base64 ``file``; IS.0002 unless it is valid base64 of a JPEG/PNG/BMP."""
    if not isinstance(file_value, str):
        raise ServiceError(c.IS_BAD_TYPE)
    try:
        data = base64.b64decode(file_value.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ServiceError(c.IS_BAD_TYPE) from exc
    if not data.startswith(_IMAGE_MAGIC):
        raise ServiceError(c.IS_BAD_TYPE)
    return bytes_digest(data)


class V1:
    """Handlers for the v1 routes; ``now`` is passed in so one request sees one consistent clock."""

    def __init__(self, state: State, settings: Settings) -> None:
        self.state = state
        self.settings = settings
        self._image_routes: dict[str, Callable[[Request, Instance], Response]] = {
            R_ADD: self._add,
            R_MODIFY: self._modify,
            R_DELETE_IMAGE: self._delete_image,
            R_SEARCH: self._search,
            R_CHECK: self._check,
        }

    def handle(self, route: str, request: Request, project_id: str, name: str | None, now: float) -> Response:
        try:
            if route == R_CREATE:
                return self._create(request, project_id, now)
            assert name is not None
            instance = self.state.instance(project_id, name, now)
            if instance is None:
                raise ServiceError(c.IS_BAD_INSTANCE)
            if route == R_QUERY:
                return Response.json(200, instance.to_api())
            if route == R_DELETE_INSTANCE:
                return self._delete_instance(instance, now)
            if instance.status != "NORMAL":
                raise ServiceError(c.IS_INSTANCE_ABNORMAL)
            if instance.model not in c.KNOWN_MODELS:
                raise ServiceError(c.IS_MODEL_MISSING)
            return self._image_routes[route](request, instance)
        except ServiceError as exc:
            return service_error(exc.error, self.settings.own_codes_as)

    def _create(self, request: Request, project_id: str, now: float) -> Response:
        body = _body(request)
        name, model = body.get("name"), body.get("model")
        if name is None or name == "" or model is None or model == "":
            raise ServiceError(c.IS_MISSING)
        if not isinstance(name, str) or not isinstance(model, str):
            raise ServiceError(c.IS_BAD_TYPE)
        if not INSTANCE_NAME_RE.fullmatch(name) or name in c.RESERVED_INSTANCE_NAMES:
            raise ServiceError(c.IS_BAD_INSTANCE)
        if model not in c.KNOWN_MODELS:
            raise ServiceError(c.IS_BAD_TYPE)
        # Optional fields: absent or null means "not given"; any other value must have the documented type.
        description = _optional(body, "description", "")
        level = body.get("level", c.DEFAULT_LEVEL)
        tags = _optional(body, "tags", [])
        if not isinstance(description, str) or not _is_int(level) or level != c.DEFAULT_LEVEL:
            raise ServiceError(c.IS_BAD_TYPE)
        if (
            not isinstance(tags, list)
            or len(tags) > c.MAX_TAGS
            or not all(isinstance(t, str) and t and t == t.lower() for t in tags)
            or len(set(tags)) != len(tags)
        ):
            raise ServiceError(c.IS_BAD_TYPE)
        if self.state.instance(project_id, name, now) is not None:
            raise ServiceError(c.IS_DUPLICATE_INSTANCE)
        final = "CREATION_FAILD" if c.FAIL_MARKER in description else "NORMAL"
        instance = Instance(
            project_id=project_id,
            name=name,
            model=model,
            description=description,
            level=level,
            tags=list(tags),
            status="CREATION",
            register_date_ms=int(now * 1000),
            expired_date_ms=-1,
            transition_at=now + self.settings.creation_seconds,
            next_status=final,
        )
        if self.settings.creation_seconds <= 0:
            instance.status, instance.transition_at, instance.next_status = final, None, None
        self.state.instances[(project_id, name)] = instance
        return Response.json(200, instance.to_api())

    def _delete_instance(self, instance: Instance, now: float) -> Response:
        key = (instance.project_id, instance.name)
        if instance.status != "DELETING":
            if self.settings.deletion_seconds <= 0:
                del self.state.instances[key]
            else:
                instance.status = "DELETING"
                instance.transition_at = now + self.settings.deletion_seconds
                instance.next_status = None
        return Response.json(200, {"result": "success"})

    def _add(self, request: Request, instance: Instance) -> Response:
        body = _body(request)
        path = _path(body)
        file_value = body.get("file")
        if file_value is None or file_value == "":
            # The service downloads the image from ``path``: only OBS of its own region can serve it.
            if not obs_url_pattern(self.state.project_regions[instance.project_id]).fullmatch(path):
                raise ServiceError(c.IS_PATH_INVALID)
            digest = path_digest(path)
        else:
            digest = _image_digest(file_value)  # ``path`` is then only the image's id
        tags = _tag_map(body["tags"], instance) if body.get("tags") is not None else {}
        instance.images[path] = Image(tags, digest)
        return Response.json(200, {"result": "Success"})

    def _modify(self, request: Request, instance: Instance) -> Response:
        body = _body(request)
        path = _path(body)
        if body.get("tags") is None or body["tags"] == {}:
            raise ServiceError(c.IS_MISSING)
        tags = _tag_map(body["tags"], instance)
        image = instance.images.get(path)
        if image is None:
            raise ServiceError(c.IS_IMAGE_NOT_FOUND)
        image.tags = tags
        return Response.json(200, {"result": "Success"})

    def _delete_image(self, request: Request, instance: Instance) -> Response:
        # The reference's example answers a DELETE without a path with IS.0003, not a JSON error.
        path = _path(_body(request, empty_ok=True))
        if instance.images.pop(path, None) is None:
            raise ServiceError(c.IS_IMAGE_NOT_FOUND)
        return Response.json(200, {"result": "Success"})

    def _check(self, request: Request, instance: Instance) -> Response:
        path = _path(_body(request))
        return Response.json(200, {"exist": "true" if path in instance.images else "false"})

    def _search(self, request: Request, instance: Instance) -> Response:
        body = _body(request)
        limit, offset = body.get("limit", 10), body.get("offset", 0)
        if not _is_int(limit) or not 1 <= limit <= 100 or not _is_int(offset) or offset < 0:
            raise ServiceError(c.IS_BAD_TYPE)
        query = self._query_digest(body, instance)
        wanted = _tag_map(body["tags"], instance) if body.get("tags") is not None else {}
        hits = []
        for path, image in instance.images.items():
            if wanted and not _tags_match(image.tags, wanted):
                continue
            hits.append((-similarity(query, image.digest), path, image))
        hits.sort(key=lambda hit: (hit[0], hit[1]))
        page = hits[offset : offset + limit]
        return Response.json(
            200,
            {
                "count": len(hits),
                "result": [{"path": path, "sim": -neg, "tags": image.tags} for neg, path, image in page],
            },
        )

    def _query_digest(self, body: dict[str, Any], instance: Instance) -> str:
        file_value, path = body.get("file"), body.get("path")
        if file_value not in (None, ""):
            digest = _image_digest(file_value)
        elif path not in (None, ""):
            if not isinstance(path, str):
                raise ServiceError(c.IS_BAD_TYPE)
            # ``path`` is the id of an image already in the library, not something to fetch.
            image = instance.images.get(path)
            if image is None:
                raise ServiceError(c.IS_IMAGE_NOT_FOUND)
            digest = image.digest
        else:
            raise ServiceError(c.IS_MISSING)
        crop = body.get("is_crop", body.get("isCrop", False))
        if not isinstance(crop, bool):
            raise ServiceError(c.IS_BAD_TYPE)
        if not crop:
            return digest
        box = body.get("box")
        if box is None and all(k in body for k in ("x", "y", "width", "height")):
            box = {k: body[k] for k in ("x", "y", "width", "height")}  # older Go SDK: flat fields
        if box is None:
            raise ServiceError(c.IS_MISSING)
        if not isinstance(box, dict) or not all(_is_int(box.get(k)) for k in ("x", "y", "width", "height")):
            raise ServiceError(c.IS_BAD_TYPE)
        if box["x"] < 0 or box["y"] < 0 or box["width"] <= 0 or box["height"] <= 0:
            raise ServiceError(c.IS_BAD_TYPE)
        region = f"{box['x']},{box['y']},{box['width']},{box['height']}"
        return hashlib.sha256(f"{digest}|crop:{region}".encode()).hexdigest()


def _tags_match(image_tags: dict[str, Any], wanted: dict[str, Any]) -> bool:
    for key, value in wanted.items():
        have = image_tags.get(key)
        if have is None:
            return False
        have_set = set(have) if isinstance(have, list) else {have}
        want_set = set(value) if isinstance(value, list) else {value}
        if not have_set & want_set:
            return False
    return True
