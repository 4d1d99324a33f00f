"""Regression tests for the core review (issue 14) and the provider half of the strictness audit (issue 15).

Each test failed on the code before its fix: token scope, TLS handshakes cut short, ``test_connection``
that never reached ImageSearch, the ``verify`` extra, tokens without ``issued_at``, proactive renewal,
checks before sending, credentials in an endpoint URL, and transient service codes.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_imagesearch import api
from airflow_provider_imagesearch.auth import (
    RENEW_MARGIN_MAX,
    TOKEN_CACHE,
    credential_key,
    parse_token_response,
    token_api_request,
)
from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, DEFAULT_REGION, Emulator
from airflow_provider_imagesearch.errors import (
    ImageSearchApiError,
    ImageSearchConfigError,
    ImageSearchServerError,
    ImageSearchTransportError,
    ImageSearchValidationError,
)
from airflow_provider_imagesearch.get_provider_info import get_provider_info
from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchAsyncHook, ImageSearchHook
from airflow_provider_imagesearch.settings import settings_from_connection
from tests.reliability.support import CertFiles, SecretAudit, TlsProxy, make_self_signed
from tests.support.connections import connection_fields, set_connection

OTHER_PROJECT_ID = "1c6f5d4b3a2e4f7b9d8cae0f1a2b3c4d"


def _settings(**extra: Any) -> Any:
    extras = {"region": DEFAULT_REGION, "domain_name": "acct", **extra}
    return settings_from_connection(host=None, port=None, login="user", password="pw", extras=extras)


# --- 14.1: the token is scoped by project id, and cached per scope -------------------------------------


def test_token_is_scoped_by_project_id_when_known() -> None:
    _, prepared = token_api_request(_settings(project_id=OTHER_PROJECT_ID))
    scope = json.loads(prepared.body)["auth"]["scope"]
    assert scope == {"project": {"id": OTHER_PROJECT_ID}}
    # Without a project id, the region's default project (by name) is all there is to ask for.
    _, prepared = token_api_request(_settings())
    assert json.loads(prepared.body)["auth"]["scope"] == {"project": {"name": DEFAULT_REGION}}


def test_token_cache_keys_differ_by_project() -> None:
    main = credential_key(_settings(project_id=DEFAULT_PROJECT_ID))
    other = credential_key(_settings(project_id=OTHER_PROJECT_ID))
    assert main != other
    assert main == credential_key(_settings(project_id=DEFAULT_PROJECT_ID))


# --- 14.10 and 14.12: token lifetime and proactive renewal ----------------------------------------------


def _token_answer(expires_at: datetime, issued_at: datetime | None) -> tuple[dict[str, str], bytes]:
    token: dict[str, Any] = {"expires_at": expires_at.isoformat().replace("+00:00", "Z")}
    if issued_at is not None:
        token["issued_at"] = issued_at.isoformat().replace("+00:00", "Z")
    return {"X-Subject-Token": "MIItoken"}, json.dumps({"token": token}).encode()


def test_a_token_without_issued_at_lives_until_its_expires_at() -> None:
    request, _ = token_api_request(_settings(project_id=DEFAULT_PROJECT_ID))
    wall = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    headers, body = _token_answer(wall + timedelta(hours=1), None)
    token = parse_token_response(request, 201, headers, body, now=1000.0, wall_now=wall)
    assert token.expires_monotonic == pytest.approx(1000.0 + 3600.0)
    assert token.renew_after == pytest.approx(1000.0 + 3600.0 - 360.0)


def test_renewal_margin_is_a_tenth_of_the_lifetime_at_most_fifteen_minutes() -> None:
    request, _ = token_api_request(_settings(project_id=DEFAULT_PROJECT_ID))
    issued = datetime(2026, 11, 29, tzinfo=UTC)
    for lifetime, margin in ((86400.0, RENEW_MARGIN_MAX), (600.0, 60.0)):
        headers, body = _token_answer(issued + timedelta(seconds=lifetime), issued)
        token = parse_token_response(request, 201, headers, body, now=0.0)
        assert token.expires_monotonic == pytest.approx(lifetime)
        assert token.renew_after == pytest.approx(lifetime - margin)


def test_a_token_is_renewed_before_it_expires(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    """Once past ``renew_after`` (but before expiry) a call fetches a new token: the server never
    sees the old one again, and no request is refused as expired."""
    emulator.upsert_instance("renew-me")
    emulator.control.set_config(token_lifetime=3.0)
    try:
        hook = ImageSearchHook(imagesearch_conn("iam_password"))
        hook.get_instance("renew-me")
        assert hook._auth is not None
        first = TOKEN_CACHE._tokens[hook._auth.cache_key]
        assert first.renew_after < first.expires_monotonic
        while time.monotonic() <= first.renew_after:
            time.sleep(0.02)
        hook.get_instance("renew-me")
        stats = emulator.stats()
        assert stats["token_requests"] == 2
        assert stats["token_expiries"] == 0
        assert TOKEN_CACHE._tokens[hook._auth.cache_key].value != first.value
    finally:
        emulator.control.set_config(token_lifetime=86400.0)


# --- 14.3: a TLS handshake cut short is retried; a refused certificate is not ---------------------------


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    return make_self_signed(tmp_path_factory.mktemp("tls-review"), "review")


@pytest.fixture
def proxy(cert: CertFiles, emulator: Emulator) -> Iterator[TlsProxy]:
    host, port = emulator.url.removeprefix("http://").rsplit(":", 1)
    with TlsProxy(cert, host, int(port)) as tls:
        yield tls


def _tls_conn(monkeypatch: pytest.MonkeyPatch, url: str, conn_id: str, **extra: Any) -> str:
    fields = connection_fields(url, "token", **extra)
    return set_connection(monkeypatch, conn_id, **fields)


async def _async_get(conn_id: str, name: str) -> Any:
    hook = ImageSearchAsyncHook(conn_id)
    try:
        return await hook.get_instance(name)
    finally:
        await hook.aclose()


def test_a_handshake_cut_short_is_retried_by_both_hooks(
    proxy: TlsProxy, cert: CertFiles, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator.upsert_instance("tls-eof")
    conn_id = _tls_conn(monkeypatch, proxy.url, "tls_eof", verify=str(cert.cert))
    proxy.cut_next(2)
    hook = ImageSearchHook(conn_id)
    assert hook.get_instance("tls-eof").instance_name == "tls-eof"
    assert hook.retry_stats["connect"] == 2
    proxy.cut_next(2)
    assert asyncio.run(_async_get(conn_id, "tls-eof")).instance_name == "tls-eof"
    assert proxy.wait_for("cut", 4) == 4


def test_a_handshake_cut_on_every_try_is_transient_not_a_certificate_error(
    proxy: TlsProxy, cert: CertFiles, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn_id = _tls_conn(monkeypatch, proxy.url, "tls_eof_all", verify=str(cert.cert), max_attempts=2)
    proxy.cut_next(100)
    with pytest.raises(ImageSearchTransportError) as sync_error:
        ImageSearchHook(conn_id).get_instance("tls-eof")
    with pytest.raises(ImageSearchTransportError) as async_error:
        asyncio.run(_async_get(conn_id, "tls-eof"))
    for error in (sync_error.value, async_error.value):
        assert error.error_code == "TLS_HANDSHAKE_INTERRUPTED"
        assert error.request_sent is False
    assert proxy.wait_for("cut", 4) == 4  # two attempts per hook


def test_a_refused_certificate_is_still_final_for_both_hooks(
    proxy: TlsProxy, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn_id = _tls_conn(monkeypatch, proxy.url, "tls_refused")
    for run in (
        lambda: ImageSearchHook(conn_id).get_instance("x"),
        lambda: asyncio.run(_async_get(conn_id, "x")),
    ):
        with pytest.raises(ImageSearchTransportError) as caught:
            run()
        assert caught.value.error_code == "TLS_ERROR"
    assert proxy.wait_for("handshake_failures", 2) == 2  # one handshake each: nothing retried


# --- 14.9: the verify extra ----------------------------------------------------------------------------


@pytest.mark.parametrize(("word", "expected"), [("no", False), ("off", False), ("yes", True), ("on", True)])
def test_verify_accepts_the_boolean_words_of_every_other_extra(word: str, expected: bool) -> None:
    extras = {"token": "t", "project_id": DEFAULT_PROJECT_ID, "verify": word, "allow_insecure": True}
    settings = settings_from_connection(
        host=None, port=None, login=None, password=None, extras={"region": DEFAULT_REGION, **extras}
    )
    assert settings.verify is expected


def test_verify_off_without_allow_insecure_is_a_config_error_not_an_oserror() -> None:
    with pytest.raises(ImageSearchConfigError, match="allow_insecure"):
        settings_from_connection(
            host=None,
            port=None,
            login=None,
            password=None,
            extras={"region": DEFAULT_REGION, "token": "t", "verify": "off"},
        )


def test_a_missing_ca_path_is_a_config_error_naming_the_field() -> None:
    with pytest.raises(ImageSearchConfigError, match="'verify'"):
        settings_from_connection(
            host=None,
            port=None,
            login=None,
            password=None,
            extras={"region": DEFAULT_REGION, "token": "t", "verify": "/nonexistent/ca.pem"},
        )


def test_an_unreadable_ca_bundle_is_a_config_error_in_both_hooks(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    conn_id = _tls_conn(monkeypatch, "https://127.0.0.1:9", "tls_junk", verify=str(junk))
    with pytest.raises(ImageSearchConfigError, match="'verify'"):
        ImageSearchHook(conn_id).get_instance("x")
    with pytest.raises(ImageSearchConfigError, match="'verify'"):
        asyncio.run(_async_get(conn_id, "x"))


def test_a_ca_directory_works_in_both_hooks(
    proxy: TlsProxy, cert: CertFiles, tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    openssl = shutil.which("openssl")
    assert openssl, "openssl is part of Debian's base system"
    digest = subprocess.run(
        [openssl, "x509", "-subject_hash", "-noout", "-in", str(cert.cert)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    ca_dir = tmp_path / "ca"
    ca_dir.mkdir()
    shutil.copy(cert.cert, ca_dir / f"{digest}.0")
    emulator.upsert_instance("tls-dir")
    conn_id = _tls_conn(monkeypatch, proxy.url, "tls_dir", verify=str(ca_dir))
    assert ImageSearchHook(conn_id).get_instance("tls-dir").instance_name == "tls-dir"
    assert asyncio.run(_async_get(conn_id, "tls-dir")).instance_name == "tls-dir"


def test_the_connection_form_and_the_code_agree_on_numbers() -> None:
    import jsonschema

    fields = get_provider_info()["connection-types"][0]["conn-fields"]
    base = {"region": DEFAULT_REGION, "token": "t", "project_id": DEFAULT_PROJECT_ID}
    for name, spec in fields.items():
        schema = spec["schema"]
        if "number" not in schema["type"] and "integer" not in schema["type"]:
            continue
        for value in (-1, 0, 0.5, 1, 7):
            form_ok = jsonschema.Draft7Validator(schema).is_valid(value)
            try:
                settings_from_connection(
                    host=None, port=None, login=None, password=None, extras={**base, name: value}
                )
                code_ok = True
            except ImageSearchConfigError:
                code_ok = False
            assert form_ok == code_ok, f"{name}={value}: form says {form_ok}, code says {code_ok}"


# --- 14.4: test_connection reaches ImageSearch for IAM password auth too ---------------------------------


def test_connection_test_with_iam_password_refuses_an_unknown_project(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    conn_id = imagesearch_conn("iam_password", conn_id="iam_main")
    ok, message = ImageSearchHook(conn_id).test_connection()
    assert ok, message
    assert "request id" in message
    ok, message = ImageSearchHook(conn_id, project_id=OTHER_PROJECT_ID).test_connection()
    assert not ok
    assert "project" in message.lower()


def test_connection_test_with_iam_password_refuses_a_dead_endpoint(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    fields = connection_fields(emulator.url, "iam_password", max_attempts=1)
    fields["host"] = dead  # IAM (the emulator) answers; nothing listens where ImageSearch should be
    conn_id = set_connection(monkeypatch, "iam_dead_endpoint", **fields)
    ok, message = ImageSearchHook(conn_id).test_connection()
    assert not ok
    assert "CONNECT_ERROR" in message
    assert emulator.stats()["tokens_issued"] == 1


# --- 15.7: what the reference constrains is checked before sending ----------------------------------------


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda h: h.create_instance("lvl", level=1), "level"),
        (lambda h: h.create_instance("mdl", model="foo"), "model"),
        (lambda h: h.create_instance("dup", tags=["color", "color"]), "tags"),
        (
            lambda h: h.add_image(
                "shop", path="https://b.obs.cn-north-4.myhuaweicloud.com/a.jpg", tags={"color": 5}
            ),
            "tags['color']",
        ),
        (lambda h: h.search_images("shop", path="p", box={"x": 0, "y": 0, "width": 0, "height": 10}), "box"),
    ],
)
def test_reference_constraints_are_checked_before_any_request(
    call: Callable[[ImageSearchHook], Any],
    field: str,
    imagesearch_conn: Callable[..., str],
    emulator: Emulator,
) -> None:
    hook = ImageSearchHook(imagesearch_conn("token"))
    with pytest.raises(ImageSearchValidationError) as caught:
        call(hook)
    assert caught.value.field == field
    assert emulator.stats()["requests_total"] == 0


# --- 15.8: credentials inside an endpoint URL are never echoed -------------------------------------------


@pytest.mark.parametrize("field", ["host", "iam_endpoint"])
def test_credentials_in_an_endpoint_url_are_not_echoed(
    field: str, monkeypatch: pytest.MonkeyPatch, audit: SecretAudit
) -> None:
    secret = "Sup3r-Secret-In-Url"
    audit.secret(secret)
    url = f"https://admin:{secret}@imagesearch.example.com/v1?sig={secret}"
    fields = connection_fields("https://imagesearch.example.com", "token")
    if field == "host":
        fields["host"] = url
    else:
        fields["extra"]["iam_endpoint"] = url
    conn_id = set_connection(monkeypatch, f"url_secret_{field}", **fields)
    with pytest.raises(ImageSearchConfigError) as caught:
        _ = ImageSearchHook(conn_id).settings
    audit.exception("settings error", caught.value)
    assert "***@imagesearch.example.com" in str(caught.value)
    ok, message = ImageSearchHook(conn_id).test_connection()
    audit.text("test_connection", message)
    assert not ok
    assert secret not in message
    assert audit.leaks() == []


# --- 15.1: an internal error and a server-side timeout are transient ---------------------------------------


@pytest.mark.parametrize("code", ["IS.0009", "IS.0012"])
def test_transient_service_codes_are_server_errors(code: str) -> None:
    request = api.get_instance(DEFAULT_PROJECT_ID, "shop")
    body = json.dumps({"error_code": code, "error_msg": "x"}).encode()
    with pytest.raises(ImageSearchServerError):
        api.raise_for_error(request, 400, {}, body)


@pytest.mark.parametrize("code", ["IS.0005", "IS.0011", "IS.0002"])
def test_request_service_codes_stay_permanent(code: str) -> None:
    from airflow_provider_imagesearch.outcomes import is_permanent

    request = api.get_instance(DEFAULT_PROJECT_ID, "shop")
    body = json.dumps({"error_code": code, "error_msg": "x"}).encode()
    with pytest.raises(ImageSearchApiError) as caught:
        api.raise_for_error(request, 400, {}, body)
    assert not isinstance(caught.value, ImageSearchServerError)
    assert is_permanent(caught.value)


# --- with the strict emulator: sub-projects, lost answers, transient service codes ------------------------


def test_a_sub_project_works_next_to_the_main_one(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    from airflow_provider_imagesearch.emulator import DEFAULT_SUB_PROJECT_ID

    emulator.upsert_instance("main-inst")
    emulator.upsert_instance("sub-inst", project_id=DEFAULT_SUB_PROJECT_ID)
    main = ImageSearchHook(imagesearch_conn("iam_password", conn_id="proj_main"))
    sub = ImageSearchHook(
        imagesearch_conn("iam_password", conn_id="proj_sub", project_id=DEFAULT_SUB_PROJECT_ID)
    )
    assert main.get_instance("main-inst").project_id == DEFAULT_PROJECT_ID
    assert sub.get_instance("sub-inst").project_id == DEFAULT_SUB_PROJECT_ID
    # The same connection with a project_id= override gets its own token too.
    assert ImageSearchHook("proj_main", project_id=DEFAULT_SUB_PROJECT_ID).get_instance("sub-inst")
    assert emulator.stats()["token_requests"] == 2
    assert emulator.stats()["by_status"].get("403", 0) == 0


@pytest.mark.parametrize("kind", ["image", "instance"])
def test_a_delete_whose_answer_was_lost_counts_as_success(
    kind: str, imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    path = "https://shop-images.obs.cn-north-4.myhuaweicloud.com/lost.jpg"
    emulator.upsert_instance("lost-answer", images={path: {"tags": {}}})
    hook = ImageSearchHook(imagesearch_conn("token"))
    emulator.set_faults(sequence=["drop_after"])
    if kind == "image":
        assert hook.delete_image("lost-answer", path=path) == "Success"
        assert hook.check_image("lost-answer", path=path) is False
    else:
        emulator.control.set_config(deletion_seconds=0)  # gone at once: the retry is refused (IS.0007)
        try:
            assert hook.delete_instance("lost-answer") == "success"
        finally:
            emulator.control.set_config(deletion_seconds=1.0)
    deletes = [r for r in emulator.requests_log() if r["method"] == "DELETE"]
    assert [r["status"] for r in deletes][:2] == [None, 400]  # the lost answer, then the refused retry


@pytest.mark.parametrize("code", ["IS.0009", "IS.0012"])
def test_transient_service_codes_are_retried_for_reads_only(
    code: str, imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    emulator.upsert_instance("svc-err")
    hook = ImageSearchHook(imagesearch_conn("token"))
    emulator.set_faults(sequence=[code, "ok"])
    assert hook.get_instance("svc-err").instance_name == "svc-err"
    assert hook.retry_stats["5xx"] == 1
    emulator.set_faults(sequence=[code, "ok"])
    with pytest.raises(ImageSearchServerError):  # a create may have taken effect: not blindly retried
        hook.create_instance("svc-new")
    assert not [i for i in emulator.control.state()["instances"] if i["name"] == "svc-new"]


@pytest.mark.parametrize("code", ["IS.0005", "IS.0011"])
def test_request_service_codes_fail_without_a_retry(
    code: str, imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    emulator.upsert_instance("svc-req")
    hook = ImageSearchHook(imagesearch_conn("token"))
    emulator.set_faults(sequence=[code, "ok"])
    with pytest.raises(ImageSearchApiError) as caught:
        hook.get_instance("svc-req")
    assert caught.value.error_code == code
    assert sum(hook.retry_stats.values()) == 0


@pytest.mark.parametrize(
    ("host", "port", "endpoint"),
    [
        ("imagesearch.example.com", 443, "https://imagesearch.example.com"),
        ("https://imagesearch.example.com:443", None, "https://imagesearch.example.com"),
        ("https://imagesearch.example.com", 8443, "https://imagesearch.example.com:8443"),
        ("http://127.0.0.1:8080", 443, "http://127.0.0.1:8080"),
    ],
)
def test_the_default_port_stays_out_of_the_signed_host(host: str, port: int | None, endpoint: str) -> None:
    """The form asks for Port 443 (Airflow 3.3.2's Test button needs one); Host must not become host:443."""
    settings = settings_from_connection(
        host=host, port=port, login=None, password=None, extras={"token": "t", "region": DEFAULT_REGION}
    )
    assert settings.endpoint == endpoint
