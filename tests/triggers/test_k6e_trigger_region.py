"""A status trigger given a region reads that region's endpoint, whatever the connection's region (a
connection without a host: the endpoint is the region's own). No network here: the name does not
resolve, and the error names the host it tried."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.triggers.imagesearch import ImageSearchInstanceStatusTrigger
from tests.support.connections import connection_fields, set_connection
from tests.support.triggers import first_event
from tests.triggers.test_event_trigger import Watching, _run, _watch, logs

__all__ = ["logs"]  # the event trigger tests' log fixture, used here too

CONN = "imagesearch_k6e_region"
ELSEWHERE = "ap-southeast-1"


@pytest.fixture
def conn(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> str:
    fields: dict[str, Any] = connection_fields(emulator.url, "token", max_attempts=1)
    fields.pop("host")
    set_connection(monkeypatch, CONN, **fields)
    return CONN


def test_the_region_given_to_the_trigger_chooses_its_endpoint(conn: str) -> None:
    event = first_event(
        ImageSearchInstanceStatusTrigger(
            instance_name="k6e-region", imagesearch_conn_id=conn, region=ELSEWHERE
        ),
        timeout=60,
    )
    assert event["status"] == "error", event
    assert f"imagesearch.{ELSEWHERE}.myhuaweicloud.com" in str(event), event


def test_the_region_given_to_an_event_watcher_chooses_its_endpoint(
    conn: str, emulator: Emulator, logs: Callable[[], str]
) -> None:
    seen: list[str] = []

    def a_round_failed() -> bool:
        seen.append(logs())
        return "ImageSearch round failed" in "".join(seen)

    async def scenario() -> None:
        trigger = _watch(["k6e-region"], ["NORMAL"], imagesearch_conn_id=conn, region=ELSEWHERE)
        async with Watching(emulator, trigger) as watching:
            await watching.until(a_round_failed)

    _run(scenario)
    assert f"imagesearch.{ELSEWHERE}.myhuaweicloud.com" in "".join(seen)
