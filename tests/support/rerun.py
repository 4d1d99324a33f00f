"""Clearing a finished DAG run and running it again, as the UI's "Clear" does, through ``dag.test()``.

``dag.test()`` always creates a new run; a clear re-runs the *same* run (same ``run_id``), the task's
``try_number`` going up by one and the run's ``start_date`` set anew when it starts again. This drives
``dag.test()``'s own loop on the existing run: its ``clear_dags`` step clears the run's task instances
(they are the only ones at that logical date), and the run it gets back is the cleared one, set running
again with a fresh ``start_date``, as the scheduler sets a cleared run that starts again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from unittest import mock

from airflow.sdk import DAG


def clear_and_rerun(dag: DAG, dag_run: Any) -> Any:
    """Clear every task instance of the finished ``dag_run`` of ``dag`` and run them again; the run."""
    from airflow.models import dagrun as dagrun_module
    from airflow.utils.state import DagRunState
    from sqlalchemy import select

    run_id = dag_run.run_id
    dag_id = dag.dag_id

    def the_cleared_run(*, dag: Any, session: Any, **_: Any) -> Any:
        run = session.scalar(
            select(dagrun_module.DagRun).where(
                dagrun_module.DagRun.dag_id == dag_id, dagrun_module.DagRun.run_id == run_id
            )
        )
        run.state = DagRunState.RUNNING
        run.start_date = datetime.now(UTC)
        run.end_date = None
        session.commit()
        run.dag = dag
        return run

    with mock.patch.object(dagrun_module, "get_or_create_dagrun", the_cleared_run):
        return dag.test(logical_date=dag_run.logical_date)
