"""IAM tokens: the request that asks for one, how long an issued token is used, and the cache key of a
credential.

Protected, as the IAM service and a user's task see it: the token request's exact URL, headers and
body (user, domain, password, the project scope by id, else by region name); an answer's token and
deadlines (renewed 10% of its lifetime before expiry, at most 15 minutes before; the lifetime from the
server's own clock pair, else from ours); the error an unusable answer gives (``MALFORMED_RESPONSE``
naming what is missing, never the password); and that two credentials differing in any part get two
tokens.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from airflow_provider_imagesearch.auth import (
    credential_key,
    parse_token_response,
    token_api_request,
    token_scope,
)
from airflow_provider_imagesearch.errors import ImageSearchConfigError, ImageSearchResponseError
from airflow_provider_imagesearch.settings import Credentials, ImageSearchSettings

PROJECT = "0b5e4c3a2f1d4e6a8c7b9d0e1f2a3b4c"
ISSUED = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)


def _settings(**changes: object) -> ImageSearchSettings:
    fields: dict[str, object] = {
        "endpoint": "https://is.example",
        "iam_endpoint": "https://iam.example",
        "region": "cn-north-4",
        "project_id": PROJECT,
        "credentials": Credentials("iam_password", user="ada", domain_name="acme", password="s3cret"),
    }
    fields.update(changes)
    return ImageSearchSettings(**fields)  # type: ignore[arg-type]


def _answer(
    body: object, token: str | None = "tok-1", request_id: str | None = "req-9"
) -> tuple[int, dict[str, str], bytes]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["X-Subject-Token"] = token
    if request_id is not None:
        headers["X-Request-Id"] = request_id
    return 201, headers, json.dumps(body).encode()


def _token_body(expires: datetime, issued: datetime | None = ISSUED) -> dict[str, object]:
    token: dict[str, object] = {"expires_at": expires.isoformat().replace("+00:00", "Z")}
    if issued is not None:
        token["issued_at"] = issued.isoformat().replace("+00:00", "Z")
    return {"token": token}


def test_the_token_request_asks_for_a_password_token_scoped_to_the_project_by_id() -> None:
    request, prepared = token_api_request(_settings())
    assert (request.operation, request.method, request.path, request.idempotent, request.project_id) == (
        "get_token",
        "POST",
        "/v3/auth/tokens",
        True,
        PROJECT,
    )
    assert (prepared.method, prepared.url) == ("POST", "https://iam.example/v3/auth/tokens?nocatalog=true")
    assert prepared.headers == {"Content-Type": "application/json;charset=utf8", "Accept": "application/json"}
    expected = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": "ada", "password": "s3cret", "domain": {"name": "acme"}}},
            },
            "scope": {"project": {"id": PROJECT}},
        }
    }
    assert json.loads(prepared.body) == expected
    assert request.body == expected


def test_without_a_project_id_the_token_is_scoped_by_the_regions_name() -> None:
    settings = _settings(project_id=None)
    assert token_scope(settings) == {"project": {"name": "cn-north-4"}}
    request, prepared = token_api_request(settings)
    assert json.loads(prepared.body)["auth"]["scope"] == {"project": {"name": "cn-north-4"}}
    assert request.project_id == ""


def test_without_project_or_region_the_scope_is_refused_naming_the_project_id_setting() -> None:
    with pytest.raises(ImageSearchConfigError, match="project_id"):
        token_scope(_settings(project_id=None, region=None))


def test_a_token_is_used_until_ten_percent_of_its_lifetime_before_expiry() -> None:
    request, _ = token_api_request(_settings())
    status, headers, content = _answer(_token_body(ISSUED + timedelta(hours=2)))
    token = parse_token_response(request, status, headers, content, now=1000.0)
    assert (token.value, token.request_id, token.expires_at) == (
        "tok-1",
        "req-9",
        ISSUED + timedelta(hours=2),
    )
    assert token.expires_monotonic == pytest.approx(1000.0 + 7200)
    assert token.renew_after == pytest.approx(1000.0 + 7200 - 720)
    assert token.fresh(now=1000.0 + 6479)
    assert not token.fresh(now=1000.0 + 6480)
    assert "tok-1" not in repr(token)


def test_a_long_lived_token_is_renewed_fifteen_minutes_before_expiry() -> None:
    request, _ = token_api_request(_settings())
    status, headers, content = _answer(_token_body(ISSUED + timedelta(hours=24)))
    token = parse_token_response(request, status, headers, content, now=0.0)
    assert token.renew_after == pytest.approx(86400 - 900)


def test_the_lifetime_comes_from_the_servers_clocks_not_ours() -> None:
    request, _ = token_api_request(_settings())
    # The server's clock is a day ahead of ours: its issued_at/expires_at pair still says 1 hour.
    status, headers, content = _answer(
        _token_body(ISSUED + timedelta(days=1, hours=1), ISSUED + timedelta(days=1))
    )
    token = parse_token_response(request, status, headers, content, now=50.0, wall_now=ISSUED)
    assert token.expires_monotonic == pytest.approx(50.0 + 3600)


def test_without_issued_at_the_lifetime_is_the_expiry_against_our_wall_clock() -> None:
    request, _ = token_api_request(_settings())
    status, headers, content = _answer(_token_body(ISSUED + timedelta(hours=1), issued=None))
    token = parse_token_response(
        request, status, headers, content, now=0.0, wall_now=ISSUED + timedelta(minutes=30)
    )
    assert token.expires_monotonic == pytest.approx(1800)
    assert token.renew_after == pytest.approx(1800 - 180)
    # Already expired by our clock: used for no time at all, never a negative lifetime.
    late = parse_token_response(
        request, status, headers, content, now=10.0, wall_now=ISSUED + timedelta(hours=2)
    )
    assert (late.expires_monotonic, late.renew_after) == (10.0, 10.0)
    assert not late.fresh(now=10.0)


def test_a_naive_expiry_is_utc() -> None:
    request, _ = token_api_request(_settings())
    body = {"token": {"expires_at": "2026-01-01T12:00:00", "issued_at": "2026-01-01T10:00:00"}}
    token = parse_token_response(request, *_answer(body), now=0.0)
    assert token.expires_at == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert token.expires_monotonic == pytest.approx(7200)


def test_a_token_with_no_fresh_clock_given_uses_the_monotonic_clock() -> None:
    request, _ = token_api_request(_settings())
    token = parse_token_response(request, *_answer(_token_body(ISSUED + timedelta(hours=1))))
    assert token.fresh()


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"token": {}},
        {"token": {"expires_at": 5}},
        {"token": {"expires_at": "tomorrow"}},
        {"token": "x"},
        {"token": {"expires_at": "2026-01-01T12:00:00Z", "issued_at": 3}},
    ],
)
def test_an_answer_without_a_usable_expiry_is_a_malformed_response(body: object) -> None:
    request, _ = token_api_request(_settings())
    with pytest.raises(ImageSearchResponseError) as refused:
        parse_token_response(request, *_answer(body))
    error = refused.value
    assert (error.status, error.error_code, error.request_id) == (201, "MALFORMED_RESPONSE", "req-9")
    assert "expires_at" in error.error_msg
    assert "s3cret" not in str(error)


def test_an_answer_without_the_token_header_is_a_malformed_response_naming_it() -> None:
    request, _ = token_api_request(_settings())
    with pytest.raises(ImageSearchResponseError) as refused:
        parse_token_response(request, *_answer(_token_body(ISSUED + timedelta(hours=1)), token=None))
    error = refused.value
    assert (error.status, error.error_code, error.request_id) == (201, "MALFORMED_RESPONSE", "req-9")
    assert "X-Subject-Token" in error.error_msg


def test_every_part_of_a_credential_and_its_scope_makes_its_own_cache_key() -> None:
    base = _settings()
    key = credential_key(base)
    creds = base.credentials
    variants = [
        _settings(iam_endpoint="https://iam.other"),
        _settings(credentials=Credentials("iam_password", user="bob", domain_name="acme", password="s3cret")),
        _settings(
            credentials=Credentials("iam_password", user="ada", domain_name="other", password="s3cret")
        ),
        _settings(credentials=Credentials("iam_password", user="ada", domain_name="acme", password="other")),
        _settings(project_id="5d1c9e7a3b2f4c6d8e0a1b2c3d4e5f60"),
        _settings(project_id=None),
    ]
    keys = [credential_key(v) for v in variants]
    assert len({key, *keys}) == 7
    assert credential_key(_settings(endpoint="https://elsewhere", credentials=creds)) == key
    assert "s3cret" not in key
    assert len(key) == 64
    # A field that is empty differs from one that is absent only where the key says so: no collision
    # between user "" + domain "x" and user "x" + domain "".
    a = _settings(credentials=Credentials("iam_password", user="", domain_name="x", password="p"))
    b = _settings(credentials=Credentials("iam_password", user="x", domain_name="", password="p"))
    assert credential_key(a) != credential_key(b)
