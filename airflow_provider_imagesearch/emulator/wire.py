"""Minimal HTTP/1.1 server on an asyncio ``Protocol``.

Why not ``http.server``: a ``ThreadingHTTPServer`` needs one OS thread per keep-alive connection (1,000
pollers = 1,000 threads on a 2-core box) and parses headers with the ``email`` package, which dominates
the cost of a small request. Why a ``Protocol`` rather than streams: a request that needs no delay is
parsed, handled and answered inside one ``data_received`` call, with no task switch.

The parser handles what the emulator's clients send: a request line, headers, a body given by
``Content-Length`` or ``Transfer-Encoding: chunked``, ``Expect: 100-continue``, keep-alive (HTTP/1.1
default, ``Connection: close`` honoured, HTTP/1.0 closes unless ``keep-alive``) and pipelining (requests
on one connection are answered in order; the next one is not handled before the previous is answered).
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import random
import sys
import traceback
from collections.abc import Callable, Coroutine
from typing import Any

from airflow_provider_imagesearch.emulator import constants as c

JSON_TYPE = "application/json;charset=UTF-8"
_REASONS = {status.value: status.phrase for status in http.HTTPStatus}
_REASONS[494] = "Request Header Too Large"
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_getrandbits = random.Random().getrandbits


def new_request_id() -> str:
    """32 hex characters, the shape of API Gateway request ids (unique, not secret)."""
    return f"{_getrandbits(128):032x}"


class Request:
    __slots__ = ("body", "headers", "method", "path", "query", "request_id", "target", "version")

    def __init__(
        self,
        method: str,
        target: str,
        path: str,
        query: str,
        version: str,
        headers: dict[str, str],
        body: bytes,
    ) -> None:
        self.method = method
        self.target = target
        self.path = path
        self.query = query
        self.version = version
        self.headers = headers
        self.body = body
        self.request_id = new_request_id()


class Response:
    __slots__ = ("body", "close", "content_type", "drop", "headers", "status")

    def __init__(
        self,
        status: int,
        body: bytes = b"",
        content_type: str = JSON_TYPE,
        headers: list[tuple[str, str]] | None = None,
        *,
        drop: bool = False,
        close: bool = False,
    ) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers if headers is not None else []
        #: Close the connection without answering (the ``drop`` fault).
        self.drop = drop
        #: Answer, then close the connection.
        self.close = close

    @classmethod
    def json(cls, status: int, payload: Any, headers: list[tuple[str, str]] | None = None) -> Response:
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        return cls(status, body, JSON_TYPE, headers)


class BadRequest(Exception):
    """The bytes on the wire are not a request we can parse: answer ``status``/``code`` and close."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


#: ``handler(request, client_gone)``: a Response, or a coroutine producing one (when it must wait).
Handler = Callable[[Request, Callable[[], bool]], "Response | Coroutine[Any, Any, Response]"]


def serialize(response: Response, request_id: str, keep_alive: bool) -> bytes:
    head = (
        f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'Unknown')}\r\n"
        f"Content-Type: {response.content_type}\r\n"
        f"Content-Length: {len(response.body)}\r\n"
        f"X-Request-Id: {request_id}\r\n"
    )
    for name, value in response.headers:
        head += f"{name}: {value}\r\n"
    if not keep_alive:
        head += "Connection: close\r\n"
    return (head + "\r\n").encode("latin-1") + response.body


def _internal_error() -> Response:
    traceback.print_exc(file=sys.stderr)
    status, code, message = c.GW_INTERNAL
    return Response.json(
        status, {"error_code": code, "error_msg": f"{message} (emulator bug, see its stderr)"}
    )


def _parse_head(head: bytes) -> tuple[str, str, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(*c.GW_BAD_REQUEST)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name[-1] in " \t":
            raise BadRequest(*c.GW_BAD_REQUEST)
        key = name.lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return parts[0], parts[1], parts[2], headers


def _parse_chunked(buffer: bytearray, start: int) -> tuple[bytes, int] | None:
    """``(body, end offset)`` of a complete chunked body at ``start``; None if more bytes are needed."""
    chunks: list[bytes] = []
    total = 0
    pos = start
    while True:
        eol = buffer.find(b"\r\n", pos)
        if eol < 0:
            return None
        try:
            size = int(bytes(buffer[pos:eol]).split(b";", 1)[0].strip(), 16)
        except ValueError as exc:
            raise BadRequest(*c.GW_BAD_REQUEST) from exc
        pos = eol + 2
        if size == 0:
            while True:  # optional trailers, then an empty line
                eol = buffer.find(b"\r\n", pos)
                if eol < 0:
                    return None
                if eol == pos:
                    return b"".join(chunks), eol + 2
                pos = eol + 2
        total += size
        if total > c.GATEWAY_MAX_BODY:
            raise BadRequest(*c.GW_TOO_LARGE)
        if len(buffer) < pos + size + 2:
            return None
        chunks.append(bytes(buffer[pos : pos + size]))
        pos += size + 2


class _Connection(asyncio.Protocol):
    def __init__(self, server: HttpServer) -> None:
        self._server = server
        self._handler = server.handler
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._busy = False
        self._closed = False
        self._eof = False
        self._continued = False
        #: Parsed head of a request whose body has not fully arrived yet (parsed once, not per packet).
        self._head: tuple[str, str, str, dict[str, str], int] | None = None
        #: Bytes of an oversized body still to swallow before answering 413 (answering while the
        #: client is still sending would make its socket reset and lose the answer).
        self._discard = 0
        self._task: asyncio.Task[None] | None = None

    # --- asyncio callbacks ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._server.connections.add(self)

    def data_received(self, data: bytes) -> None:
        if self._discard:
            if len(data) < self._discard:
                self._discard -= len(data)
                return
            self._discard = 0
            self._reject(BadRequest(*c.GW_TOO_LARGE))
            return
        self._buffer += data
        if not self._busy:
            self._process()

    def eof_received(self) -> bool:
        self._eof = True
        if not self._busy:
            self.close()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._server.connections.discard(self)
        if self._task is not None and not self._task.done():
            self._task.cancel()

    # --- request loop -----------------------------------------------------------------------------
    def client_gone(self) -> bool:
        return self._closed or self._eof

    def close(self) -> None:
        if self._transport is not None and not self._closed:
            self._transport.close()

    def abort(self) -> None:
        if self._transport is not None and not self._closed:
            self._transport.abort()

    def _process(self) -> None:
        while not self._closed:
            try:
                request = self._next_request()
            except BadRequest as exc:
                self._reject(exc)
                return
            if request is None:
                if self._eof:
                    self.close()
                return
            keep_alive = self._keep_alive(request)
            try:
                result = self._handler(request, self.client_gone)
            except Exception:  # an emulator bug: show it, answer 500, keep serving
                result = _internal_error()
            if isinstance(result, Response):
                if not self._respond(request, result, keep_alive):
                    return
                continue
            self._busy = True
            self._task = asyncio.get_running_loop().create_task(self._finish(request, result, keep_alive))
            return

    async def _finish(
        self, request: Request, pending: Coroutine[Any, Any, Response], keep_alive: bool
    ) -> None:
        try:
            response = await pending
        except Exception:
            response = _internal_error()
        self._busy = False
        if self._respond(request, response, keep_alive):
            self._process()

    def _respond(self, request: Request, response: Response, keep_alive: bool) -> bool:
        """Send ``response``; False when the connection is now closing."""
        transport = self._transport
        if transport is None or self._closed:
            return False
        if response.drop:
            transport.close()
            return False
        keep_alive = keep_alive and not response.close
        transport.write(serialize(response, request.request_id, keep_alive))
        if not keep_alive:
            transport.close()
        return keep_alive

    @staticmethod
    def _keep_alive(request: Request) -> bool:
        conn = request.headers.get("connection")
        if request.version == "HTTP/1.1":
            return conn is None or "close" not in conn.lower()
        return conn is not None and "keep-alive" in conn.lower()

    def _next_request(self) -> Request | None:
        buffer = self._buffer
        if self._head is None:
            while buffer.startswith(b"\r\n"):  # stray CRLF between requests is allowed
                del buffer[:2]
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > c.MAX_HEAD:
                    raise BadRequest(*c.GW_HEAD_TOO_LARGE)
                return None
            if end > c.MAX_HEAD:
                raise BadRequest(*c.GW_HEAD_TOO_LARGE)
            self._head = (*_parse_head(bytes(buffer[:end])), end + 4)
        method, target, version, headers, start = self._head
        if "transfer-encoding" in headers and "chunked" in headers["transfer-encoding"].lower():
            parsed = _parse_chunked(buffer, start)
            if parsed is None:
                self._maybe_continue(headers)
                return None
            body, stop = parsed
        else:
            length_text = headers.get("content-length")
            try:
                length = int(length_text) if length_text else 0
            except ValueError as exc:
                raise BadRequest(*c.GW_BAD_REQUEST) from exc
            if length < 0:
                raise BadRequest(*c.GW_BAD_REQUEST)
            if length > c.GATEWAY_MAX_BODY:
                if headers.get("expect", "").lower() == "100-continue":
                    raise BadRequest(*c.GW_TOO_LARGE)
                self._discard = length - (len(buffer) - start)
                buffer.clear()
                self._head = None
                if self._discard <= 0:
                    raise BadRequest(*c.GW_TOO_LARGE)
                return None
            stop = start + length
            if len(buffer) < stop:
                self._maybe_continue(headers)
                return None
            body = bytes(buffer[start:stop])
        del buffer[:stop]
        self._head = None
        self._continued = False
        path, _, query = target.partition("?")
        if path.startswith(("http://", "https://")):
            pieces = path.split("/", 3)
            path = "/" + pieces[3] if len(pieces) > 3 else "/"
        return Request(method, target, path, query, version, headers, body)

    def _maybe_continue(self, headers: dict[str, str]) -> None:
        if not self._continued and headers.get("expect", "").lower() == "100-continue":
            self._continued = True
            assert self._transport is not None
            self._transport.write(_CONTINUE)

    def _reject(self, exc: BadRequest) -> None:
        request_id = new_request_id()
        payload = {"error_code": exc.code, "error_msg": exc.message, "request_id": request_id}
        if self._transport is not None and not self._closed:
            self._transport.write(serialize(Response.json(exc.status, payload), request_id, keep_alive=False))
            self._transport.close()


class HttpServer:
    """Serves ``handler`` on one listening socket; tracks connections so ``close`` can end them all."""

    def __init__(self, handler: Handler, host: str, port: int) -> None:
        self.handler = handler
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None
        self.connections: set[_Connection] = set()
        self.port = 0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self), self._host, self._port, backlog=4096, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            connection.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 1.0
        while self.connections and loop.time() < deadline:  # close() waits for pending writes to flush
            await asyncio.sleep(0.01)
        for connection in list(self.connections):  # a client that stopped reading
            connection.abort()
        await asyncio.sleep(0)  # let connection_lost callbacks (and task cancellations) run
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
