"""A dependency-free client for the emulator's control endpoints (``/_emulator/...``).

Uses ``urllib.request`` so it works in the emulator's own import-light world and from tests that must
not go through the project's hook.
"""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from typing import Any


class EmulatorControlError(RuntimeError):
    """A control endpoint answered with an error (bad fault config, unknown instance, ...)."""


class EmulatorClient:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        # The emulator is on loopback: never through a proxy, whatever HTTP(S)_PROXY says.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _call(self, method: str, action: str, payload: Any = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(
            f"{self.url}/_emulator/{action}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"} if data is not None else {},
        )
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")
            with contextlib.suppress(ValueError, AttributeError):
                detail = json.loads(detail).get("error", detail)
            raise EmulatorControlError(f"{method} /_emulator/{action}: HTTP {exc.code}: {detail}") from None

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "health")
        return result

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "stats")
        return result

    def reset_stats(self) -> None:
        """Zero the counters and clear the request log."""
        self._call("POST", "reset-stats", {})

    def requests_log(self, limit: int | None = None) -> list[dict[str, Any]]:
        suffix = "" if limit is None else f"?limit={int(limit)}"
        result: list[dict[str, Any]] = self._call("GET", "requests" + suffix)
        return result

    def faults(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "faults")
        return result

    def set_faults(self, **settings: Any) -> dict[str, Any]:
        """Merge ``settings`` into the fault config (``reset=True`` starts from no faults); returns it."""
        result: dict[str, Any] = self._call("POST", "faults", settings)
        return result

    def reset_faults(self) -> dict[str, Any]:
        return self.set_faults(reset=True)

    def expire_tokens(self, include_ready: bool = True) -> int:
        """Revoke every issued token (and the ready tokens unless ``include_ready`` is False)."""
        result = self._call("POST", "expire-tokens", {"include_ready": include_ready})
        return int(result["expired"])

    def upsert_instances(self, instances: list[dict[str, Any]]) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("POST", "instances", {"instances": instances})["instances"]
        return result

    def upsert_v2_services(self, services: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Create or replace v2 (MMS) services in seed form (``v2_services``)."""
        result: list[dict[str, Any]] = self._call("POST", "v2-services", {"services": services})["services"]
        return result

    def add_images(
        self, instance: str, images: dict[str, dict[str, Any]], project_id: str | None = None
    ) -> int:
        """Add (or replace) images of an existing instance, keeping its others; returns its image count."""
        body: dict[str, Any] = {"instance": instance, "images": images}
        if project_id is not None:
            body["project_id"] = project_id
        return int(self._call("POST", "images", body)["images"])

    def add_v2_items(
        self, service: str, items: dict[str, dict[str, Any]], project_id: str | None = None
    ) -> int:
        """Add (or replace) items of an existing v2 service, keeping its others; returns its item count."""
        body: dict[str, Any] = {"service": service, "items": items}
        if project_id is not None:
            body["project_id"] = project_id
        return int(self._call("POST", "v2-items", body)["items"])

    def reset(self, keep_tokens: bool = True) -> None:
        """Back to the start: the seed's data, faults and settings; statistics and the log cleared."""
        self._call("POST", "reset", {"keep_tokens": keep_tokens})

    def delete_instance(self, project_id: str, name: str) -> None:
        self._call("DELETE", f"instances/{project_id}/{name}")

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "state")
        return result

    def save(self) -> str:
        return str(self._call("POST", "save", {})["saved"])

    def config(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "config")
        return result

    def set_config(self, **settings: float | str | None) -> dict[str, Any]:
        """Change ``token_lifetime`` / ``creation_seconds`` / ``deletion_seconds`` / ``own_codes_as`` at runtime."""
        result: dict[str, Any] = self._call("POST", "config", settings)
        return result
