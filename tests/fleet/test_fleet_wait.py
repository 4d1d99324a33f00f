"""Waiting for a fleet: the status sensor with instance_names (three modes), the fleet trigger, the shared client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from airflow.sdk import DAG

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from airflow_provider_imagesearch.sensors.imagesearch import ImageSearchInstanceStatusSensor
from airflow_provider_imagesearch.triggers.imagesearch import (
    ImageSearchFleetStatusTrigger,
    ImageSearchInstanceStatusTrigger,
)
from tests.support.dagrun import run_dag, states, xcom
from tests.support.waiting import after_first_poll

MODES: dict[str, dict[str, Any]] = {
    "poke": {"mode": "poke", "deferrable": False},
    "reschedule": {"mode": "reschedule", "deferrable": False},
    "deferrable": {"deferrable": True},
}


def _dag(dag_id: str, **sensor_kwargs: Any) -> DAG:
    sensor_kwargs.setdefault("poke_interval", 1)
    sensor_kwargs.setdefault("timeout", 60)
    sensor_kwargs.setdefault("retries", 2)
    with DAG(dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
        ImageSearchInstanceStatusSensor(task_id="wait", **sensor_kwargs)
    return dag


def _grow(emulator: Emulator, names: list[str], next_status: str = "NORMAL", after: float = 1.5) -> None:
    emulator.control.upsert_instances(
        [
            {
                "name": name,
                "project_id": DEFAULT_PROJECT_ID,
                "status": "CREATION",
                "transition_after_s": after,
                "next_status": next_status,
            }
            for name in names
        ]
    )


@pytest.mark.usefixtures("airflow_db")
@pytest.mark.parametrize("mode", MODES)
def test_fleet_turning_normal_succeeds_with_every_detail_in_order(
    mode: str, imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    names = [f"fl-{mode[:5]}-{index}" for index in range(4)]
    emulator.upsert_instance(names[0], status="NORMAL")
    for name in names[1:]:
        emulator.upsert_instance(name, status="CREATION")
    with after_first_poll(emulator, names[-1], lambda: _grow(emulator, names[1:])) as grown:
        dr = run_dag(
            _dag(
                f"fleet_ok_{mode}",
                instance_names=names,
                imagesearch_conn_id=imagesearch_conn(),
                max_concurrency=2,
                **MODES[mode],
            )
        )
    assert grown.is_set()
    assert states(dr) == {("wait", -1): ("success", 1)}
    details = xcom(dr, "wait")
    assert [d["instance_name"] for d in details] == names
    assert all(d["status"] == "NORMAL" for d in details)
    # The instance that was NORMAL from the start is not polled each round as the others are.
    gets = {
        name: sum(1 for r in emulator.requests_log() if r.get("instance") == name and r["method"] == "GET")
        for name in names
    }
    assert gets[names[0]] < gets[names[-1]]


@pytest.mark.usefixtures("airflow_db")
@pytest.mark.parametrize("mode", MODES)
def test_one_creation_failed_fails_the_fleet_at_once_naming_it(
    mode: str, imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    names = [f"ff-{mode[:5]}-{index}" for index in range(3)]
    bad = names[1]
    for name in names:
        emulator.upsert_instance(name, status="CREATION")

    def change() -> None:
        _grow(emulator, [names[0], names[2]], after=0.5)
        _grow(emulator, [bad], next_status="CREATION_FAILD", after=0.5)

    with after_first_poll(emulator, names[-1], change) as changed:
        dr = run_dag(
            _dag(
                f"fleet_fail_{mode}",
                instance_names=names,
                imagesearch_conn_id=imagesearch_conn(),
                **MODES[mode],
            )
        )
    assert changed.is_set()
    # Failed on the first try, without using the task's 2 retries.
    assert states(dr) == {("wait", -1): ("failed", 1)}
    log = [r for r in emulator.requests_log() if r.get("instance") == bad and r["method"] == "GET"]
    assert log[-1]["status"] == 200


def test_fleet_trigger_serialization_round_trip() -> None:
    trigger = ImageSearchFleetStatusTrigger(
        instance_names=["a", "b", "c"],
        imagesearch_conn_id="conn",
        project_id=DEFAULT_PROJECT_ID,
        region="cn-north-4",
        target_statuses=["NORMAL"],
        failure_statuses=["CREATION_FAILD"],
        poll_interval=2.0,
        first_poll_at=10.0,
        not_found_deadline=12.5,
        timeout_at=99.0,
        max_concurrency=7,
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_imagesearch.triggers.imagesearch.ImageSearchFleetStatusTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs
    rebuilt = ImageSearchFleetStatusTrigger(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert kwargs["instance_names"] == ["a", "b", "c"]
    assert kwargs["max_concurrency"] == 7


def _fleet(conn_id: str, names: list[str], **kwargs: Any) -> ImageSearchFleetStatusTrigger:
    kwargs.setdefault("poll_interval", 0.2)
    kwargs.setdefault("failure_statuses", ["CREATION_FAILD"])
    return ImageSearchFleetStatusTrigger(instance_names=names, imagesearch_conn_id=conn_id, **kwargs)


async def _first(trigger: Any) -> dict[str, Any]:
    generator = trigger.run()
    try:
        event = await anext(generator)
    finally:
        await generator.aclose()
    return dict(event.payload)


def test_fleet_trigger_events(imagesearch_conn: Callable[..., str], emulator: Emulator) -> None:
    conn_id = imagesearch_conn()
    for name in ("ft-a", "ft-b"):
        emulator.upsert_instance(name, status="CREATION", transition_after_s=3600.0, next_status="NORMAL")
    # Both turn NORMAL only once the trigger has read ft-a as CREATION (not after a wall-clock delay, which
    # a slow start on a loaded machine could overrun): that read is one round, the success another.
    with after_first_poll(emulator, "ft-a", lambda: _grow(emulator, ["ft-a", "ft-b"], after=0.2)) as grown:
        event = asyncio.run(_first(_fleet(conn_id, ["ft-b", "ft-a"])))
    assert grown.is_set()
    assert event["status"] == "success"
    assert [d["instance_name"] for d in event["instances"]] == ["ft-b", "ft-a"]
    assert [d["status"] for d in event["instances"]] == ["NORMAL", "NORMAL"]
    assert event["polls"] >= 2
    emulator.upsert_instance("ft-c", status="NORMAL")
    event = asyncio.run(_first(_fleet(conn_id, ["ft-c", "ft-ghost-1", "ft-ghost-2"])))
    assert event["status"] == "not_found"
    assert event["missing"] == ["ft-ghost-1", "ft-ghost-2"]
    assert "ft-ghost-1" in event["message"]
    assert "ft-ghost-2" in event["message"]


def test_shared_client_survives_one_triggers_cancellation(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    from airflow_provider_imagesearch.hooks.imagesearch import SHARED_CLIENTS

    conn_id = imagesearch_conn()
    names = [f"sh-{index}" for index in range(4)]
    for name in names:
        emulator.upsert_instance(name, status="CREATION")

    async def scenario() -> tuple[list[Any], int, int, int]:
        singles = [
            ImageSearchInstanceStatusTrigger(
                instance_name=name, imagesearch_conn_id=conn_id, poll_interval=0.1
            )
            for name in names[:3]
        ]
        fleet = _fleet(conn_id, names, poll_interval=0.1)
        tasks = [asyncio.create_task(_first(trigger)) for trigger in (*singles, fleet)]
        deadline = asyncio.get_running_loop().time() + 60
        while SHARED_CLIENTS.users() < 4 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        users, clients = SHARED_CLIENTS.users(), SHARED_CLIENTS.count()
        shared = {id(trigger._hook._client) for trigger in (*singles, fleet)}
        assert len(shared) == 1, "every trigger uses the same client"
        tasks[0].cancel()
        await asyncio.sleep(0.3)  # the others keep polling on the shared client meanwhile
        polls_before = fleet.polls
        _grow(emulator, names, after=0.3)
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert fleet.polls > polls_before
        return results, users, clients, SHARED_CLIENTS.count()

    results, users, clients, left = asyncio.run(scenario())
    assert users == 4
    assert clients == 1
    assert isinstance(results[0], asyncio.CancelledError)
    assert [r["status"] for r in results[1:]] == ["success"] * 3
    assert left == 0, "the last user closed the shared client"
