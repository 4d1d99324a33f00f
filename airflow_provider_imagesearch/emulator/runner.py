"""Ways to run the emulator from Python: in a background thread, or as a child process.

* :class:`Emulator` runs the server's event loop in a daemon thread of the current process: starts in
  milliseconds, ideal for tests.
* :class:`EmulatorProcess` runs ``python -m airflow_provider_imagesearch.emulator`` as a child process and
  reads the ``IMAGESEARCH_EMULATOR_URL=...`` line: for benchmarks, so the emulator does not compete with
  the client for the GIL. The child is terminated (then killed) on ``stop()``, on garbage collection and
  at interpreter exit, so a crashed test run does not leave it behind.

Both expose ``url``, ``control`` (an :class:`~.client.EmulatorClient`) and the convenience methods of
:class:`_Controls`.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import os
import selectors
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from types import TracebackType
from typing import Any, Self

from airflow_provider_imagesearch.emulator import constants as c
from airflow_provider_imagesearch.emulator.client import EmulatorClient
from airflow_provider_imagesearch.emulator.faults import FaultConfig
from airflow_provider_imagesearch.emulator.server import EmulatorServer, loopback_host

URL_PREFIX = c.URL_PREFIX


class _Unset(enum.Enum):
    UNSET = 0


UNSET = _Unset.UNSET


class _Controls:
    """Convenience wrappers around :attr:`control` shared by both runners."""

    _client: EmulatorClient | None = None

    @property
    def url(self) -> str:
        raise NotImplementedError

    @property
    def control(self) -> EmulatorClient:
        if self._client is None:
            self._client = EmulatorClient(self.url)
        return self._client

    def set_faults(self, **settings: Any) -> dict[str, Any]:
        """Merge fault settings (see ``FaultConfig``); ``reset=True`` clears everything first."""
        return self.control.set_faults(**settings)

    def stats(self) -> dict[str, Any]:
        return self.control.stats()

    def reset_stats(self) -> None:
        self.control.reset_stats()

    def expire_tokens(self, include_ready: bool = True) -> int:
        return self.control.expire_tokens(include_ready)

    def requests_log(self, limit: int | None = None) -> list[dict[str, Any]]:
        return self.control.requests_log(limit)

    def upsert_instance(
        self,
        name: str,
        *,
        project_id: str = c.DEFAULT_PROJECT_ID,
        model: str = c.DEFAULT_MODEL,
        description: str = "",
        level: int = c.DEFAULT_LEVEL,
        tags: list[str] | tuple[str, ...] = (),
        status: str = "NORMAL",
        register_date_ms: int | None = None,
        expired_date_ms: int = -1,
        transition_after_s: float | None = None,
        next_status: str | _Unset | None = UNSET,
        images: dict[str, dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Create or replace an instance directly (no API call, no auth); returns its API body.

        ``transition_after_s`` + ``next_status`` schedule a status change (``next_status=None``: the
        instance disappears); without ``next_status``, CREATION becomes NORMAL and DELETING disappears.
        ``images`` maps path -> ``{"tags": {...}, "digest": ...}`` and replaces the instance's images.
        """
        item: dict[str, Any] = {
            "project_id": project_id,
            "name": name,
            "model": model,
            "description": description,
            "level": level,
            "tags": list(tags),
            "status": status,
            "expired_date_ms": expired_date_ms,
        }
        if register_date_ms is not None:
            item["register_date_ms"] = register_date_ms
        if transition_after_s is not None:
            item["transition_after_s"] = transition_after_s
            if next_status is not UNSET:
                item["next_status"] = next_status
        if images is not None:
            item["images"] = images
        return self.control.upsert_instances([item])[0]

    def upsert_v2_service(
        self,
        name: str,
        *,
        project_id: str = c.DEFAULT_PROJECT_ID,
        custom_tags: list[str] | None = None,
        custom_num_tags: list[str] | None = None,
        items: dict[str, dict[str, Any]] | None = None,
        search_types: list[str] | None = None,
    ) -> dict[str, Any]:
        """Create or replace a v2 (MMS) service directly; ``items`` (seed form) replaces its items.

        ``custom_tags`` / ``custom_num_tags`` list the tag keys the service defines (None: any key);
        ``search_types`` the search types it offers (None: all four).
        """
        item: dict[str, Any] = {"project_id": project_id, "name": name}
        if custom_tags is not None:
            item["custom_tags"] = custom_tags
        if custom_num_tags is not None:
            item["custom_num_tags"] = custom_num_tags
        if search_types is not None:
            item["search_types"] = search_types
        if items is not None:
            item["items"] = items
        return self.control.upsert_v2_services([item])[0]

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class Emulator(_Controls):
    """The emulator in a background thread of this process (see the package docstring for options)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: dict[str, Any] | None = None,
        faults: dict[str, Any] | FaultConfig | None = None,
        token_lifetime: float = 86400.0,
        creation_seconds: float = 5.0,
        deletion_seconds: float = 5.0,
        state_file: str | None = None,
    ) -> None:
        # Built here so a bad seed/fault config raises in the caller, not in the thread.
        self._server = EmulatorServer(
            host=host,
            port=port,
            seed=seed,
            faults=faults,
            token_lifetime=token_lifetime,
            creation_seconds=creation_seconds,
            deletion_seconds=deletion_seconds,
            state_file=state_file,
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        if self._thread is None:
            raise RuntimeError("the emulator is not started")
        return self._server.url

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("an Emulator can only be started once")
        self._thread = threading.Thread(target=self._run, name="imagesearch-emulator", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            self._thread.join()
            raise self._error

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._server.start())
        except BaseException as exc:
            self._error = exc
            self._started.set()
            loop.close()
            return
        self._started.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def stop(self) -> None:
        """Close every connection, save the state file (if any) and end the thread. Idempotent."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            return
        future = asyncio.run_coroutine_threadsafe(self._server.stop(), loop)
        try:
            future.result(timeout=10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)


def _terminate(process: subprocess.Popen[bytes], timeout: float, cleanup: list[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            stream.close()
    for path in cleanup:
        with contextlib.suppress(OSError):
            os.unlink(path)


class EmulatorProcess(_Controls):
    """The emulator CLI in a child process; same options as :class:`Emulator`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: dict[str, Any] | None = None,
        faults: dict[str, Any] | FaultConfig | None = None,
        token_lifetime: float = 86400.0,
        creation_seconds: float = 5.0,
        deletion_seconds: float = 5.0,
        state_file: str | None = None,
        *,
        quiet: bool = True,
        startup_timeout: float = 20.0,
        stop_timeout: float = 5.0,
        python: str = sys.executable,
    ) -> None:
        loopback_host(host)
        if isinstance(faults, FaultConfig):
            faults = faults.to_dict()
        elif isinstance(faults, dict):
            FaultConfig.from_dict(faults)  # validate in the caller
        self._options = (
            host,
            port,
            seed,
            faults,
            token_lifetime,
            creation_seconds,
            deletion_seconds,
            state_file,
        )
        self._quiet = quiet
        self._startup_timeout = startup_timeout
        self._stop_timeout = stop_timeout
        self._python = python
        self._process: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize[Any, EmulatorProcess] | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the emulator process is not started")
        return self._url

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def returncode(self) -> int | None:
        return None if self._process is None else self._process.poll()

    def command(self, seed_file: str | None = None) -> list[str]:
        host, port, _seed, faults, lifetime, creation, deletion, state_file = self._options
        args = [
            self._python,
            "-m",
            "airflow_provider_imagesearch.emulator",
            "--host",
            host,
            "--port",
            str(port),
        ]
        args += ["--token-lifetime", repr(float(lifetime))]
        args += ["--creation-seconds", repr(float(creation)), "--deletion-seconds", repr(float(deletion))]
        if seed_file:
            args += ["--seed", seed_file]
        if state_file:
            args += ["--state", state_file]
        if faults:
            args += ["--faults", json.dumps(faults)]
        if self._quiet:
            args.append("--quiet")
        return [*args, "--exit-with-parent"]

    def start(self) -> None:
        if self._process is not None:
            raise RuntimeError("an EmulatorProcess can only be started once")
        cleanup: list[str] = []
        seed = self._options[2]
        seed_file = None
        if seed is not None:
            fd, seed_file = tempfile.mkstemp(prefix="imagesearch-emulator-seed-", suffix=".json")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(seed, handle)
            cleanup.append(seed_file)
        env = dict(os.environ)
        package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        # stdin is a pipe nobody writes to: when this process dies, it closes and the child exits.
        process = subprocess.Popen(
            self.command(seed_file), stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
        )
        self._process = process
        self._finalizer = weakref.finalize(self, _terminate, process, self._stop_timeout, cleanup)
        try:
            self._url = self._read_url(process)
        except BaseException:
            self.stop()
            raise

    def _read_url(self, process: subprocess.Popen[bytes]) -> str:
        assert process.stdout is not None
        deadline = time.monotonic() + self._startup_timeout
        buffer = b""
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            while b"\n" not in buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"emulator did not print its URL within {self._startup_timeout}s")
                if selector.select(timeout=min(remaining, 0.5)):
                    chunk = os.read(process.stdout.fileno(), 4096)
                    if not chunk:
                        raise RuntimeError(
                            f"emulator exited before printing its URL (exit code {process.wait()})"
                        )
                    buffer += chunk
        line = buffer.split(b"\n", 1)[0].decode().strip()
        if not line.startswith(URL_PREFIX):
            raise RuntimeError(f"unexpected first line from the emulator: {line!r}")
        return line[len(URL_PREFIX) :]

    def stop(self) -> None:
        """SIGTERM (the child saves its state file), then SIGKILL after ``stop_timeout``. Idempotent."""
        if self._finalizer is not None:
            self._finalizer()
