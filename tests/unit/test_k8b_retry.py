"""The retry policy as a caller of its public loops sees it: the settings it accepts (zero waits, one
attempt), the warning of each retry (the call's label, ``call`` when none is given, and the wait), a 429
retried unless the caller paces itself, and a refused TLS set-up never retried."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

import pytest

from airflow_provider_imagesearch.errors import (
    ImageSearchConfigError,
    ImageSearchThrottledError,
    ImageSearchTransportError,
)
from airflow_provider_imagesearch.retry import (
    NAME_NOT_RESOLVED,
    NAME_RESOLUTION_ATTEMPTS,
    RetryPolicy,
    retry_cause,
)


def _throttled(retry_after: float) -> ImageSearchThrottledError:
    error = ImageSearchThrottledError(status=429, error_code="APIGW.0308", error_msg="throttled")
    error.retry_after = retry_after
    return error


class _Flaky:
    """Throttled ``failures`` times (Retry-After: 0.01 s), then answers "ok"."""

    def __init__(self, failures: int = 1) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise _throttled(0.01)
        return "ok"


def test_zero_waits_and_a_single_attempt_are_accepted() -> None:
    policy = RetryPolicy(max_attempts=1, backoff_initial=0, backoff_max=0, max_elapsed=0, max_retry_after=0)
    assert (policy.max_attempts, policy.backoff_initial, policy.max_retry_after) == (1, 0, 0)
    with pytest.raises(ImageSearchConfigError, match="max_attempts must be an integer >= 1"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ImageSearchConfigError, match="max_retry_after must be a number >= 0"):
        RetryPolicy(max_retry_after=-1)


def test_a_retry_warns_with_the_default_label_its_attempt_and_its_wait(
    caplog: pytest.LogCaptureFixture,
) -> None:
    flaky = _Flaky()
    stats: Counter[str] = Counter()
    with caplog.at_level(logging.WARNING, logger="airflow_provider_imagesearch.retry"):
        assert RetryPolicy(max_attempts=3).retrying(idempotent=False, stats=stats)(flaky) == "ok"
    assert flaky.calls == 2
    assert stats == Counter({"429": 1})
    assert caplog.messages == [
        "ImageSearch call failed (attempt 1/3): ImageSearch HTTP 429 APIGW.0308: throttled; retrying in 0.01s"
    ], caplog.messages


def test_the_async_loop_warns_alike(caplog: pytest.LogCaptureFixture) -> None:
    flaky = _Flaky()

    async def call() -> str:
        return flaky()

    with caplog.at_level(logging.WARNING, logger="airflow_provider_imagesearch.retry"):
        assert asyncio.run(RetryPolicy(max_attempts=3).async_retrying(idempotent=True)(call)) == "ok"
    assert flaky.calls == 2
    assert caplog.messages == [
        "ImageSearch call failed (attempt 1/3): ImageSearch HTTP 429 APIGW.0308: throttled; retrying in 0.01s"
    ], caplog.messages


@pytest.mark.parametrize("loop", ["sync", "async"])
def test_a_429_is_retried_unless_the_caller_paces_itself(loop: str) -> None:
    policy = RetryPolicy(max_attempts=3)

    def run(**kwargs: Any) -> tuple[Any, int]:
        flaky = _Flaky()
        try:
            if loop == "sync":
                return policy.retrying(idempotent=True, **kwargs)(flaky), flaky.calls

            async def call() -> str:
                return flaky()

            return asyncio.run(policy.async_retrying(idempotent=True, **kwargs)(call)), flaky.calls
        except ImageSearchThrottledError as error:
            return error, flaky.calls

    assert run() == ("ok", 2)
    refused, calls = run(retry_throttled=False)
    assert isinstance(refused, ImageSearchThrottledError)
    assert calls == 1


def test_a_refused_tls_set_up_is_never_retried() -> None:
    error = ImageSearchTransportError(
        status=None, error_code="TLS_ERROR", error_msg="certificate verify failed"
    )
    assert retry_cause(error, True) is None
    dropped = ImageSearchTransportError(status=None, error_code="CONNECTION_ERROR", error_msg="reset")
    assert retry_cause(dropped, True) == "dropped"


def test_each_retry_counts_once_under_its_cause() -> None:
    flaky = _Flaky(failures=2)
    stats: Counter[str] = Counter()
    assert RetryPolicy(max_attempts=3).retrying(idempotent=True, stats=stats)(flaky) == "ok"
    assert stats == Counter({"429": 2})


def test_a_host_name_that_does_not_resolve_is_tried_a_few_times_not_the_whole_budget(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = 0

    def unresolved() -> str:
        nonlocal calls
        calls += 1
        raise ImageSearchTransportError(status=None, error_code=NAME_NOT_RESOLVED, error_msg="no such host")

    policy = RetryPolicy(max_attempts=10, backoff_initial=0, backoff_max=0)
    with (
        caplog.at_level(logging.WARNING, logger="airflow_provider_imagesearch.retry"),
        pytest.raises(ImageSearchTransportError),
    ):
        policy.retrying(idempotent=True, label="get")(unresolved)
    assert calls == NAME_RESOLUTION_ATTEMPTS
    assert [message.partition(": ")[0] for message in caplog.messages] == [
        f"ImageSearch get failed (attempt {attempt}/{NAME_RESOLUTION_ATTEMPTS})"
        for attempt in range(1, NAME_RESOLUTION_ATTEMPTS)
    ]


def test_a_dropped_connection_is_retried_up_to_max_attempts_its_warnings_saying_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = 0

    def dropped() -> str:
        nonlocal calls
        calls += 1
        if calls > 6:  # a guard: a loop past its budget ends here instead of running on
            raise ValueError("tried past the budget")
        raise ImageSearchTransportError(status=None, error_code="CONNECTION_ERROR", error_msg="reset")

    policy = RetryPolicy(max_attempts=4, backoff_initial=0, backoff_max=0)
    with (
        caplog.at_level(logging.WARNING, logger="airflow_provider_imagesearch.retry"),
        pytest.raises(ImageSearchTransportError),
    ):
        policy.retrying(idempotent=True, label="get")(dropped)
    assert calls == 4
    assert [message.partition(": ")[0] for message in caplog.messages] == [
        f"ImageSearch get failed (attempt {attempt}/4)" for attempt in range(1, 4)
    ]


def test_the_causes_of_transport_errors_a_retry_counts_under() -> None:
    unresolved = ImageSearchTransportError(
        status=None, error_code=NAME_NOT_RESOLVED, error_msg="no such host"
    )
    refused = ImageSearchTransportError(status=None, error_code="CONNECTION_ERROR", error_msg="refused")
    refused.request_sent = False  # never reached the server: safe to retry even a non-idempotent call
    assert retry_cause(unresolved, False) == "dns"
    assert (retry_cause(refused, False), retry_cause(refused, True)) == ("connect", "connect")
