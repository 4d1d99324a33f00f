"""Request counters and the bounded request log behind ``/_emulator/stats`` and ``/_emulator/requests``.

Only API and IAM requests are counted; control requests (``/_emulator/...``) are not, so a test can read
the stats without disturbing them.
"""

from __future__ import annotations

import collections
import time
from typing import Any

from airflow_provider_imagesearch.emulator import constants as c


class Stats:
    def __init__(self) -> None:
        self.started = time.time()
        self.reset()

    def reset(self) -> None:
        self.reset_at = time.time()
        self.requests_total = 0
        self.by_route: collections.Counter[str] = collections.Counter()
        self.by_status: collections.Counter[str] = collections.Counter()
        self.faults_injected: collections.Counter[str] = collections.Counter()
        self.requests_by_auth: collections.Counter[str] = collections.Counter(token=0, aksk=0, none=0)
        self.token_requests = 0
        self.tokens_issued = 0
        self.token_expiries = 0
        self.token_expiry_events = 0
        self.auth_failures = 0
        self.log: collections.deque[dict[str, Any]] = collections.deque(maxlen=c.REQUEST_LOG_SIZE)

    def record(
        self,
        *,
        method: str,
        path: str,
        route: str,
        status: int | None,
        fault: str | None,
        auth: str,
        instance: str | None,
        error_code: str | None = None,
    ) -> None:
        """Count one finished request; ``status`` None means the connection was dropped unanswered."""
        self.requests_total += 1
        self.by_route[route] += 1
        self.by_status["dropped" if status is None else str(status)] += 1
        self.requests_by_auth[auth] += 1
        if fault is not None:
            self.faults_injected[fault] += 1
        self.log.append(
            {
                "ts": time.time(),
                "method": method,
                "path": path,
                "route": route,
                "status": status,
                "fault": fault,
                "auth": auth,
                "instance": instance,
                "error_code": error_code,
            }
        )

    def snapshot(self, forced_expiry_events: int = 0) -> dict[str, Any]:
        now = time.time()
        window = max(now - self.reset_at, 1e-9)
        return {
            "requests_total": self.requests_total,
            "by_route": dict(self.by_route),
            "by_status": dict(self.by_status),
            "faults_injected": dict(self.faults_injected),
            "token_requests": self.token_requests,
            "tokens_issued": self.tokens_issued,
            "token_expiries": self.token_expiries,
            "token_expiry_events": self.token_expiry_events + forced_expiry_events,
            "auth_failures": self.auth_failures,
            "requests_by_auth": dict(self.requests_by_auth),
            "uptime_s": round(now - self.started, 3),
            "since_reset_s": round(window, 3),
            "requests_per_second": round(self.requests_total / window, 2),
        }
