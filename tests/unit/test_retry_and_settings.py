"""Retry policy decisions, Retry-After parsing, and reading a connection into settings."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from airflow_provider_imagesearch.errors import (
    ImageSearchApiError,
    ImageSearchConfigError,
    ImageSearchServerError,
    ImageSearchThrottledError,
    ImageSearchTransportError,
)
from airflow_provider_imagesearch.retry import RetryPolicy, parse_retry_after, retry_cause
from airflow_provider_imagesearch.settings import settings_from_connection


def _err(cls: type[ImageSearchApiError], status: int | None = 500, **attrs: Any) -> ImageSearchApiError:
    error = cls(status=status, error_code="X", error_msg="m", method="GET", path="/p")
    for key, value in attrs.items():
        setattr(error, key, value)
    return error


@pytest.mark.parametrize(
    ("error", "idempotent", "cause"),
    [
        (_err(ImageSearchThrottledError, 429), False, "429"),
        (_err(ImageSearchServerError, 503), True, "5xx"),
        (_err(ImageSearchServerError, 503), False, None),
        (_err(ImageSearchTransportError, None, request_sent=False), False, "connect"),
        (_err(ImageSearchTransportError, None, request_sent=True, timed_out=True), True, "timeout"),
        (_err(ImageSearchTransportError, None, request_sent=True, timed_out=True), False, None),
        (_err(ImageSearchTransportError, None, request_sent=True), True, "dropped"),
        (_err(ImageSearchApiError, 400), True, None),
        (_err(ImageSearchApiError, 404), True, None),
        (ValueError("x"), True, None),
    ],
)
def test_retry_causes(error: BaseException, idempotent: bool, cause: str | None) -> None:
    assert retry_cause(error, idempotent) == cause


def test_retry_after_forms() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("0.25") == 0.25
    assert parse_retry_after("-4") == 0.0
    assert parse_retry_after("nonsense") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("Fri, 27 Nov 2026 10:00:05 GMT", now=1795773600.0) == pytest.approx(5.0)


def test_policy_stops_after_attempts_and_honours_retry_after() -> None:
    calls: list[float] = []
    policy = RetryPolicy(max_attempts=3, backoff_initial=0.0, backoff_max=0.0, max_retry_after=0.01)
    stats: Counter[str] = Counter()

    def throttled() -> None:
        import time

        calls.append(time.monotonic())
        raise _err(ImageSearchThrottledError, 429, retry_after=0.01)

    with pytest.raises(ImageSearchThrottledError):
        policy.retrying(idempotent=False, stats=stats)(throttled)
    assert len(calls) == 3
    assert stats == Counter({"429": 2})
    assert calls[1] - calls[0] >= 0.009


def test_policy_never_retries_a_plain_4xx() -> None:
    attempts = Counter[str]()

    def bad_request() -> None:
        attempts["n"] += 1
        raise _err(ImageSearchApiError, 400)

    with pytest.raises(ImageSearchApiError):
        RetryPolicy(backoff_initial=0).retrying(idempotent=True)(bad_request)
    assert attempts["n"] == 1


def _settings(**extra: Any) -> Any:
    fields = {
        "host": None,
        "port": None,
        "login": "user",
        "password": "pw",
        "extras": {
            "region": "cn-north-4",
            "domain_name": "acct",
            "project_id": "0b5e4c3a2f1d4e6a8c7b9d0e1f2a3b4c",
            **extra,
        },
    }
    return settings_from_connection(**fields)  # type: ignore[arg-type]


def test_defaults_follow_the_region() -> None:
    settings = _settings()
    assert settings.endpoint == "https://imagesearch.cn-north-4.myhuaweicloud.com"
    assert settings.iam_endpoint == "https://iam.cn-north-4.myhuaweicloud.com"
    assert settings.credentials.auth_type == "iam_password"
    assert "pw" not in repr(settings)
    assert settings.timeout == (10.0, 60.0)


def test_uri_form_string_extras_are_coerced() -> None:
    settings = _settings(read_timeout="7.5", max_attempts="2", verify="true")
    assert settings.read_timeout == 7.5
    assert settings.retry.max_attempts == 2
    assert settings.verify is True


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"host": "http://imagesearch.example.com"}, "plain HTTP"),
        ({"extras": {"region": "cn-north-4", "verify": False}}, "allow_insecure"),
        ({"extras": {"region": "cn-north-4", "auth_type": "magic"}}, "auth_type"),
        ({"extras": {"region": "cn-north-4", "project_id": "a/b"}}, "project_id"),
        ({"extras": {"region": "cn-north-4", "read_timeout": "soon"}}, "read_timeout"),
        ({"extras": {}}, "region"),
        ({"host": "https://h/path"}, "no path"),
    ],
)
def test_bad_connections_are_clear(kwargs: dict[str, Any], message: str) -> None:
    fields: dict[str, Any] = {
        "host": None,
        "port": None,
        "login": "ak",
        "password": "sk",
        "extras": {"region": "cn-north-4"},
    }
    fields.update(kwargs)
    with pytest.raises(ImageSearchConfigError, match=message):
        settings_from_connection(**fields)


def test_plain_http_allowed_on_loopback_or_when_explicit() -> None:
    base = {"port": None, "login": "ak", "password": "sk"}
    loop = settings_from_connection(host="http://127.0.0.1:8080", extras={"region": "cn-north-4"}, **base)
    assert loop.endpoint == "http://127.0.0.1:8080"
    explicit = settings_from_connection(
        host="http://gateway.internal", extras={"region": "cn-north-4", "allow_insecure": True}, **base
    )
    assert explicit.endpoint == "http://gateway.internal"


@pytest.mark.parametrize(
    ("login", "password", "extras", "auth_type"),
    [
        ("user", "pw", {"domain_name": "acct"}, "iam_password"),
        ("AK", "SK", {}, "aksk"),
        (None, None, {"token": "t"}, "token"),
        (None, "t", {}, "token"),
        ("AK", "SK", {"auth_type": "aksk", "security_token": "st"}, "aksk"),
    ],
)
def test_auth_type_inference(
    login: str | None, password: str | None, extras: dict[str, Any], auth_type: str
) -> None:
    settings = settings_from_connection(
        host=None, port=None, login=login, password=password, extras={"region": "cn-north-4", **extras}
    )
    assert settings.credentials.auth_type == auth_type


def test_ambiguous_auth_needs_auth_type() -> None:
    with pytest.raises(ImageSearchConfigError, match="auth_type"):
        settings_from_connection(
            host=None, port=None, login="u", password="p", extras={"region": "cn-north-4", "token": "t"}
        )
