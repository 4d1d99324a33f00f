"""A metadata DB of this process's own, copied from a migrated template: for the mutation run.

mutmut runs two mutants at once, each in a process forked from one server whose Airflow home (and so
SQLite file) they inherit. ``db.resetdb()`` on that shared file in one would drop the tables under a
``dag.test()`` in the other, and a migration per mutant costs seconds. Instead the first process migrates a
template once (under a file lock) and every process then works on its own copy of it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from pathlib import Path

#: Set (by tests/mutation/plugin.py) to the template's path: the airflow_db fixture then calls use_private_db.
TEMPLATE_ENV = "IMAGESEARCH_AIRFLOW_DB_TEMPLATE"


def _point_airflow_at(path: Path) -> None:
    from airflow import settings

    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{path}"
    os.environ.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC", None)
    settings.dispose_orm(do_log=False)
    settings.configure_vars()
    settings.configure_orm()  # the async engine too


def _ensure_template(template: Path) -> None:
    from airflow import __version__ as airflow_version
    from airflow.utils import db

    stamp = template.with_suffix(".version")
    with open(template.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if template.exists() and stamp.exists() and stamp.read_text() == airflow_version:
            return
        building = template.with_suffix(".building")
        building.unlink(missing_ok=True)
        _point_airflow_at(building)
        db.resetdb()
        from airflow import settings

        settings.dispose_orm(do_log=False)
        building.replace(template)
        stamp.write_text(airflow_version)


def use_private_db(template: Path) -> Path:
    """Point this process's Airflow at a fresh copy of ``template`` (made first if missing)."""
    _ensure_template(template)
    # Beside the template (mutants/.mutation-airflow-db/ in a run), not in /tmp: a worker killed on its
    # timeout never tears down, and `rm -rf mutants` then removes its copy too.
    private = Path(tempfile.mkdtemp(prefix=f"worker-{os.getpid()}-", dir=template.parent)) / "airflow.db"
    shutil.copyfile(template, private)
    _point_airflow_at(private)
    return private
