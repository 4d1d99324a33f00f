"""How a fleet wait names the instances it still waits for: the first five with their last seen status,
then ``+N more`` for the rest (none when there are no more than five).

The text reaches the user twice: in the timeout event's message (the fleet sensor's failure) and in the
trigger's log line after each round. The trigger runs against the emulator; its waits are scripted
(``tests.support.scripted_waits``), so no test waits a poll interval.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.triggers import imagesearch as trigger_module
from airflow_provider_imagesearch.triggers.imagesearch import ImageSearchFleetStatusTrigger
from tests.support.emulator_instances import status_change
from tests.support.scripted_waits import ScriptedWaits, script_waits
from tests.support.triggers import first_event


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> ScriptedWaits:
    return script_waits(monkeypatch, trigger_module)


@pytest.fixture
def conn(imagesearch_conn: Callable[..., str]) -> str:
    return imagesearch_conn("token", conn_id="imagesearch_fleet_summary", max_attempts=1)


def _fleet(conn_id: str, names: list[str], **kwargs: Any) -> ImageSearchFleetStatusTrigger:
    return ImageSearchFleetStatusTrigger(
        instance_names=names, imagesearch_conn_id=conn_id, poll_interval=10.0, **kwargs
    )


@pytest.mark.parametrize(
    ("count", "rest"),
    [(7, " +2 more"), (6, " +1 more"), (5, "")],
    ids=["seven", "six", "five"],
)
def test_a_timeout_names_the_first_five_pending_instances_then_how_many_more(
    conn: str, waits: ScriptedWaits, count: int, rest: str
) -> None:
    names = [f"m-{i}" for i in range(count)]
    event = first_event(_fleet(conn, names, timeout_at=time.time() - 1), timeout=10)
    shown = ", ".join(f"m-{i} (not found yet)" for i in range(5))
    assert event["status"] == "timeout"
    assert event["message"] == f"{count} of {count} instances did not become NORMAL in time: {shown}{rest}"
    assert event["pending"] == names


@pytest.mark.parametrize(("count", "rest"), [(7, " +2 more"), (6, " +1 more")], ids=["seven", "six"])
def test_each_round_logs_the_first_five_instances_waited_for_with_their_status_then_how_many_more(
    conn: str,
    emulator: Emulator,
    waits: ScriptedWaits,
    count: int,
    rest: str,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    names = [f"w-{i}" for i in range(count)]
    for name in names:
        emulator.upsert_instance(name, status="CREATION")
    # Between the rounds every instance becomes NORMAL: the second round ends the wait.
    waits.changes = [lambda: [status_change(emulator, name, "NORMAL")() for name in names]]
    capsys.readouterr()
    event = first_event(_fleet(conn, names), timeout=10)
    assert event["status"] == "success"
    # Airflow 3.3 routes a trigger's log through structlog to stdout; 3.1 through logging.
    logged = capsys.readouterr().out + caplog.text
    waiting = [line for line in logged.splitlines() if "waiting for" in line]
    shown = ", ".join(f"w-{i} (CREATION)" for i in range(5))
    expected = f"0/{count} instances NORMAL (round 1); waiting for {shown}{rest}"
    assert len(waiting) == 1, logged
    assert re.search(re.escape(expected) + r"(\s|$)", waiting[0]), waiting[0]
