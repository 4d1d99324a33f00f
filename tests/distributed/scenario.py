"""What the distributed tests do to the deployment: trigger the archive DAG over REST, watch it, read back."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID
from tests.distributed.deployment import ARCHIVE_CONN_ID, WORKERS, Deployment

DAG_ID = "imagesearch_instance_archive"
TABLE = "imagesearch_instance_archive"
INSTANCES = [f"dist-{i:02d}" for i in range(20)]
# These five are in CREATION when a run starts and turn NORMAL ~20 s later: their sensors defer.
CREATING = INSTANCES[:5]
CREATION_SECONDS = 20.0
TERMINAL = {"success", "failed"}


def emulator_seed(names: list[str]) -> dict[str, Any]:
    return {
        "instances": [
            {"project_id": DEFAULT_PROJECT_ID, "name": name, "tags": ["color"], "status": "NORMAL"}
            for name in names
        ]
    }


def set_creating(deploy: Deployment, names: list[str] = CREATING) -> None:
    """Put ``names`` back into CREATION, turning NORMAL ``CREATION_SECONDS`` from now."""
    for name in names:
        deploy.emulator.upsert_instance(
            name, status="CREATION", tags=["color"], transition_after_s=CREATION_SECONDS
        )


def _poll(
    read: Callable[[], Any], done: Callable[[Any], bool], timeout: float, what: str, deploy: Deployment
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = read()
        except Exception as error:  # not up yet
            value = error
        if not isinstance(value, Exception) and done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {value!r}\n{deploy.logs()}")
        time.sleep(1.0)


def wait_ready(deploy: Deployment, timeout: float = 240.0) -> None:
    """The API answers, the DAG is parsed without import errors, and both workers are consuming."""
    _poll(lambda: deploy.rest("GET", "/monitor/health"), lambda h: bool(h), timeout, "the API server", deploy)
    _poll(
        lambda: deploy.rest("GET", f"/dags/{DAG_ID}", expect=(200, 404)),
        lambda d: isinstance(d, dict) and d.get("dag_id") == DAG_ID,
        timeout,
        "the archive DAG to be parsed",
        deploy,
    )
    errors = deploy.rest("GET", "/importErrors")
    assert errors["total_entries"] == 0, errors
    for name in WORKERS:
        _poll(
            lambda n=name: deploy.services[n].log.read_text(errors="replace"),  # type: ignore[misc]
            lambda text: " ready." in text,
            timeout,
            f"celery worker {name}",
            deploy,
        )


def trigger(deploy: Deployment, run_id: str, names: list[str] = INSTANCES) -> None:
    deploy.rest("PATCH", f"/dags/{DAG_ID}", {"is_paused": False})
    # Batches of 2: ten sensor and ten read tasks to spread over the two workers (the default of 25
    # would put all 20 instances in one task of each).
    conf = {"instance_names": names, "batch_size": 2, "db_conn_id": ARCHIVE_CONN_ID, "table": TABLE}
    body = {"dag_run_id": run_id, "logical_date": None, "conf": conf}
    deploy.rest("POST", f"/dags/{DAG_ID}/dagRuns", body)


@dataclass
class Observed:
    """What polling the REST API saw while a run went on."""

    states: dict[tuple[str, int], set[str]] = field(default_factory=dict)

    def saw(self, task_id: str, state: str) -> list[int]:
        return sorted(m for (t, m), states in self.states.items() if t == task_id and state in states)


def task_instances_rest(deploy: Deployment, run_id: str) -> list[dict[str, Any]]:
    return deploy.rest("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances?limit=500")["task_instances"]


def wait_for_run(
    deploy: Deployment,
    run_id: str,
    timeout: float,
    observed: Observed | None = None,
    during: Callable[[list[dict[str, Any]]], None] | None = None,
) -> str:
    """Poll the run until it ends; record every task state seen; return the run's final state."""
    deadline = time.monotonic() + timeout
    while True:
        state = deploy.rest("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}")["state"]
        tis = task_instances_rest(deploy, run_id)
        if observed is not None:
            for ti in tis:
                key = (ti["task_id"], ti["map_index"])
                observed.states.setdefault(key, set()).add(ti["state"] or "none")
        if during is not None:
            during(tis)
        if state in TERMINAL:
            return str(state)
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} still {state} after {timeout} s:\n{tis}\n{deploy.logs()}")
        time.sleep(1.0)


def all_tries(deploy: Deployment, run_id: str) -> list[dict[str, Any]]:
    """Every try of every task instance of the run (the current ones and the task instance history)."""
    query = """
        SELECT task_id, map_index, try_number, state, hostname, 'current' AS source
        FROM task_instance WHERE dag_id = :dag AND run_id = :run
        UNION ALL
        SELECT task_id, map_index, try_number, state, hostname, 'history' AS source
        FROM task_instance_history WHERE dag_id = :dag AND run_id = :run
    """
    return deploy.sql("airflow", query, dag=DAG_ID, run=run_id)


def archived(deploy: Deployment, run_id: str) -> dict[str, int]:
    """``instance_name -> number of rows`` archived for ``run_id``."""
    rows = deploy.sql(
        "archive",
        f"SELECT instance_name, count(*) AS n FROM {TABLE} WHERE run_id = :run GROUP BY instance_name",
        run=run_id,
    )
    return {row["instance_name"]: int(row["n"]) for row in rows}


def run_logs(deploy: Deployment, run_id: str) -> Path:
    return Path(deploy.env["AIRFLOW_HOME"]) / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}"


def trigger_logs(deploy: Deployment, run_id: str, task_id: str) -> list[Path]:
    return sorted((run_logs(deploy, run_id) / f"task_id={task_id}").glob("**/attempt=*.log.trigger.*.log"))


def attempt_logs(deploy: Deployment, run_id: str, task_id: str = "*") -> list[Path]:
    """Task attempt logs (``attempt=N.log``; the triggers' ``attempt=N.log.trigger.M.log`` are not)."""
    found = run_logs(deploy, run_id).glob(f"task_id={task_id}/**/attempt=*.log")
    return sorted(p for p in found if re.fullmatch(r"attempt=\d+\.log", p.name))
