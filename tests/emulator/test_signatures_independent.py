"""AK/SK signatures checked by an independent verifier: ``huaweicloudsdkcore``'s ``Signer``.

The emulator verifies signatures with the provider's own ``signing`` module, so a bug shared by both would
pass every other test. Here a small recording proxy sits between the provider's hooks and the emulator:
every request the hooks really sent is re-signed by the official SDK's ``Signer`` from its method, path,
query, signed headers and body, and the two ``Authorization`` headers must be identical. The other way
round, a request signed by the SDK must be accepted by the emulator.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from airflow_provider_imagesearch import signing
from airflow_provider_imagesearch.emulator import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_PROJECT_ID,
    DEFAULT_SECRET_KEY,
    Emulator,
)
from tests.support.connections import connection_fields, set_connection

from .helpers import PNG, Api, assert_error, b64


@dataclass
class Captured:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes


class _RecordingProxy:
    """Forwards each request unchanged (same Host header, same bytes) to ``upstream`` and records it."""

    def __init__(self, upstream: str) -> None:
        self.captured: list[Captured] = []
        parts = urlsplit(upstream)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = list(self.headers.items())
                proxy.captured.append(Captured(self.command, self.path, headers, body))
                conn = http.client.HTTPConnection(host, port, timeout=10)
                try:
                    conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                    for name, value in headers:
                        conn.putheader(name, value)
                    conn.endheaders(body or None)
                    answer = conn.getresponse()
                    payload = answer.read()
                finally:
                    conn.close()
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in {"content-length", "connection", "transfer-encoding"}:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _relay

            def log_message(self, format: str, *args: Any) -> None:  # keep the test output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy(emulator: Emulator) -> Iterator[_RecordingProxy]:
    recorder = _RecordingProxy(emulator.url)
    yield recorder
    recorder.close()


def _sdk_authorization(captured: Captured, signed_names: list[str]) -> str:
    """What huaweicloudsdkcore's Signer computes for this request, signing the headers named."""
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkcore.sdk_request import SdkRequest
    from huaweicloudsdkcore.signer.signer import Signer

    sent = {name.lower(): value for name, value in captured.headers}
    path, _, query = captured.target.partition("?")
    request = SdkRequest(
        method=captured.method,
        schema="http",
        host=sent["host"],
        resource_path=path,
        query_params=parse_qsl(query, keep_blank_values=True),
        header_params={name: sent[name] for name in signed_names},
        body=captured.body,
    )
    Signer(BasicCredentials(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY)).sign(request)
    return str(request.header_params["Authorization"])


def _assert_sdk_agrees(captured: list[Captured]) -> None:
    assert captured, "the proxy saw no request"
    for request in captured:
        sent = {name.lower(): value for name, value in request.headers}
        parsed = signing.parse_authorization(sent["authorization"])
        assert parsed is not None, sent["authorization"]
        # What the provider signs: at least what the APIG scheme and the SDK always sign.
        assert {"host", "x-sdk-date", "content-type", "x-project-id"} <= set(parsed.signed_headers)
        expected = _sdk_authorization(request, parsed.signed_headers)
        assert sent["authorization"] == expected, f"{request.method} {request.target}"


def test_sync_hook_signatures_match_huaweicloudsdkcore(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator, proxy: _RecordingProxy
) -> None:
    from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchHook

    conn_id = set_connection(monkeypatch, "aksk_via_proxy", **connection_fields(proxy.url, "aksk"))
    hook = ImageSearchHook(conn_id)
    hook.create_instance("signed", tags=["color"])
    assert hook.get_instance("signed").instance_name == "signed"
    assert hook.add_image("signed", path="img-1", file_base64=b64(PNG), tags={"color": "red"}) == "Success"
    assert hook.modify_image("signed", path="img-1", tags={"color": "blue"}) == "Success"
    assert hook.search_images("signed", path="img-1", limit=5).count == 1
    assert hook.check_image("signed", path="img-1") is True
    assert hook.delete_image("signed", path="img-1") == "Success"
    hook.delete_instance("signed")
    methods = {request.method for request in proxy.captured}
    assert methods == {"GET", "POST", "PUT", "DELETE"}
    _assert_sdk_agrees(proxy.captured)


def test_async_hook_signatures_match_huaweicloudsdkcore(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator, proxy: _RecordingProxy
) -> None:
    from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchAsyncHook

    emulator.upsert_instance("async-signed")
    conn_id = set_connection(monkeypatch, "aksk_via_proxy", **connection_fields(proxy.url, "aksk"))

    async def query() -> str | None:
        async with ImageSearchAsyncHook(conn_id) as hook:
            return (await hook.get_instance("async-signed")).instance_name

    assert asyncio.run(query()) == "async-signed"
    _assert_sdk_agrees(proxy.captured)


def _send_sdk_signed(
    api: Api, method: str, path: str, body: bytes, extra: dict[str, str] | None = None
) -> requests.Response:
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkcore.sdk_request import SdkRequest
    from huaweicloudsdkcore.signer.signer import Signer

    host = urlsplit(api.url).netloc
    headers = {"Content-Type": "application/json;charset=UTF-8", "X-Project-Id": DEFAULT_PROJECT_ID}
    request = SdkRequest(
        method=method,
        schema="http",
        host=host,
        resource_path=path,
        query_params=[],
        header_params={**headers, **(extra or {})},
        body=body,
    )
    Signer(BasicCredentials(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY)).sign(request)
    return api.session.request(
        method, api.url + path, data=body or None, headers=dict(request.header_params), timeout=5
    )


def test_requests_signed_by_huaweicloudsdkcore_are_accepted(api: Api, ready_instance: str) -> None:
    base = f"/v1/{DEFAULT_PROJECT_ID}"
    query = _send_sdk_signed(api, "GET", f"{base}/service/{ready_instance}", b"")
    assert query.status_code == 200, query.text
    body = json.dumps({"path": "img", "file": b64(PNG)}).encode()
    added = _send_sdk_signed(api, "POST", f"{base}/{ready_instance}/image", body)
    assert added.json() == {"result": "Success"}
    deleted = _send_sdk_signed(api, "DELETE", f"{base}/{ready_instance}/image", b'{"path": "img"}')
    assert deleted.json() == {"result": "Success"}
    # The same SDK-signed headers with one body byte changed are refused: the emulator really checked.
    check = _send_sdk_signed(api, "POST", f"{base}/{ready_instance}/image/check", b'{"path": "img"}')
    assert check.json() == {"exist": "false"}
    replayed = api.session.post(
        api.url + f"{base}/{ready_instance}/image/check",
        data=b'{"path": "imh"}',
        headers=dict(check.request.headers),
        timeout=5,
    )
    assert_error(replayed, 401, "APIGW.0301")
