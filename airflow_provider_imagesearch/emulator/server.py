"""The emulator server: an :class:`~.app.App` behind a :class:`~.wire.HttpServer`, on loopback only.

Loopback only because the emulator has well-known credentials and unauthenticated control routes.
"""

from __future__ import annotations

import ipaddress
import resource
from typing import Any

from airflow_provider_imagesearch.emulator.app import App
from airflow_provider_imagesearch.emulator.faults import FaultConfig
from airflow_provider_imagesearch.emulator.routes import Settings
from airflow_provider_imagesearch.emulator.wire import HttpServer


class NotLoopbackError(ValueError):
    """The emulator refuses to listen anywhere but on a loopback address."""


def loopback_host(host: str) -> str:
    """The address to bind for ``host``; raises :class:`NotLoopbackError` for non-loopback hosts."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        address = None
    if address is None or not address.is_loopback:
        raise NotLoopbackError(
            f"refusing to listen on {host!r}: the emulator only binds loopback addresses "
            "(127.0.0.1, another 127.x.y.z, ::1 or localhost)"
        )
    return str(address)


def url_for(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def raise_open_file_limit(wanted: int = 8192) -> None:
    """Lift the soft fd limit (up to the hard one) so 1,000+ concurrent connections fit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


class EmulatorServer:
    """Owns the app and the listening socket; must be started and stopped inside one event loop."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: dict[str, Any] | None = None,
        faults: FaultConfig | dict[str, Any] | None = None,
        token_lifetime: float = 86400.0,
        creation_seconds: float = 5.0,
        deletion_seconds: float = 5.0,
        state_file: str | None = None,
    ) -> None:
        self.host = loopback_host(host)
        settings = Settings(float(token_lifetime), float(creation_seconds), float(deletion_seconds))
        self.app = App(seed=seed, faults=faults, settings=settings, state_file=state_file)
        self._http = HttpServer(self.app.handle, self.host, port)

    @property
    def url(self) -> str:
        return url_for(self.host, self._http.port)

    async def start(self) -> None:
        raise_open_file_limit()
        await self._http.start()

    async def stop(self) -> None:
        """Close the socket and every connection, then save the state file (if any)."""
        await self._http.close()
        self.app.save()
