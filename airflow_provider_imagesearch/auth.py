"""Authentication: IAM tokens (obtained, cached, renewed), AK/SK signing, and ready tokens.

Tokens are cached per process and per credential, shared by every hook (sync or async) that uses the
same credential, so 50 hooks on one connection make one IAM call. A token is renewed before it expires
(``renew_margin``) and dropped when the gateway rejects it, and only the rejected token is dropped, so
threads racing on a rejection renew once, not once each.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_imagesearch import signing
from airflow_provider_imagesearch.api import ApiRequest, parse_json_body
from airflow_provider_imagesearch.errors import ImageSearchResponseError
from airflow_provider_imagesearch.settings import Credentials, ImageSearchSettings

TOKEN_PATH = "/v3/auth/tokens"
# Renew this long before expiry: 10% of the token's lifetime, at most 15 minutes (tokens live 24 h).
RENEW_FRACTION = 0.1
RENEW_MARGIN_MAX = 900.0


@dataclass(frozen=True)
class IssuedToken:
    """An IAM token and when to stop using it (monotonic clock, local)."""

    value: str = field(repr=False)
    expires_at: datetime
    renew_after: float
    expires_monotonic: float
    request_id: str | None = None

    def fresh(self, now: float | None = None) -> bool:
        return (now if now is not None else time.monotonic()) < self.renew_after


@dataclass(frozen=True)
class PreparedCall:
    """A request ready for any transport: absolute URL, headers (with auth) and body bytes."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes


def _parse_iso(value: object) -> datetime:
    if not isinstance(value, str):
        raise TypeError("expires_at must be a string")
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def token_scope(settings: ImageSearchSettings) -> dict[str, Any]:
    """The IAM scope of the token: the project by id when known, else the region's default project.

    A region holds a default project named after it and sub-projects (``cn-north-4_reporting``) with
    their own ids; a token scoped by the region's name is valid for the default project only.
    """
    if settings.project_id:
        return {"project": {"id": settings.project_id}}
    if settings.region:
        return {"project": {"name": settings.region}}
    return {"project": {"id": settings.require_project_id()}}


def token_api_request(settings: ImageSearchSettings) -> tuple[ApiRequest, PreparedCall]:
    """The IAM ``POST /v3/auth/tokens`` call for a password credential, project-scoped."""
    creds = settings.credentials
    scope = token_scope(settings)
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {
                        "name": creds.user,
                        "password": creds.password,
                        "domain": {"name": creds.domain_name},
                    }
                },
            },
            "scope": scope,
        }
    }
    request = ApiRequest("get_token", "POST", TOKEN_PATH, body, True, settings.project_id or "")
    prepared = PreparedCall(
        method="POST",
        url=f"{settings.iam_endpoint}{TOKEN_PATH}?nocatalog=true",
        headers={"Content-Type": "application/json;charset=utf8", "Accept": "application/json"},
        body=json.dumps(body).encode("utf-8"),
    )
    return request, prepared


def parse_token_response(
    request: ApiRequest,
    status: int,
    headers: Mapping[str, str],
    content: bytes,
    now: float | None = None,
    wall_now: datetime | None = None,
) -> IssuedToken:
    """An :class:`IssuedToken` from the IAM response, or an auth/response error (never the password).

    :param now: the monotonic clock reading to anchor the token's deadlines on (tests pin it).
    :param wall_now: the wall clock, used only when the answer has no ``issued_at``.
    """
    body = parse_json_body(request, status, headers, content)
    token = headers.get("X-Subject-Token")
    try:
        token_body = body["token"]
        expires_at = _parse_iso(token_body["expires_at"])
        issued_raw = token_body.get("issued_at")
        issued_at = _parse_iso(issued_raw) if issued_raw else None
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ImageSearchResponseError(
            status=status,
            error_code="MALFORMED_RESPONSE",
            error_msg=f"IAM token response without a usable expires_at ({type(error).__name__})",
            request_id=headers.get("X-Request-Id"),
            method=request.method,
            path=request.path,
        ) from None
    if not token:
        raise ImageSearchResponseError(
            status=status,
            error_code="MALFORMED_RESPONSE",
            error_msg="IAM token response without an X-Subject-Token header",
            request_id=headers.get("X-Request-Id"),
            method=request.method,
            path=request.path,
        )
    # Lifetime from the server's own clock pair, applied to ours: immune to clock skew. Without
    # issued_at, the server's expiry against our wall clock is the best estimate there is.
    if issued_at is not None:
        lifetime = (expires_at - issued_at).total_seconds()
    else:
        lifetime = (expires_at - (wall_now or datetime.now(UTC))).total_seconds()
    lifetime = max(lifetime, 0.0)
    base = now if now is not None else time.monotonic()
    margin = min(lifetime * RENEW_FRACTION, RENEW_MARGIN_MAX)
    return IssuedToken(
        value=str(token),
        expires_at=expires_at,
        renew_after=base + lifetime - margin,
        expires_monotonic=base + lifetime,
        request_id=headers.get("X-Request-Id"),
    )


def credential_key(settings: ImageSearchSettings) -> str:
    """Cache key of a password credential and token scope; a digest, so the cache never holds the password.

    Two connections that differ only in project get two tokens: a token is valid for one project.
    """
    creds = settings.credentials
    # JSON, not a separator: a field may hold any character, so only an encoding that escapes them keeps two
    # credentials apart when their fields differ in where a character falls.
    parts = [settings.iam_endpoint, creds.domain_name, creds.user, creds.password, token_scope(settings)]
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode("utf-8")).hexdigest()


class TokenCache:
    """Process-wide IAM token cache: single-flight per credential, for threads and event loops alike."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._tokens: dict[str, IssuedToken] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._async_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
            weakref.WeakKeyDictionary()
        )
        self.fetches = 0

    def _fresh(self, key: str) -> IssuedToken | None:
        token = self._tokens.get(key)
        return token if token is not None and token.fresh() else None

    def _lock(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def _async_lock(self, key: str) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        with self._guard:
            return self._async_locks.setdefault(loop, {}).setdefault(key, asyncio.Lock())

    def _store(self, key: str, token: IssuedToken) -> None:
        with self._guard:
            self._tokens[key] = token
            self.fetches += 1

    def get(self, key: str, fetch: Callable[[], IssuedToken]) -> str:
        token = self._fresh(key)
        if token is None:
            with self._lock(key):
                token = self._fresh(key)
                if token is None:
                    token = fetch()
                    self._store(key, token)
        return token.value

    async def aget(self, key: str, fetch: Callable[[], Awaitable[IssuedToken]]) -> str:
        token = self._fresh(key)
        if token is None:
            async with self._async_lock(key):
                token = self._fresh(key)
                if token is None:
                    # Also exclude sync fetchers and other event loops; polled, never blocking the loop,
                    # so a cancelled waiter cannot leak the lock.
                    lock = self._lock(key)
                    while not lock.acquire(blocking=False):
                        await asyncio.sleep(0.005)
                    try:
                        token = self._fresh(key)
                        if token is None:
                            token = await fetch()
                            self._store(key, token)
                    finally:
                        lock.release()
        return token.value

    def put(self, key: str, token: IssuedToken) -> None:
        self._store(key, token)

    def invalidate(self, key: str, value: str) -> bool:
        """Drop the cached token if it is still ``value``; True when dropped."""
        with self._guard:
            current = self._tokens.get(key)
            if current is not None and current.value == value:
                del self._tokens[key]
                return True
            return False

    def clear(self) -> None:
        with self._guard:
            self._tokens.clear()


TOKEN_CACHE = TokenCache()


class Authenticator:
    """Adds credentials to requests for one hook.

    :param settings: the hook's settings.
    :param cache: the token cache (the process-wide one unless a test gives its own).
    """

    def __init__(self, settings: ImageSearchSettings, cache: TokenCache = TOKEN_CACHE) -> None:
        self.settings = settings
        self.credentials: Credentials = settings.credentials
        self.cache = cache
        self.cache_key = credential_key(settings) if self.renewable else ""
        self._hosts = {
            service: urlsplit(settings.base_url(service)).netloc for service in ("imagesearch", "mms")
        }

    @property
    def renewable(self) -> bool:
        """Whether a rejected token can be replaced by a fresh one."""
        return self.credentials.auth_type == "iam_password"

    def prepare(self, request: ApiRequest, token: str | None) -> PreparedCall:
        """Absolute URL and headers for ``request``; ``token`` is the current token for token-based auth."""
        body = request.encoded_body()
        headers = request.base_headers()
        if self.credentials.auth_type == "aksk":
            if self.credentials.security_token:
                headers["X-Security-Token"] = self.credentials.security_token
            headers = signing.sign_headers(
                access_key=self.credentials.access_key or "",
                secret_key=self.credentials.secret_key or "",
                method=request.method,
                host=self._hosts.get(request.service)
                or urlsplit(self.settings.base_url(request.service)).netloc,
                path=request.path,
                headers=headers,
                body=body,
            )
        elif token is not None:
            headers["X-Auth-Token"] = token
        base = self.settings.base_url(request.service)
        return PreparedCall(request.method, f"{base}{request.path}", headers, body)

    def token(self, fetch: Callable[[], IssuedToken]) -> str | None:
        if self.credentials.auth_type == "token":
            return self.credentials.token
        if self.renewable:
            return self.cache.get(self.cache_key, fetch)
        return None

    async def atoken(self, fetch: Callable[[], Awaitable[IssuedToken]]) -> str | None:
        if self.credentials.auth_type == "token":
            return self.credentials.token
        if self.renewable:
            return await self.cache.aget(self.cache_key, fetch)
        return None

    def reject(self, token: str | None) -> None:
        """The server refused ``token``: forget it so the next call gets a fresh one."""
        if self.renewable and token is not None:
            self.cache.invalidate(self.cache_key, token)
