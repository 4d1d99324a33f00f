"""Exceptions raised by the ImageSearch provider.

Every error the API can return becomes an :class:`ImageSearchApiError` carrying the HTTP status, the
service's ``error_code``/``error_msg``, the gateway request id, and the method and path of the call.
None of them ever carries a credential: paths hold only the project id and instance name.
"""

from __future__ import annotations


class ImageSearchError(Exception):
    """Base class of every error raised by this provider."""


class ImageSearchConfigError(ImageSearchError, ValueError):
    """The Airflow connection (or hook arguments) cannot be used as given."""


class ImageSearchValidationError(ImageSearchError, ValueError):
    """An argument was refused before any request was sent.

    :param field: name of the offending argument.
    :param allowed: the form the argument must have.
    :param value: the refused value (only its ``repr``, shortened, reaches the message).
    """

    def __init__(self, field: str, allowed: str, value: object) -> None:
        self.field = field
        self.allowed = allowed
        shown = repr(value)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        self.shown = shown
        super().__init__(f"Invalid {field} {shown}: {allowed}")

    def renamed(self, old: str, new: str) -> ImageSearchValidationError:
        """The same refusal told with another argument name (for an operator reusing a shared check)."""
        error = type(self).__new__(type(self))
        error.field = self.field.replace(old, new)
        error.allowed = self.allowed.replace(old, new)
        error.shown = self.shown
        Exception.__init__(error, f"Invalid {error.field} {self.shown}: {error.allowed}")
        return error


class ImageSearchApiError(ImageSearchError):
    """The ImageSearch API (or its gateway) answered with an error.

    :param status: HTTP status code, or ``None`` when no response was received.
    :param error_code: ``IS.xxxx`` / ``APIGW.xxxx`` code, or the HTTP status as text when the body had none.
    :param error_msg: the service's message, or a short description of a non-JSON body.
    :param request_id: the gateway's request id (``X-Request-Id``), when known.
    :param method: HTTP method of the failed call.
    :param path: request path of the failed call (no query string, no credentials).
    """

    def __init__(
        self,
        *,
        status: int | None,
        error_code: str,
        error_msg: str,
        request_id: str | None = None,
        method: str = "",
        path: str = "",
    ) -> None:
        self.status = status
        self.error_code = error_code
        self.error_msg = error_msg
        self.request_id = request_id
        self.method = method
        self.path = path
        super().__init__(self._message())

    def _message(self) -> str:
        status = f"HTTP {self.status}" if self.status is not None else "no response"
        where = f" on {self.method} {self.path}" if self.method else ""
        rid = f" (request id {self.request_id})" if self.request_id else ""
        return f"ImageSearch {status} {self.error_code}: {self.error_msg}{where}{rid}"

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only __init__ breaks default pickling (Airflow pickles exceptions across processes).
        return (_rebuild, (type(self), self.__dict__.copy()))


def _rebuild(cls: type[ImageSearchApiError], state: dict[str, object]) -> ImageSearchApiError:
    error = cls.__new__(cls)
    error.__dict__.update(state)
    Exception.__init__(error, error._message())
    return error


class ImageSearchAuthError(ImageSearchApiError):
    """Credentials were refused (bad password/AK/SK, expired token that could not be renewed, 401/403).

    ``token_rejected`` marks a token the gateway or service no longer accepts (401 APIGW.0301/0307,
    400 IS.0004): a renewable credential gets one fresh token and one more try.
    """

    token_rejected: bool = False


class ImageSearchNotFoundError(ImageSearchApiError):
    """The instance (or image) does not exist."""


class ImageSearchThrottledError(ImageSearchApiError):
    """HTTP 429 (throttled by the gateway); ``retry_after`` holds the server's ``Retry-After`` in seconds."""

    retry_after: float | None = None


class ImageSearchServerError(ImageSearchApiError):
    """HTTP 5xx that survived the retry budget."""


class ImageSearchTransportError(ImageSearchApiError):
    """No usable response: connection refused or dropped, or a timeout.

    ``request_sent`` is False only when the request provably never reached the server (connection
    refused, connect timeout): the one case where retrying a non-idempotent call is safe.
    """

    request_sent: bool = True
    timed_out: bool = False


class ImageSearchResponseError(ImageSearchApiError):
    """A 2xx response whose body is not what the API documents (not JSON, wrong shape or types)."""


class ImageSearchWaitError(ImageSearchError):
    """A wait gave up after too many transient errors in a row (the task's retries may still succeed).

    Deliberately not an ``AirflowException``: Airflow's sensor machinery turns those into a skip under
    ``soft_fail``, and an outage is not a reason to skip downstream tasks.
    """
