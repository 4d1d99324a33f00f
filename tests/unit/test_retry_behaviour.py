"""Retry rules the mutation run found untested (docs/mutation-testing.rst).

``is_request_error`` decides whether a refused write may be the task's own earlier effect: only a
definite refusal (a 4xx other than 429 and other than an auth refusal) makes an operator read the target
back; anything else is retried or fails as it is.
"""

from __future__ import annotations

import pytest

from airflow_provider_imagesearch.errors import (
    ImageSearchApiError,
    ImageSearchAuthError,
    ImageSearchNotFoundError,
    ImageSearchServerError,
    ImageSearchThrottledError,
    ImageSearchTransportError,
)
from airflow_provider_imagesearch.retry import is_request_error


def _api(cls: type[ImageSearchApiError], status: int | None, code: str = "IS.0001") -> ImageSearchApiError:
    return cls(status=status, error_code=code, error_msg="m", method="POST", path="/v1/p/x")


@pytest.mark.parametrize(
    ("error", "refused"),
    [
        (_api(ImageSearchApiError, 400), True),
        (_api(ImageSearchNotFoundError, 404), True),
        (_api(ImageSearchApiError, 499), True),
        # the bounds of the 4xx range
        (_api(ImageSearchApiError, 399), False),
        (_api(ImageSearchApiError, 500), False),
        (_api(ImageSearchServerError, 500), False),
        (_api(ImageSearchServerError, 503), False),
        # 429: the gateway refused before the service saw it; retried, never read back
        (_api(ImageSearchThrottledError, 429, "APIGW.0308"), False),
        # an auth refusal says nothing about the target
        (_api(ImageSearchAuthError, 401, "APIGW.0301"), False),
        (_api(ImageSearchAuthError, 403, "APIGW.0302"), False),
        # no answer at all
        (_api(ImageSearchApiError, None), False),
        (_api(ImageSearchTransportError, None, "CONNECTION_ERROR"), False),
        (ValueError("not an API error"), False),
    ],
    ids=lambda v: type(v).__name__ + (f"-{v.status}" if isinstance(v, ImageSearchApiError) else ""),
)
def test_only_a_definite_4xx_refusal_is_a_request_error(error: BaseException, refused: bool) -> None:
    assert is_request_error(error) is refused
