"""The IAM token's expiry as the answer writes it: an offset other than UTC names the same instant (and,
without ``issued_at``, the same lifetime against our wall clock); text that is not an ISO 8601 time with
``Z`` or an offset is a malformed answer."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from airflow_provider_imagesearch.auth import IssuedToken, parse_token_response, token_api_request
from airflow_provider_imagesearch.errors import ImageSearchResponseError
from airflow_provider_imagesearch.settings import Credentials, ImageSearchSettings

SETTINGS = ImageSearchSettings(
    endpoint="https://is.example",
    iam_endpoint="https://iam.example",
    region="cn-north-4",
    project_id="0b5e4c3a2f1d4e6a8c7b9d0e1f2a3b4c",
    credentials=Credentials("iam_password", user="ada", domain_name="acme", password="s3cret"),
)


def _parse(token: dict[str, str], **clocks: Any) -> IssuedToken:
    request, _ = token_api_request(SETTINGS)
    headers = {"Content-Type": "application/json", "X-Subject-Token": "tok-1"}
    return parse_token_response(request, 201, headers, json.dumps({"token": token}).encode(), **clocks)


def test_an_expiry_with_an_offset_is_the_same_instant() -> None:
    token = _parse(
        {"expires_at": "2026-01-01T20:00:00+08:00"}, now=0.0, wall_now=datetime(2026, 1, 1, 11, 0, tzinfo=UTC)
    )
    assert token.expires_at == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert token.expires_monotonic == pytest.approx(3600)


@pytest.mark.parametrize(
    "expires_at", ["2026-01-01T12:00:00XXZXX", "2026-01-01T12:00:00z"], ids=["stray-text", "lower-case-z"]
)
def test_an_expiry_not_in_iso_8601_form_is_a_malformed_answer(expires_at: str) -> None:
    with pytest.raises(ImageSearchResponseError) as refused:
        _parse({"expires_at": expires_at, "issued_at": "2026-01-01T10:00:00Z"}, now=0.0)
    assert refused.value.error_code == "MALFORMED_RESPONSE"
    assert "without a usable expires_at (ValueError)" in str(refused.value)
