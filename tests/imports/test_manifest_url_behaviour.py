"""What a user reads when a store refuses a manifest URL (a presigned OBS or S3 URL).

The error names ``manifest`` and the HTTP status, followed by the ``Code`` and ``Message`` of the store's
XML error body when it has them (read from the body's first 4 KiB only, bytes that are not UTF-8
replaced), and by nothing else when it has none or when the body cannot be read: never a stray
separator. A local HTTP server on loopback answers as a store does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from airflow_provider_imagesearch.errors import ImageSearchValidationError
from airflow_provider_imagesearch.imports.manifest import read_chunks
from tests.support.loopback_store import Answer, LoopbackStore

HINT = " (a presigned URL must be unexpired and signed for GET)"
#: What the error body of S3 and OBS holds for a refused GET.
DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Access Denied</Message><RequestId>4442587FB7D0A2F9</RequestId></Error>"
)
#: An error body of exactly this many bytes whose last bytes close its Code: one byte more than is read.
BODY_LIMIT = 4096


@pytest.fixture
def store() -> Iterator[Callable[..., str]]:
    """``store(key, status, body, broken_chunks=False)`` -> a presigned-looking URL of that answer."""
    with LoopbackStore() as served:

        def answer(key: str, status: int, body: bytes, *, broken_chunks: bool = False) -> str:
            url = served.put(key, Answer(status, body, "application/xml", broken_chunks))
            return f"{url}?X-Amz-Signature=c2lnbmF0dXJlc2VjcmV0"

        yield answer


def _refusal(url: str) -> str:
    with pytest.raises(ImageSearchValidationError) as raised:
        list(read_chunks(url))
    message = str(raised.value)
    assert message.startswith("Invalid manifest "), message
    assert "c2lnbmF0dXJl" not in message
    return message


def test_a_refusal_shows_the_stores_code_and_message(store: Callable[..., str]) -> None:
    message = _refusal(store("m.csv", 403, DENIED))
    assert "/bucket/m.csv answered HTTP 403: AccessDenied: Access Denied" + HINT in message, message


def test_bytes_of_the_error_body_that_are_not_utf8_do_not_hide_its_code_and_message(
    store: Callable[..., str],
) -> None:
    body = DENIED.replace(b"4442587FB7D0A2F9", b"\xff\xfe\x80 request")
    message = _refusal(store("m.csv", 403, body))
    assert "answered HTTP 403: AccessDenied: Access Denied" + HINT in message, message


@pytest.mark.parametrize(
    "body",
    [b"Forbidden", b"", b"<Error><Code>Access\x07Denied</Code></Error>"],
    ids=["plain text", "empty", "a control character"],
)
def test_a_refusal_without_a_plain_code_or_message_shows_the_status_alone(
    store: Callable[..., str], body: bytes
) -> None:
    message = _refusal(store("m.csv", 403, body))
    assert "answered HTTP 403" + HINT in message, message


def test_a_refusal_whose_body_cannot_be_read_shows_the_status_alone(store: Callable[..., str]) -> None:
    message = _refusal(store("m.csv", 404, b"<Error><Code>NoSuchKey</Code></Error>", broken_chunks=True))
    assert "answered HTTP 404" + HINT in message, message


def test_only_the_first_4_kib_of_an_error_body_is_read(store: Callable[..., str]) -> None:
    """A store's error body is read up to 4 KiB, never whole (a huge or endless body is not waited for):
    a Code whose end lies beyond is not shown; one that ends within is."""
    code = b"<Code>AccessDenied</Code>"
    within = b"<Error>" + b"x" * (BODY_LIMIT - len(code) - len(b"<Error>")) + code
    beyond = b"<Error>" + b"x" * (BODY_LIMIT + 1 - len(code) - len(b"<Error>")) + code
    assert (len(within), len(beyond)) == (BODY_LIMIT, BODY_LIMIT + 1)
    assert "answered HTTP 403: AccessDenied" + HINT in _refusal(store("within.csv", 403, within))
    assert "answered HTTP 403" + HINT in _refusal(store("beyond.csv", 403, beyond + b"</Error>"))
