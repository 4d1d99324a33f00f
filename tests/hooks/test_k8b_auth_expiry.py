"""The IAM token's expiry as the answer writes it: an offset other than UTC names the same instant; without
``issued_at`` the lifetime runs from our wall clock; text that is not an ISO 8601 time with ``Z`` or an
offset is a malformed answer. And the cache key of a password credential: a missing field is not any value
given, and fields that differ only in where a NUL falls do not share a key."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from airflow_provider_imagesearch.auth import (
    IssuedToken,
    credential_key,
    parse_token_response,
    token_api_request,
)
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


def test_without_issued_at_or_a_wall_clock_given_the_lifetime_runs_from_now() -> None:
    expires = datetime.now(UTC) + timedelta(hours=1)
    before = time.monotonic()
    token = _parse({"expires_at": expires.isoformat()})
    assert token.fresh()
    assert 3500 <= token.expires_monotonic - before <= 3601


@pytest.mark.parametrize("field", ["domain_name", "user", "password"])
@pytest.mark.parametrize("given", ["acme", "x"])
def test_a_credential_missing_a_field_gets_a_key_of_its_own(field: str, given: str) -> None:
    """Missing is not any value given: a connection without it never shares a token with one that has it."""
    values = {"user": "ada", "domain_name": "acme-corp", "password": "s3cret"}
    missing = replace(SETTINGS, credentials=Credentials("iam_password", **{**values, field: None}))
    present = replace(SETTINGS, credentials=Credentials("iam_password", **{**values, field: given}))
    assert credential_key(missing) != credential_key(present)


def test_credentials_whose_fields_differ_only_in_where_a_nul_falls_get_keys_of_their_own() -> None:
    """``domain "acme\\x00ada", user "x"`` and ``domain "acme", user "ada\\x00x"`` are two credentials (same
    password): joined with NUL they gave one key, so the second was handed the first's cached token."""
    first = replace(
        SETTINGS, credentials=Credentials("iam_password", user="x", domain_name="acme\x00ada", password="p")
    )
    second = replace(
        SETTINGS, credentials=Credentials("iam_password", user="ada\x00x", domain_name="acme", password="p")
    )
    assert credential_key(first) != credential_key(second)
