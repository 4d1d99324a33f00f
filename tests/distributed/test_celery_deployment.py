"""The archive DAG on a real CeleryExecutor deployment: two workers, Redis, PostgreSQL, a triggerer.

The tests share one deployment (module fixture) and run in file order; each triggers its own DAG run
over the REST API, as a user's CI would, and reads the outcome back from the metadata DB, the archive
table, the task logs and the emulator's counters.
"""

from __future__ import annotations

import signal
import time
from typing import Any

import pytest

from tests.distributed.deployment import WORKERS, Deployment
from tests.distributed.scenario import (
    CREATING,
    DAG_ID,
    INSTANCES,
    Observed,
    all_tries,
    archived,
    attempt_logs,
    set_creating,
    trigger,
    trigger_logs,
    wait_for_run,
)

pytestmark = pytest.mark.timeout(360)


def test_archive_run_spreads_over_both_workers_and_defers_to_the_triggerer(
    celery_deployment: Deployment,
) -> None:
    deploy = celery_deployment
    deploy.emulator.set_faults(reset=True)
    set_creating(deploy)
    deploy.emulator.reset_stats()
    run_id = "distributed_first"
    observed = Observed()

    trigger(deploy, run_id)
    state = wait_for_run(deploy, run_id, timeout=240, observed=observed)

    assert state == "success", deploy.logs()
    assert archived(deploy, run_id) == dict.fromkeys(INSTANCES, 1)

    tries = all_tries(deploy, run_id)
    assert {t["state"] for t in tries if t["source"] == "current"} == {"success"}
    # Over all tasks: the batching of the DAG may change, two workers must still share the work.
    assert {t["hostname"] for t in tries} == set(WORKERS), tries

    # The sensors of the instances still in CREATION were deferred, and came back from the triggerer:
    # a trigger log that says the trigger fired, for each deferred sensor, and the sensor succeeded.
    deferred = observed.saw("wait_until_normal", "deferred")
    assert deferred, observed.states
    fired = [
        p for p in trigger_logs(deploy, run_id, "wait_until_normal") if "Trigger fired event" in p.read_text()
    ]
    assert len(fired) >= len(deferred), (deferred, fired)
    assert {t["state"] for t in tries if t["task_id"] == "wait_until_normal"} == {"success"}

    # IAM: the token cache is per process, so at most one token per process that called ImageSearch:
    # each try of a sensor or read task, each resume of a deferred sensor (a new process on a Celery
    # worker), and the triggerer. The tasks that never call ImageSearch (batching, archive) are not counted.
    calling = [
        *attempt_logs(deploy, run_id, "wait_until_normal"),
        *attempt_logs(deploy, run_id, "read_details"),
    ]
    processes = len(calling) + len(fired) + 1
    stats = deploy.emulator.stats()
    print(f"IAM token requests: {stats['token_requests']}, task processes + triggerer: {processes}")
    assert 1 <= stats["token_requests"] <= processes, (stats["token_requests"], processes)
    assert len(CREATING) == 5


def test_a_worker_killed_mid_run_its_tasks_are_retried_on_the_other_and_a_rerun_rewrites(
    celery_deployment: Deployment,
) -> None:
    deploy = celery_deployment
    # Every ImageSearch call takes 4 s: tasks are still running when the worker dies.
    deploy.emulator.set_faults(reset=True, latency_seconds=4.0)
    run_id = "distributed_killed_worker"
    killed: dict[str, Any] = {}

    def kill_a_busy_worker(tis: list[dict[str, Any]]) -> None:
        if killed:
            return
        running: dict[str, list[tuple[str, int, int]]] = {}
        for ti in tis:
            if ti["state"] == "running" and ti["hostname"] in WORKERS and ti["task_id"] != "archive":
                running.setdefault(ti["hostname"], []).append(
                    (ti["task_id"], ti["map_index"], ti["try_number"])
                )
        # Wait for a read to be in flight (a write path, not only a wait), then kill its worker.
        reading = {
            name: tasks for name, tasks in running.items() if any(t[0] == "read_details" for t in tasks)
        }
        if not reading:
            return
        victim = max(reading, key=lambda name: len(reading[name]))
        deploy.services[victim].kill(signal.SIGKILL)
        killed.update(worker=victim, tasks=running[victim])
        # The slow calls served their purpose: the retries need not wait for them too.
        deploy.emulator.set_faults(reset=True)

    trigger(deploy, run_id)
    state = wait_for_run(deploy, run_id, timeout=240, during=kill_a_busy_worker)

    assert killed, "no read was ever seen running on a worker"
    assert any(task_id == "read_details" for task_id, _, _ in killed["tasks"]), killed
    assert state == "success", deploy.logs()
    assert archived(deploy, run_id) == dict.fromkeys(INSTANCES, 1)
    survivor = next(name for name in WORKERS if name != killed["worker"])
    current = {
        (t["task_id"], t["map_index"]): t for t in all_tries(deploy, run_id) if t["source"] == "current"
    }
    for task_id, map_index, try_number in killed["tasks"]:
        final = current[(task_id, map_index)]
        # Airflow noticed the missing heartbeat, failed the try and retried it on the surviving worker.
        assert final["state"] == "success", final
        assert final["try_number"] > try_number, (final, try_number)
        assert final["hostname"] == survivor, final

    # The same DAG run again (cleared over REST): the archive replaces its rows, never adds to them
    # (the table's primary key is (instance_name, run_id): a second copy would fail the archive task).
    deploy.emulator.set_faults(reset=True)
    deploy.start_worker(killed["worker"])
    archive_try = current[("archive", -1)]["try_number"]
    deploy.rest("POST", f"/dags/{DAG_ID}/dagRuns/{run_id}/clear", {"dry_run": False})
    state = wait_for_run(deploy, run_id, timeout=180)
    assert state == "success", deploy.logs()
    rerun = {(t["task_id"], t["map_index"]): t for t in all_tries(deploy, run_id) if t["source"] == "current"}
    assert rerun[("archive", -1)]["try_number"] > archive_try, "the cleared run did not archive again"
    assert archived(deploy, run_id) == dict.fromkeys(INSTANCES, 1)


def test_a_broker_outage_of_ten_seconds_mid_run_delays_the_run_but_loses_and_duplicates_nothing(
    celery_deployment: Deployment,
) -> None:
    deploy = celery_deployment
    deploy.emulator.set_faults(reset=True)
    set_creating(deploy)
    run_id = "distributed_broker_outage"
    outage: dict[str, float] = {}

    def stop_redis_for_ten_seconds(tis: list[dict[str, Any]]) -> None:
        # Down once tasks are in flight (sensors queued, running or deferred), up again 10 s later.
        if "down" not in outage and any(
            t["state"] is not None for t in tis if t["task_id"] == "wait_until_normal"
        ):
            deploy.services["redis"].stop()
            outage["down"] = time.monotonic()
        elif "down" in outage and "up" not in outage and time.monotonic() - outage["down"] >= 10:
            deploy.start_redis()
            outage["up"] = time.monotonic()

    trigger(deploy, run_id)
    state = wait_for_run(deploy, run_id, timeout=240, during=stop_redis_for_ten_seconds)

    assert "up" in outage, "the run ended before the broker came back: the outage did not happen mid-run"
    assert state == "success", deploy.logs()
    assert archived(deploy, run_id) == dict.fromkeys(INSTANCES, 1)
    tries = all_tries(deploy, run_id)
    assert {t["state"] for t in tries if t["source"] == "current"} == {"success"}
    # The workers rode out the outage (they reconnect) instead of exiting.
    assert all(deploy.services[name].alive for name in WORKERS), deploy.logs()
