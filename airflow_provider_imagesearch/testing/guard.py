"""A guard that refuses to look up the name of a public Huawei Cloud host while a test runs.

The testing kit points every endpoint of the connection at the emulator; the guard is what makes the usual
mistakes (a second connection without ``host``, a hard-coded URL, a proxy) fail loudly instead of reaching
Huawei Cloud with test credentials. It refuses to resolve any name under the Huawei Cloud domains
(``socket.getaddrinfo`` and ``socket.gethostbyname``, which requests, httpx, urllib and asyncio all go
through), comparing the name as the resolver will read it (IDNA: ``myhuaweicloud\u3002com`` is
``myhuaweicloud.com``), and adds those domains (also as fully qualified names, with a final dot) and
loopback to ``NO_PROXY``, so that a client honouring it sends no such request through a configured HTTP(S)
proxy (nor an emulator request: it is on loopback).

What it does not stop: a request to an IP address (no name is looked up), a name outside
:data:`HUAWEI_CLOUD_DOMAINS` (a custom domain or CNAME in front of an endpoint), code that resolves names
without Python's ``socket`` module (a C library with its own DNS client, a subprocess), a client that ignores
``NO_PROXY``, and anything before the guard is installed or after it is removed. It is a safety net for
mistakes, not a sandbox.
"""

from __future__ import annotations

import os
import socket
import threading
import unicodedata
from collections.abc import Callable
from typing import Any

#: Domains of Huawei Cloud's public endpoints (IAM, ImageSearch v1, MMS v2, OBS, ...).
HUAWEI_CLOUD_DOMAINS = ("myhuaweicloud.com", "myhuaweicloud.cn", "huaweicloud.com", "myhuaweicloud.eu")
LOOPBACK_NO_PROXY = ("127.0.0.1", "localhost", "::1")


class PublicHostBlockedError(socket.gaierror):
    """A name of a public Huawei Cloud host was looked up while the testing kit was active."""


#: The full stops IDNA (Python's ``idna`` codec, the ``idna`` package of requests and httpx) reads as ".".
_IDNA_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})


def resolved_name(host: str) -> str:
    """``host`` as the resolver will look it up: IDNA-encoded as Python's socket module does for a str
    (U+3002 and the other full stops read as ".", full-width letters folded), lower case, no final dot."""
    try:
        name = host.encode("idna").decode("ascii")
    except UnicodeError:
        # Not valid IDNA (an empty or over-long label, ...): fold it the same way by hand, so a name the
        # codec refuses is still compared as the resolver's other paths would read it.
        name = unicodedata.normalize("NFKC", host).translate(_IDNA_DOTS).casefold()
    return name.rstrip(".").lower()


def is_huawei_cloud_host(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    name = resolved_name(host)
    return any(name == domain or name.endswith("." + domain) for domain in HUAWEI_CLOUD_DOMAINS)


def huawei_cloud_no_proxy() -> list[str]:
    """The ``NO_PROXY`` entries that keep every Huawei Cloud host off a configured proxy.

    requests and httpx match ``NO_PROXY`` by suffix of the host as written in the URL (after IDNA encoding
    and lower-casing, which they both do), so a fully qualified name (``iam.myhuaweicloud.com.``, final dot)
    does not end with ``myhuaweicloud.com``: each domain is listed with its final dot too.
    """
    return [*HUAWEI_CLOUD_DOMAINS, *(f"{domain}." for domain in HUAWEI_CLOUD_DOMAINS)]


class HuaweiCloudGuard:
    """Install with :meth:`install`, remove with :meth:`uninstall` (or use as a context manager).

    Nested guards are fine: the outermost one restores the originals. ``blocked`` lists the hosts refused.
    """

    _lock = threading.Lock()
    _active: list[HuaweiCloudGuard] = []
    _originals: dict[str, Callable[..., Any]] = {}

    def __init__(self) -> None:
        self.blocked: list[str] = []
        self._env: dict[str, str | None] = {}

    def __enter__(self) -> HuaweiCloudGuard:
        self.install()
        return self

    def __exit__(self, *exc: object) -> None:
        self.uninstall()

    def install(self) -> None:
        with HuaweiCloudGuard._lock:
            if not HuaweiCloudGuard._active:
                HuaweiCloudGuard._originals = {
                    "getaddrinfo": socket.getaddrinfo,
                    "gethostbyname": socket.gethostbyname,
                }
                socket.getaddrinfo = _guarded(HuaweiCloudGuard._originals["getaddrinfo"])
                socket.gethostbyname = _guarded(HuaweiCloudGuard._originals["gethostbyname"])
            HuaweiCloudGuard._active.append(self)
        for name in ("NO_PROXY", "no_proxy"):
            self._env[name] = os.environ.get(name)
            entries = [e for e in (os.environ.get(name) or "").split(",") if e.strip()]
            wanted = [*LOOPBACK_NO_PROXY, *huawei_cloud_no_proxy()]
            os.environ[name] = ",".join([*entries, *(w for w in wanted if w not in entries)])

    def uninstall(self) -> None:
        with HuaweiCloudGuard._lock:
            if self in HuaweiCloudGuard._active:
                HuaweiCloudGuard._active.remove(self)
            if not HuaweiCloudGuard._active and HuaweiCloudGuard._originals:
                socket.getaddrinfo = HuaweiCloudGuard._originals["getaddrinfo"]
                socket.gethostbyname = HuaweiCloudGuard._originals["gethostbyname"]
                HuaweiCloudGuard._originals = {}
        for name, value in self._env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._env = {}

    @classmethod
    def _record(cls, host: str) -> None:
        for guard in cls._active:
            guard.blocked.append(host)


def _guarded(original: Callable[..., Any]) -> Callable[..., Any]:
    def lookup(host: Any, *args: Any, **kwargs: Any) -> Any:
        if is_huawei_cloud_host(host):
            name = host.decode() if isinstance(host, bytes) else str(host)
            HuaweiCloudGuard._record(name)
            raise PublicHostBlockedError(
                socket.EAI_NONAME,
                f"the imagesearch testing kit refuses to resolve {name!r}: a public Huawei Cloud host is "
                "never called from a test (point the connection at the emulator: "
                "imagesearch_emulator.url)",
            )
        return original(host, *args, **kwargs)

    lookup.__wrapped__ = original  # type: ignore[attr-defined]
    return lookup
