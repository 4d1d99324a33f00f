"""``[operators] default_deferrable`` makes the instance lifecycle operators defer by default.

Airflow's option, set for a deployment (here ``AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE=True``), is read
when the operators' module is imported, as the core operators read it: so the check runs in a fresh Python
process, which creates an instance in the emulator with ``ImageSearchCreateInstanceOperator`` and no
``deferrable`` argument, and sees the task defer to the triggerer instead of waiting in the worker.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from airflow_provider_imagesearch.emulator import Emulator

REPO = Path(__file__).resolve().parents[2]

CHILD = """
try:
    from airflow.sdk.exceptions import TaskDeferred
except ImportError:  # Airflow 3.1: the same class, from airflow.exceptions
    from airflow.exceptions import TaskDeferred  # type: ignore[no-redef]
from airflow_provider_imagesearch.operators.imagesearch import (
    ImageSearchCreateInstanceOperator, ImageSearchDeleteInstanceOperator,
)
create = ImageSearchCreateInstanceOperator(
    task_id="create", instance_name="by-default", tags=["color"], poke_interval=0.1,
    imagesearch_conn_id="deferring",
)
try:
    create.execute({})
except TaskDeferred as deferred:
    print("CREATE=deferred to " + type(deferred.trigger).__name__)
else:
    print("CREATE=waited in the worker")
delete = ImageSearchDeleteInstanceOperator(task_id="delete", instance_name="x", imagesearch_conn_id="deferring")
print("DELETE=" + ("deferrable" if delete.deferrable else "not deferrable"))
"""


def test_default_deferrable_true_makes_the_create_defer(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    imagesearch_conn("aksk", conn_id="deferring")
    env = {
        **os.environ,
        "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "True",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    out = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr[-3000:]
    lines = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    assert lines["CREATE"] == "deferred to ImageSearchInstanceStatusTrigger"
    assert lines["DELETE"] == "deferrable"
    created = [i for i in emulator.control.state()["instances"] if i["name"] == "by-default"]
    assert len(created) == 1, "the instance was created before the task deferred"
