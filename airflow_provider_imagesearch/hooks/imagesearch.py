"""Hooks for the Huawei Cloud ImageSearch v1 API: a sync hook on requests and an async twin on httpx."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import os
import socket
import ssl
import weakref
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import requests
from airflow.sdk import BaseHook

from airflow_provider_imagesearch import DEFAULT_CONN_ID, api
from airflow_provider_imagesearch.auth import (
    TOKEN_CACHE,
    Authenticator,
    IssuedToken,
    PreparedCall,
    TokenCache,
    parse_token_response,
    token_api_request,
)
from airflow_provider_imagesearch.errors import (
    ImageSearchApiError,
    ImageSearchAuthError,
    ImageSearchConfigError,
    ImageSearchError,
    ImageSearchNotFoundError,
    ImageSearchTransportError,
)
from airflow_provider_imagesearch.hooks.imagesearch_v2 import (
    ImageSearchV2AsyncOperations,
    ImageSearchV2Operations,
)
from airflow_provider_imagesearch.retry import (
    AMBIGUOUS_RETRY_CAUSES,
    NAME_NOT_RESOLVED,
    RetryPolicy,
    is_request_error,
)
from airflow_provider_imagesearch.settings import ImageSearchSettings, settings_from_connection
from airflow_provider_imagesearch.version_compat import aextra_dejson

if TYPE_CHECKING:
    from airflow.sdk import Connection

    from airflow_provider_imagesearch.models import InstanceDetail, SearchResult

log = logging.getLogger(__name__)

#: Well-formed instance name read by ``test_connection`` when no ``instance_name`` extra is set.
CONNECTION_TEST_INSTANCE = "connection-test"

T = TypeVar("T")


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 300 else text[:297] + "..."


def _transport_error(
    request: api.ApiRequest, exc: BaseException, *, sent: bool, timed_out: bool, code: str
) -> ImageSearchTransportError:
    error = ImageSearchTransportError(
        status=None, error_code=code, error_msg=_short(exc), method=request.method, path=request.path
    )
    error.request_sent = sent
    error.timed_out = timed_out
    return error


def _in_chain(exc: BaseException, found: Callable[[BaseException], bool]) -> bool:
    """Whether ``found`` holds for ``exc`` or any exception it wraps, as both transports wrap them.

    requests nests urllib3's errors in ``args`` and ``reason``; httpx chains httpcore's through
    ``__cause__``/``__context__``.
    """
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if found(current):
            return True
        pending.extend(arg for arg in current.args if isinstance(arg, BaseException))
        for linked in (current.__cause__, current.__context__, getattr(current, "reason", None)):
            if isinstance(linked, BaseException):
                pending.append(linked)
    return False


def _is_certificate_failure(exc: BaseException) -> bool:
    """Whether a TLS failure is a refused certificate (configuration: permanent), for both transports.

    Only verification failures (untrusted chain, wrong host name) are permanent. A handshake cut short
    (EOF or reset: the server or a middlebox closed the connection) sent nothing and is retried.
    """
    # ssl.CertificateError is SSLCertVerificationError: hostname mismatches are raised as it too.
    return _in_chain(exc, lambda e: isinstance(e, ssl.SSLCertVerificationError))


#: ``getaddrinfo`` answers that mean "this name does not exist" (not "the resolver is unreachable",
#: EAI_AGAIN, which stays an ordinary connect error with the full retry budget).
_NO_SUCH_NAME = frozenset(
    code for code in (getattr(socket, "EAI_NONAME", None), getattr(socket, "EAI_NODATA", None)) if code
)


def _is_unknown_host(exc: BaseException) -> bool:
    return _in_chain(exc, lambda e: isinstance(e, socket.gaierror) and e.errno in _NO_SUCH_NAME)


def _tls_transport_error(request: api.ApiRequest, exc: BaseException) -> ImageSearchTransportError:
    if _is_certificate_failure(exc):
        return _transport_error(request, exc, sent=False, timed_out=False, code="TLS_ERROR")
    return _transport_error(request, exc, sent=False, timed_out=False, code="TLS_HANDSHAKE_INTERRUPTED")


def _requests_transport_error(
    request: api.ApiRequest, exc: requests.RequestException
) -> ImageSearchTransportError:
    import urllib3.exceptions

    if isinstance(exc, requests.exceptions.SSLError):
        return _tls_transport_error(request, exc)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return _transport_error(request, exc, sent=False, timed_out=True, code="CONNECT_TIMEOUT")
    if isinstance(exc, requests.exceptions.Timeout):
        return _transport_error(request, exc, sent=True, timed_out=True, code="READ_TIMEOUT")
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    if isinstance(reason, urllib3.exceptions.NewConnectionError):
        code = NAME_NOT_RESOLVED if _is_unknown_host(exc) else "CONNECT_ERROR"
        return _transport_error(request, exc, sent=False, timed_out=False, code=code)
    return _transport_error(request, exc, sent=True, timed_out=False, code="CONNECTION_DROPPED")


def _httpx_transport_error(request: api.ApiRequest, exc: httpx.RequestError) -> ImageSearchTransportError:
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        return _transport_error(request, exc, sent=False, timed_out=True, code="CONNECT_TIMEOUT")
    if isinstance(exc, httpx.TimeoutException):
        return _transport_error(request, exc, sent=True, timed_out=True, code="READ_TIMEOUT")
    if isinstance(exc, httpx.ConnectError):
        if _is_certificate_failure(exc) or _chain_has(exc, ssl.SSLError):
            return _tls_transport_error(request, exc)
        code = NAME_NOT_RESOLVED if _is_unknown_host(exc) else "CONNECT_ERROR"
        return _transport_error(request, exc, sent=False, timed_out=False, code=code)
    return _transport_error(request, exc, sent=True, timed_out=False, code="CONNECTION_DROPPED")


#: Transport errors about reaching the endpoint at all: their message names the host and the setting.
_ENDPOINT_ERRORS = {
    NAME_NOT_RESOLVED: "the host name {host} does not resolve (DNS: no such name)",
    "CONNECT_ERROR": "cannot connect to {netloc} ({reason})",
    "CONNECT_TIMEOUT": "no connection to {netloc} within the connect timeout",
    "TLS_ERROR": "the TLS certificate of {netloc} was refused ({reason})",
}


def _reason(exc: BaseException) -> str:
    """The innermost OS-level reason of a failed connection, e.g. "Connection refused"."""
    found: list[str] = []

    def note(error: BaseException) -> bool:
        if found:
            return False
        if isinstance(error, ssl.SSLCertVerificationError):
            found.append(f"certificate verify failed: {error.verify_message or error}")
        elif isinstance(error, OSError) and error.errno and error.errno > 0:
            # os.strerror, not error.strerror: asyncio words it "Connect call failed (...)".
            found.append(os.strerror(error.errno))
        return False

    _in_chain(exc, note)
    return found[0] if found else type(exc).__name__


def _naming_endpoint(
    error: ImageSearchTransportError, exc: BaseException, settings: ImageSearchSettings, service: str
) -> ImageSearchTransportError:
    """``error`` told with the host it could not reach and the connection setting that chose it."""
    template = _ENDPOINT_ERRORS.get(error.error_code)
    if template is None:
        return error
    from urllib.parse import urlsplit

    parts = urlsplit(settings.base_url(service))
    text = template.format(host=parts.hostname, netloc=parts.netloc, reason=_reason(exc))
    named = ImageSearchTransportError(
        status=None,
        error_code=error.error_code,
        error_msg=f"{text}: it is {settings.describe_endpoint(service)}",
        method=error.method,
        path=error.path,
    )
    named.request_sent = error.request_sent
    named.timed_out = error.timed_out
    return named


def _chain_has(exc: BaseException, kind: type[BaseException]) -> bool:
    current: BaseException | None = exc
    for _ in range(16):
        if current is None:
            return False
        if isinstance(current, kind):
            return True
        current = current.__cause__ or current.__context__
    return False


#: ``ApiRequest.operation`` of a call made through ``request()``, the escape hatch.
RAW_OPERATION = "request"
RAW_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"})
#: Methods retried after a 5xx, a timeout or a dropped connection unless ``idempotent=`` says otherwise.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE"})


def raw_request(
    settings: ImageSearchSettings,
    method: str,
    path: str,
    body: Any,
    *,
    service: str,
    idempotent: bool | None,
    project_id: str | None,
) -> api.ApiRequest:
    """The :class:`~airflow_provider_imagesearch.api.ApiRequest` of ``request()``, checked before sending.

    ``{project_id}`` in ``path`` is replaced by the project (the argument, else the connection's).
    """
    import json as json_module

    from airflow_provider_imagesearch.errors import ImageSearchValidationError

    verb = method.upper() if isinstance(method, str) else method
    if verb not in RAW_METHODS:
        raise ImageSearchValidationError("method", f"one of {', '.join(sorted(RAW_METHODS))}", method)
    if service not in ("imagesearch", "mms"):
        raise ImageSearchValidationError("service", "'imagesearch' (v1) or 'mms' (v2)", service)
    project = project_id or settings.project_id or ""
    if isinstance(path, str) and "{project_id}" in path:
        project = project_id or settings.require_project_id()
        path = path.replace("{project_id}", project)
    if (
        not isinstance(path, str)
        or not path.startswith("/")
        or any(ch in path for ch in "?#\\ ")
        or any(ord(ch) < 32 or ord(ch) == 127 for ch in path)
        or "/../" in f"{path}/"
        or "//" in path
    ):
        raise ImageSearchValidationError(
            "path",
            "an API path starting with '/', without a query string, '..', '//' or spaces "
            "(e.g. '/v1/{project_id}/service/my-instance')",
            path,
        )
    if body is not None:
        try:
            json_module.dumps(body, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise ImageSearchValidationError("json", f"a JSON-serialisable value ({error})", body) from None
    return api.ApiRequest(
        RAW_OPERATION,
        verb,
        path,
        body,
        verb in IDEMPOTENT_METHODS if idempotent is None else bool(idempotent),
        project,
        service,
    )


def parse_raw_response(
    request: api.ApiRequest, status: int, headers: Mapping[str, str], content: bytes
) -> Any:
    """The JSON of a ``request()`` answer (any JSON value; None for an empty body), or the usual errors."""
    import json as json_module

    if not 200 <= status < 300:
        api.raise_for_error(request, status, headers, content)
    if not content.strip():
        return None
    try:
        payload = json_module.loads(content)
    except (ValueError, RecursionError):
        return api.parse_json_body(request, status, headers, content)  # raises the malformed-body error
    if isinstance(payload, dict) and payload.get("error_code"):
        api.raise_for_error(request, 400, headers, content)  # a 2xx carrying an error body
    return payload


def settings_for(conn: Connection, extras: Mapping[str, Any], **overrides: Any) -> ImageSearchSettings:
    return settings_from_connection(
        host=conn.host,
        port=conn.port,
        login=conn.login,
        password=conn.password,
        extras=extras,
        **overrides,
    )


@functools.lru_cache(maxsize=8)
def _ssl_context(verify: bool | str) -> ssl.SSLContext | bool:
    """One TLS context per verify setting, shared by every async client of the process.

    httpx builds a fresh context (loading the whole CA bundle, ~20 ms) for each client otherwise, and
    a triggerer runs one client per waiting sensor. The CA variables are honoured as the sync hook
    (requests) and httpx honour them; a ``verify`` directory is a ``capath`` (hashed certificates), as
    requests treats it.
    """
    if verify is False:
        return False
    if isinstance(verify, str):
        return _load_ca(verify)
    cafile = None
    for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        cafile = cafile or os.environ.get(variable) or None
    capath = os.environ.get("SSL_CERT_DIR") or None
    if cafile is None and capath is None:
        import certifi

        cafile = certifi.where()
    return ssl.create_default_context(cafile=cafile, capath=capath)


def _load_ca(location: str) -> ssl.SSLContext:
    """A verifying context trusting the CA bundle file or directory ``location`` (the ``verify`` extra)."""
    try:
        if os.path.isdir(location):
            return ssl.create_default_context(capath=location)
        return ssl.create_default_context(cafile=location)
    except (ssl.SSLError, OSError) as error:
        raise ImageSearchConfigError(
            f"Connection extra 'verify' {location!r} is not a readable CA bundle file or directory "
            f"({type(error).__name__}: {error})"
        ) from None


#: Contexts already built by :func:`_ssl_context`, by verify setting: the loop takes them without a thread.
_SSL_CONTEXTS: dict[bool | str, ssl.SSLContext | bool] = {}
#: Set once the process has parsed connection settings once (see ``ImageSearchAsyncHook.asettings``).
_SETTINGS_PARSED: list[bool] = []


@functools.lru_cache(maxsize=1)
def _proxy_environment() -> bool:
    """Whether any proxy variable is set (read once: httpx scans os.environ for every client otherwise)."""
    return any(key.lower() in ("http_proxy", "https_proxy", "all_proxy", "no_proxy") for key in os.environ)


class RequestGate:
    """At most ``capacity`` requests in flight, first come first served; the capacity can change.

    ``asyncio.Semaphore`` can widen (one ``release`` per place) but not narrow while places are in use:
    a shared client's gate must narrow back once the fleet trigger that widened it has gone. Everything
    runs on one event loop, so no lock is needed: a place is handed to a waiter when it frees up.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.active = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    def locked(self) -> bool:
        return self.active >= self.capacity

    async def acquire(self) -> bool:
        if self.active < self.capacity and not self._waiters:
            self.active += 1
            return True
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a place, then cancelled: give it on
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            raise
        return True

    def release(self) -> None:
        self.active -= 1
        self._hand_on()

    def resize(self, capacity: int) -> None:
        """Wider: waiters go in now. Narrower: places in use finish, no new one until below it."""
        self.capacity = capacity
        self._hand_on()

    def _hand_on(self) -> None:
        while self._waiters and self.active < self.capacity:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.active += 1
                waiter.set_result(None)

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self.release()


@dataclass
class _SharedClient:
    client: httpx.AsyncClient
    #: Requests in flight at once. httpcore's pool rescans every queued request each time a connection
    #: frees up: 1,000 waits queued in it cost O(n^2); queued here, they wait on the gate instead.
    gate: RequestGate
    #: The gate's places each user asked for: the gate lets through the most any current user asks.
    limits: Counter[int] = field(default_factory=Counter)

    @property
    def users(self) -> int:
        return self.limits.total()


class SharedClients:
    """One pooled ``httpx.AsyncClient`` per event loop and client settings, reference-counted.

    A triggerer runs every trigger in one event loop: with a client per wait, 1,000 waits are 1,000
    pools, 1,000 TLS handshakes per round and 1,000 sets of sockets. Hooks created with
    ``shared_client=True`` borrow the loop's client for their settings instead, and give it back in
    ``aclose()``; the last one to give it back closes it. A cancelled trigger gives its reference back
    in its ``finally``, so the others keep polling on the same client.
    """

    def __init__(self) -> None:
        self._clients: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[tuple[Any, ...], _SharedClient]
        ] = weakref.WeakKeyDictionary()

    def acquire(
        self, key: tuple[Any, ...], factory: Callable[[], httpx.AsyncClient], limit: int
    ) -> tuple[httpx.AsyncClient, RequestGate]:
        """The loop's client for ``key`` (made with ``factory`` if there is none) and its request gate;
        one more user, asking for ``limit`` requests in flight. The gate lets through the most any
        current user asks for (a fleet trigger's ``max_concurrency``), and narrows again when it leaves."""
        clients = self._clients.setdefault(asyncio.get_running_loop(), {})
        entry = clients.get(key)
        if entry is None:
            entry = clients[key] = _SharedClient(factory(), RequestGate(limit))
        entry.limits[limit] += 1
        entry.gate.resize(max(entry.limits))
        return entry.client, entry.gate

    async def release(self, key: tuple[Any, ...], client: httpx.AsyncClient, limit: int) -> None:
        """One user fewer (the one that asked for ``limit``); the last one closes the client."""
        clients = self._clients.get(asyncio.get_running_loop(), {})
        entry = clients.get(key)
        if entry is None or entry.client is not client:
            await client.aclose()  # not ours (another loop's, or already dropped): close what was given
            return
        entry.limits[limit] -= 1
        if entry.limits[limit] <= 0:
            del entry.limits[limit]
        if not entry.limits:
            del clients[key]
            await client.aclose()
        else:
            entry.gate.resize(max(entry.limits))

    def users(self, key: tuple[Any, ...] | None = None) -> int:
        """Users of this loop's clients (of the one for ``key``, if given): for tests and benchmarks."""
        clients = self._clients.get(asyncio.get_running_loop(), {})
        if key is not None:
            entry = clients.get(key)
            return entry.users if entry is not None else 0
        return sum(entry.users for entry in clients.values())

    def count(self) -> int:
        """Open shared clients on the running loop."""
        return len(self._clients.get(asyncio.get_running_loop(), {}))


SHARED_CLIENTS = SharedClients()
#: Requests in flight per shared client unless a user asks for more (a fleet trigger asks for its
#: ``max_concurrency``). Few on purpose: httpcore scans every pooled connection and queued request each
#: time one frees up, so 1,000 waits took 2.09x ideal with 8 and 4.64x with 32, 1.59x with 4
#: (benchmarks/fig_deferral.py, one run each on a loaded 2-core machine).
SHARED_POOL_CONNECTIONS = 4
#: Connections a shared client may open: the gate, not the pool, bounds the requests in flight.
SHARED_POOL_MAX = 64


class _HookBase:
    """What both hooks share: settings overrides, retry stats and the per-call flow."""

    conn_name_attr = "imagesearch_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "imagesearch"
    hook_name = "Huawei Cloud ImageSearch"

    def _init_common(
        self,
        imagesearch_conn_id: str,
        region: str | None,
        project_id: str | None,
        retry_policy: RetryPolicy | None,
        token_cache: TokenCache,
    ) -> None:
        self.imagesearch_conn_id = imagesearch_conn_id
        self.region = region
        self.project_id = project_id
        self.retry_policy = retry_policy
        self.token_cache = token_cache
        #: Retries made by this hook, by cause ("5xx", "429", "timeout", "dropped", "connect", "token_renewal").
        self.retry_stats: Counter[str] = Counter()
        self._settings: ImageSearchSettings | None = None
        self._auth: Authenticator | None = None

    def _overrides(self) -> dict[str, Any]:
        return {"region": self.region, "project_id": self.project_id}

    def _adopt(self, settings: ImageSearchSettings) -> ImageSearchSettings:
        if self.retry_policy is not None:
            from dataclasses import replace

            settings = replace(settings, retry=self.retry_policy)
        self._settings = settings
        self._auth = Authenticator(settings, self.token_cache)
        return settings

    def _project(self, project_id: str | None) -> str:
        assert self._settings is not None
        return project_id if project_id is not None else self._settings.require_project_id()

    def _after_rejection(self, error: ImageSearchAuthError, token: str | None, renewed: bool) -> None:
        """Forget a token the server refused; re-raise ``error`` unless one renewal is still allowed."""
        assert self._auth is not None
        if not error.token_rejected:
            raise error
        self._auth.reject(token)
        if renewed or not self._auth.renewable:
            raise error
        self.retry_stats["token_renewal"] += 1
        log.info("ImageSearch token was rejected (%s); renewing it once", error.error_code)


class ImageSearchHook(BaseHook, _HookBase, ImageSearchV2Operations):
    """Calls the Huawei Cloud ImageSearch v1 and v2 (MMS) APIs with credentials from an ``imagesearch`` connection.

    The v2 data operations (``add_data``, ``update_data``, ``delete_data``, ``check_data``,
    ``search_data``, ``search_all``) come from
    :class:`~airflow_provider_imagesearch.hooks.imagesearch_v2.ImageSearchV2Operations`.

    One ``requests.Session`` per hook (connections are reused); retries per the connection's retry
    policy (see :mod:`airflow_provider_imagesearch.retry`); API errors become
    :class:`~airflow_provider_imagesearch.errors.ImageSearchApiError` subclasses.

    :param imagesearch_conn_id: the Airflow connection id (conn type ``imagesearch``).
    :param region: region id overriding the connection's ``region`` extra.
    :param project_id: project id overriding the connection's ``project_id`` extra.
    :param retry_policy: retry policy overriding the connection's retry extras.
    :param token_cache: IAM token cache; the process-wide one by default.
    """

    def __init__(
        self,
        imagesearch_conn_id: str = _HookBase.default_conn_name,
        *,
        region: str | None = None,
        project_id: str | None = None,
        retry_policy: RetryPolicy | None = None,
        token_cache: TokenCache = TOKEN_CACHE,
    ) -> None:
        super().__init__()
        self._init_common(imagesearch_conn_id, region, project_id, retry_policy, token_cache)
        self._session: requests.Session | None = None
        self._proxies: dict[str, dict[str, str]] = {}
        #: ``X-Request-Id`` of the last response received (for support tickets and ``test_connection``).
        self.last_request_id: str | None = None

    # --- connection and session -------------------------------------------------------------

    @property
    def settings(self) -> ImageSearchSettings:
        if self._settings is None:
            conn = self.get_connection(self.imagesearch_conn_id)
            settings = settings_for(conn, conn.extra_dejson, **self._overrides())
            _mask(settings.credentials.secrets())
            self._adopt(settings)
        assert self._settings is not None
        return self._settings

    def get_conn(self) -> requests.Session:
        """The hook's ``requests.Session`` (created once, reused for every call).

        The session itself adds no credentials: to call an API path the hook does not wrap, use
        :meth:`request`, which signs or authenticates and retries on the connection's settings.

        Proxy and CA-bundle environment variables are read once here rather than on every request
        (``trust_env`` costs a proxy/netrc lookup per call), with the same precedence requests uses.
        """
        if self._session is None:
            settings = self.settings
            session = requests.Session()
            # Retries are ours (RetryPolicy): stop urllib3 from retrying underneath.
            adapter = requests.adapters.HTTPAdapter(max_retries=0, pool_maxsize=16)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            session.trust_env = False
            verify = settings.verify
            if verify is True:
                verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
            elif isinstance(verify, str):
                # Refuse an unreadable bundle here, as a configuration error, not on the first request.
                _load_ca(verify)
            session.verify = verify
            self._proxies = {
                base: requests.utils.get_environ_proxies(base)
                for base in {settings.endpoint, settings.iam_endpoint, settings.base_url("mms")}
            }
            self._session = session
        return self._session

    def reserve_connections(self, count: int) -> None:
        """Make the session ready for ``count`` threads calling at once (bulk reads).

        Reads the connection and builds the session now, before threads share them, and grows the pool
        so that no connection is thrown away after use (urllib3 keeps at most ``pool_maxsize``).
        """
        session = self.get_conn()
        if count > 16:
            adapter = requests.adapters.HTTPAdapter(max_retries=0, pool_maxsize=count)
            session.mount("https://", adapter)
            session.mount("http://", adapter)

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def __enter__(self) -> ImageSearchHook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- one call ----------------------------------------------------------------------------

    def _transmit(self, request: api.ApiRequest, prepared: PreparedCall) -> requests.Response:
        try:
            session = self.get_conn()
            service = "iam" if request.operation == "get_token" else request.service
            base = self.settings.base_url(service)
            # Prepared here and sent with Session.send: Session.request would merge session and request
            # settings on every call (cookies, auth, params, hooks; ~10% of a bulk import's CPU), none
            # of which this hook uses: its headers are the session's defaults plus the signed ones.
            outgoing = requests.PreparedRequest()
            outgoing.prepare(
                method=prepared.method,
                url=prepared.url,
                headers={**session.headers, **prepared.headers},
                data=prepared.body or None,
            )
            return session.send(
                outgoing,
                timeout=self.settings.timeout,
                allow_redirects=False,
                proxies=self._proxies.get(base) or {},
                verify=session.verify,
                cert=session.cert,
                stream=False,
            )
        except requests.RequestException as exc:
            service = "iam" if request.operation == "get_token" else request.service
            error = _requests_transport_error(request, exc)
            raise _naming_endpoint(error, exc, self.settings, service) from None

    def _fetch_token_once(self) -> IssuedToken:
        request, prepared = token_api_request(self.settings)
        response = self._transmit(request, prepared)
        try:
            token = parse_token_response(request, response.status_code, response.headers, response.content)
        except ImageSearchAuthError as error:
            error.token_rejected = False  # the password itself was refused: renewing cannot help
            raise
        _mask([token.value])
        return token

    def _fetch_token(self) -> IssuedToken:
        retrying = self.settings.retry.retrying(
            idempotent=True, stats=self.retry_stats, label="IAM token request"
        )
        return retrying(self._fetch_token_once)

    def _attempt(self, request: api.ApiRequest, token: str | None) -> Any:
        assert self._auth is not None
        prepared = self._auth.prepare(request, token)
        response = self._transmit(request, prepared)
        self.last_request_id = response.headers.get("X-Request-Id")
        parse = parse_raw_response if request.operation == RAW_OPERATION else api.parse_response
        return parse(request, response.status_code, response.headers, response.content)

    def call(
        self, request: api.ApiRequest, *, causes: Counter[str] | None = None, retry_throttled: bool = True
    ) -> Any:
        """Send one built request with auth, retries and one token renewal; return the parsed result.

        :param causes: if given, receives this call's retries by cause (they also add to ``retry_stats``).
        :param retry_throttled: wait out and retry a 429 here; ``False`` raises it at once, for a caller
            that paces many requests itself (the bulk import frees the request's slot while it waits).
        """
        settings = self.settings
        assert self._auth is not None
        label = f"{request.operation} ({request.method} {request.path})"
        local: Counter[str] = Counter()
        retrying = settings.retry.retrying(
            idempotent=request.idempotent, stats=local, label=label, retry_throttled=retry_throttled
        )
        try:
            for renewed in (False, True):
                token = self._auth.token(self._fetch_token)
                try:
                    return retrying(self._attempt, request, token)
                except ImageSearchAuthError as error:
                    self._after_rejection(error, token, renewed)
            raise AssertionError("unreachable: the second rejection is re-raised")
        finally:
            self.retry_stats.update(local)
            if causes is not None:
                causes.update(local)

    def _delete(self, request: api.ApiRequest, gone: Callable[[], bool], result: T) -> T:
        """A delete whose retry may meet the effect of an earlier attempt whose answer was lost.

        Deletes are retried as idempotent. When an attempt was ambiguous (5xx, timeout, dropped
        connection: it may have taken effect) and a later one is refused (the thing is not there any
        more), the delete is read back with ``gone``: if the target is gone, the delete worked.
        """
        causes: Counter[str] = Counter()
        try:
            return self.call(request, causes=causes)
        except ImageSearchApiError as error:
            ambiguous = any(causes[cause] for cause in AMBIGUOUS_RETRY_CAUSES)
            if not ambiguous or not is_request_error(error) or not gone():
                raise
            log.info(
                "ImageSearch %s: an earlier attempt's answer was lost and the retry was refused (%s), "
                "but the target is gone: the delete took effect",
                request.operation,
                error.error_code,
            )
            return result

    # --- any call the provider does not wrap -------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        service: str = "imagesearch",
        idempotent: bool | None = None,
        project_id: str | None = None,
    ) -> Any:
        """Call an API path this hook has no method for, with the connection's auth, retries and errors.

        The escape hatch for calls the provider does not wrap yet. The request is signed (AK/SK) or
        carries the token (IAM password, ready token) exactly as the wrapped calls are, goes to the
        connection's endpoint, and is retried under the connection's retry policy: a 429 always; a
        5xx, timeout or dropped connection only when the call is idempotent. ``get_conn()`` is the bare
        ``requests.Session`` underneath: requests sent with it carry no credentials.

        :param method: ``GET``, ``HEAD``, ``POST``, ``PUT``, ``PATCH`` or ``DELETE``.
        :param path: the API path, starting with ``/``; ``{project_id}`` is replaced by the project.
            No query string: the ImageSearch APIs take their arguments in the JSON body.
        :param json: the JSON body, or None for none.
        :param service: ``imagesearch`` (the v1 endpoint) or ``mms`` (the v2 endpoint).
        :param idempotent: whether repeating the call is harmless; by default True for GET, HEAD, PUT
            and DELETE, False for POST and PATCH (which are then retried only when provably unsent).
        :param project_id: project overriding the connection's ``project_id`` extra.
        :return: the response's JSON (any JSON value), or None for an empty body.
        """
        request = raw_request(
            self.settings,
            method,
            path,
            json,
            service=service,
            idempotent=idempotent,
            project_id=project_id,
        )
        return self.call(request)

    # --- the eight v1 operations -------------------------------------------------------------

    def get_instance(self, instance_name: str, *, project_id: str | None = None) -> InstanceDetail:
        """``GET /v1/{project_id}/service/{instance_name}``: the instance's details."""
        return self.call(api.get_instance(self._project_after_settings(project_id), instance_name))

    def create_instance(
        self,
        instance_name: str,
        *,
        model: str = "common-search",
        description: str | None = None,
        level: int | None = None,
        tags: list[str] | None = None,
        project_id: str | None = None,
    ) -> InstanceDetail:
        """``POST /v1/{project_id}/service``: create an instance (not blindly retried, see the retry module)."""
        request = api.create_instance(
            self._project_after_settings(project_id),
            instance_name,
            model=model,
            description=description,
            level=level,
            tags=tags,
        )
        return self.call(request)

    def delete_instance(self, instance_name: str, *, project_id: str | None = None) -> str:
        """``DELETE /v1/{project_id}/service/{instance_name}``.

        Retried as idempotent; a retry refused because an earlier attempt already deleted the instance
        counts as success (the instance is read back to make sure).
        """
        project = self._project_after_settings(project_id)

        def gone() -> bool:
            try:
                return self.get_instance(instance_name, project_id=project).status.value == "DELETING"
            except ImageSearchNotFoundError:
                return True

        # "success" in lower case is what the API answers a delete of an instance with.
        return self._delete(api.delete_instance(project, instance_name), gone, "success")

    def add_image(
        self,
        instance_name: str,
        *,
        path: str,
        file_base64: str | None = None,
        tags: Mapping[str, Any] | None = None,
        project_id: str | None = None,
    ) -> str:
        """``POST /v1/{project_id}/{instance_name}/image``: import one image (not blindly retried)."""
        request = api.add_image(
            self._project_after_settings(project_id),
            instance_name,
            path=path,
            file_base64=file_base64,
            tags=tags,
        )
        return self.call(request)

    def search_images(
        self,
        instance_name: str,
        *,
        path: str | None = None,
        file_base64: str | None = None,
        limit: int = 10,
        offset: int = 0,
        tags: Mapping[str, Any] | None = None,
        box: Mapping[str, int] | None = None,
        project_id: str | None = None,
    ) -> SearchResult:
        """``POST /v1/{project_id}/{instance_name}/image/search``."""
        request = api.search_images(
            self._project_after_settings(project_id),
            instance_name,
            path=path,
            file_base64=file_base64,
            limit=limit,
            offset=offset,
            tags=tags,
            box=box,
        )
        return self.call(request)

    def check_image(self, instance_name: str, *, path: str, project_id: str | None = None) -> bool:
        """``POST /v1/{project_id}/{instance_name}/image/check``: whether the image is in the library."""
        return self.call(api.check_image(self._project_after_settings(project_id), instance_name, path=path))

    def modify_image(
        self, instance_name: str, *, path: str, tags: Mapping[str, Any], project_id: str | None = None
    ) -> str:
        """``PUT /v1/{project_id}/{instance_name}/image``: replace an image's tags."""
        request = api.modify_image(
            self._project_after_settings(project_id), instance_name, path=path, tags=tags
        )
        return self.call(request)

    def delete_image(self, instance_name: str, *, path: str, project_id: str | None = None) -> str:
        """``DELETE /v1/{project_id}/{instance_name}/image`` (with a JSON body).

        Retried as idempotent; a retry refused because an earlier attempt already deleted the image
        counts as success (the image is checked to make sure).
        """
        project = self._project_after_settings(project_id)
        request = api.delete_image(project, instance_name, path=path)
        return self._delete(
            request, lambda: not self.check_image(instance_name, path=path, project_id=project), "Success"
        )

    def _project_after_settings(self, project_id: str | None) -> str:
        _ = self.settings
        return self._project(project_id)

    # --- connection test ---------------------------------------------------------------------

    def test_connection(self) -> tuple[bool, str]:
        """Authenticate and make one cheap real call to ImageSearch; the message has the request id.

        With an ``instance_name`` extra it reads that instance. Otherwise it reads a well-formed instance
        name that need not exist: IS.0007 ("invalid instance name") is only answered once the gateway has
        accepted the credentials and the project, so it proves both. With IAM password auth the token is
        fetched first, so a wrong password and a wrong project are told apart. Never echoes a secret.
        """
        try:
            settings = self.settings
            if settings.instance_name:
                detail = self.get_instance(settings.instance_name)
                return True, (
                    f"Connected: instance {detail.instance_name} is {detail.status.value} "
                    f"(request id {self.last_request_id})"
                )
            if settings.credentials.auth_type == "iam_password":
                assert self._auth is not None
                # A fresh token, not a cached one: the test is of the credentials as they are now.
                self.token_cache.put(self._auth.cache_key, self._fetch_token())
            try:
                self.get_instance(CONNECTION_TEST_INSTANCE)
            except ImageSearchApiError as error:
                if error.error_code not in api.NOT_FOUND_CODES:
                    raise
                request_id = error.request_id
            else:
                request_id = self.last_request_id
            return (
                True,
                f"Connected: authenticated to {settings.endpoint} for project {settings.project_id} "
                f"(request id {request_id})",
            )
        except ImageSearchError as error:
            return False, str(error)
        except Exception as error:
            return False, f"{type(error).__name__}: {error}"


def _mask(secrets: list[str]) -> None:
    if not secrets:
        return
    from airflow.sdk.log import mask_secret

    for secret in secrets:
        mask_secret(secret)


class ImageSearchAsyncHook(_HookBase, ImageSearchV2AsyncOperations):
    """Async twin of :class:`ImageSearchHook`'s read path and v2 operations (httpx, no blocking calls).

    Shares the request builder, response parser, auth and token cache with the sync hook. One
    ``httpx.AsyncClient`` per hook, or, with ``shared_client=True``, the event loop's pooled client for
    these connection settings (see :class:`SharedClients`): keep the hook for a whole wait and close it
    with :meth:`aclose`. Settings parsing and CA-bundle loading run in a worker thread, off the loop.

    :param imagesearch_conn_id: the Airflow connection id (conn type ``imagesearch``).
    :param region: region id overriding the connection's ``region`` extra.
    :param project_id: project id overriding the connection's ``project_id`` extra.
    :param retry_policy: retry policy overriding the connection's retry extras.
    :param token_cache: IAM token cache; the process-wide one by default.
    :param shared_client: borrow the loop's shared pooled client instead of making one.
    :param max_connections: pool size of this hook's own client; with ``shared_client``, the requests in
        flight this hook asks of the shared client's gate (never fewer than ``SHARED_POOL_CONNECTIONS``).
    """

    def __init__(
        self,
        imagesearch_conn_id: str = _HookBase.default_conn_name,
        *,
        region: str | None = None,
        project_id: str | None = None,
        retry_policy: RetryPolicy | None = None,
        token_cache: TokenCache = TOKEN_CACHE,
        shared_client: bool = False,
        max_connections: int = 4,
    ) -> None:
        self._init_common(imagesearch_conn_id, region, project_id, retry_policy, token_cache)
        self._client: httpx.AsyncClient | None = None
        self.shared_client = shared_client
        self.max_connections = max_connections
        self._client_key: tuple[Any, ...] | None = None
        self._gate: RequestGate | None = None

    async def asettings(self) -> ImageSearchSettings:
        if self._settings is None:
            conn = await BaseHook.aget_connection(self.imagesearch_conn_id)
            extras = await aextra_dejson(conn)
            if _SETTINGS_PARSED:
                settings = settings_for(conn, extras, **self._overrides())  # ~0.1 ms once warm
            else:
                # The first parse of the process loads what parsing needs (~10 ms): in a worker thread,
                # not on the loop. Later ones stay inline: 1,000 thread hand-offs would slow a triggerer
                # starting 1,000 waits far more than they spare it.
                settings = await asyncio.to_thread(settings_for, conn, extras, **self._overrides())
                _SETTINGS_PARSED.append(True)
            await _amask(settings.credentials.secrets())
            self._adopt(settings)
        assert self._settings is not None
        return self._settings

    async def aget_conn(self) -> httpx.AsyncClient:
        if self._client is None:
            settings = await self.asettings()
            # Loading a CA bundle takes ~20 ms: once per process and setting, in a thread (then cached).
            verify = _SSL_CONTEXTS.get(settings.verify)
            if verify is None:
                verify = _SSL_CONTEXTS[settings.verify] = await asyncio.to_thread(
                    _ssl_context, settings.verify
                )
            trust_env = _proxy_environment()
            if self._client is not None:  # another call of this hook got there during the awaits
                return self._client

            def make(connections: int, keepalive: int) -> httpx.AsyncClient:
                return httpx.AsyncClient(
                    verify=verify,
                    timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
                    follow_redirects=False,
                    limits=httpx.Limits(max_connections=connections, max_keepalive_connections=keepalive),
                    trust_env=trust_env,
                )

            if self.shared_client:
                # One client and gate per endpoint: a connection whose endpoint hangs holds only its own
                # gate, not the places of every other connection's triggers.
                endpoints = (settings.endpoint, settings.iam_endpoint, settings.mms_endpoint)
                key = (
                    *endpoints,
                    settings.verify,
                    settings.read_timeout,
                    settings.connect_timeout,
                    trust_env,
                )
                self._client, self._gate = SHARED_CLIENTS.acquire(
                    key, lambda: make(SHARED_POOL_MAX, SHARED_POOL_MAX), self._gate_limit()
                )
                self._client_key = key
            else:
                self._client = make(self.max_connections, min(2, self.max_connections))
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        key, self._client_key = self._client_key, None
        self._gate = None
        if client is None:
            return
        if key is not None:
            await SHARED_CLIENTS.release(key, client, self._gate_limit())
        else:
            await client.aclose()

    def _gate_limit(self) -> int:
        return max(SHARED_POOL_CONNECTIONS, self.max_connections)

    async def __aenter__(self) -> ImageSearchAsyncHook:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _transmit(self, request: api.ApiRequest, prepared: PreparedCall) -> httpx.Response:
        client = await self.aget_conn()
        gate = self._gate
        try:
            if gate is None:
                return await client.request(
                    prepared.method, prepared.url, headers=prepared.headers, content=prepared.body or None
                )
            async with gate:
                return await client.request(
                    prepared.method, prepared.url, headers=prepared.headers, content=prepared.body or None
                )
        except httpx.RequestError as exc:  # TransportError, and DecodingError of a garbled body
            assert self._settings is not None
            service = "iam" if request.operation == "get_token" else request.service
            error = _httpx_transport_error(request, exc)
            raise _naming_endpoint(error, exc, self._settings, service) from None

    async def _fetch_token_once(self) -> IssuedToken:
        request, prepared = token_api_request(await self.asettings())
        response = await self._transmit(request, prepared)
        try:
            token = parse_token_response(request, response.status_code, response.headers, response.content)
        except ImageSearchAuthError as error:
            error.token_rejected = False
            raise
        await _amask([token.value])
        return token

    async def _fetch_token(self) -> IssuedToken:
        settings = await self.asettings()
        retrying = settings.retry.async_retrying(
            idempotent=True, stats=self.retry_stats, label="IAM token request"
        )
        return await retrying(self._fetch_token_once)

    async def _attempt(self, request: api.ApiRequest, token: str | None) -> Any:
        assert self._auth is not None
        prepared = self._auth.prepare(request, token)
        response = await self._transmit(request, prepared)
        parse = parse_raw_response if request.operation == RAW_OPERATION else api.parse_response
        return parse(request, response.status_code, response.headers, response.content)

    async def call(
        self, request: api.ApiRequest, *, causes: Counter[str] | None = None, retry_throttled: bool = True
    ) -> Any:
        """Async :meth:`ImageSearchHook.call`."""
        settings = await self.asettings()
        assert self._auth is not None
        label = f"{request.operation} ({request.method} {request.path})"
        local: Counter[str] = Counter()
        retrying = settings.retry.async_retrying(
            idempotent=request.idempotent, stats=local, label=label, retry_throttled=retry_throttled
        )
        try:
            for renewed in (False, True):
                token = await self._auth.atoken(self._fetch_token)
                try:
                    return await retrying(self._attempt, request, token)
                except ImageSearchAuthError as error:
                    self._after_rejection(error, token, renewed)
            raise AssertionError("unreachable: the second rejection is re-raised")
        finally:
            self.retry_stats.update(local)
            if causes is not None:
                causes.update(local)

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        service: str = "imagesearch",
        idempotent: bool | None = None,
        project_id: str | None = None,
    ) -> Any:
        """Async :meth:`ImageSearchHook.request`: any API path, authenticated and retried."""
        request = raw_request(
            await self.asettings(),
            method,
            path,
            json,
            service=service,
            idempotent=idempotent,
            project_id=project_id,
        )
        return await self.call(request)

    async def get_instance(self, instance_name: str, *, project_id: str | None = None) -> InstanceDetail:
        """``GET /v1/{project_id}/service/{instance_name}``."""
        await self.asettings()
        return await self.call(api.get_instance(self._project(project_id), instance_name))


async def _amask(secrets: list[str]) -> None:
    if not secrets:
        return
    from airflow_provider_imagesearch.version_compat import amask_secret

    for secret in secrets:
        await amask_secret(secret)
