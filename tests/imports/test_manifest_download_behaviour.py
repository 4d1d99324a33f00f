"""A manifest at an http(s) URL (a presigned OBS or S3 URL): downloaded once, read like a local file, its
secrets masked in every log line, and every failure told naming ``manifest`` without the URL's query.

Airflow's secrets masker learns the values of the query's signature, credential, token and access-key
parameters (8 characters or more, URL-encoded or not) and the whole query before the URL is fetched, so
no log line of the worker shows them, whoever logs the URL. A local HTTP server on loopback is the store.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from airflow_provider_imagesearch.errors import ImageSearchValidationError
from airflow_provider_imagesearch.imports import manifest
from airflow_provider_imagesearch.imports.manifest import read_chunks
from tests.support.loopback_store import Answer, LoopbackStore, free_port

ROWS = [{"path": f"https://shop.obs.x/{n}.jpg", "tag.color": "red"} for n in range(3)]


@pytest.fixture
def store() -> Iterator[Callable[[str, bytes], str]]:
    """``store(key, body)`` -> the URL of an object the store serves (any other key: 404)."""
    with LoopbackStore() as served:
        yield lambda key, body: served.put(key, Answer(200, body))


def _redacted(text: str) -> str:
    from airflow.sdk._shared.secrets_masker import redact

    return str(redact(text))


def test_a_manifest_url_is_downloaded_and_read_like_a_file(store: Callable[[str, bytes], str]) -> None:
    import io

    import pandas as pd

    jsonl = store("m.jsonl", "".join(json.dumps(r) + "\n" for r in ROWS).encode())
    assert [row for chunk in read_chunks(jsonl + "?X-Amz-Expires=600") for row in chunk] == ROWS
    parquet = io.BytesIO()
    pd.DataFrame(ROWS).to_parquet(parquet, index=False)  # read from the end first: the download seeks
    url = store("m.parquet", parquet.getvalue())
    assert [row for chunk in read_chunks(url) for row in chunk] == ROWS


def test_the_secrets_of_a_presigned_url_are_masked_in_logs(store: Callable[[str, bytes], str]) -> None:
    base = store("masked.jsonl", json.dumps(ROWS[0]).encode() + b"\n")
    secrets = {
        "X-Amz-Signature": "5d8c0b6e1f2a3b4c9d0e",
        "X-Amz-Credential": "AKIAMASKTEST%2F20261202%2Fus-east-1",
        "X-Amz-Security-Token": "FwoGZXIvYXdzEJr",
        "AccessKeyId": "HPUAMASKTEST0001",
        "OBSToken": "Tk8chars",  # 8 characters: the shortest value masked
        "Signature": "c2lnbmF0dXJlLW9icw==",  # base64 padding left unencoded: the value holds "="
    }
    plain = {
        "X-Amz-Expires": "600",
        "X-Amz-SignedHeaders": "host",
        "X-Amz-Date": "20261202T120000Z",
        "sig": "short",
    }
    query = "&".join(f"{k}={v}" for k, v in {**secrets, **plain}.items())
    url = f"{base}?{query}"
    for value in secrets.values():
        assert value in _redacted(f"GET {url}")  # nothing masks them before the read
    assert len(list(read_chunks(url))) == 1
    logged = _redacted(f"GET {url}")
    for value in secrets.values():
        assert value not in logged
        assert value not in _redacted(f"a header quoting {value} alone")  # not only inside the whole query
    assert "AKIAMASKTEST/20261202/us-east-1" not in _redacted("credential AKIAMASKTEST/20261202/us-east-1")
    assert query not in logged
    assert f"{base}?" in logged
    # Values shorter than 8 characters are no secrets: masking them would blank out every "600".
    assert "X-Amz-Expires=600" in _redacted(f"X-Amz-Expires=600 of {base}")
    assert "Signature=short" in _redacted("Signature=short")
    # Parameters that are no secret stay readable, whatever their length.
    assert "X-Amz-Date=20261202T120000Z" in _redacted("X-Amz-Date=20261202T120000Z")


def test_a_url_the_store_does_not_have_is_refused_naming_manifest(store: Callable[[str, bytes], str]) -> None:
    url = store("there.csv", b"path\n").replace("there.csv", "missing.csv") + "?X-Amz-Signature=secretsecret"
    with pytest.raises(ImageSearchValidationError) as raised:
        list(read_chunks(url))
    message = str(raised.value)
    shown = url.split("?")[0]
    assert message == (
        f"Invalid manifest '{shown}?<query hidden>': a URL its store answers with the file, but {shown} answered "
        "HTTP 404 (a presigned URL must be unexpired and signed for GET)"
    )


def test_a_url_nothing_answers_at_is_refused_with_the_kind_of_failure() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/bucket/m.csv?X-Amz-Signature=secretsecret"
    with pytest.raises(ImageSearchValidationError) as raised:
        list(read_chunks(url))
    assert str(raised.value) == (
        f"Invalid manifest 'http://127.0.0.1:{port}/bucket/m.csv?<query hidden>': a URL that can be read, but "
        f"reading http://127.0.0.1:{port}/bucket/m.csv failed: ConnectionRefusedError (Connection refused)"
    )


def test_a_store_that_goes_silent_fails_the_read_after_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """A store that accepts the connection and never answers does not hold the task forever."""
    monkeypatch.setattr(manifest, "URL_TIMEOUT_SECONDS", 0.3)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/bucket/m.csv"
        with pytest.raises(ImageSearchValidationError) as raised:
            list(read_chunks(url))
    message = str(raised.value)
    assert message.startswith(
        f"Invalid manifest '{url}': a URL that can be read, but reading {url} failed: "
    ), message
    assert "Timeout" in message or "timed out" in message, message


@pytest.mark.parametrize("scheme", ["https", "HTTPS"])
def test_an_https_url_is_downloaded_not_opened_as_a_local_file(scheme: str) -> None:
    port = free_port()
    url = f"{scheme}://127.0.0.1:{port}/bucket/m.csv"
    with pytest.raises(ImageSearchValidationError) as raised:
        list(read_chunks(url))
    assert str(raised.value).endswith("/bucket/m.csv failed: ConnectionRefusedError (Connection refused)"), (
        str(raised.value)
    )


def test_a_store_answering_garbage_is_refused_naming_the_kind_of_failure() -> None:
    """Not an HTTP answer at all (http.client's BadStatusLine, no errno, no strerror): its kind alone."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        url = f"http://127.0.0.1:{server.getsockname()[1]}/bucket/m.csv"

        def answer() -> None:
            connection, _ = server.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(b"not http at all\r\n\r\n")

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        with pytest.raises(ImageSearchValidationError) as raised:
            list(read_chunks(url))
        thread.join(timeout=10)
    assert str(raised.value) == (
        f"Invalid manifest '{url}': a URL that can be read, but reading {url} failed: BadStatusLine"
    )
