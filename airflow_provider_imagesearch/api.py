"""The one request builder and the one response parser of the v1 API.

Both hooks (sync on requests, async on httpx) build requests here and parse responses here; only the
transport differs. Builders validate their arguments first, so a bad value never leaves the process.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from airflow_provider_imagesearch import validation
from airflow_provider_imagesearch.errors import (
    ImageSearchApiError,
    ImageSearchAuthError,
    ImageSearchNotFoundError,
    ImageSearchResponseError,
    ImageSearchServerError,
    ImageSearchThrottledError,
)
from airflow_provider_imagesearch.models import InstanceDetail, SearchResult
from airflow_provider_imagesearch.retry import parse_retry_after

JSON_CONTENT_TYPE = "application/json;charset=UTF-8"
#: Gateway codes meaning "this token is no good (any more)", for both APIs (newer docs spell them APIG).
GATEWAY_TOKEN_REJECTED_CODES = frozenset({"APIGW.0301", "APIGW.0307", "APIG.0301", "APIG.0307"})


@dataclass(frozen=True, slots=True)
class ErrorCodes:
    """How one API's documented error codes are classified (see :func:`raise_for_error`).

    Only documented codes belong here: a code the docs do not give (an emulator's own, say) is an
    ordinary refusal, :class:`~.errors.ImageSearchApiError`, whatever its number.

    :param token_rejected: the token is no good: a renewable credential gets one fresh token and one more try.
    :param auth: the caller may not do this (a fresh token would not help): :class:`~.errors.ImageSearchAuthError`.
    :param not_found: the instance or service does not exist: :class:`~.errors.ImageSearchNotFoundError`.
    :param transient: the service failed, not the request ("try again later"), whatever the HTTP status:
        :class:`~.errors.ImageSearchServerError`, retried for idempotent calls, ambiguous for the others.
    """

    token_rejected: frozenset[str]
    auth: frozenset[str] = frozenset()
    not_found: frozenset[str] = frozenset()
    transient: frozenset[str] = frozenset()


#: v1 (page imagesearch_02_0019, IS.0001-IS.0016). IS.0004 "Exception verifying token." and IS.0013
#: "The token is empty." are the service's words for a token it will not take. IS.0007 "Invalid instance
#: name." also answers a name no instance has; names are validated before sending, so for a well-formed
#: name it means "no such instance". IS.0009 (internal error) and IS.0012 (timed out) say nothing about
#: the request itself. Every other documented code (IS.0001-0003, IS.0005-0006, IS.0008, IS.0010-0011,
#: IS.0014-0016) names a problem with the request, the caller or the instance, which repeating it cannot fix.
V1_ERROR_CODES = ErrorCodes(
    token_rejected=GATEWAY_TOKEN_REJECTED_CODES | {"IS.0004", "IS.0013"},
    not_found=frozenset({"IS.0007"}),
    transient=frozenset({"IS.0009", "IS.0012"}),
)
#: Each API's classification, by :attr:`ApiRequest.service`; v2 (``mms``) registers its own (:mod:`.api_v2`).
ERROR_CODES: dict[str, ErrorCodes] = {"imagesearch": V1_ERROR_CODES}
# The v1 sets under their historical names.
TOKEN_REJECTED_CODES = V1_ERROR_CODES.token_rejected
NOT_FOUND_CODES = V1_ERROR_CODES.not_found
TRANSIENT_SERVICE_CODES = V1_ERROR_CODES.transient


def register_error_codes(service: str, codes: ErrorCodes) -> None:
    """Classify the errors of requests to ``service`` (an :attr:`ApiRequest.service`) with ``codes``."""
    ERROR_CODES[service] = codes


@dataclass(frozen=True, slots=True)
class ApiRequest:
    """One v1 call, before transport and auth.

    :param operation: short name for logs and errors, e.g. ``get_instance``.
    :param method: HTTP method.
    :param path: URL path, segments already percent-encoded.
    :param body: JSON body, or ``None``.
    :param idempotent: whether repeating the call is harmless (drives the retry policy).
    :param project_id: the project, to attach to typed results.
    :param service: which endpoint serves the call: ``imagesearch`` (v1) or ``mms`` (v2), see
        :meth:`~airflow_provider_imagesearch.settings.ImageSearchSettings.base_url`.
    """

    operation: str
    method: str
    path: str
    body: Mapping[str, Any] | None
    idempotent: bool
    project_id: str
    service: str = "imagesearch"

    def encoded_body(self) -> bytes:
        if self.body is None:
            return b""
        return json.dumps(self.body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    def base_headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "X-Project-Id": self.project_id}
        headers["Content-Type"] = JSON_CONTENT_TYPE if self.body is not None else "application/json"
        return headers


def _segment(value: str) -> str:
    return quote(value, safe="")


def _instance_path(project_id: str, instance_name: str) -> str:
    return f"/v1/{_segment(project_id)}/service/{_segment(instance_name)}"


def _image_path(project_id: str, instance_name: str, suffix: str = "") -> str:
    return f"/v1/{_segment(project_id)}/{_segment(instance_name)}/image{suffix}"


def get_instance(project_id: str, instance_name: str) -> ApiRequest:
    validation.project_id(project_id)
    validation.instance_name(instance_name)
    return ApiRequest(
        "get_instance", "GET", _instance_path(project_id, instance_name), None, True, project_id
    )


def delete_instance(project_id: str, instance_name: str) -> ApiRequest:
    validation.project_id(project_id)
    validation.instance_name(instance_name)
    path = _instance_path(project_id, instance_name)
    return ApiRequest("delete_instance", "DELETE", path, None, True, project_id)


def create_instance(
    project_id: str,
    instance_name: str,
    *,
    model: str = "common-search",
    description: str | None = None,
    level: int | None = None,
    tags: list[str] | None = None,
) -> ApiRequest:
    validation.project_id(project_id)
    body: dict[str, Any] = {"name": validation.instance_name(instance_name)}
    body["model"] = validation.model(model)
    if description is not None:
        if not isinstance(description, str):
            raise validation.ImageSearchValidationError("description", "a string", description)
        body["description"] = description
    if level is not None:
        body["level"] = validation.level(level)
    if tags is not None:
        body["tags"] = validation.instance_tag_names(tags)
    return ApiRequest(
        "create_instance", "POST", f"/v1/{_segment(project_id)}/service", body, False, project_id
    )


def add_image(
    project_id: str,
    instance_name: str,
    *,
    path: str,
    file_base64: str | None = None,
    tags: Mapping[str, Any] | None = None,
) -> ApiRequest:
    validation.project_id(project_id)
    validation.instance_name(instance_name)
    body: dict[str, Any] = {"path": validation.image_path(path)}
    if file_base64 is not None:
        body["file"] = validation.non_empty_str(file_base64, "file_base64")
    if tags is not None:
        body["tags"] = validation.image_tags(tags)
    return ApiRequest("add_image", "POST", _image_path(project_id, instance_name), body, False, project_id)


def search_images(
    project_id: str,
    instance_name: str,
    *,
    path: str | None = None,
    file_base64: str | None = None,
    limit: int = 10,
    offset: int = 0,
    tags: Mapping[str, Any] | None = None,
    box: Mapping[str, int] | None = None,
) -> ApiRequest:
    validation.project_id(project_id)
    validation.instance_name(instance_name)
    if path is None and file_base64 is None:
        raise validation.ImageSearchValidationError(
            "path/file_base64", "give the query image as path (an image id) or file_base64", None
        )
    body: dict[str, Any] = {"limit": validation.search_limit(limit), "offset": validation.offset(offset)}
    if file_base64 is not None:
        body["file"] = validation.non_empty_str(file_base64, "file_base64")
    if path is not None:
        body["path"] = validation.image_path(path)
    if tags is not None:
        body["tags"] = validation.image_tags(tags)
    if box is not None:
        body["is_crop"] = True
        body["box"] = validation.search_box(box)
    path_ = _image_path(project_id, instance_name, "/search")
    return ApiRequest("search_images", "POST", path_, body, True, project_id)


def check_image(project_id: str, instance_name: str, *, path: str) -> ApiRequest:
    validation.project_id(project_id)
    validation.instance_name(instance_name)
    body = {"path": validation.image_path(path)}
    return ApiRequest(
        "check_image", "POST", _image_path(project_id, instance_name, "/check"), body, True, project_id
    )


def modify_image(project_id: str, instance_name: str, *, path: str, tags: Mapping[str, Any]) -> ApiRequest:
    validation.project_id(project_id)
    validation.instance_name(instance_name)
    body = {"path": validation.image_path(path), "tags": validation.image_tags(tags)}
    return ApiRequest("modify_image", "PUT", _image_path(project_id, instance_name), body, True, project_id)


def delete_image(project_id: str, instance_name: str, *, path: str) -> ApiRequest:
    validation.project_id(project_id)
    validation.instance_name(instance_name)
    body = {"path": validation.image_path(path)}
    return ApiRequest(
        "delete_image", "DELETE", _image_path(project_id, instance_name), body, True, project_id
    )


# --- responses ------------------------------------------------------------------------------------

_TAG_RE = re.compile(r"<[^>]*>")
_SPACE_RE = re.compile(r"\s+")


def _describe_non_json(content: bytes, content_type: str | None) -> str:
    text = content[:2000].decode("utf-8", errors="replace")
    text = _SPACE_RE.sub(" ", _TAG_RE.sub(" ", text)).strip()
    kind = (content_type or "unknown type").split(";")[0]
    if not text:
        return f"empty non-JSON response ({kind})"
    return f"non-JSON response ({kind}): {text[:200]}"


def _error_fields(payload: object) -> tuple[str | None, str | None, str | None]:
    """(code, message, request_id) from any of the error shapes Huawei services use."""
    if not isinstance(payload, dict):
        return None, None, None
    request_id = payload.get("request_id")
    for code_key, msg_key in (("error_code", "error_msg"), ("errorCode", "errorMsg"), ("code", "message")):
        if code_key in payload or msg_key in payload:
            code, msg = payload.get(code_key), payload.get(msg_key)
            return (
                str(code) if code is not None else None,
                str(msg) if msg is not None else None,
                str(request_id) if request_id is not None else None,
            )
    nested = payload.get("error")
    if isinstance(nested, dict):
        code, msg, rid = _error_fields(nested)
        return code, msg, rid or (str(request_id) if request_id is not None else None)
    return None, None, str(request_id) if request_id is not None else None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    return value if value is None else str(value)


def raise_for_error(request: ApiRequest, status: int, headers: Mapping[str, str], content: bytes) -> None:
    """Raise the right :class:`ImageSearchApiError` subclass for a non-2xx response."""
    content_type = _header(headers, "Content-Type")
    try:
        payload: object = json.loads(content) if content else None
    except (ValueError, RecursionError):
        payload = None
    code, msg, body_request_id = _error_fields(payload)
    if code is None and msg is None:
        code, msg = str(status), _describe_non_json(content, content_type)
    code = code or str(status)
    msg = msg or "(no message)"
    request_id = _header(headers, "X-Request-Id") or body_request_id
    kwargs: dict[str, Any] = {
        "status": status,
        "error_code": code,
        "error_msg": msg,
        "request_id": request_id,
        "method": request.method,
        "path": request.path,
    }
    codes = ERROR_CODES.get(request.service, V1_ERROR_CODES)
    if status == 429:
        error: ImageSearchApiError = ImageSearchThrottledError(**kwargs)
        error.retry_after = parse_retry_after(_header(headers, "Retry-After"))  # type: ignore[attr-defined]
        raise error
    if status >= 500 or code in codes.transient:
        raise ImageSearchServerError(**kwargs)
    if code in codes.token_rejected:
        auth_error = ImageSearchAuthError(**kwargs)
        auth_error.token_rejected = True
        raise auth_error
    if status in (401, 403) or code in codes.auth:
        raise ImageSearchAuthError(**kwargs)
    if code in codes.not_found:
        raise ImageSearchNotFoundError(**kwargs)
    raise ImageSearchApiError(**kwargs)


def parse_json_body(
    request: ApiRequest, status: int, headers: Mapping[str, str], content: bytes
) -> dict[str, Any]:
    """The JSON object of a response, or the project's own error; never a KeyError or JSON traceback."""
    if not 200 <= status < 300:
        raise_for_error(request, status, headers, content)
    try:
        payload = json.loads(content)
    except (ValueError, RecursionError):
        payload = None
        problem = _describe_non_json(content, _header(headers, "Content-Type"))
    else:
        problem = f"expected a JSON object, got {type(payload).__name__}"
    if not isinstance(payload, dict):
        raise ImageSearchResponseError(
            status=status,
            error_code="MALFORMED_RESPONSE",
            error_msg=problem,
            request_id=_header(headers, "X-Request-Id"),
            method=request.method,
            path=request.path,
        )
    if "error_code" in payload and payload.get("error_code"):
        # A 2xx carrying an error body is still an error.
        raise_for_error(request, 400, headers, content)
    return payload


def _shape_error(
    request: ApiRequest, status: int, headers: Mapping[str, str], reason: str
) -> ImageSearchResponseError:
    return ImageSearchResponseError(
        status=status,
        error_code="MALFORMED_RESPONSE",
        error_msg=f"unexpected response shape for {request.operation}: {reason}",
        request_id=_header(headers, "X-Request-Id"),
        method=request.method,
        path=request.path,
    )


def _result_string(body: Mapping[str, Any]) -> str:
    result = body["result"]
    if not isinstance(result, str):
        raise TypeError("result must be a string")
    return result


def _exists(body: Mapping[str, Any]) -> bool:
    # The API documents "exist" as the strings "true"/"false"; accept a real boolean too.
    value = body["exist"]
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError("exist must be 'true' or 'false'")


_RESULT_PARSERS: dict[str, Callable[[ApiRequest, Mapping[str, Any]], Any]] = {
    "get_instance": lambda req, body: InstanceDetail.from_api(body, project_id=req.project_id),
    "create_instance": lambda req, body: InstanceDetail.from_api(body, project_id=req.project_id),
    "search_images": lambda req, body: SearchResult.from_api(body),
    "check_image": lambda req, body: _exists(body),
    "add_image": lambda req, body: _result_string(body),
    "modify_image": lambda req, body: _result_string(body),
    "delete_image": lambda req, body: _result_string(body),
    "delete_instance": lambda req, body: _result_string(body),
}


def register_result_parsers(parsers: Mapping[str, Callable[[ApiRequest, Mapping[str, Any]], Any]]) -> None:
    """Add the typed-result parsers of another API version's operations (see :mod:`.api_v2`)."""
    _RESULT_PARSERS.update(parsers)


def parse_response(request: ApiRequest, status: int, headers: Mapping[str, str], content: bytes) -> Any:
    """Parse a response into the operation's typed result, or raise the project's own error."""
    body = parse_json_body(request, status, headers, content)
    try:
        return _RESULT_PARSERS[request.operation](request, body)
    except (KeyError, TypeError, ValueError, OverflowError, OSError) as error:
        # OverflowError/OSError: absurd epoch values from a broken server.
        reason = f"missing field {error}" if isinstance(error, KeyError) else str(error)
        raise _shape_error(request, status, headers, reason) from None
