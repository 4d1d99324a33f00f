"""The checks of ``make test-wheel``, run by the wheel's own venv (``python -I``, outside the checkout).

Arguments: the work directory (with ``dags/`` holding the archive example DAG) and the sdist built.
Exit 0 only if every check passes; each prints one line.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import sqlite3
import subprocess
import sys
import tarfile
import time
from pathlib import Path

WORK = Path(sys.argv[1])
SDIST = Path(sys.argv[2])
BIN = Path(sys.executable).parent
INSTANCES = ["shop-main", "shop-new", "archive-forever"]


def check(ok: bool, what: str, detail: str = "") -> None:
    print(f"test-wheel: {'ok  ' if ok else 'FAIL'} {what}", flush=True)
    if not ok:
        print(detail[-4000:], flush=True)
        sys.exit(1)


def airflow(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "airflow"), *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def sdist_contents() -> None:
    with tarfile.open(SDIST) as archive:
        names = [n.split("/", 1)[1] for n in archive.getnames() if "/" in n]
    stray = [n for n in names if n.startswith(("tests/", "benchmarks/", "scripts/", "dags/", "docs/"))]
    missing = [n for n in ("README.md", "CHANGELOG.md", "LICENSE", "pyproject.toml") if n not in names]
    check(
        not stray and not missing,
        f"sdist holds the package and its metadata only ({len(names)} entries)",
        f"stray: {stray}, missing: {missing}",
    )


def installed_package() -> None:
    import airflow_provider_imagesearch

    where = Path(airflow_provider_imagesearch.__file__).resolve()
    check(
        str(where).startswith(sys.prefix), f"the package imported is the wheel's ({where.parent})", str(where)
    )
    modules = [airflow_provider_imagesearch.__name__]
    failed: list[str] = []
    for info in pkgutil.walk_packages(airflow_provider_imagesearch.__path__, "airflow_provider_imagesearch."):
        modules.append(info.name)
        try:
            importlib.import_module(info.name)
        except Exception as error:  # every module must import with only the wheel's dependencies
            failed.append(f"{info.name}: {type(error).__name__}: {error}")
    check(not failed, f"every module imports ({len(modules)} modules)", "\n".join(failed))


def provider_discovered(env: dict[str, str]) -> None:
    result = airflow(env, "providers", "get", "airflow-provider-imagesearch")
    text = result.stdout + result.stderr
    noisy = [
        line
        for line in text.lower().splitlines()
        if "imagesearch" in line and ("warn" in line or "error" in line)
    ]
    check(
        result.returncode == 0 and "airflow-provider-imagesearch" in result.stdout and not noisy,
        "airflow providers get airflow-provider-imagesearch",
        text,
    )
    hooks = airflow(env, "providers", "hooks")
    check(
        "airflow_provider_imagesearch.hooks.imagesearch.ImageSearchHook" in hooks.stdout,
        "airflow providers hooks lists ImageSearchHook",
        hooks.stdout + hooks.stderr,
    )


def archive_dag(env: dict[str, str]) -> None:
    from airflow_provider_imagesearch.emulator import (
        DEFAULT_DOMAIN,
        DEFAULT_PASSWORD,
        DEFAULT_PROJECT_ID,
        DEFAULT_REGION,
        DEFAULT_USER,
        EmulatorProcess,
    )

    migrated = airflow(env, "db", "migrate")
    check(migrated.returncode == 0, "airflow db migrate", migrated.stdout + migrated.stderr)
    database = WORK / "archive.db"
    now_ms = int(time.time() * 1000)
    seed = {
        "instances": [
            {
                "project_id": DEFAULT_PROJECT_ID,
                "name": name,
                "status": "NORMAL",
                "tags": ["color"],
                "register_date_ms": now_ms,
                "expired_date_ms": -1,
            }
            for name in INSTANCES
        ]
    }
    with EmulatorProcess(seed=seed) as emulator:
        connection = {
            "conn_type": "imagesearch",
            "host": emulator.url,
            "login": DEFAULT_USER,
            "password": DEFAULT_PASSWORD,
            "extra": {
                "region": DEFAULT_REGION,
                "project_id": DEFAULT_PROJECT_ID,
                "domain_name": DEFAULT_DOMAIN,
                "iam_endpoint": emulator.url,
                "mms_endpoint": emulator.url,
            },
        }
        run_env = {
            **env,
            "AIRFLOW_CONN_IMAGESEARCH_DEFAULT": json.dumps(connection),
            "AIRFLOW_CONN_IMAGESEARCH_ARCHIVE_DB": json.dumps({"conn_type": "sqlite", "host": str(database)}),
        }
        result = airflow(run_env, "dags", "test", "imagesearch_instance_archive", timeout=600)
    (WORK / "dags-test.log").write_text(result.stdout + result.stderr)
    check(
        result.returncode == 0,
        "airflow dags test imagesearch_instance_archive",
        result.stdout + result.stderr,
    )
    with sqlite3.connect(database) as db:
        rows = sorted(r[0] for r in db.execute("SELECT instance_name FROM imagesearch_instance_archive"))
    check(rows == sorted(INSTANCES), f"the archive table holds the run's {len(rows)} rows", str(rows))


def main() -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTHONPATH"))},
        "AIRFLOW_HOME": str(WORK / "airflow-home"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(WORK / "dags"),
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    os.environ.update({"AIRFLOW_HOME": env["AIRFLOW_HOME"], "AIRFLOW__CORE__LOAD_EXAMPLES": "False"})
    sdist_contents()
    installed_package()
    provider_discovered(env)
    archive_dag(env)
    print("test-wheel: OK")


if __name__ == "__main__":
    main()
