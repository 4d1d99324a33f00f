"""Running a DAG of your own with ``dag.test()`` in a test, with no Airflow set-up of your own.

* :func:`sandbox_airflow_home`: when nothing chose an Airflow home (no ``AIRFLOW_HOME``, Airflow not imported
  yet), a temporary one with a SQLite metadata DB, so tests never touch ``~/airflow``. The pytest plugin
  calls it at start-up; set ``IMAGESEARCH_TESTING_AIRFLOW_HOME=keep`` to keep Airflow's default instead.
* :func:`run_dag`: migrate that sandbox's DB on first use (once per process), register the DAG (Airflow
  3.1+ only runs ``dag.test()`` for a DAG it has serialized) and run ``dag.test()``; returns the DAG run.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from typing import Any

#: Set to ``keep`` to leave ``AIRFLOW_HOME`` unset (Airflow's default home) instead of the sandbox.
OPT_OUT_VARIABLE = "IMAGESEARCH_TESTING_AIRFLOW_HOME"
_SANDBOX_MARK = "IMAGESEARCH_TESTING_SANDBOX"
#: Set by pytest-xdist in each worker (``gw0``, ``gw1``, ...).
XDIST_WORKER_VARIABLE = "PYTEST_XDIST_WORKER"
_db_ready = threading.Lock()
_migrated = False
_not_sandboxed: str | None = None


def sandbox_airflow_home() -> str | None:
    """A temporary ``AIRFLOW_HOME`` (SQLite DB, no example DAGs) if nothing chose one; returns it, or None.

    A pytest-xdist worker (``PYTEST_XDIST_WORKER``) inherits its controller's environment, sandbox
    included: it gets a sandbox of its own instead, so that no two workers share (and reset) one DB.
    When Airflow was imported before this runs and nothing chose a home, Airflow already uses its default
    (``~/airflow``): no sandbox is made, and :func:`run_dag` refuses to run (:func:`not_sandboxed`).
    """
    global _not_sandboxed
    inherited = os.environ.get(_SANDBOX_MARK)
    worker = os.environ.get(XDIST_WORKER_VARIABLE)
    if inherited and os.environ.get("AIRFLOW_HOME") == inherited:
        if not worker or os.path.basename(inherited).startswith(_sandbox_prefix(worker)):
            return None  # this process's own sandbox (or, outside xdist, one it was started in)
        if "airflow" in sys.modules:
            _not_sandboxed = (
                f"pytest-xdist worker {worker} imported Airflow before the imagesearch testing kit's "
                f"plugin ran, so it uses the controller's sandbox {inherited}, which every worker would share"
            )
            return None
        return _make_sandbox(worker, replacing=inherited)
    if os.environ.get("AIRFLOW_HOME") or os.environ.get(OPT_OUT_VARIABLE) == "keep":
        return None
    if "airflow" in sys.modules:
        _not_sandboxed = (
            "Airflow was imported before the imagesearch testing kit's plugin ran (for example by an import "
            "at the top of conftest.py), with no AIRFLOW_HOME set: Airflow already uses its default home "
            "(~/airflow), which the kit never touches"
        )
        return None
    return _make_sandbox(worker)


def _sandbox_prefix(worker: str | None) -> str:
    return f"imagesearch-testing-airflow-home-{worker}-" if worker else "imagesearch-testing-airflow-home-"


def _make_sandbox(worker: str | None, replacing: str | None = None) -> str:
    home = tempfile.mkdtemp(prefix=_sandbox_prefix(worker))
    os.environ["AIRFLOW_HOME"] = home
    os.environ[_SANDBOX_MARK] = home
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    dags_folder = os.environ.get("AIRFLOW__CORE__DAGS_FOLDER")
    if dags_folder is None or (replacing is not None and dags_folder == os.path.join(replacing, "dags")):
        os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = os.path.join(home, "dags")
    return home


def not_sandboxed() -> str | None:
    """Why :func:`sandbox_airflow_home` could not give this process a sandbox it needed, or None."""
    return _not_sandboxed


def in_sandbox() -> bool:
    """Whether this process runs in the Airflow home :func:`sandbox_airflow_home` made."""
    home = os.environ.get(_SANDBOX_MARK)
    return bool(home) and os.environ.get("AIRFLOW_HOME") == home


def ensure_metadata_db() -> None:
    """Create the sandbox's metadata DB (once per process). Never touches an Airflow home you chose."""
    global _migrated
    if _not_sandboxed is not None:
        raise RuntimeError(
            f"imagesearch testing kit: no sandbox, so run_dag refuses to run: {_not_sandboxed}. To fix it: "
            "import Airflow in conftest.py only inside the fixtures or functions that need it (not at its top), or set AIRFLOW_HOME to an Airflow home of yours "
            f"(migrated with 'airflow db migrate'), or set {OPT_OUT_VARIABLE}=keep to run the DAGs in "
            "Airflow's default home deliberately."
        )
    if not in_sandbox():
        return
    with _db_ready:
        if _migrated:
            return
        from airflow.utils import db

        db.resetdb()
        _migrated = True


def sync_dag(dag: Any) -> Any:
    """Register an in-memory DAG so ``dag.test()`` can create a run for it (apache/airflow#56657)."""
    from airflow_provider_imagesearch.version_compat import sync_dag_to_db

    return sync_dag_to_db(dag)


def run_dag(dag: Any, **kwargs: Any) -> Any:
    """``dag.test(**kwargs)`` for a DAG of yours (imported from its file, or built in the test).

    Creates the sandbox's metadata DB first if needed and registers the DAG; returns the finished DAG run
    (``.state``, ``.get_task_instances()``).
    """
    ensure_metadata_db()
    return sync_dag(dag).test(**kwargs)
