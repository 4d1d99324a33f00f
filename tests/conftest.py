"""Test session set-up: an isolated Airflow home, the emulator, and connections in AIRFLOW_CONN_* vars.

Airflow reads its configuration at import time, so the environment is set here, at the top of the
first module pytest imports, before anything imports ``airflow``.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="imagesearch-airflow-home-")


def _remove_airflow_home(creator: int = os.getpid()) -> None:
    """Removed when the session's process exits: each ``make test`` stream and each ``check`` of the mutation
    run left one in the temporary folder. Only by the process that made it (a fork shares it)."""
    if os.getpid() == creator:
        shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)


atexit.register(_remove_airflow_home)
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "dags")
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO")
os.environ["AIRFLOW__CORE__ALLOWED_DESERIALIZATION_CLASSES"] = "airflow.* airflow_provider_imagesearch.*"
sys.path.insert(0, str(REPO))

import pytest  # noqa: E402

from tests.support.connections import set_connection  # noqa: E402

pytest_plugins = ["tests.support.fixtures"]


@pytest.fixture(scope="session")
def airflow_db() -> Iterator[str]:
    """A migrated metadata DB (SQLite in the temporary Airflow home), once per session.

    In the mutation run (tests/mutation/plugin.py sets the template's path), a copy of a template
    migrated once, of this process's own: see tests/support/private_db.py.
    """
    from datetime import datetime

    from airflow.sdk import DAG, task
    from airflow.utils import db

    from tests.support.dagrun import run_dag
    from tests.support.private_db import TEMPLATE_ENV, use_private_db

    private = None
    template = os.environ.get(TEMPLATE_ENV)
    if template:
        private = use_private_db(Path(template))
    else:
        db.resetdb()
    # The first dag.test() of a process starts Airflow's in-process execution API (~4 s). Pay that here,
    # so tests that race a timed status change in the emulator all start from a warm process.
    with DAG("warm_up", schedule=None, start_date=datetime(2026, 1, 1)) as warm_up:
        task(lambda: None, task_id="noop")()
    run_dag(warm_up)
    yield _AIRFLOW_HOME
    if private is not None:
        import shutil

        shutil.rmtree(private.parent, ignore_errors=True)


def pytest_report_header() -> str:
    import airflow

    return f"airflow {airflow.__version__}"


def pytest_sessionstart(session: pytest.Session) -> None:
    # make test-compat sets this: a run that meant to test an older Airflow must not pass on another.
    expected = os.environ.get("IMAGESEARCH_EXPECT_AIRFLOW")
    if expected:
        import airflow

        if airflow.__version__ != expected:
            pytest.exit(f"expected Airflow {expected}, this venv has {airflow.__version__}", returncode=4)


__all__ = ["set_connection"]
