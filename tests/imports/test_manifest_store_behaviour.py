"""What a user reads when an object-storage manifest (``s3://`` and the like) cannot be read.

A store that fails to open or to read a manifest fails the import with an error naming ``manifest``: the
kind of the store library's error, and its text unless it is an ``OSError`` (whose text may quote the
whole path of the object), cut at 200 characters. When Airflow has no filesystem for the manifest's
scheme, the error says what to install, naming the ``[s3]`` extra's exact requirement for ``s3://`` and
``s3a://``.

The store is fsspec's in-memory filesystem, registered with Airflow for a scheme of the test's own (the
real object stores cannot fail on demand here; moto's S3 server is in test_object_store.py), and a
subclass of it whose files fail as a store's connection would.
"""

from __future__ import annotations

import io
import itertools
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_imagesearch.errors import ImageSearchConfigError, ImageSearchValidationError
from airflow_provider_imagesearch.imports.manifest import read_chunks

REPO = Path(__file__).resolve().parents[2]
_schemes = itertools.count()

#: A store library's error text longer than what a message shows of it (200 characters).
LONG_TEXT = "the store refused the request: " + "".join(f"{i:03d}," for i in range(100))


class _FailingFile(io.IOBase):
    """A store's open file whose reads fail after ``good`` bytes (a connection dropped mid-read)."""

    def __init__(self, data: bytes, good: int, error: Exception) -> None:
        super().__init__()
        self.data, self.good, self.error, self.position = data, good, error, 0

    def _take(self, size: int | None) -> bytes:
        if self.position >= len(self.data):
            return b""
        if self.position >= self.good:
            raise self.error
        size = len(self.data) - self.position if size is None or size < 0 else size
        chunk = self.data[self.position : min(self.position + size, self.good)]
        self.position += len(chunk)
        return chunk

    def read(self, size: int = -1) -> bytes:
        return self._take(size)

    def readinto(self, buffer: Any) -> int:
        chunk = self._take(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)

    def readline(self, size: int | None = -1) -> bytes:
        end = self.data.find(b"\n", self.position)
        line = (end + 1 - self.position) if end >= 0 else len(self.data) - self.position
        return self._take(line if size is None or size < 0 else min(size, line))

    def seek(self, offset: int, whence: int = 0) -> int:
        self.position = offset if whence == 0 else (len(self.data) + offset if whence == 2 else offset)
        return self.position

    def tell(self) -> int:
        return self.position

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """``store(data, open_error=..., read_error=..., good=...)`` -> the URL of a manifest in a store
    Airflow has a filesystem for: its scheme is new for each call (Airflow caches a store per scheme)."""
    import fsspec
    from airflow.sdk.io import fs as airflow_fs
    from fsspec.implementations.memory import MemoryFileSystem

    registered: dict[str, Any] = {}

    def make(
        name: str,
        data: bytes,
        *,
        open_error: Exception | None = None,
        read_error: Exception | None = None,
        good: int = 0,
    ) -> str:
        scheme = f"teststore{next(_schemes)}"

        class Store(MemoryFileSystem):
            protocol = scheme
            store: dict[str, Any] = {}
            pseudo_dirs = [""]

            @classmethod
            def _strip_protocol(cls, path: str) -> str:
                return str(MemoryFileSystem._strip_protocol(str(path).removeprefix(f"{scheme}://")))

            def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
                if open_error is not None and "r" in mode:
                    raise open_error
                if read_error is not None and "r" in mode:
                    return _FailingFile(data, good, read_error)
                return super()._open(path, mode, **kwargs)

        fsspec.register_implementation(scheme, Store, clobber=True)
        filesystem = Store()
        filesystem.pipe(f"/bucket/{name}", data)
        registered[scheme] = lambda conn_id, options=None: filesystem
        return f"{scheme}://bucket/{name}"

    monkeypatch.setattr(airflow_fs, "_register_filesystems", lambda: registered)
    return make


CSV = b"path,tag.color\nhttps://shop.obs.x/1.jpg,red\n"


def _refusal(url: str) -> str:
    with pytest.raises(ImageSearchValidationError) as raised:
        list(read_chunks(url))
    message = str(raised.value)
    assert message.startswith(f"Invalid manifest {url!r}: an object that can be read, but "), message
    return message


def test_a_store_that_reads_is_read(store: Callable[..., str]) -> None:
    """The control: the same store, failing nowhere, gives the manifest's rows."""
    assert list(read_chunks(store("m.csv", CSV))) == [
        [{"path": "https://shop.obs.x/1.jpg", "tag.color": "red"}]
    ]


def test_a_store_error_at_opening_shows_its_kind_and_its_text_cut_at_200_characters(
    store: Callable[..., str],
) -> None:
    message = _refusal(store("m.csv", CSV, open_error=RuntimeError(LONG_TEXT)))
    assert f"opening it failed: RuntimeError ({LONG_TEXT[:200]})" in message, message
    assert LONG_TEXT[:201] not in message


def test_a_store_oserror_shows_its_kind_only_never_its_text(store: Callable[..., str]) -> None:
    """An OSError's text may quote the object's whole path (a presigned query, a key the user may not
    show): the message gives its kind only."""
    error = PermissionError(13, "Access denied", "bucket/private/2026/secret-key-AKIA0001.csv")
    message = _refusal(store("m.csv", CSV, open_error=error))
    assert message.endswith("opening it failed: PermissionError"), message
    assert "secret-key" not in message
    assert "Access denied" not in message


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_a_store_read_that_fails_mid_file_names_manifest_with_the_errors_text(
    store: Callable[..., str], kind: str
) -> None:
    """A connection dropped after the first bytes fails the read naming ``manifest``, whatever reads it."""
    url = store(f"m.{kind}", CSV, read_error=ConnectionError("connection reset by the store"), good=4)
    message = _refusal(url)
    assert "reading it failed: ConnectionError" in message, message
    # ConnectionError is an OSError: its text is not shown.
    assert "connection reset" not in message


def test_a_store_read_error_that_is_not_an_oserror_shows_its_text(store: Callable[..., str]) -> None:
    url = store("m.csv", CSV, read_error=RuntimeError(LONG_TEXT), good=4)
    message = _refusal(url)
    assert f"reading it failed: RuntimeError ({LONG_TEXT[:200]})" in message, message


def test_a_store_files_line_reads_and_buffer_reads_name_manifest_when_they_fail() -> None:
    """Every read a reader may use of a store's file (``readline``, ``readinto``, line iteration, as
    ``io`` readers and line parsers do) gives the file's bytes, and fails naming ``manifest`` when the
    store's connection drops. (No reader the import uses calls these today: ``read``, ``read1`` and
    ``seek`` are reached through ``read_chunks`` above.)"""
    from airflow_provider_imagesearch.imports.manifest import _StoreFile

    url = "s3://bucket/m.csv?X-Amz-Signature=secretsecret"
    store = _StoreFile(_FailingFile(CSV, len(CSV), ConnectionError("reset")), url)
    assert store.readline() == b"path,tag.color\n"
    assert store.readline(5) == b"https"
    buffer = bytearray(4)
    assert store.readinto(buffer) == 4
    assert bytes(buffer) == b"://s"
    # Iteration gives the lines left and stops at the end of the file (islice: a bound if it did not).
    assert list(itertools.islice(store, 5)) == [b"hop.obs.x/1.jpg,red\n"]
    store.seek(0)
    assert list(itertools.islice(store, 5)) == CSV.splitlines(keepends=True)

    for read in (
        lambda s: s.readline(),
        lambda s: s.readinto(bytearray(4)),
        lambda s: list(itertools.islice(s, 5)),
    ):
        failing = _StoreFile(_FailingFile(CSV, 0, ConnectionError("reset")), url)
        with pytest.raises(ImageSearchValidationError) as raised:
            read(failing)
        message = str(raised.value)
        assert message == (
            "Invalid manifest 's3://bucket/m.csv?<query hidden>': an object that can be read, "
            "but reading it failed: ConnectionError"
        ), message


# --- no filesystem for the scheme ----------------------------------------------------------------------


@pytest.fixture
def no_store_filesystems(monkeypatch: pytest.MonkeyPatch) -> None:
    """Airflow with no object-storage filesystem loaded (no provider supplies one)."""
    from airflow.sdk.io import fs as airflow_fs

    monkeypatch.setattr(airflow_fs, "_register_filesystems", lambda: {"file": None, "local": None})


def _s3_requirement() -> str:
    """The [s3] extra's requirements as pyproject.toml declares them."""
    with (REPO / "pyproject.toml").open("rb") as handle:
        return ", ".join(tomllib.load(handle)["project"]["optional-dependencies"]["s3"])


@pytest.mark.usefixtures("no_store_filesystems")
@pytest.mark.parametrize("scheme", ["s3", "s3a"])
def test_an_s3_manifest_without_s3_support_says_what_to_install(scheme: str) -> None:
    with pytest.raises(ImageSearchConfigError) as raised:
        list(read_chunks(f"{scheme}://bucket/m.csv"))
    assert str(raised.value) == (
        f"Cannot read the manifest '{scheme}://bucket/m.csv': the s3 support is missing or failed to import "
        f"(Airflow has no filesystem for {scheme}://). Install the provider's [s3] extra: pip install "
        f"'airflow-provider-imagesearch[s3]' ({_s3_requirement()}); if it is installed, Airflow's log says "
        "why apache-airflow-providers-amazon failed to import (e.g. a release too old for this Airflow)"
    )


@pytest.mark.usefixtures("no_store_filesystems")
def test_a_manifest_of_another_scheme_without_its_filesystem_says_its_provider_is_missing() -> None:
    with pytest.raises(ImageSearchConfigError) as raised:
        list(read_chunks("gs://bucket/m.csv"))
    assert str(raised.value) == (
        "Cannot read the manifest 'gs://bucket/m.csv': Airflow has no filesystem for gs://: the Airflow "
        "provider that supplies it is not installed or failed to import (Airflow's log says why)"
    )
