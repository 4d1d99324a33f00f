"""The tests' emulator fixture, at the end of a test, waits for the answers a latency or slow fault still holds
back, so that a request the test's client gave up on is logged in its own test, not in the next one's request
log (a cancelled trigger's late read once failed an unrelated test on Airflow 3.1.8). An answer held back
longer than the wait allows fails the test that left it, naming why.
"""

from __future__ import annotations

import httpx
import pytest

from airflow_provider_imagesearch.emulator import Emulator
from tests.support.fixtures import _wait_for_delayed_answers


def _give_up_on_a_read(emulator: Emulator, latency: float) -> None:
    emulator.set_faults(latency_seconds=latency)
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{emulator.url}/v1/p/service/late", timeout=0.1)


def test_the_request_a_client_gave_up_on_is_logged_before_the_test_ends() -> None:
    with Emulator() as emulator:
        _give_up_on_a_read(emulator, latency=0.5)
        assert emulator.requests_log() == []  # still held back
        _wait_for_delayed_answers(emulator)
        assert [r["instance"] for r in emulator.requests_log()] == ["late"]


def test_an_answer_held_back_longer_than_the_wait_fails_the_test_that_left_it() -> None:
    with Emulator() as emulator:
        _give_up_on_a_read(emulator, latency=2.0)
        with pytest.raises(pytest.fail.Exception, match="1 emulator answer"):
            _wait_for_delayed_answers(emulator, timeout=0.3)
        _wait_for_delayed_answers(emulator)
