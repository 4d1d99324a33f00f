"""The import operator's arguments at their documented bounds: a value just inside is accepted and the
import runs; a value just outside, or of the wrong type, fails the task before any request with an
error that names the argument and the allowed form (docs/bulk-import.rst).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from tests.imports.conftest import RunImport, api_requests, library, obs

INSTANCE = "k5m-args"
ROW = {"path": obs("k5m/args.jpg"), "tags": {"color": "red"}}


@pytest.fixture
def run(import_into: Callable[..., RunImport]) -> RunImport:
    """``run(**operator kwargs)`` imports ``ROW`` into a fresh ``k5m-args`` -> the task's XCom value."""
    run_into = import_into(INSTANCE)
    return lambda **kwargs: run_into([ROW], **kwargs)


SHARD_FORM = "(index, count) with 0 <= index < count <= 1024, e.g. (0, 4) for the first of four shards"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_concurrency": 0}, "Invalid max_concurrency 0: an integer from 1 to 1024"),
        ({"max_concurrency": 1025}, "Invalid max_concurrency 1025: an integer from 1 to 1024"),
        ({"max_concurrency": True}, "Invalid max_concurrency True: an integer from 1 to 1024"),
        ({"max_failed": 1025}, "Invalid max_failed 1025: an integer from 0 to 1024"),
        ({"ledger_conn_id": ""}, "Invalid ledger_conn_id '': the id of a SQL connection"),
        ({"lock_timeout": "x"}, "Invalid lock_timeout 'x': a number of seconds from 0 to 604800"),
        ({"lock_timeout": True}, "Invalid lock_timeout True: a number of seconds from 0 to 604800"),
        ({"lock_timeout": 604801}, "Invalid lock_timeout 604801: a number of seconds from 0 to 604800"),
        ({"max_rate": 0}, "Invalid max_rate 0: requests per second, more than 0 and at most 10000"),
        ({"max_rate": True}, "Invalid max_rate True: requests per second, more than 0 and at most 10000"),
        ({"max_rate": 10001}, "Invalid max_rate 10001: requests per second, more than 0 and at most 10000"),
        ({"time_limit": 0}, "Invalid time_limit 0: a number of seconds more than 0 to 2592000"),
        ({"time_limit": timedelta(0)}, "Invalid time_limit 0.0: a number of seconds more than 0 to 2592000"),
        ({"time_limit": 2592001}, "Invalid time_limit 2592001: a number of seconds more than 0 to 2592000"),
        ({"shard": (0, 1025)}, f"Invalid shard (0, 1025): {SHARD_FORM}"),
        ({"shard": (2, 2)}, f"Invalid shard (2, 2): {SHARD_FORM}"),
        ({"shard": (True, 2)}, f"Invalid shard (True, 2): {SHARD_FORM}"),
        ({"shard": (0, 1, 2)}, f"Invalid shard (0, 1, 2): {SHARD_FORM}"),
        ({"shard": 5}, f"Invalid shard 5: {SHARD_FORM}"),
        ({"shard": "01"}, f"Invalid shard '01': {SHARD_FORM}"),
    ],
)
def test_an_argument_out_of_bounds_fails_the_task_before_any_request_naming_it(
    run: RunImport, emulator: Emulator, kwargs: dict[str, Any], message: str
) -> None:
    from airflow_provider_imagesearch.version_compat import AirflowFailException

    before = len(api_requests(emulator))
    with pytest.raises(AirflowFailException, match=re.escape(message)):
        run(**kwargs)
    assert len(api_requests(emulator)) == before
    assert library(emulator, INSTANCE) == {}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_concurrency": 1024},
        {"lock_timeout": 604800},
        {"max_rate": 1},
        {"max_rate": 10000},
        {"max_rate": 2.5},
        {"time_limit": 0.5},
        {"time_limit": 2592000},
        {"time_limit": timedelta(minutes=5)},
        {"shard": (0, 1)},
        {"shard": [0, 1]},
        {"shard": (0, 1024)},
    ],
    ids=repr,
)
def test_an_argument_at_its_bound_is_accepted_and_the_import_runs(
    run: RunImport, emulator: Emulator, kwargs: dict[str, Any]
) -> None:
    """A shard of 1024 may hold no row: the image is then either imported or left to another shard."""
    result = run(**kwargs)
    assert result["failed"] == result["invalid"] == 0, result
    if "shard" not in kwargs or tuple(kwargs["shard"]) == (0, 1):
        assert result["added"] == 1, result
        assert set(library(emulator, INSTANCE)) == {ROW["path"]}
