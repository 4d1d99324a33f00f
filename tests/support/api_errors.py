"""The errors the hook raises for a failed call, built directly for tests of what is done with them."""

from __future__ import annotations

from airflow_provider_imagesearch.errors import ImageSearchApiError


def api_error(
    kind: type[ImageSearchApiError],
    status: int | None,
    code: str,
    *,
    method: str = "GET",
    path: str = "/v1/p/service/x",
    **attrs: object,
) -> ImageSearchApiError:
    """An error of ``kind`` as the hook raises it for ``method`` ``path``: HTTP ``status`` (None: no
    answer), the service's ``code``, and any further attributes set (``retry_after``, ``timed_out``,
    ``request_sent``...)."""
    error = kind(status=status, error_code=code, error_msg="boom", method=method, path=path)
    for name, value in attrs.items():
        setattr(error, name, value)
    return error
