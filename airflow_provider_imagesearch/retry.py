"""When and how long to retry, shared by the sync and async hooks.

Built on tenacity (already an Airflow dependency), so the sync path uses ``tenacity.Retrying`` and the
async path ``tenacity.AsyncRetrying`` with the same predicate, wait and stop rules.

What is retried:

* HTTP 429: always; the gateway refused the request before the service saw it. ``Retry-After`` is
  honoured (seconds or an HTTP date), capped by ``max_retry_after``.
* HTTP 5xx, read timeouts and dropped connections: only for idempotent calls (reads, searches, checks,
  deletes, modifies). Create-instance and add-image may already have taken effect on the server, so a
  blind retry could create twice; they are retried only when the request provably never left
  (connection refused, connect timeout).
* A host name that does not resolve (DNS: no such name): a few attempts (``NAME_RESOLUTION_ATTEMPTS``),
  not the whole budget. It is far more often a wrong endpoint setting than a passing fault, and the
  final error names the host and the setting that chose it.
* Nothing else: other 4xx are final.

Waits are exponential with full jitter (``wait_random_exponential``), and the whole call stops after
``max_attempts`` attempts or once the next wait would pass ``max_elapsed`` seconds.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import tenacity

from airflow_provider_imagesearch.errors import (
    ImageSearchApiError,
    ImageSearchAuthError,
    ImageSearchServerError,
    ImageSearchThrottledError,
    ImageSearchTransportError,
)

log = logging.getLogger(__name__)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds, fractional tolerated, or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, OverflowError):
            return None
        seconds = moment.timestamp() - (now if now is not None else time.time())
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


#: Retry causes after which the failed attempt may have taken effect on the server.
AMBIGUOUS_RETRY_CAUSES = frozenset({"5xx", "timeout", "dropped"})
#: ``error_code`` of a transport error whose host name the resolver says does not exist.
NAME_NOT_RESOLVED = "NAME_NOT_RESOLVED"
#: Attempts (the first included) for a host name that does not resolve: two retries cover a resolver
#: hiccup; more only delay an error that is almost always a wrong endpoint in the connection.
NAME_RESOLUTION_ATTEMPTS = 3


def is_request_error(error: BaseException) -> bool:
    """A definite refusal of the request by the service or gateway (a 4xx other than 429)."""
    return (
        isinstance(error, ImageSearchApiError)
        and error.status is not None
        and 400 <= error.status < 500
        and retry_cause(error, idempotent=True) is None
        and not isinstance(error, ImageSearchAuthError)
    )


def retry_cause(error: BaseException, idempotent: bool) -> str | None:
    """The retry cause label when ``error`` may be retried for this call, else ``None``."""
    if isinstance(error, ImageSearchThrottledError):
        return "429"
    if isinstance(error, ImageSearchServerError):
        return "5xx" if idempotent else None
    if isinstance(error, ImageSearchTransportError):
        if error.error_code == "TLS_ERROR":
            return None  # a refused certificate or TLS set-up is configuration: no retry can fix it
        if error.error_code == NAME_NOT_RESOLVED:
            return "dns"  # never sent; capped at NAME_RESOLUTION_ATTEMPTS (see RetryPolicy)
        if not getattr(error, "request_sent", True):
            return "connect"
        if idempotent:
            return "timeout" if getattr(error, "timed_out", False) else "dropped"
    return None


class _StopUnresolvedHost(tenacity.stop.stop_base):
    """Stop once a host name that does not resolve has been tried ``NAME_RESOLUTION_ATTEMPTS`` times."""

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        return (
            isinstance(error, ImageSearchTransportError)
            and error.error_code == NAME_NOT_RESOLVED
            and retry_state.attempt_number >= NAME_RESOLUTION_ATTEMPTS
        )


@dataclass(frozen=True)
class RetryPolicy:
    """Retry settings of a hook.

    :param max_attempts: attempts per call, the first included (1 disables retries).
    :param backoff_initial: scale of the first backoff, in seconds.
    :param backoff_max: largest single backoff, in seconds.
    :param max_elapsed: no retry starts after this many seconds since the first attempt.
    :param max_retry_after: largest ``Retry-After`` honoured, in seconds.
    """

    max_attempts: int = 5
    backoff_initial: float = 0.5
    backoff_max: float = 20.0
    max_elapsed: float = 120.0
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        from airflow_provider_imagesearch.errors import ImageSearchConfigError

        if self.max_attempts < 1:
            raise ImageSearchConfigError("max_attempts must be an integer >= 1")
        for name in ("backoff_initial", "backoff_max", "max_elapsed", "max_retry_after"):
            if getattr(self, name) < 0:
                raise ImageSearchConfigError(f"{name} must be a number >= 0")

    def _wait(self) -> Callable[[tenacity.RetryCallState], float]:
        backoff = tenacity.wait_random_exponential(multiplier=self.backoff_initial, max=self.backoff_max)

        def wait(state: tenacity.RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            retry_after = getattr(error, "retry_after", None)
            if retry_after is not None:
                return float(min(retry_after, self.max_retry_after))
            return float(backoff(state))

        return wait

    def _kwargs(
        self, idempotent: bool, stats: Counter[str] | None, label: str, retry_throttled: bool
    ) -> dict[str, Any]:
        def should_retry(state: tenacity.RetryCallState) -> bool:
            error = state.outcome.exception() if state.outcome else None
            if error is None:
                return False
            if not retry_throttled and isinstance(error, ImageSearchThrottledError):
                return False
            return retry_cause(error, idempotent) is not None

        def before_sleep(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            sleep = state.next_action.sleep if state.next_action else 0.0
            if stats is not None and error is not None:
                stats[retry_cause(error, idempotent) or "other"] += 1
            unresolved = (
                isinstance(error, ImageSearchTransportError) and error.error_code == NAME_NOT_RESOLVED
            )
            log.warning(
                "ImageSearch %s failed (attempt %d/%d): %s; retrying in %.2fs",
                label,
                state.attempt_number,
                min(self.max_attempts, NAME_RESOLUTION_ATTEMPTS) if unresolved else self.max_attempts,
                error,
                sleep,
            )

        return {
            "retry": should_retry,
            "wait": self._wait(),
            "stop": tenacity.stop_after_attempt(self.max_attempts)
            | tenacity.stop_before_delay(self.max_elapsed)
            | _StopUnresolvedHost(),
            "before_sleep": before_sleep,
            "reraise": True,
        }

    def retrying(
        self,
        *,
        idempotent: bool,
        stats: Counter[str] | None = None,
        label: str = "call",
        retry_throttled: bool = True,
    ) -> tenacity.Retrying:
        """The sync retry loop; ``retry_throttled=False`` hands a 429 to the caller (who paces itself)."""
        return tenacity.Retrying(**self._kwargs(idempotent, stats, label, retry_throttled))

    def async_retrying(
        self,
        *,
        idempotent: bool,
        stats: Counter[str] | None = None,
        label: str = "call",
        retry_throttled: bool = True,
    ) -> tenacity.AsyncRetrying:
        """The async twin of :meth:`retrying`."""
        return tenacity.AsyncRetrying(**self._kwargs(idempotent, stats, label, retry_throttled))
