"""What a poll loop logs of its problems: a failed round when it starts, every tenth, and when it ends; an
instance that keeps failing at its first failure and every tenth; nothing while all is well."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from airflow_provider_imagesearch.triggers import status_polling
from airflow_provider_imagesearch.triggers.status_polling import LOG_EVERY_ROUNDS, Reading, _Problems

OK = Reading(status="NORMAL")
FAILED = Reading(status=None, error="ImageSearch HTTP 500 APIGW.0601: Internal server error.")


@pytest.fixture
def lines(caplog: pytest.LogCaptureFixture) -> Callable[[], list[str]]:
    """The module's log messages so far."""
    caplog.set_level(logging.INFO, logger=status_polling.__name__)
    return lambda: list(caplog.messages)


def test_rounds_that_all_went_well_log_nothing(lines: Callable[[], list[str]]) -> None:
    problems = _Problems("conn")
    for _ in range(3):
        problems.round_ended(["a"], {"a": OK}, None)
    assert lines() == []


def test_the_end_of_an_outage_is_logged_once(lines: Callable[[], list[str]]) -> None:
    problems = _Problems("conn")
    problems.round_ended(["a"], {}, RuntimeError("down"))
    problems.round_ended(["a"], {"a": OK}, None)
    problems.round_ended(["a"], {"a": OK}, None)
    assert [line for line in lines() if "answered again" in line] == [
        "ImageSearch (connection 'conn') answered again after 1 failed round(s)"
    ]


def test_an_instance_read_again_after_failing_is_logged_once(lines: Callable[[], list[str]]) -> None:
    problems = _Problems("conn")
    problems.round_ended(["a", "b"], {"a": FAILED, "b": OK}, None)
    problems.round_ended(["a", "b"], {"a": OK, "b": OK}, None)
    problems.round_ended(["a", "b"], {"a": OK, "b": OK}, None)
    assert [line for line in lines() if "read again" in line] == ["Instance a was read again"]


def test_an_instance_that_keeps_failing_is_logged_at_its_first_and_every_tenth_failure(
    lines: Callable[[], list[str]],
) -> None:
    problems = _Problems("conn")
    for _ in range(2 * LOG_EVERY_ROUNDS + 1):
        problems.round_ended(["a"], {"a": FAILED}, None)
    counts = [
        line.split("(")[1].split(" ")[0] for line in lines() if line.startswith("Reading instance a failed")
    ]
    assert counts == ["1", str(LOG_EVERY_ROUNDS), str(2 * LOG_EVERY_ROUNDS)]
