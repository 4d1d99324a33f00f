"""An object store on loopback for manifest URLs: an HTTP server in a thread that answers each object's
path with the answer a test gave it, and 404 for any other path."""

from __future__ import annotations

import http.server
import socket
import threading
from dataclasses import dataclass
from types import TracebackType


def free_port() -> int:
    """A loopback port that nothing listens on (bound once and released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Answer:
    """What the store answers a GET of one object with.

    ``broken_chunks``: a chunked body whose first chunk size is not hexadecimal, so reading it fails.
    """

    status: int
    body: bytes
    content_type: str | None = None
    broken_chunks: bool = False


class LoopbackStore:
    """``with LoopbackStore() as store: url = store.put("m.csv", Answer(200, b"..."))``.

    Objects live under ``/bucket/``; a query string is ignored when answering, as a presigned URL's is.
    """

    def __init__(self) -> None:
        self.answers: dict[str, Answer] = {}
        answers = self.answers

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                answer = answers.get(self.path.split("?")[0], Answer(404, b""))
                self.send_response(answer.status)
                if answer.content_type is not None:
                    self.send_header("Content-Type", answer.content_type)
                if answer.broken_chunks:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    self.wfile.write(b"zz\r\n" + answer.body + b"\r\n0\r\n\r\n")
                    return
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    def put(self, key: str, answer: Answer) -> str:
        """Answer GETs of object ``key`` with ``answer`` from now on; the object's URL (no query)."""
        self.answers[f"/bucket/{key}"] = answer
        return f"http://127.0.0.1:{self._server.server_address[1]}/bucket/{key}"

    def __enter__(self) -> LoopbackStore:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
