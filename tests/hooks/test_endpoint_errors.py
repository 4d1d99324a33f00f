"""Errors that say which host could not be reached and which connection setting chose it (issue 22).

A connection with only ``host`` pointed at a private endpoint (or the emulator) still sends IAM to the
public ``iam.{region}`` host: before, that was 5 attempts per call (25 through a sensor's 5 consecutive
errors) ending in a ``NameResolutionError`` that named no setting. Now a host name that does not resolve
is tried ``NAME_RESOLUTION_ATTEMPTS`` times, and the error names the host and the setting.

Public Huawei host names are never looked up for real: ``no_public_dns`` answers "no such name" for
every non-loopback name, as a resolver without those records would, and records what was asked.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import (
    DEFAULT_DOMAIN,
    DEFAULT_PASSWORD,
    DEFAULT_PROJECT_ID,
    DEFAULT_REGION,
    DEFAULT_USER,
    Emulator,
)
from airflow_provider_imagesearch.errors import ImageSearchTransportError
from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchAsyncHook, ImageSearchHook
from airflow_provider_imagesearch.outcomes import is_permanent
from airflow_provider_imagesearch.retry import NAME_RESOLUTION_ATTEMPTS
from tests.support.connections import FAST_RETRY_EXTRAS, set_connection

IAM_HOST = f"iam.{DEFAULT_REGION}.myhuaweicloud.com"
MMS_HOST = f"mms.{DEFAULT_REGION}.myhuaweicloud.com"


@pytest.fixture
def no_public_dns(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names other than loopback do not resolve (EAI_NONAME); yields the names asked for, in order."""
    real = socket.getaddrinfo
    asked: list[str] = []

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name in ("127.0.0.1", "localhost", "::1"):
            return real(host, *args, **kwargs)
        asked.append(name)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


def _host_only(emulator: Emulator, **extra: Any) -> dict[str, Any]:
    """What a user writes first: the emulator as ``host``, the rest as for the cloud."""
    return {
        "conn_type": "imagesearch",
        "host": emulator.url,
        "login": DEFAULT_USER,
        "password": DEFAULT_PASSWORD,
        "extra": {
            "region": DEFAULT_REGION,
            "project_id": DEFAULT_PROJECT_ID,
            "domain_name": DEFAULT_DOMAIN,
            **FAST_RETRY_EXTRAS,
            **extra,
        },
    }


def _assert_names_iam_from_region(error: ImageSearchTransportError) -> None:
    message = str(error)
    assert error.error_code == "NAME_NOT_RESOLVED", message
    assert error.request_sent is False
    assert IAM_HOST in message
    assert "IAM endpoint" in message
    assert "'region' extra (cn-north-4)" in message
    assert "'iam_endpoint' extra" in message


def test_iam_host_from_the_region_that_does_not_resolve(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator, no_public_dns: list[str]
) -> None:
    set_connection(monkeypatch, "host_only", **_host_only(emulator))
    emulator.reset_stats()
    with ImageSearchHook("host_only") as hook, pytest.raises(ImageSearchTransportError) as caught:
        hook.get_instance("shop-main")
    _assert_names_iam_from_region(caught.value)
    # A few attempts, not the connection's whole budget (max_attempts 5 here).
    assert no_public_dns == [IAM_HOST] * NAME_RESOLUTION_ATTEMPTS
    assert FAST_RETRY_EXTRAS["max_attempts"] > NAME_RESOLUTION_ATTEMPTS
    assert emulator.stats()["requests_total"] == 0


def test_async_hook_names_the_iam_host_and_setting(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator, no_public_dns: list[str]
) -> None:
    set_connection(monkeypatch, "host_only", **_host_only(emulator))

    async def read() -> None:
        async with ImageSearchAsyncHook("host_only") as hook:
            await hook.get_instance("shop-main")

    with pytest.raises(ImageSearchTransportError) as caught:
        asyncio.run(read())
    _assert_names_iam_from_region(caught.value)
    assert no_public_dns == [IAM_HOST] * NAME_RESOLUTION_ATTEMPTS


def test_v2_call_names_the_mms_host_and_setting(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator, no_public_dns: list[str]
) -> None:
    # IAM is right (the emulator), the v2 endpoint is still the region's default.
    set_connection(
        monkeypatch, "no_mms", **_host_only(emulator, iam_endpoint=emulator.url, auth_type="iam_password")
    )
    with ImageSearchHook("no_mms") as hook, pytest.raises(ImageSearchTransportError) as caught:
        hook.check_data("my-service", item_id="item-1")
    message = str(caught.value)
    assert caught.value.error_code == "NAME_NOT_RESOLVED"
    assert MMS_HOST in message
    assert "ImageSearch v2 (MMS) endpoint" in message
    assert "'mms_endpoint' extra" in message
    assert no_public_dns == [MMS_HOST] * NAME_RESOLUTION_ATTEMPTS


def test_an_explicit_endpoint_that_does_not_resolve_is_named(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator
) -> None:
    # A real lookup: names under .invalid never resolve (RFC 6761), with or without DNS.
    set_connection(monkeypatch, "typo", **_host_only(emulator, iam_endpoint="https://iam.example.invalid"))
    with ImageSearchHook("typo") as hook, pytest.raises(ImageSearchTransportError) as caught:
        hook.get_instance("shop-main")
    assert caught.value.error_code == "NAME_NOT_RESOLVED"
    assert "iam.example.invalid" in str(caught.value)
    assert "from the 'iam_endpoint' extra" in str(caught.value)
    assert hook.retry_stats["dns"] == NAME_RESOLUTION_ATTEMPTS - 1


@pytest.mark.parametrize("hook_kind", ["sync", "async"])
def test_refused_connection_names_host_port_and_the_host_field(
    monkeypatch: pytest.MonkeyPatch, hook_kind: str
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    set_connection(
        monkeypatch,
        "refused",
        conn_type="imagesearch",
        host=url,
        extra={"project_id": DEFAULT_PROJECT_ID, "token": "t", "max_attempts": 2, "backoff_initial": 0.01},
    )

    async def read_async() -> None:
        async with ImageSearchAsyncHook("refused") as hook:
            await hook.get_instance("shop-main")

    def read() -> None:
        if hook_kind == "sync":
            with ImageSearchHook("refused") as hook:
                hook.get_instance("shop-main")
        else:
            asyncio.run(read_async())

    with pytest.raises(ImageSearchTransportError) as caught:
        read()
    message = str(caught.value)
    assert caught.value.error_code == "CONNECT_ERROR"
    assert f"cannot connect to 127.0.0.1:{port} (Connection refused)" in message
    assert f"the ImageSearch v1 endpoint {url}, from the Host field" in message


def test_a_name_that_does_not_exist_fails_a_sensor_at_once(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator, no_public_dns: list[str]
) -> None:
    """The sensor stops after the hook's few attempts instead of counting 5 failed pokes of 5 attempts."""
    from airflow_provider_imagesearch.sensors.imagesearch import ImageSearchInstanceStatusSensor
    from airflow_provider_imagesearch.version_compat import AirflowFailException

    set_connection(monkeypatch, "imagesearch_default", **_host_only(emulator))
    sensor = ImageSearchInstanceStatusSensor(task_id="wait", instance_name="shop-main", poke_interval=1)
    with pytest.raises(AirflowFailException) as caught:
        sensor.poke({})  # type: ignore[arg-type]
    assert IAM_HOST in str(caught.value)
    assert "'iam_endpoint' extra" in str(caught.value)
    assert no_public_dns == [IAM_HOST] * NAME_RESOLUTION_ATTEMPTS


def test_name_not_resolved_is_permanent_but_a_refusal_is_not() -> None:
    def error(code: str) -> ImageSearchTransportError:
        return ImageSearchTransportError(status=None, error_code=code, error_msg="x")

    assert is_permanent(error("NAME_NOT_RESOLVED"))
    assert not is_permanent(error("CONNECT_ERROR"))


def test_temporary_resolver_failure_keeps_the_full_budget(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator
) -> None:
    """EAI_AGAIN (the resolver is unreachable) is an outage, not a wrong name: the whole budget."""
    asked: list[str] = []
    real: Callable[..., Any] = socket.getaddrinfo

    def flaky(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name == "127.0.0.1":
            return real(host, *args, **kwargs)
        asked.append(name)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", flaky)
    set_connection(monkeypatch, "host_only", **_host_only(emulator))
    with ImageSearchHook("host_only") as hook, pytest.raises(ImageSearchTransportError) as caught:
        hook.get_instance("shop-main")
    assert caught.value.error_code == "CONNECT_ERROR"
    assert len(asked) == FAST_RETRY_EXTRAS["max_attempts"]
    assert IAM_HOST in str(caught.value)
