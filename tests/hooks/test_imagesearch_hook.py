"""ImageSearchHook against the emulator over loopback HTTP: every operation, auth type and fault kind."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_imagesearch.auth import TOKEN_CACHE
from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from airflow_provider_imagesearch.errors import (
    ImageSearchApiError,
    ImageSearchAuthError,
    ImageSearchNotFoundError,
    ImageSearchResponseError,
    ImageSearchServerError,
    ImageSearchThrottledError,
    ImageSearchTransportError,
    ImageSearchValidationError,
)
from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchHook
from airflow_provider_imagesearch.models import InstanceStatus, SearchResult
from tests.support.fixtures import AUTH_TYPES
from tests.support.waiting import wait_until

#: An image the service can download: an OBS HTTPS URL of the default region (the reference's form).
OBS = "https://shop-images.obs.cn-north-4.myhuaweicloud.com"

# A 1x1 PNG is enough for the emulator's format check.
PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
    )
).decode()


def api_requests(emulator: Emulator) -> int:
    return sum(1 for r in emulator.requests_log() if r["path"].startswith("/v1/"))


def token_requests(emulator: Emulator) -> int:
    return int(emulator.stats()["token_requests"])


@pytest.mark.parametrize("auth", AUTH_TYPES)
def test_every_operation_under_every_auth_type(
    auth: str, imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    hook = ImageSearchHook(imagesearch_conn(auth))
    name = f"life-{auth[:4]}"[:16].replace("_", "-")
    created = hook.create_instance(name, description="archive test", tags=["color"])
    assert created.instance_name == name
    assert created.status is InstanceStatus.CREATION
    emulator.upsert_instance(name, status="NORMAL", tags=["color"], description="archive test")
    detail = hook.get_instance(name)
    assert (detail.status, detail.description, detail.tags) == (
        InstanceStatus.NORMAL,
        "archive test",
        ("color",),
    )

    assert hook.add_image(name, path=f"{OBS}/a.png", file_base64=PNG, tags={"color": "red"}) == "Success"
    assert hook.add_image(name, path=f"{OBS}/b.png", tags={"color": "blue"}) == "Success"
    assert hook.check_image(name, path=f"{OBS}/a.png") is True
    assert hook.check_image(name, path=f"{OBS}/zzz.png") is False
    result = hook.search_images(name, file_base64=PNG, limit=1)
    assert isinstance(result, SearchResult)
    assert result.count == 2
    assert len(result.hits) == 1
    assert result.hits[0].path == f"{OBS}/a.png"
    assert result.hits[0].similarity == 1.0
    assert hook.modify_image(name, path=f"{OBS}/a.png", tags={"color": "green"}) == "Success"
    by_path = hook.search_images(name, path=f"{OBS}/a.png", limit=10, offset=0)
    assert by_path.hits[0].tags == {"color": "green"}
    assert hook.delete_image(name, path=f"{OBS}/a.png") == "Success"
    assert hook.check_image(name, path=f"{OBS}/a.png") is False
    assert hook.delete_instance(name).lower() == "success"
    assert hook.get_instance(name).status is InstanceStatus.DELETING
    emulator.control.delete_instance(DEFAULT_PROJECT_ID, name)
    with pytest.raises(ImageSearchNotFoundError) as caught:
        hook.get_instance(name)
    assert caught.value.request_id
    assert name in str(caught.value)
    hook.close()


@pytest.mark.parametrize("auth", AUTH_TYPES)
def test_test_connection_reports_request_id_and_no_secret(
    auth: str, imagesearch_conn: Callable[..., str], instance: Callable[..., str]
) -> None:
    instance("probe")
    ok, message = ImageSearchHook(imagesearch_conn(auth)).test_connection()
    assert ok, message
    assert "request id" in message
    with_instance = ImageSearchHook(imagesearch_conn(auth, conn_id="probe_conn", instance_name="probe"))
    ok, message = with_instance.test_connection()
    assert ok
    assert "probe is NORMAL" in message


@pytest.mark.parametrize(
    ("auth", "bad"),
    [
        ("iam_password", {"password": "wrong-password-123"}),
        ("aksk", {"password": "wrong-secret-key-123"}),
        ("token", {"extra_token": "MIIforged-token"}),
    ],
)
def test_bad_credentials_fail_clearly(
    auth: str,
    bad: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    emulator: Emulator,
    instance: Callable[..., str],
) -> None:
    from tests.support.connections import connection_fields, set_connection

    instance("shop-1")
    fields = connection_fields(emulator.url, auth)
    if "password" in bad:
        fields["password"] = bad["password"]
    else:
        fields["extra"]["token"] = bad["extra_token"]
    hook = ImageSearchHook(set_connection(monkeypatch, "bad_creds", **fields))
    with pytest.raises(ImageSearchAuthError) as caught:
        hook.get_instance("shop-1")
    # A refused password is not retried (one IAM request, no API request).
    assert emulator.stats()["token_requests"] == (1 if auth == "iam_password" else 0)
    text = str(caught.value)
    for secret in (bad.get("password"), bad.get("extra_token")):
        if secret:
            assert secret not in text
    ok, message = hook.test_connection()
    assert not ok
    assert "401" in message


def test_token_is_cached_across_hooks_and_renewed_after_expiry(
    imagesearch_conn: Callable[..., str], emulator: Emulator, instance: Callable[..., str]
) -> None:
    instance("shop-1")
    conn_id = imagesearch_conn("iam_password")
    for _ in range(5):
        ImageSearchHook(conn_id).get_instance("shop-1")
    assert token_requests(emulator) == 1
    emulator.expire_tokens(include_ready=False)
    hook = ImageSearchHook(conn_id)
    assert hook.get_instance("shop-1").status is InstanceStatus.NORMAL
    assert token_requests(emulator) == 2
    assert hook.retry_stats["token_renewal"] == 1


def test_token_renewed_before_expiry_from_its_lifetime(
    imagesearch_conn: Callable[..., str], emulator: Emulator, instance: Callable[..., str]
) -> None:
    instance("shop-1")
    # Three seconds, not one: the renewed token must outlive the request that carries it, which under CI
    # load took longer than a one-second token lived (a 401 and a reactive renewal, on unchanged code).
    emulator.control.set_config(token_lifetime=3.0)
    try:
        hook = ImageSearchHook(imagesearch_conn("iam_password"))
        hook.get_instance("shop-1")
        time.sleep(3.0)
        hook.get_instance("shop-1")
    finally:
        emulator.control.set_config(token_lifetime=86400.0)
    # The token was renewed before it expired: no call met a 401, so there was no reactive renewal. How
    # many renewals a short lifetime takes depends on how slow the first call was (under load it can
    # renew twice), so the count is a floor, not an exact figure.
    assert token_requests(emulator) >= 2
    assert hook.retry_stats["token_renewal"] == 0
    assert emulator.stats()["token_expiries"] == 0


def test_second_token_rejection_is_a_clear_auth_error(
    imagesearch_conn: Callable[..., str], emulator: Emulator, instance: Callable[..., str]
) -> None:
    instance("shop-1")
    hook = ImageSearchHook(imagesearch_conn("iam_password"))
    hook.get_instance("shop-1")
    # Every token the emulator issues from now on is already expired: the renewed one is refused too.
    emulator.expire_tokens(include_ready=False)
    emulator.control.set_config(token_lifetime=0.001)
    try:
        with pytest.raises(ImageSearchAuthError) as caught:
            hook.get_instance("shop-1")
    finally:
        emulator.control.set_config(token_lifetime=86400.0)
    assert caught.value.error_code == "APIGW.0307"
    assert hook.retry_stats["token_renewal"] == 1


def test_threads_share_one_token_request(
    imagesearch_conn: Callable[..., str], emulator: Emulator, instance: Callable[..., str]
) -> None:
    instance("shop-1")
    conn_id = imagesearch_conn("iam_password")
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            hook = ImageSearchHook(conn_id)
            barrier.wait()
            hook.get_instance("shop-1")
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert token_requests(emulator) == 1


@pytest.mark.parametrize(
    ("fault", "cause"),
    [("500_json", "5xx"), ("502_html", "5xx"), ("503_json", "5xx"), ("429", "429"), ("drop", "dropped")],
)
def test_transient_faults_are_retried_on_reads(
    fault: str,
    cause: str,
    imagesearch_conn: Callable[..., str],
    emulator: Emulator,
    instance: Callable[..., str],
) -> None:
    instance("shop-1")
    hook = ImageSearchHook(imagesearch_conn("token"))
    emulator.set_faults(sequence=[fault, fault], retry_after="0.01")
    assert hook.get_instance("shop-1").instance_name == "shop-1"
    assert hook.retry_stats[cause] == 2
    assert api_requests(emulator) == 3


def test_slow_response_times_out_then_retries(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator, instance: Callable[..., str]
) -> None:
    from tests.support.connections import connection_fields, set_connection

    instance("shop-1")
    # The emulator shares this process: the read timeout leaves room for a stalled CI machine to
    # answer the retry, and the slow fault is well beyond it.
    conn_id = set_connection(
        monkeypatch, "slow", **connection_fields(emulator.url, "token", read_timeout=1.0)
    )
    hook = ImageSearchHook(conn_id)
    emulator.set_faults(sequence=["slow"], slow_seconds=2.5)
    assert hook.get_instance("shop-1").instance_name == "shop-1"
    assert hook.retry_stats["timeout"] == 1
    # The emulator logs the abandoned request once it gives up on it; wait for that (so it is not
    # logged in the next test) and check the server saw the client hang up.
    log = wait_until(emulator.requests_log, lambda log: any(r["fault"] == "slow" for r in log))
    assert [(r["fault"], r["status"]) for r in log if r["path"].startswith("/v1/")] == [
        (None, 200),
        ("slow", None),
    ]


def test_retry_after_is_honoured(
    imagesearch_conn: Callable[..., str], emulator: Emulator, instance: Callable[..., str]
) -> None:
    instance("shop-1")
    hook = ImageSearchHook(imagesearch_conn("token"))
    emulator.set_faults(sequence=["429"], retry_after="0.3")
    started = time.monotonic()
    hook.get_instance("shop-1")
    assert time.monotonic() - started >= 0.3


def test_budget_exhausted_raises_the_last_error(
    imagesearch_conn: Callable[..., str], emulator: Emulator, instance: Callable[..., str]
) -> None:
    instance("shop-1")
    hook = ImageSearchHook(imagesearch_conn("token", max_attempts=3))
    emulator.set_faults(error_5xx_rate=1.0, error_5xx_kinds=["503_json"])
    with pytest.raises(ImageSearchServerError) as caught:
        hook.get_instance("shop-1")
    assert caught.value.status == 503
    assert api_requests(emulator) == 3
    emulator.set_faults(reset=True)
    emulator.set_faults(throttle_429_rate=1.0, retry_after="0.01")
    with pytest.raises(ImageSearchThrottledError):
        hook.get_instance("shop-1")


def test_non_idempotent_calls_are_not_retried_after_5xx_or_drop(
    imagesearch_conn: Callable[..., str], emulator: Emulator, instance: Callable[..., str]
) -> None:
    instance("shop-2")
    hook = ImageSearchHook(imagesearch_conn("token"))
    for fault, error in (("503_json", ImageSearchServerError), ("drop", ImageSearchTransportError)):
        emulator.reset_stats()
        emulator.set_faults(sequence=[fault])
        with pytest.raises(error):
            hook.add_image("shop-2", path=f"{OBS}/x.png")
        assert api_requests(emulator) == 1
    # ...but a 429 (refused before the service saw it) is retried.
    emulator.reset_stats()
    emulator.set_faults(sequence=["429"], retry_after="0.01")
    assert hook.add_image("shop-2", path=f"{OBS}/x.png") == "Success"
    log = emulator.requests_log()
    statuses = [r["status"] for r in log if r["instance"] == "shop-2" and r["fault"] != "drop"]
    assert statuses == [429, 200]


def test_connection_refused_is_retried_even_for_creates(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from tests.support.connections import connection_fields, set_connection

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    conn_id = set_connection(
        monkeypatch, "refused", **connection_fields(f"http://127.0.0.1:{port}", "token", max_attempts=3)
    )
    hook = ImageSearchHook(conn_id)
    with pytest.raises(ImageSearchTransportError) as caught:
        hook.create_instance("new-one")
    assert caught.value.error_code == "CONNECT_ERROR"
    assert hook.retry_stats["connect"] == 2


def test_forbidden_is_not_retried(
    imagesearch_conn: Callable[..., str], emulator: Emulator, instance: Callable[..., str]
) -> None:
    instance("shop-1")
    hook = ImageSearchHook(imagesearch_conn("token"))
    emulator.set_faults(forbidden_rate=1.0)
    with pytest.raises(ImageSearchAuthError) as caught:
        hook.get_instance("shop-1")
    assert caught.value.status == 403
    assert api_requests(emulator) == 1


@pytest.mark.parametrize(
    "kind", ["truncated_json", "json_list", "missing_fields", "wrong_types", "empty_body"]
)
def test_malformed_bodies_become_response_errors(
    kind: str, imagesearch_conn: Callable[..., str], emulator: Emulator, instance: Callable[..., str]
) -> None:
    instance("shop-1")
    hook = ImageSearchHook(imagesearch_conn("token", max_attempts=1))
    emulator.set_faults(sequence=[kind])
    with pytest.raises(ImageSearchResponseError) as caught:
        hook.get_instance("shop-1")
    assert caught.value.error_code == "MALFORMED_RESPONSE"
    assert caught.value.request_id


def test_malformed_html_502_is_a_server_error(
    imagesearch_conn: Callable[..., str], emulator: Emulator, instance: Callable[..., str]
) -> None:
    instance("shop-1")
    hook = ImageSearchHook(imagesearch_conn("token", max_attempts=1))
    emulator.set_faults(sequence=["html_502"])
    with pytest.raises(ImageSearchServerError) as caught:
        hook.get_instance("shop-1")
    assert caught.value.status == 502
    assert "<" not in caught.value.error_msg


def test_unknown_status_is_kept(
    imagesearch_conn: Callable[..., str], emulator: Emulator, instance: Callable[..., str]
) -> None:
    instance("shop-1")
    hook = ImageSearchHook(imagesearch_conn("token"))
    emulator.set_faults(sequence=["unknown_status"])
    detail = hook.get_instance("shop-1")
    assert not detail.status.is_known
    assert detail.to_dict()["status"] == detail.status.value


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda h: h.get_instance("../x"), "instance_name"),
        (lambda h: h.get_instance("名字"), "instance_name"),
        (lambda h: h.get_instance("x", project_id="p/q"), "project_id"),
        (lambda h: h.search_images("ok", path="p", limit=101), "limit"),
    ],
)
def test_invalid_input_sends_nothing(
    call: Callable[[ImageSearchHook], Any],
    field: str,
    imagesearch_conn: Callable[..., str],
    emulator: Emulator,
) -> None:
    hook = ImageSearchHook(imagesearch_conn("iam_password"))
    with pytest.raises(ImageSearchValidationError) as caught:
        call(hook)
    assert caught.value.field == field
    assert emulator.stats()["requests_total"] == 0


def test_hook_level_overrides(
    imagesearch_conn: Callable[..., str], emulator: Emulator, instance: Callable[..., str]
) -> None:
    instance("shop-1")
    hook = ImageSearchHook(imagesearch_conn("token"), project_id="ffffffffffffffffffffffffffffffff")
    with pytest.raises(ImageSearchApiError) as caught:
        hook.get_instance("shop-1")
    assert caught.value.status == 403
    assert hook.get_instance("shop-1", project_id=DEFAULT_PROJECT_ID).instance_name == "shop-1"


def test_session_is_reused(imagesearch_conn: Callable[..., str], instance: Callable[..., str]) -> None:
    instance("shop-1")
    hook = ImageSearchHook(imagesearch_conn("token"))
    session = hook.get_conn()
    hook.get_instance("shop-1")
    hook.get_instance("shop-1")
    assert hook.get_conn() is session
    hook.close()
    assert hook.get_conn() is not session


def test_token_cache_holds_no_password(
    imagesearch_conn: Callable[..., str], instance: Callable[..., str]
) -> None:
    from airflow_provider_imagesearch.emulator import DEFAULT_PASSWORD

    instance("shop-1")
    ImageSearchHook(imagesearch_conn("iam_password")).get_instance("shop-1")
    assert len(TOKEN_CACHE._tokens) == 1
    assert all(DEFAULT_PASSWORD not in key for key in TOKEN_CACHE._tokens)


def test_added_latency_is_tolerated(
    imagesearch_conn: Callable[..., str], emulator: Emulator, instance: Callable[..., str]
) -> None:
    instance("shop-1")
    hook = ImageSearchHook(imagesearch_conn("token"))
    emulator.set_faults(latency_seconds=0.2)
    started = time.monotonic()
    assert hook.get_instance("shop-1").instance_name == "shop-1"
    assert time.monotonic() - started >= 0.2
    assert sum(hook.retry_stats.values()) == 0


def test_temporary_aksk_sends_the_security_token(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator, instance: Callable[..., str]
) -> None:
    from airflow_provider_imagesearch.emulator import (
        DEFAULT_SECURITY_TOKEN,
        DEFAULT_TEMP_ACCESS_KEY,
        DEFAULT_TEMP_SECRET_KEY,
    )
    from tests.support.connections import connection_fields, set_connection

    instance("shop-1")
    fields = connection_fields(emulator.url, "aksk", security_token=DEFAULT_SECURITY_TOKEN)
    fields.update(login=DEFAULT_TEMP_ACCESS_KEY, password=DEFAULT_TEMP_SECRET_KEY)
    assert (
        ImageSearchHook(set_connection(monkeypatch, "temp_aksk", **fields))
        .get_instance("shop-1")
        .status.is_known
    )
    del fields["extra"]["security_token"]
    with pytest.raises(ImageSearchAuthError) as caught:
        ImageSearchHook(set_connection(monkeypatch, "temp_aksk_no_token", **fields)).get_instance("shop-1")
    assert caught.value.status == 401
    assert DEFAULT_TEMP_SECRET_KEY not in str(caught.value)


def test_iam_outage_is_retried_for_the_token_request(
    imagesearch_conn: Callable[..., str], emulator: Emulator, instance: Callable[..., str]
) -> None:
    instance("shop-1")
    hook = ImageSearchHook(imagesearch_conn("iam_password"))
    emulator.set_faults(scope="iam", sequence=["503_json", "drop"])
    assert hook.get_instance("shop-1").instance_name == "shop-1"
    assert hook.retry_stats["5xx"] == 1
    assert hook.retry_stats["dropped"] == 1
    assert token_requests(emulator) >= 1
