"""The archive DAG on a real CeleryExecutor deployment: two workers, Redis, PostgreSQL, a triggerer.

The tests share one deployment (module fixture) and run in file order; each triggers its own DAG run
over the REST API, as a user's CI would, and reads the outcome back from the metadata DB, the archive
table, the task logs and the emulator's counters.
"""

from __future__ import annotations

import pytest

from tests.distributed.deployment import WORKERS, Deployment
from tests.distributed.scenario import (
    CREATING,
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

    # IAM: the token cache is per process, so at most one token per process that ran a task (each try,
    # and each resume after a deferral, is a new process on a Celery worker) plus the triggerer's.
    processes = len(attempt_logs(deploy, run_id)) + len(trigger_logs(deploy, run_id, "wait_until_normal")) + 1
    stats = deploy.emulator.stats()
    assert 1 <= stats["token_requests"] <= processes, (stats["token_requests"], processes)
    assert len(CREATING) == 5
