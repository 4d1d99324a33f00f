"""What a hook call retries, how often and how long it waits: ``RetryPolicy`` and ``parse_retry_after``.

Each call below runs through the policy's sync or async retry loop with the loop's sleep recorded
instead of slept. Protected, as a task's attempts and log show it:

* a 429 is always retried (unless the caller paces itself), honouring ``Retry-After`` up to
  ``max_retry_after``; a 5xx, a timeout and a dropped connection only for idempotent calls; a request
  that never left (connection refused) for every call; a host name that does not resolve three times
  at most; a TLS failure and any other 4xx never;
* no retry after ``max_attempts`` attempts or once the next wait would pass ``max_elapsed``; each wait
  at most ``backoff_max``;
* the retry counts by cause, and the log line of each retry with its attempt count;
* a policy with a negative or zero-attempt setting is refused naming the setting.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from airflow_provider_imagesearch import retry
from airflow_provider_imagesearch.errors import (
    ImageSearchApiError,
    ImageSearchAuthError,
    ImageSearchConfigError,
    ImageSearchServerError,
    ImageSearchThrottledError,
    ImageSearchTransportError,
)
from airflow_provider_imagesearch.retry import RetryPolicy, parse_retry_after
from tests.support.api_errors import api_error
from tests.support.log_lines import log_lines


def throttled(retry_after: float | None = None) -> ImageSearchApiError:
    return api_error(ImageSearchThrottledError, 429, "APIGW.0308", retry_after=retry_after)


def server() -> ImageSearchApiError:
    return api_error(ImageSearchServerError, 500, "500")


def transport(code: str = "CONNECTION_ERROR", **attrs: Any) -> ImageSearchApiError:
    return api_error(ImageSearchTransportError, None, code, **attrs)


@pytest.fixture
def logged() -> Iterator[list[str]]:
    with log_lines(retry.__name__) as lines:
        yield lines


def _call(
    policy: RetryPolicy, errors: Sequence[BaseException], *, idempotent: bool, **kwargs: Any
) -> tuple[int, list[float], BaseException | None, Counter[str]]:
    """Attempts made, the waits between them, the error the call ended with, and the retry stats."""
    stats: Counter[str] = Counter()
    waits: list[float] = []
    attempts = 0
    retrying = policy.retrying(idempotent=idempotent, stats=stats, label="get_instance", **kwargs)
    retrying.sleep = waits.append

    def attempt() -> str:
        nonlocal attempts
        attempts += 1
        if attempts <= len(errors):
            raise errors[attempts - 1]
        return "ok"

    try:
        retrying(attempt)
    except Exception as error:
        return attempts, waits, error, stats
    return attempts, waits, None, stats


FAST = RetryPolicy(max_attempts=5, backoff_initial=0.0, backoff_max=0.0)


@pytest.mark.parametrize(
    ("make", "idempotent", "attempts", "cause"),
    [
        (throttled, False, 3, "429"),
        (server, True, 3, "5xx"),
        (server, False, 1, None),
        (lambda: transport(request_sent=False), False, 3, "connect"),
        (lambda: transport(timed_out=True), True, 3, "timeout"),
        (lambda: transport(timed_out=True), False, 1, None),
        (transport, True, 3, "dropped"),
        (transport, False, 1, None),
        (lambda: transport("TLS_ERROR", request_sent=False), True, 1, None),
        (lambda: api_error(ImageSearchApiError, 400, "IS.0002"), True, 1, None),
        (lambda: api_error(ImageSearchAuthError, 401, "APIGW.0301"), True, 1, None),
    ],
)
def test_which_errors_are_retried_for_which_calls(
    make: Any, idempotent: bool, attempts: int, cause: str | None
) -> None:
    errors = [make(), make()]
    made, waits, error, stats = _call(FAST, errors, idempotent=idempotent)
    assert made == attempts
    assert error is (None if attempts == 3 else errors[0])
    assert len(waits) == made - 1
    assert stats == (Counter({cause: 2}) if cause else Counter())


def test_a_caller_that_paces_itself_gets_the_429_at_once() -> None:
    made, _, error, _ = _call(FAST, [throttled()], idempotent=True, retry_throttled=False)
    assert (made, isinstance(error, ImageSearchThrottledError)) == (1, True)
    assert _call(FAST, [server()], idempotent=True, retry_throttled=False)[0] == 2


def test_a_host_name_that_does_not_resolve_is_tried_three_times_and_logged_as_such(logged: list[str]) -> None:
    dns = [transport("NAME_NOT_RESOLVED", request_sent=False) for _ in range(5)]
    made, _waits, error, stats = _call(FAST, dns, idempotent=False)
    assert (made, stats, error is dns[2]) == (3, Counter({"dns": 2}), True)
    assert [line.split(": ")[0] for line in logged] == [
        "ImageSearch get_instance failed (attempt 1/3)",
        "ImageSearch get_instance failed (attempt 2/3)",
    ]
    two = RetryPolicy(max_attempts=2, backoff_initial=0.0, backoff_max=0.0)
    assert _call(two, dns, idempotent=False)[0] == 2


def test_attempts_stop_at_max_attempts_and_each_retry_is_logged_with_its_wait(logged: list[str]) -> None:
    policy = RetryPolicy(max_attempts=3, backoff_initial=0.0, backoff_max=0.0)
    errors = [server() for _ in range(5)]
    made, _waits, error, _ = _call(policy, errors, idempotent=True)
    assert (made, error is errors[2]) == (3, True)
    assert logged == [
        f"ImageSearch get_instance failed (attempt 1/3): {errors[0]}; retrying in 0.00s",
        f"ImageSearch get_instance failed (attempt 2/3): {errors[1]}; retrying in 0.00s",
    ]
    assert _call(RetryPolicy(max_attempts=1), errors, idempotent=True)[0] == 1


def test_retry_after_is_honoured_up_to_max_retry_after() -> None:
    policy = RetryPolicy(max_attempts=4, max_retry_after=5.0, backoff_initial=100.0, backoff_max=100.0)
    _, waits, error, _ = _call(policy, [throttled(2.5), throttled(30.0), throttled(5.0)], idempotent=True)
    assert (waits, error) == ([2.5, 5.0, 5.0], None)


def test_backoff_waits_grow_but_never_pass_backoff_max() -> None:
    policy = RetryPolicy(max_attempts=8, backoff_initial=1.0, backoff_max=3.0, max_elapsed=1000.0)
    _, waits, _, _ = _call(policy, [server() for _ in range(7)], idempotent=True)
    assert len(waits) == 7
    assert all(0.0 <= wait <= 3.0 for wait in waits)
    assert max(waits) > 0.0


def test_backoff_initial_scales_each_wait() -> None:
    """The n-th backoff is drawn from 0 to ``backoff_initial`` x 2^(n-1): a policy of 10 ms waits a few ms."""
    policy = RetryPolicy(max_attempts=5, backoff_initial=0.01, backoff_max=100.0, max_elapsed=1000.0)
    _, waits, error, _ = _call(policy, [server() for _ in range(4)], idempotent=True)
    assert error is None
    assert len(waits) == 4
    assert all(0.0 <= wait <= 0.01 * 2**n for n, wait in enumerate(waits)), waits


def test_no_retry_starts_once_its_wait_would_pass_max_elapsed() -> None:
    policy = RetryPolicy(max_attempts=5, max_elapsed=4.0, max_retry_after=60.0)
    made, waits, error, _ = _call(policy, [throttled(10.0), throttled(10.0)], idempotent=True)
    assert (made, waits, isinstance(error, ImageSearchThrottledError)) == (1, [], True)


def test_the_async_loop_retries_by_the_same_rules() -> None:
    policy = RetryPolicy(max_attempts=3, backoff_initial=0.0, backoff_max=0.0)

    async def run(errors: list[BaseException], idempotent: bool) -> tuple[int, Counter[str]]:
        stats: Counter[str] = Counter()
        attempts = 0
        waits: list[float] = []

        async def sleep(seconds: float) -> None:
            waits.append(seconds)

        retrying = policy.async_retrying(idempotent=idempotent, stats=stats)
        retrying.sleep = sleep  # type: ignore[assignment]

        async def attempt() -> str:
            nonlocal attempts
            attempts += 1
            if attempts <= len(errors):
                raise errors[attempts - 1]
            return "ok"

        with contextlib.suppress(Exception):
            await retrying(attempt)
        assert len(waits) == attempts - 1
        return attempts, stats

    assert asyncio.run(run([server(), server()], True)) == (3, Counter({"5xx": 2}))
    assert asyncio.run(run([server()], False)) == (1, Counter())
    assert asyncio.run(run([throttled(), throttled(), throttled()], False)) == (3, Counter({"429": 2}))
    policy = RetryPolicy(max_attempts=3, backoff_initial=0.0, backoff_max=0.0)
    paced = policy.async_retrying(idempotent=True, retry_throttled=False)
    assert paced.retry is not None


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("max_attempts", 0, "max_attempts must be an integer >= 1"),
        ("backoff_initial", -0.1, "backoff_initial must be a number >= 0"),
        ("backoff_max", -1, "backoff_max must be a number >= 0"),
        ("max_elapsed", -1, "max_elapsed must be a number >= 0"),
        ("max_retry_after", -1, "max_retry_after must be a number >= 0"),
    ],
)
def test_a_policy_with_a_bad_setting_is_refused_naming_it(setting: str, value: float, message: str) -> None:
    with pytest.raises(ImageSearchConfigError) as refused:
        RetryPolicy(**{setting: value})  # type: ignore[arg-type]
    assert str(refused.value) == message


def test_the_smallest_settings_are_accepted() -> None:
    policy = RetryPolicy(max_attempts=1, backoff_initial=0, backoff_max=0, max_elapsed=0, max_retry_after=0)
    assert policy.max_attempts == 1


def test_retry_after_is_read_in_seconds_or_as_an_http_date() -> None:
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None
    assert parse_retry_after(" 3 ") == 3.0
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after("-4") == 0.0
    assert parse_retry_after("nan") is None
    assert parse_retry_after("soon") is None
    date = email.utils.formatdate(1_000_030.0, usegmt=True)
    assert parse_retry_after(date, now=1_000_000.0) == 30.0
    assert parse_retry_after(date, now=1_000_100.0) == 0.0
