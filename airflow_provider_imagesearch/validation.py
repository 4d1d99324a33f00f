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
#: Models the API reference (``common-search``) and the official SDK's docstring (the other two) name.
MODELS = ("common-search", "image-recommend", "image-copyright")
#: The only instance capacity the service supports ("only the default is currently supported").
SUPPORTED_LEVEL = 30_000_000
BOX_FIELDS = ("x", "y", "width", "height")


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


def _tag_value(value: object) -> bool:
    # A tag holds a string, or several strings (the reference's example: animal -> cat, dog, bird).
    if isinstance(value, str):
        return True
    return isinstance(value, list | tuple) and bool(value) and all(isinstance(v, str) for v in value)


def image_tags(value: object, field: str = "tags") -> dict[str, Any]:
    form = f"a mapping of at most {MAX_TAGS} tag names to a string or a list of strings"
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and k for k in value):
        raise ImageSearchValidationError(field, form, value)
    if len(value) > MAX_TAGS:
        raise ImageSearchValidationError(field, form, value)
    for key, tag_value in value.items():
        if not _tag_value(tag_value):
            raise ImageSearchValidationError(f"{field}[{key!r}]", "a string or a list of strings", tag_value)
    return {key: list(v) if isinstance(v, tuple) else v for key, v in value.items()}


def instance_tag_names(value: object, field: str = "tags") -> list[str]:
    form = f"a list of at most {MAX_TAGS} distinct, non-empty tag names without uppercase letters"
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ImageSearchValidationError(field, form, value)
    if (
        len(value) > MAX_TAGS
        or not all(isinstance(t, str) and t.strip() and t == t.lower() for t in value)
        or len(set(value)) != len(value)
    ):
        raise ImageSearchValidationError(field, form, value)
    return list(value)


def model(value: object, field: str = "model") -> str:
    if not isinstance(value, str) or value not in MODELS:
        raise ImageSearchValidationError(field, f"one of {', '.join(MODELS)}", value)
    return value


def level(value: object, field: str = "level") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value != SUPPORTED_LEVEL:
        raise ImageSearchValidationError(
            field, f"{SUPPORTED_LEVEL} (the only capacity the service supports), or None", value
        )
    return value


def search_box(value: object, field: str = "box") -> dict[str, int]:
    form = "a mapping of x, y (ints >= 0) and width, height (ints > 0), in pixels"
    if not isinstance(value, Mapping) or set(value) != set(BOX_FIELDS):
        raise ImageSearchValidationError(field, form, value)
    numbers = [value[k] for k in BOX_FIELDS]
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in numbers):
        raise ImageSearchValidationError(field, form, value)
    x, y, width, height = numbers
    if x < 0 or y < 0 or width <= 0 or height <= 0:
        raise ImageSearchValidationError(field, form, value)
    return {k: value[k] for k in BOX_FIELDS}


def non_empty_str(value: object, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ImageSearchValidationError(field, "a non-empty string", value)
    return value
