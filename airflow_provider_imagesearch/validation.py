"""Argument checks run before any request is sent.

Each check raises :class:`~airflow_provider_imagesearch.errors.ImageSearchValidationError` naming the
field and the allowed form, so a typo fails at once, with no request and no retry.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from airflow_provider_imagesearch.errors import ImageSearchValidationError

# Documented rule: a-z, 0-9, "-" and "_", starting with a letter, at most 16 characters.
INSTANCE_NAME_RE = re.compile(r"[a-z][a-z0-9_-]{0,15}")
INSTANCE_NAME_FORM = "1-16 characters of a-z, 0-9, '-' or '_', starting with a lowercase letter"
# Huawei project ids are 32 hex characters; accept the wider safe set the gateway could route.
PROJECT_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
PROJECT_ID_FORM = "1-64 characters of letters, digits, '-' or '_' (a Huawei project id is 32 hex characters)"
REGION_RE = re.compile(r"[a-z]{2,}(-[a-z0-9]+)+")
SEARCH_LIMIT_RANGE = (1, 100)
MAX_TAGS = 10


def instance_name(value: object, field: str = "instance_name") -> str:
    if not isinstance(value, str) or not INSTANCE_NAME_RE.fullmatch(value):
        raise ImageSearchValidationError(field, INSTANCE_NAME_FORM, value)
    return value


def project_id(value: object, field: str = "project_id") -> str:
    if not isinstance(value, str) or not PROJECT_ID_RE.fullmatch(value):
        raise ImageSearchValidationError(field, PROJECT_ID_FORM, value)
    return value


def region(value: object, field: str = "region") -> str:
    if not isinstance(value, str) or not REGION_RE.fullmatch(value):
        raise ImageSearchValidationError(field, "a Huawei Cloud region id such as 'cn-north-4'", value)
    return value


def search_limit(value: object, field: str = "limit") -> int:
    low, high = SEARCH_LIMIT_RANGE
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ImageSearchValidationError(field, f"an integer from {low} to {high}", value)
    return value


def offset(value: object, field: str = "offset") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ImageSearchValidationError(field, "an integer >= 0", value)
    return value


def image_path(value: object, field: str = "path") -> str:
    if not isinstance(value, str) or not value.strip():
        raise ImageSearchValidationError(field, "a non-empty image URL/id", value)
    return value


def image_tags(value: object, field: str = "tags") -> dict[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and k for k in value):
        raise ImageSearchValidationError(field, "a mapping of tag name to value", value)
    if len(value) > MAX_TAGS:
        raise ImageSearchValidationError(field, f"at most {MAX_TAGS} tags", value)
    return dict(value)


def instance_tag_names(value: object, field: str = "tags") -> list[str]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ImageSearchValidationError(field, "a list of tag names", value)
    if len(value) > MAX_TAGS or not all(isinstance(t, str) and t and t == t.lower() for t in value):
        raise ImageSearchValidationError(field, f"at most {MAX_TAGS} non-empty lowercase tag names", value)
    return list(value)


def non_empty_str(value: object, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ImageSearchValidationError(field, "a non-empty string", value)
    return value
