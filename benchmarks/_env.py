"""Process set-up shared by the benchmark runner and its child processes.

Airflow reads its configuration when ``airflow`` is first imported, so :func:`prepare_environment` must
run before anything imports it. Inside a process that has already imported Airflow (a pytest session
whose conftest configured it), the environment is left as it is.
"""

from __future__ import annotations

import atexit
import os
import platform
import resource
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DAGS_FOLDER = REPO / "dags"
EXAMPLE_DAG = DAGS_FOLDER / "imagesearch_instance_archive.py"

_prepared = False


def prepare_environment(*, own_home: bool = False) -> None:
    """Configure Airflow for the benchmarks before anything imports it; idempotent.

    :param own_home: always use a throwaway ``AIRFLOW_HOME`` (the CLI). Otherwise an ``AIRFLOW_HOME``
        that is already set (a pytest conftest's) is kept, and only missing settings are filled in.
    """
    global _prepared
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    if _prepared:
        return
    _prepared = True
    if "airflow" in sys.modules:
        return  # too late to configure it, and whoever imported it has configured it already
    if own_home or not os.environ.get("AIRFLOW_HOME"):
        home = tempfile.mkdtemp(prefix="imagesearch-bench-airflow-home-")
        atexit.register(shutil.rmtree, home, True)
        os.environ["AIRFLOW_HOME"] = home
    settings = {
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    }
    for key, value in settings.items():
        if own_home and key != "AIRFLOW__LOGGING__LOGGING_LEVEL":
            os.environ[key] = value
        else:
            os.environ.setdefault(key, value)


def raise_fd_limit(wanted: int = 8192) -> int:
    """Lift the soft open-file limit (1,000 concurrent clients need 1,000+ sockets); returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(distribution: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "-"


def machine_info() -> dict[str, Any]:
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {
            name: _version(name)
            for name in (
                "apache-airflow",
                "apache-airflow-providers-http",
                "requests",
                "httpx",
                "pandas",
                "SQLAlchemy",
                "psycopg2-binary",
                "psycopg",
            )
        },
    }
