"""Which failed writes the write operators treat as "may have taken effect" (and so read back before
deciding), and which as a definite refusal, as ``operators.base`` (the rule every write operator follows)
classifies them: the public ``outcome_unknown`` and ``is_refusal``.

Unknown: a 5xx, a 2xx whose body could not be read, a dropped connection or a timeout after the request was
sent. Known not to have happened: a request that never left (connection refused, a TLS failure), a refusal
(4xx), a throttled request (429), refused credentials. Only a 4xx other than 429 and auth is a refusal.
"""

from __future__ import annotations

import pytest

from airflow_provider_imagesearch.errors import (
    ImageSearchApiError,
    ImageSearchAuthError,
    ImageSearchNotFoundError,
    ImageSearchResponseError,
    ImageSearchServerError,
    ImageSearchThrottledError,
    ImageSearchTransportError,
)
from airflow_provider_imagesearch.operators.base import is_refusal, outcome_unknown
from tests.support.api_errors import api_error


def _error(
    kind: type[ImageSearchApiError], status: int | None, code: str, **attrs: object
) -> ImageSearchApiError:
    """A failed write (an image's POST) as the hook raises it."""
    return api_error(kind, status, code, method="POST", path="/v1/p/i/image", **attrs)


@pytest.mark.parametrize(
    ("error", "unknown", "refusal"),
    [
        (_error(ImageSearchServerError, 503, "APIGW.0613"), True, False),
        (_error(ImageSearchResponseError, 200, "BAD_BODY"), True, False),
        (_error(ImageSearchTransportError, None, "CONNECTION_DROPPED"), True, False),
        (_error(ImageSearchTransportError, None, "TIMEOUT", timed_out=True), True, False),
        (_error(ImageSearchTransportError, None, "CONNECTION_REFUSED", request_sent=False), False, False),
        (_error(ImageSearchTransportError, None, "TLS_ERROR"), False, False),
        (_error(ImageSearchApiError, 400, "IS.0003"), False, True),
        (_error(ImageSearchNotFoundError, 404, "IS.0006"), False, True),
        (_error(ImageSearchThrottledError, 429, "APIGW.0308"), False, False),
        (_error(ImageSearchAuthError, 401, "APIGW.0301"), False, False),
    ],
    ids=lambda value: value.error_code if isinstance(value, ImageSearchApiError) else None,
)
def test_a_failed_write_is_unknown_or_a_refusal_by_what_reached_the_service(
    error: ImageSearchApiError, unknown: bool, refusal: bool
) -> None:
    assert outcome_unknown(error) is unknown
    assert is_refusal(error) is refusal
