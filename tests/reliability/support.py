"""Shared helpers of the reliability and security suite: secret auditing, figures, TLS, DAG XComs.

Kept out of ``conftest.py`` so test modules can import them by name.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import re
import selectors
import socket
import socketserver
import ssl
import threading
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from airflow_provider_imagesearch.emulator import (
    DEFAULT_PASSWORD,
    DEFAULT_READY_TOKEN,
    DEFAULT_SECRET_KEY,
    DEFAULT_SECURITY_TOKEN,
    DEFAULT_TEMP_SECRET_KEY,
)

#: The emulator's well-known secrets; none of them may ever appear in text a user can see.
STATIC_SECRETS: tuple[str, ...] = (
    DEFAULT_PASSWORD,
    DEFAULT_SECRET_KEY,
    DEFAULT_TEMP_SECRET_KEY,
    DEFAULT_SECURITY_TOKEN,
    DEFAULT_READY_TOKEN,
)
#: Every IAM token seen in this session (from the emulator's state and from the hook's token parser).
ISSUED_TOKENS: set[str] = set()
#: Length of the token fragments searched for: a leak of any 24 consecutive characters of a token counts.
FRAGMENT = 24
_TOKENISH = re.compile(rf"[A-Za-z0-9_\-]{{{FRAGMENT},}}")
FIGURE_PREFIX = "[reliability]"


def secret_variants(secret: str) -> set[str]:
    """How a secret could appear in text: raw, percent-encoded, JSON-escaped, repr-escaped."""
    return {secret, quote(secret, safe=""), json.dumps(secret)[1:-1], repr(secret)[1:-1]}


def find_leaks(text: str, secrets: Iterable[str], tokens: Iterable[str]) -> list[str]:
    """Descriptions of every secret (or token fragment) found in ``text``; empty when clean."""
    leaks = []
    for secret in secrets:
        for variant in secret_variants(secret):
            if variant and variant in text:
                leaks.append(f"secret {secret[:4]}... appears as {variant[:12]!r}...")
                break
    windows: dict[str, str] = {}
    for token in tokens:
        for start in range(0, max(len(token) - FRAGMENT, 0) + 1):
            windows[token[start : start + FRAGMENT]] = token
    if windows:
        for run in _TOKENISH.findall(text):
            for start in range(0, len(run) - FRAGMENT + 1):
                whole = windows.get(run[start : start + FRAGMENT])
                if whole is not None:
                    leaks.append(f"issued token {whole[:6]}... appears (fragment at {start} of a run)")
                    break
    return leaks


def exception_texts(error: BaseException) -> list[str]:
    """str, repr and the formatted traceback of an exception and of every exception chained to it."""
    texts: list[str] = []
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        texts += [str(current), repr(current), "".join(traceback.format_exception(current))]
        texts += [repr(arg) for arg in current.args]
        texts += [f"{k}={v!r}" for k, v in vars(current).items()] if hasattr(current, "__dict__") else []
        pending += [current.__cause__, current.__context__]
    return texts


class _RecordCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._lock_records = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._lock_records:
            self.records.append(record)

    def texts(self) -> list[str]:
        formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
        out = []
        with self._lock_records:
            records = list(self.records)
        for record in records:
            try:
                out.append(formatter.format(record))
            except Exception as error:  # a broken record still gets its raw parts checked
                out.append(f"unformattable record: {error!r}")
            out.append(repr(record.msg))
            out.append(repr(record.args))
            extra = {k: v for k, v in vars(record).items() if k not in _STANDARD_RECORD_KEYS}
            if extra:
                out.append(repr(extra))
        return out


_STANDARD_RECORD_KEYS = frozenset(vars(logging.LogRecord("n", 0, "p", 0, "m", None, None))) | {"message"}


@dataclass
class SecretAudit:
    """Everything a test exposed as text, checked at teardown for secrets.

    Log records (root logger, any level that was emitted) and stdout/stderr (capfd, which also holds
    Airflow's structlog output) are collected automatically; tests add exceptions, XCom values and
    other texts (``test_connection`` messages, events) explicitly.
    """

    capfd: Any = None
    texts: list[tuple[str, str]] = field(default_factory=list)
    extra_secrets: set[str] = field(default_factory=set)
    handler: _RecordCollector = field(default_factory=_RecordCollector)
    emulators: list[Any] = field(default_factory=list)

    def text(self, where: str, value: object) -> None:
        self.texts.append((where, value if isinstance(value, str) else repr(value)))

    def exception(self, where: str, error: BaseException) -> None:
        for text in exception_texts(error):
            self.texts.append((where, text))

    def xcom(self, where: str, value: object) -> None:
        self.texts.append((where, json.dumps(value, default=str, ensure_ascii=False)))
        self.texts.append((where, repr(value)))

    def read_output(self) -> str:
        """stdout + stderr captured so far (registered for the audit, since reading consumes it)."""
        out, err = self.capfd.readouterr()
        self.texts += [("stdout", out), ("stderr", err)]
        return out + err

    def secret(self, value: str) -> None:
        """Treat ``value`` as a secret too (a wrong password is still a password)."""
        self.extra_secrets.add(value)

    def watch(self, emulator: Any) -> None:
        """Harvest the tokens ``emulator`` issued at teardown (or earlier, with :meth:`harvest`)."""
        self.emulators.append(emulator)

    def harvest(self, emulator: Any) -> None:
        ISSUED_TOKENS.update(issued_tokens(emulator))

    def figure(self, label: str, **values: object) -> None:
        """Print figures on the terminal, even under capture (``pytest -q``, no ``-s``)."""
        parts = ", ".join(f"{k}={_fmt(v)}" for k, v in values.items())
        line = f"\n{FIGURE_PREFIX} {label}: {parts}"
        if self.capfd is not None:
            with self.capfd.disabled():
                print(line, flush=True)
        else:
            print(line, flush=True)

    def all_texts(self, captured: Iterable[tuple[str, str]] = ()) -> list[tuple[str, str]]:
        return [*self.texts, *(("log record", t) for t in self.handler.texts()), *captured]

    def leaks(self, captured: Iterable[tuple[str, str]] = ()) -> list[str]:
        secrets = [*STATIC_SECRETS, *self.extra_secrets]
        found = []
        for where, text in self.all_texts(captured):
            for leak in find_leaks(text, secrets, ISSUED_TOKENS):
                found.append(f"{where}: {leak}")
        return found


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_fmt(v)}" for k, v in sorted(value.items(), key=str)) + "}"
    return str(value)


def issued_tokens(emulator: Any) -> set[str]:
    """Every IAM token ``emulator`` issued that it still knows about.

    ``GET /_emulator/state`` lists only tokens that are still valid (revoked and expired ones are left
    out), so for the in-process :class:`Emulator` the server's own token table is read as well.
    """
    tokens: set[str] = set()
    with contextlib.suppress(Exception):
        state = emulator.control.state()
        tokens.update(t["token"] for t in state.get("tokens", []))
        tokens.update(state.get("ready_tokens", []))
    server = getattr(emulator, "_server", None)
    app = getattr(server, "app", None)
    table = getattr(getattr(app, "state", None), "tokens", None)
    if isinstance(table, dict):
        tokens.update(str(value) for value in list(table))
    return tokens


# --- DAG runs ----------------------------------------------------------------------------------


def run_xcoms(dag_run: Any) -> list[tuple[str, Any]]:
    """Every XCom value of a finished DAG run, as ``(task_id/key, value)``."""
    from airflow import settings
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    with settings.Session() as session:  # type: ignore[misc]
        rows = session.scalars(
            select(XComModel).where(XComModel.run_id == dag_run.run_id, XComModel.dag_id == dag_run.dag_id)
        ).all()
        return [
            (f"{row.task_id}[{row.map_index}]/{row.key}", XComModel.deserialize_value(row)) for row in rows
        ]


# --- TLS ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CertFiles:
    cert: Path
    key: Path


def make_self_signed(
    directory: Path, name: str, *, ip: str | None = "127.0.0.1", dns: str = "localhost"
) -> CertFiles:
    """A self-signed CA-style certificate (EC P-256) for ``ip``/``dns``, written as PEM files."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"imagesearch-test-{name}")])
    alt_names: list[x509.GeneralName] = [x509.DNSName(dns)]
    if ip:
        alt_names.append(x509.IPAddress(ipaddress.ip_address(ip)))
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    files = CertFiles(directory / f"{name}.pem", directory / f"{name}.key")
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return files


class TlsProxy:
    """A TLS-terminating TCP proxy on 127.0.0.1 in front of a plain-HTTP upstream (the emulator).

    Thread per connection (``socketserver``); the handshake is done explicitly so that connections,
    completed handshakes and failed handshakes can be counted (a test can tell whether a client that
    refused the certificate retried).
    """

    def __init__(self, cert: CertFiles, upstream_host: str, upstream_port: int) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert.cert, cert.key)
        proxy = self
        self.connections = 0
        self.handshakes = 0
        self.handshake_failures = 0
        #: Connections closed on purpose in the middle of the handshake (see :meth:`cut_next`).
        self.cut = 0
        self._to_cut = 0
        self._changed = threading.Condition()

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                raw: socket.socket = self.request
                raw.settimeout(10)
                proxy._count("connections")
                if proxy._take_cut():
                    # Read the ClientHello, then hang up: the client sees EOF mid-handshake.
                    with contextlib.suppress(OSError):
                        raw.recv(4096)
                    raw.close()
                    proxy._count("cut")
                    return
                try:
                    tls = context.wrap_socket(raw, server_side=True)
                except (ssl.SSLError, OSError):
                    proxy._count("handshake_failures")
                    return
                proxy._count("handshakes")
                try:
                    upstream = socket.create_connection((upstream_host, upstream_port), timeout=10)
                except OSError:
                    tls.close()
                    return
                with contextlib.closing(tls), contextlib.closing(upstream):
                    _relay(tls, upstream)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=lambda: self._server.serve_forever(poll_interval=0.05), name="tls-proxy", daemon=True
        )

    def cut_next(self, connections: int) -> None:
        """Close the next ``connections`` connections during their TLS handshake (after the ClientHello)."""
        with self._changed:
            self._to_cut = connections

    def _take_cut(self) -> bool:
        with self._changed:
            if self._to_cut <= 0:
                return False
            self._to_cut -= 1
            return True

    def _count(self, name: str) -> None:
        with self._changed:
            setattr(self, name, getattr(self, name) + 1)
            self._changed.notify_all()

    def wait_for(self, name: str, at_least: int, timeout: float = 10.0) -> int:
        """Wait until counter ``name`` reaches ``at_least`` (or ``timeout`` passes); return its value.

        The client sees a refused handshake before the proxy's handler thread has counted it, so a
        counter read right after the client's error can lag behind by a few milliseconds.
        """
        with self._changed:
            self._changed.wait_for(lambda: getattr(self, name) >= at_least, timeout=timeout)
            return int(getattr(self, name))

    def __enter__(self) -> TlsProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"


def _relay(a: socket.socket, b: socket.socket, idle_timeout: float = 10.0) -> None:
    """Copy bytes both ways until either side closes (or nothing moves for ``idle_timeout``)."""
    peers = {a: b, b: a}
    with selectors.DefaultSelector() as selector:
        selector.register(a, selectors.EVENT_READ)
        selector.register(b, selectors.EVENT_READ)
        while True:
            # SSL sockets may hold decrypted bytes the selector cannot see.
            ready = [s for s in (a, b) if isinstance(s, ssl.SSLSocket) and s.pending()]
            if not ready:
                events = selector.select(timeout=idle_timeout)
                if not events:
                    return
                ready = [key.fileobj for key, _ in events]  # type: ignore[misc]
            for sock in ready:
                try:
                    chunk = sock.recv(65536)
                except (ssl.SSLError, OSError):
                    return
                if not chunk:
                    return
                try:
                    peers[sock].sendall(chunk)
                except OSError:
                    return


@contextlib.contextmanager
def logger_levels(levels: dict[str, int]) -> Iterator[None]:
    """Temporarily set logger levels (restored afterwards)."""
    old = {name: logging.getLogger(name).level for name in levels}
    try:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        yield
    finally:
        for name, level in old.items():
            logging.getLogger(name).setLevel(level)
