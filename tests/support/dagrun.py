"""Running in-memory DAGs through ``dag.test()`` and reading their outcomes."""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG

from airflow_provider_imagesearch.version_compat import sync_dag_to_db


def sync_dag(dag: DAG) -> DAG:
    """Register an in-memory DAG so ``dag.test()`` can create a run for it (apache/airflow#56657)."""
    registered: DAG = sync_dag_to_db(dag)
    return registered


def run_dag(dag: DAG, **kwargs: Any) -> Any:
    return sync_dag(dag).test(**kwargs)


def task_instances(dag_run: Any) -> dict[tuple[str, int], Any]:
    """``{(task_id, map_index): task instance}`` of a finished run."""
    return {(ti.task_id, ti.map_index): ti for ti in dag_run.get_task_instances()}


def states(dag_run: Any) -> dict[tuple[str, int], tuple[str, int]]:
    """``{(task_id, map_index): (state, try_number)}``."""
    return {key: (str(ti.state), ti.try_number) for key, ti in task_instances(dag_run).items()}


def xcom(dag_run: Any, task_id: str, map_index: int = -1, key: str = "return_value") -> Any:
    from airflow import settings
    from airflow.models.xcom import XComModel

    query = XComModel.get_many(
        run_id=dag_run.run_id, dag_ids=dag_run.dag_id, task_ids=task_id, map_indexes=map_index, key=key
    )
    with settings.Session() as session:
        rows = session.scalars(query).all()
    if not rows:
        return None
    return XComModel.deserialize_value(rows[0])
