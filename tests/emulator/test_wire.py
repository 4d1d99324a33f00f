"""HTTP/1.1 details of the server, exercised over raw sockets, and concurrency."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from typing import NoReturn

import httpx
import pytest

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, DEFAULT_READY_TOKEN, Emulator

GET_LIB = (
    f"GET /v1/{DEFAULT_PROJECT_ID}/service/lib HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {DEFAULT_READY_TOKEN}\r\n"
).encode()


def _connect(emulator: Emulator) -> socket.socket:
    host, port = emulator.url.removeprefix("http://").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=5)
    return sock


def _read_all(sock: socket.socket) -> bytes:
    chunks: list[bytes] = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _statuses(raw: bytes) -> list[int]:
    return [int(status) for status in re.findall(rb"HTTP/1\.1 (\d{3}) ", raw)]


def test_pipelined_requests_answered_in_order_and_connection_close(emulator: Emulator) -> None:
    emulator.upsert_instance("lib")
    with _connect(emulator) as sock:
        sock.sendall(
            GET_LIB
            + b"\r\n"
            + GET_LIB.replace(b"/lib ", b"/nope ")
            + b"\r\n"
            + GET_LIB
            + b"Connection: close\r\n\r\n"
        )
        raw = _read_all(sock)  # returns only because the server closed after the third answer
    assert _statuses(raw) == [200, 400, 200]
    assert raw.count(b"X-Request-Id: ") == 3
    assert b"Connection: close" in raw


def test_http10_closes_by_default(emulator: Emulator) -> None:
    emulator.upsert_instance("lib")
    with _connect(emulator) as sock:
        sock.sendall(GET_LIB.replace(b"HTTP/1.1", b"HTTP/1.0") + b"\r\n")
        assert _statuses(_read_all(sock)) == [200]


def test_chunked_body_and_expect_continue(emulator: Emulator) -> None:
    body = json.dumps({"name": "chunky", "model": "common-search"}).encode()
    head = (
        f"POST /v1/{DEFAULT_PROJECT_ID}/service HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {DEFAULT_READY_TOKEN}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    with _connect(emulator) as sock:
        sock.sendall(head)
        assert sock.recv(1024).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (10, body[:10], len(body) - 10, body[10:]))
        raw = _read_all(sock)
    assert _statuses(raw) == [200]
    assert b'"instanceName":"chunky"' in raw


def test_garbage_request_line_is_400_and_closed(emulator: Emulator) -> None:
    with _connect(emulator) as sock:
        sock.sendall(b"HELLO\r\n\r\n")
        raw = _read_all(sock)
    assert _statuses(raw) == [400]
    assert b"APIGW.0201" in raw


def test_oversized_headers_are_494(emulator: Emulator) -> None:
    with _connect(emulator) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n")
        raw = _read_all(sock)
    assert _statuses(raw) == [494]


def test_thousand_concurrent_keepalive_connections(emulator: Emulator) -> None:
    """1,000 sockets open at once, each sending three requests on its keep-alive connection."""
    emulator.upsert_instance("lib")
    host, port = emulator.url.removeprefix("http://").rsplit(":", 1)
    request = GET_LIB + b"\r\n"

    async def client(opened: asyncio.Barrier) -> list[int]:
        reader, writer = await asyncio.open_connection(host, int(port))
        await opened.wait()
        statuses = []
        for _ in range(3):
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            statuses.append(int(head.split(b" ")[1]))
        writer.close()
        return statuses

    async def main() -> list[list[int]]:
        opened = asyncio.Barrier(1000)
        return await asyncio.wait_for(asyncio.gather(*(client(opened) for _ in range(1000))), 60)

    results = asyncio.run(main())
    assert results == [[200, 200, 200]] * 1000
    assert emulator.stats()["by_status"] == {"200": 3000}


def test_concurrent_httpx_clients(emulator: Emulator) -> None:
    """200 ``httpx.AsyncClient``s, one keep-alive connection each, polling concurrently."""
    emulator.upsert_instance("lib")
    url = f"{emulator.url}/v1/{DEFAULT_PROJECT_ID}/service/lib"
    headers = {"X-Auth-Token": DEFAULT_READY_TOKEN}

    async def poller(opened: asyncio.Barrier) -> list[int]:
        limits = httpx.Limits(max_connections=1)
        async with httpx.AsyncClient(limits=limits, timeout=30, verify=False) as client:
            statuses = [(await client.get(url, headers=headers)).status_code]
            await opened.wait()
            for _ in range(3):
                statuses.append((await client.get(url, headers=headers)).status_code)
            return statuses

    async def main() -> list[list[int]]:
        opened = asyncio.Barrier(200)
        return await asyncio.wait_for(asyncio.gather(*(poller(opened) for _ in range(200))), 60)

    assert asyncio.run(main()) == [[200] * 4] * 200
    assert emulator.stats()["by_status"] == {"200": 800}


def test_an_emulator_bug_becomes_a_500_and_the_server_keeps_serving(
    emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    emulator.upsert_instance("lib")
    app = emulator._server.app

    def broken(*args: object) -> NoReturn:
        raise RuntimeError("boom")

    with _connect(emulator) as sock, pytest.MonkeyPatch.context() as patch:
        patch.setattr(app.v1, "handle", broken)
        sock.sendall(GET_LIB + b"\r\n")
        first = sock.recv(65536)
        patch.undo()
        sock.sendall(GET_LIB + b"Connection: close\r\n\r\n")
        rest = _read_all(sock)
    assert _statuses(first) == [500]
    assert b"APIGW.0601" in first
    assert _statuses(rest) == [200]
    assert "RuntimeError: boom" in capsys.readouterr().err
