"""A rewriting HTTP proxy in front of the emulator: what the service answers instead (token auth only).

For answers the emulator never gives (a v2 answer without ``data``, say) or state changes that must happen
between two requests (a writer racing a task). ``rewrite(path, request_body, status, answer) -> answer``
sees every JSON answer and returns the one to send.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

Rewrite = Callable[[str, dict[str, Any], int, Any], Any]


class RewritingProxy:
    """Forwards every request to ``upstream`` and lets ``rewrite`` change the JSON answers."""

    def __init__(self, upstream: str, rewrite: Rewrite) -> None:
        target = urlsplit(upstream)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                connection = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
                connection.request(self.command, self.path, body=raw or None, headers=headers)
                answer = connection.getresponse()
                body = answer.read()
                status = answer.status
                content_type = answer.getheader("Content-Type") or "application/json"
                connection.close()
                if "json" in content_type and body:
                    request_body = json.loads(raw) if raw else {}
                    body = json.dumps(
                        proxy.rewrite(self.path, request_body, status, json.loads(body))
                    ).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _forward

        self.rewrite = rewrite
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        # shutdown() waits for serve_forever's next poll: at the default 0.5 s that was most of each test.
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.005,), daemon=True)

    def __enter__(self) -> RewritingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
