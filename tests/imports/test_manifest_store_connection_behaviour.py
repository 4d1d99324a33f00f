"""``manifest_conn_id`` beside an object-storage manifest is checked before anything is opened.

Airflow's ``s3://`` filesystem quietly falls back to the worker's own credentials when its connection is
missing or not an ``aws`` one: so a ``manifest_conn_id`` that names no connection, or (for ``s3://`` and
``s3a://``) one of another type, is refused naming ``manifest_conn_id`` and the form it must have. For a
scheme without a known connection type any existing connection goes. A secrets backend that fails is
not told as a missing connection: its own error reaches the user.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_imagesearch.errors import ImageSearchValidationError
from airflow_provider_imagesearch.imports.manifest import read_chunks
from tests.support.connections import set_connection


@pytest.fixture(autouse=True)
def filesystems(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Airflow with filesystems for s3, s3a and gs (none is opened: the checks come first), and memory."""
    from airflow.sdk.io import fs as airflow_fs
    from fsspec.implementations.memory import MemoryFileSystem

    memory = MemoryFileSystem()
    memory.pipe("/bucket/m.csv", b"path\nhttps://shop.obs.x/1.jpg\n")
    registered: dict[str, Any] = dict.fromkeys(("s3", "s3a", "gs"))
    registered["memory"] = lambda conn_id, options=None: memory
    monkeypatch.setattr(airflow_fs, "_register_filesystems", lambda: registered)
    yield
    memory.rm("/bucket/m.csv")  # fsspec's memory store is one per process


def _refusal(url: str, conn_id: str) -> str:
    with pytest.raises(ImageSearchValidationError) as raised:
        list(read_chunks(url, manifest_conn_id=conn_id))
    return str(raised.value)


@pytest.mark.parametrize("scheme", ["s3", "s3a"])
def test_a_connection_id_that_names_no_connection_is_refused(scheme: str) -> None:
    assert _refusal(f"{scheme}://bucket/m.csv", "manifests_s3_typo") == (
        f"Invalid manifest_conn_id 'manifests_s3_typo': the id of an existing aws connection for {scheme}:// "
        "manifests (no connection has this id)"
    )


@pytest.mark.parametrize("scheme", ["s3", "s3a"])
def test_an_s3_manifests_connection_of_another_type_is_refused(
    scheme: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_connection(monkeypatch, "catalog_db", conn_type="postgres", host="db.example")
    assert _refusal(f"{scheme}://bucket/m.csv", "catalog_db") == (
        f"Invalid manifest_conn_id 'catalog_db': the id of an existing aws connection for {scheme}:// manifests "
        "(this one is of type 'postgres')"
    )


def test_another_schemes_missing_connection_is_refused_without_a_type() -> None:
    assert _refusal("gs://bucket/m.csv", "gcs_typo") == (
        "Invalid manifest_conn_id 'gcs_typo': the id of an existing connection for gs:// manifests "
        "(no connection has this id)"
    )


def test_another_schemes_connection_of_any_type_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    set_connection(monkeypatch, "memory_store", conn_type="generic")
    chunks = list(read_chunks("memory://bucket/m.csv", manifest_conn_id="memory_store"))
    assert chunks == [[{"path": "https://shop.obs.x/1.jpg"}]]


def test_a_failing_secrets_backend_is_not_told_as_a_missing_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airflow.sdk import BaseHook

    def unreachable(conn_id: str) -> Any:
        raise ConnectionError("the secrets backend did not answer")

    monkeypatch.setattr(BaseHook, "get_connection", unreachable)
    with pytest.raises(ConnectionError, match="the secrets backend did not answer"):
        list(read_chunks("s3://bucket/m.csv", manifest_conn_id="manifests_s3"))
