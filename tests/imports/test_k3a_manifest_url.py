"""Manifests given as path objects: an http(s) ``ObjectStoragePath`` whose text holds its scheme twice,
and a local ``pathlib.Path``.

Airflow 3.1 (universal_pathlib 0.2) prints ``ObjectStoragePath("https://host/m.csv")`` as
``https://https://host/m.csv``; a path rebuilt from that text (an XCom a 3.1 worker wrote, a serialized
DAG) holds the scheme twice, and on Airflow 3.3 it keeps it so. Such a manifest is still read from the
URL after the repeated schemes, over http and over https (a store on loopback, its TLS certificate
trusted through ``SSL_CERT_FILE`` as a worker trusts a private CA). A ``pathlib.Path`` (which has no
``protocol``) is read as the local file it names.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider_imagesearch.imports.manifest import read_chunks
from tests.support.loopback_store import Answer, LoopbackStore

CSV = b"path,tag.color\nhttps://shop.obs.x/0.jpg,red\nhttps://shop.obs.x/1.jpg,blue\n"
PATHS = ["https://shop.obs.x/0.jpg", "https://shop.obs.x/1.jpg"]


def _paths(manifest: Any) -> list[str]:
    return [row["path"] for chunk in read_chunks(manifest) for row in chunk]


def test_an_http_objectstoragepath_holding_its_scheme_twice_is_read_from_the_url_after_it() -> None:
    with LoopbackStore() as store:
        url = store.put("m.csv", Answer(200, CSV, "text/csv"))
        manifest = ObjectStoragePath(url.replace("http://", "http://http://", 1))
        assert str(manifest).startswith("http://http://127.0.0.1:")  # as a 3.1 worker wrote it
        assert _paths(manifest) == PATHS


def _tls_files(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (PEM files)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "loopback store")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "store.pem", folder / "store.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


class _HttpsStore(LoopbackStore):
    """The loopback store, served over TLS."""

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__()
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)

    def put(self, key: str, answer: Answer) -> str:
        return "https://" + super().put(key, answer).removeprefix("http://")


@pytest.fixture
def https_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[_HttpsStore]:
    cert_file, key_file = _tls_files(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))  # the worker trusts the store's certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    store = _HttpsStore(context)
    with store:
        yield store


def test_an_https_objectstoragepath_holding_its_scheme_twice_is_read_from_the_url_after_it(
    https_store: _HttpsStore,
) -> None:
    url = https_store.put("m.csv", Answer(200, CSV, "text/csv"))
    manifest = ObjectStoragePath(url.replace("https://", "https://https://", 1))
    assert str(manifest).startswith("https://https://127.0.0.1:")  # as a 3.1 worker wrote it
    assert _paths(manifest) == PATHS


def test_a_local_pathlib_path_manifest_is_read(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_bytes(CSV)
    assert _paths(manifest) == PATHS
