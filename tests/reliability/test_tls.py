"""Item 9: TLS is verified by default, and plain HTTP is refused off loopback unless explicitly allowed.

A TLS-terminating proxy (asyncio + ssl, 127.0.0.1 only) sits in front of the emulator with a
self-signed certificate generated at test time (``cryptography``):

* default settings: the sync and async hooks fail with a clear TLS error (``TLS_ERROR``, "certificate
  verify failed"), and the emulator never sees the request;
* ``verify`` extra pointing at the certificate file: both hooks work through the proxy;
* the certificate must also match the host: a CA-trusted certificate for another name still fails;
* ``http://`` to a non-loopback host is refused with a message naming ``https://`` and
  ``allow_insecure``; loopback (127.0.0.1, another 127.x address, ::1, localhost) is accepted, and so is
  any host once ``allow_insecure`` is set; ``verify: false`` alone is refused too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.errors import (
    ImageSearchConfigError,
    ImageSearchError,
    ImageSearchTransportError,
)
from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchAsyncHook, ImageSearchHook
from airflow_provider_imagesearch.retry import RetryPolicy
from tests.reliability.support import CertFiles, SecretAudit, TlsProxy, make_self_signed
from tests.support.connections import connection_fields, set_connection

API_ROUTE = "GET /v1/{project_id}/service/{instance_name}"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CertFiles]:
    directory = tmp_path_factory.mktemp("tls")
    return {
        "good": make_self_signed(directory, "good"),
        "other_name": make_self_signed(directory, "other", ip=None, dns="imagesearch.invalid"),
    }


@pytest.fixture
def proxy(certs: dict[str, CertFiles], emulator: Emulator) -> Iterator[TlsProxy]:
    host, port = emulator.url.removeprefix("http://").rsplit(":", 1)
    with TlsProxy(certs["good"], host, int(port)) as tls:
        yield tls


def _tls_conn(
    monkeypatch: pytest.MonkeyPatch, url: str, conn_id: str, auth: str = "token", **extra: Any
) -> str:
    fields = connection_fields(url, auth, **extra)
    fields["extra"]["iam_endpoint"] = url
    return set_connection(monkeypatch, conn_id, **fields)


async def _async_get(conn_id: str, name: str, **kwargs: Any) -> Any:
    hook = ImageSearchAsyncHook(conn_id, **kwargs)
    try:
        return await hook.get_instance(name)
    finally:
        await hook.aclose()


def test_self_signed_certificate_is_refused_by_default(
    proxy: TlsProxy, emulator: Emulator, monkeypatch: pytest.MonkeyPatch, audit: SecretAudit
) -> None:
    emulator.upsert_instance("tls-1")
    conn_id = _tls_conn(monkeypatch, proxy.url, "tls_default")
    hook = ImageSearchHook(conn_id)
    assert hook.settings.verify is True
    with pytest.raises(ImageSearchTransportError) as caught:
        hook.get_instance("tls-1")
    audit.exception("tls sync", caught.value)
    message = str(caught.value)
    assert caught.value.error_code == "TLS_ERROR"
    assert "certificate verify failed" in message.lower()
    ok, test_message = ImageSearchHook(conn_id).test_connection()
    audit.text("test_connection", test_message)
    assert not ok
    assert "TLS_ERROR" in test_message
    with pytest.raises(ImageSearchTransportError) as caught_async:
        asyncio.run(_async_get(conn_id, "tls-1"))
    audit.exception("tls async", caught_async.value)
    assert caught_async.value.error_code == "TLS_ERROR"
    assert "certificate" in str(caught_async.value).lower()
    # One refused handshake per path (sync, test_connection, async); wait for the proxy to count them
    # so that a late successful handshake could not slip past the assertion below.
    handshakes_failed = proxy.wait_for("handshake_failures", 3)
    stats = emulator.stats()
    audit.figure(
        "TLS default verify",
        error=message[:110],
        handshakes_failed=handshakes_failed,
        emulator_requests=stats["requests_total"],
    )
    assert handshakes_failed >= 3
    assert proxy.handshakes == 0
    assert stats["requests_total"] == 0


def test_verify_extra_with_the_ca_file_works(
    proxy: TlsProxy,
    certs: dict[str, CertFiles],
    emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    audit: SecretAudit,
) -> None:
    emulator.upsert_instance("tls-2")
    for auth in ("token", "aksk", "iam_password"):
        conn_id = _tls_conn(monkeypatch, proxy.url, f"tls_ca_{auth}", auth, verify=str(certs["good"].cert))
        assert ImageSearchHook(conn_id).get_instance("tls-2").instance_name == "tls-2"
        assert asyncio.run(_async_get(conn_id, "tls-2")).instance_name == "tls-2"
    stats = emulator.stats()
    audit.figure(
        "TLS verify=CA file", handshakes=proxy.handshakes, api_requests=stats["by_route"].get(API_ROUTE)
    )
    assert stats["by_route"][API_ROUTE] == 6
    assert stats["token_requests"] == 1  # the IAM call went through the proxy too
    assert proxy.wait_for("handshakes", 3) >= 3


def test_trusted_certificate_for_another_name_is_refused(
    certs: dict[str, CertFiles], emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, port = emulator.url.removeprefix("http://").rsplit(":", 1)
    with TlsProxy(certs["other_name"], host, int(port)) as tls:
        conn_id = _tls_conn(monkeypatch, tls.url, "tls_other", verify=str(certs["other_name"].cert))
        with pytest.raises(ImageSearchTransportError) as caught:
            ImageSearchHook(conn_id, retry_policy=RetryPolicy(max_attempts=1)).get_instance("tls-1")
    assert caught.value.error_code == "TLS_ERROR"
    assert "match" in str(caught.value).lower() or "mismatch" in str(caught.value).lower()
    assert emulator.stats()["requests_total"] == 0


def test_certificate_failure_is_not_retried(proxy: TlsProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    conn_id = _tls_conn(monkeypatch, proxy.url, "tls_retry", max_attempts=5)
    with pytest.raises(ImageSearchTransportError):
        ImageSearchHook(conn_id).get_instance("tls-1")
    assert proxy.connections == 1


def _settings_of(monkeypatch: pytest.MonkeyPatch, host: str, **extra: Any) -> Any:
    fields = connection_fields(host, "token", **extra)
    fields["extra"].pop("iam_endpoint")
    fields["extra"].update(extra)
    return ImageSearchHook(set_connection(monkeypatch, "plain_http", **fields)).settings


@pytest.mark.parametrize(
    "host",
    [
        "http://imagesearch.example.com",
        "http://10.0.0.1:8080",
        "http://127.0.0.1.example.com",
        "http://localhost.example.com",
        "http://0x7f000001",
        "http://2130706433",
    ],
)
def test_plain_http_off_loopback_is_refused(
    host: str, monkeypatch: pytest.MonkeyPatch, audit: SecretAudit
) -> None:
    with pytest.raises(ImageSearchConfigError) as caught:
        _settings_of(monkeypatch, host)
    audit.exception("plain http", caught.value)
    message = str(caught.value)
    assert "plain HTTP" in message
    assert "https://" in message
    assert "allow_insecure" in message
    ok, test_message = ImageSearchHook("plain_http").test_connection()
    assert not ok
    assert "allow_insecure" in test_message
    # The explicit opt-in is honoured (no request is made: the host is not reachable from here).
    assert _settings_of(monkeypatch, host, allow_insecure=True).endpoint == host


@pytest.mark.parametrize(
    "host", ["http://127.0.0.1:8080", "http://127.0.0.2", "http://[::1]:8080", "http://localhost"]
)
def test_plain_http_on_loopback_is_accepted(host: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _settings_of(monkeypatch, host).endpoint == host


def test_plain_http_iam_endpoint_and_verify_false_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ImageSearchConfigError, match=r"iam_endpoint.*allow_insecure"):
        _settings_of(monkeypatch, "https://imagesearch.example.com", iam_endpoint="http://iam.example.com")
    with pytest.raises(ImageSearchConfigError, match=r"verify.*allow_insecure"):
        _settings_of(monkeypatch, "https://imagesearch.example.com", verify=False)
    assert _settings_of(monkeypatch, "https://imagesearch.example.com").verify is True
    settings = _settings_of(monkeypatch, "https://imagesearch.example.com", verify=False, allow_insecure=True)
    assert settings.verify is False


def test_tls_errors_are_project_errors_for_every_path(
    proxy: TlsProxy, monkeypatch: pytest.MonkeyPatch, audit: SecretAudit
) -> None:
    """IAM token requests over an untrusted TLS endpoint fail the same clear way."""
    conn_id = _tls_conn(monkeypatch, proxy.url, "tls_iam", "iam_password", max_attempts=1)
    with pytest.raises(ImageSearchError) as caught:
        ImageSearchHook(conn_id).get_instance("tls-1")
    audit.exception("tls iam", caught.value)
    assert isinstance(caught.value, ImageSearchTransportError)
    assert caught.value.error_code == "TLS_ERROR"
    assert caught.value.path == "/v3/auth/tokens"
    assert proxy.wait_for("handshake_failures", 1) >= 1
