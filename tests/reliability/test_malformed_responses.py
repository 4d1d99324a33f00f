"""Item 6: malformed responses give the project's own errors, never a KeyError/TypeError/JSON traceback.

* Through the emulator's malformed-body faults, for every operation of the sync hook, for the async
  hook, and for the IAM token response: ``html_502`` -> ``ImageSearchServerError``; ``truncated_json``,
  ``json_list``, ``missing_fields``, ``wrong_types``, ``empty_body`` -> ``ImageSearchResponseError``;
  ``unknown_status`` -> an ``InstanceDetail`` whose status keeps the raw string.
* Hypothesis feeds arbitrary JSON, field-shaped JSON and arbitrary bytes, with arbitrary statuses and
  headers, to ``api.parse_response`` (every operation) and ``auth.parse_token_response``; only
  ``ImageSearchError`` subclasses may escape.
* Edge cases the suite found in the provider (deep nesting, absurd Retry-After dates, garbled gzip,
  a search body without count/result) have their own tests.
"""

from __future__ import annotations

import asyncio
import http.server
import itertools
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from airflow_provider_imagesearch import api
from airflow_provider_imagesearch.auth import TOKEN_PATH, parse_token_response
from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.emulator.faults import MALFORMED_KINDS, UNKNOWN_STATUS_VALUE
from airflow_provider_imagesearch.errors import (
    ImageSearchError,
    ImageSearchResponseError,
    ImageSearchServerError,
    ImageSearchThrottledError,
)
from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchAsyncHook, ImageSearchHook
from airflow_provider_imagesearch.models import InstanceDetail, InstanceStatus
from airflow_provider_imagesearch.retry import RetryPolicy
from tests.reliability.support import SecretAudit
from tests.support.connections import connection_fields, set_connection

#: An image the service can download: an OBS HTTPS URL of the default region (the reference's form).
OBS = "https://shop-images.obs.cn-north-4.myhuaweicloud.com"
_NEW = itertools.count()
PROJECT = "0b5e4c3a2f1d4e6a8c7b9d0e1f2a3b4c"
IMAGE = f"{OBS}/a.png"
NO_RETRY = RetryPolicy(max_attempts=1)
EXPECTED: dict[str, type[ImageSearchError] | None] = {
    "html_502": ImageSearchServerError,
    "truncated_json": ImageSearchResponseError,
    "json_list": ImageSearchResponseError,
    "missing_fields": ImageSearchResponseError,
    "wrong_types": ImageSearchResponseError,
    "unknown_status": None,  # a value, see below
    "empty_body": ImageSearchResponseError,
}
assert set(EXPECTED) == set(MALFORMED_KINDS)

#: operation -> (call, whether its body has a "status" for unknown_status to change)
OPERATIONS: dict[str, tuple[Callable[[ImageSearchHook, int], Any], bool]] = {
    "get_instance": (lambda h, i: h.get_instance("mal-1"), True),
    "create_instance": (lambda h, i: h.create_instance(f"new-{next(_NEW)}"), True),
    "delete_instance": (lambda h, i: h.delete_instance("mal-del"), False),
    "add_image": (lambda h, i: h.add_image("mal-1", path=f"{OBS}/n.png"), False),
    "search_images": (lambda h, i: h.search_images("mal-1", path=IMAGE), False),
    "check_image": (lambda h, i: h.check_image("mal-1", path=IMAGE), False),
    "modify_image": (lambda h, i: h.modify_image("mal-1", path=IMAGE, tags={"color": "red"}), False),
    "delete_image": (lambda h, i: h.delete_image("mal-1", path=IMAGE), False),
}


def _reset_state(emulator: Emulator) -> None:
    emulator.upsert_instance("mal-1", tags=["color"], images={IMAGE: {"tags": {"color": "blue"}}})
    emulator.upsert_instance("mal-del")


def _check(kind: str, outcome: Any, audit: SecretAudit) -> None:
    expected = EXPECTED[kind]
    if isinstance(outcome, BaseException):
        audit.exception(kind, outcome)
        assert expected is not None, f"{kind}: unexpected {outcome!r}"
        assert type(outcome) is expected, f"{kind}: {type(outcome).__name__}: {outcome}"
        assert "Traceback" not in str(outcome)
        assert len(str(outcome)) < 600
        if kind == "html_502":
            assert outcome.status == 502  # type: ignore[attr-defined]
            assert "<" not in str(outcome)
        else:
            assert outcome.error_code == "MALFORMED_RESPONSE"  # type: ignore[attr-defined]
    else:
        assert expected is None, f"{kind}: no error, got {outcome!r}"


def _outcome(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except ImageSearchError as error:
        return error


@pytest.mark.parametrize("kind", MALFORMED_KINDS)
def test_every_operation_of_the_sync_hook(
    kind: str, imagesearch_conn: Callable[..., str], emulator: Emulator, audit: SecretAudit
) -> None:
    hook = ImageSearchHook(imagesearch_conn("aksk"), retry_policy=NO_RETRY)
    applied = 0
    for index, (operation, (call, has_status)) in enumerate(OPERATIONS.items()):
        _reset_state(emulator)
        before = emulator.stats()["faults_injected"].get(kind, 0)
        emulator.set_faults(sequence=[kind])
        outcome = _outcome(lambda c=call, i=index: c(hook, i))  # type: ignore[misc]
        injected = emulator.stats()["faults_injected"].get(kind, 0) - before
        if kind == "unknown_status" and not has_status:
            assert injected == 0, (operation, outcome)
            assert not isinstance(outcome, BaseException), (operation, outcome)
            continue
        assert injected == 1, (operation, kind)
        applied += 1
        if kind == "unknown_status":
            assert isinstance(outcome, InstanceDetail), (operation, outcome)
            assert outcome.status.value == UNKNOWN_STATUS_VALUE
            assert not outcome.status.is_known
            assert outcome.to_dict()["status"] == UNKNOWN_STATUS_VALUE
            assert isinstance(outcome.status, InstanceStatus)
        else:
            _check(kind, outcome, audit)
    audit.figure(f"malformed {kind}", operations_faulted=applied)
    assert applied >= 2


@pytest.mark.parametrize("kind", MALFORMED_KINDS)
def test_async_hook_and_iam_token_response(
    kind: str, monkeypatch: pytest.MonkeyPatch, emulator: Emulator, audit: SecretAudit
) -> None:
    _reset_state(emulator)
    conn_id = set_connection(monkeypatch, "mal_async", **connection_fields(emulator.url, "token"))

    async def get() -> Any:
        hook = ImageSearchAsyncHook(conn_id, retry_policy=NO_RETRY)
        try:
            return await hook.get_instance("mal-1")
        except ImageSearchError as error:
            return error
        finally:
            await hook.aclose()

    emulator.set_faults(sequence=[kind])
    outcome = asyncio.run(get())
    if kind == "unknown_status":
        assert outcome.status.value == UNKNOWN_STATUS_VALUE
    else:
        _check(kind, outcome, audit)
    # The IAM token response, malformed the same way (unknown_status has no status to change there).
    iam_conn = set_connection(monkeypatch, "mal_iam", **connection_fields(emulator.url, "iam_password"))
    emulator.set_faults(sequence=[kind], scope="iam")
    outcome = _outcome(lambda: ImageSearchHook(iam_conn, retry_policy=NO_RETRY).get_instance("mal-1"))
    if kind == "unknown_status":
        assert outcome.instance_name == "mal-1"
    else:
        _check(kind, outcome, audit)
        assert emulator.stats()["by_route"].get("GET /v1/{project_id}/service/{instance_name}", 0) == 1


def test_search_without_count_and_result_is_malformed(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    _reset_state(emulator)
    hook = ImageSearchHook(imagesearch_conn("token"), retry_policy=NO_RETRY)
    emulator.set_faults(sequence=["missing_fields"])
    with pytest.raises(ImageSearchResponseError):
        hook.search_images("mal-1", path=IMAGE)


# --- the parsers, fuzzed ------------------------------------------------------------------------

REQUESTS = [
    api.get_instance(PROJECT, "shop-1"),
    api.create_instance(PROJECT, "shop-1"),
    api.delete_instance(PROJECT, "shop-1"),
    api.add_image(PROJECT, "shop-1", path=IMAGE),
    api.search_images(PROJECT, "shop-1", path=IMAGE),
    api.check_image(PROJECT, "shop-1", path=IMAGE),
    api.modify_image(PROJECT, "shop-1", path=IMAGE, tags={"a": "1"}),
    api.delete_image(PROJECT, "shop-1", path=IMAGE),
]
TOKEN_REQUEST = api.ApiRequest("get_token", "POST", TOKEN_PATH, {}, True, PROJECT)
FIELDS = [
    "instanceName", "status", "expiredDate", "registerDate", "tags", "level", "domain", "desc",
    "count", "result", "exist", "path", "sim", "token", "expires_at", "issued_at",
    "error_code", "error_msg", "errorCode", "errorMsg", "code", "message", "error", "request_id",
]  # fmt: skip
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=24)
    | st.sampled_from(["NORMAL", "CREATION_FAILD", "true", "false", "2026-01-01T00:00:00Z", "", "0"])
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=6), children, max_size=5)
    ),
    max_leaves=16,
)
shaped = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=9)
iso_texts = st.datetimes().map(lambda d: d.isoformat()) | st.datetimes().map(lambda d: d.isoformat() + "Z")
token_bodies = st.fixed_dictionaries(
    {},
    optional={
        "token": st.fixed_dictionaries(
            {}, optional={"expires_at": iso_texts | json_values, "issued_at": iso_texts | json_values}
        )
        | json_values
    },
)
bodies = (
    json_values.map(lambda v: json.dumps(v).encode())
    | shaped.map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=64)
    | st.text(max_size=64).map(lambda t: t.encode("utf-8", "surrogatepass"))
)
http_dates = st.datetimes().map(lambda d: d.strftime("%a, %d %b %Y %H:%M:%S GMT"))
headers = st.fixed_dictionaries(
    {},
    optional={
        "Retry-After": st.text(max_size=30) | http_dates | st.floats().map(str) | st.integers().map(str),
        "X-Request-Id": st.text(max_size=12),
        "X-Subject-Token": st.text(max_size=20),
        "Content-Type": st.sampled_from(
            ["application/json", "text/html", "", "application/json;charset=UTF-8"]
        ),
    },
)
statuses = st.sampled_from([200, 201, 204, 400, 401, 403, 404, 413, 429, 500, 502, 503]) | st.integers(
    100, 599
)
FUZZ = settings(
    max_examples=400, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)


@FUZZ
@given(request=st.sampled_from(REQUESTS), status=statuses, headers=headers, body=bodies)
@example(request=REQUESTS[0], status=200, headers={}, body=b"[" * 50_000)
@example(request=REQUESTS[0], status=200, headers={}, body=b'{"status": 1e999, "instanceName": "a"}')
@example(
    request=REQUESTS[0],
    status=200,
    headers={},
    body=b'{"instanceName":"a","status":"X","registerDate":99999999999999999999}',
)
@example(
    request=REQUESTS[4],
    status=200,
    headers={},
    body=b'{"count":1,"result":[{"path":"p","sim":1' + b"0" * 400 + b"}]}",
)
@example(request=REQUESTS[0], status=429, headers={"Retry-After": "NaN"}, body=b"")
@example(
    request=REQUESTS[0], status=429, headers={"Retry-After": "Fri, 31 Dec 9999 23:59:59 GMT"}, body=b"{}"
)
def test_parse_response_raises_only_project_errors(
    request: api.ApiRequest, status: int, headers: dict[str, str], body: bytes
) -> None:
    error: ImageSearchError | None = None
    try:
        api.parse_response(request, status, headers, body)
    except ImageSearchError as caught:
        error = caught
    # Anything else (KeyError, TypeError, JSONDecodeError, RecursionError, ...) fails the test.
    if error is not None:
        assert str(error)
        assert repr(error)
        if status == 429:
            assert isinstance(error, ImageSearchThrottledError)


@FUZZ
@given(status=statuses, headers=headers, body=bodies | token_bodies.map(lambda v: json.dumps(v).encode()))
@example(
    status=201,
    headers={"X-Subject-Token": "MIItoken-value-1"},
    body=b'{"token":{"expires_at":"2026-01-01T00:00:00Z","issued_at":"9999-12-31T23:59:59"}}',
)
@example(
    status=201,
    headers={"X-Subject-Token": "MIItoken-value-1"},
    body=b'{"token":{"expires_at":"0001-01-01T00:00:00+23:59"}}',
)
def test_parse_token_response_raises_only_project_errors(
    status: int, headers: dict[str, str], body: bytes
) -> None:
    try:
        token = parse_token_response(TOKEN_REQUEST, status, headers, body, now=1000.0)
    except ImageSearchError as caught:
        rendered = (str(caught), repr(caught))
        token = None
    if token is None:
        assert all(rendered)
        return
    assert 200 <= status < 300
    assert token.value == headers["X-Subject-Token"]
    assert token.renew_after <= token.expires_monotonic
    if len(token.value) >= 12:
        assert token.value not in repr(token)


# --- known gaps ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 400, 429])
def test_deeply_nested_error_body_is_a_project_error(status: int) -> None:
    with pytest.raises(ImageSearchError):
        api.parse_response(REQUESTS[0], status, {}, b"[" * 100_000)


def test_absurd_retry_after_through_the_hook(
    imagesearch_conn: Callable[..., str], emulator: Emulator, instance: Callable[..., str]
) -> None:
    instance("shop-1")
    hook = ImageSearchHook(imagesearch_conn("token"))
    emulator.set_faults(sequence=["429"], retry_after="Mon, 01 Jan 2024 00:00:00 +99999999999999999999")
    # Expected: the 429 is retried (an unusable Retry-After falls back to backoff) and the call succeeds.
    assert hook.get_instance("shop-1").instance_name == "shop-1"


class _BadGzip(http.server.BaseHTTPRequestHandler):
    """Answers every request 200 with ``Content-Encoding: gzip`` and a body that is not gzip."""

    def do_GET(self) -> None:
        body = b"definitely not gzip"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def bad_gzip_conn(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _BadGzip)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        yield set_connection(monkeypatch, "bad_gzip", **connection_fields(url, "token", max_attempts=1))
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_bad_content_encoding_sync_hook(bad_gzip_conn: str) -> None:
    with pytest.raises(ImageSearchError):
        ImageSearchHook(bad_gzip_conn).get_instance("shop-1")


def test_bad_content_encoding_async_hook(bad_gzip_conn: str) -> None:
    async def main() -> None:
        hook = ImageSearchAsyncHook(bad_gzip_conn)
        try:
            await hook.get_instance("shop-1")
        finally:
            await hook.aclose()

    with pytest.raises(ImageSearchError):
        asyncio.run(main())
