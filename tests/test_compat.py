"""Names whose home differs between supported Airflow releases come only from ``version_compat``."""

from __future__ import annotations

import ast
import warnings
from pathlib import Path

import pytest

from airflow_provider_imagesearch import version_compat

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "airflow_provider_imagesearch"
COMPAT_MODULE = PACKAGE / "version_compat.py"

# Airflow names that sit at the same place on every supported release (3.1 to the newest), so any
# module may import them directly. Anything else from airflow goes through version_compat; a new
# import must be checked on the oldest release (`make test-compat`) before it joins this list.
STABLE = {
    "airflow.sdk": {
        "Asset",
        "AssetWatcher",
        "BaseHook",
        "BaseOperator",
        "BaseOperatorLink",
        "BaseSensorOperator",
        "Connection",
        "Context",
        "DAG",
        "ObjectStoragePath",
        "Param",
        "PokeReturnValue",
        "dag",
        "get_current_context",
        "task",
    },
    "airflow.sdk.io.fs": {"has_fs"},
    "airflow.sdk.log": {"mask_secret"},
    "airflow.triggers.base": {"BaseEventTrigger", "BaseTrigger", "TriggerEvent"},
    "airflow.utils": {"db"},
    # The ImageSearch page runs in the api-server (plugins/app.py, plugins/queries.py): server-side names,
    # at the same place on 3.1.8 and 3.3 (tests/plugin runs on both).
    "airflow.api_fastapi.app": {"get_auth_manager"},
    "airflow.api_fastapi.auth.managers.models.resource_details": {"DagAccessEntity"},
    "airflow.api_fastapi.core_api.security": {"get_user"},
    "airflow.models.dagrun": {"DagRun"},
    "airflow.utils.session": {"create_session"},
}


def _shipped_sources() -> list[Path]:
    files = [*PACKAGE.rglob("*.py"), *(REPO / "dags").rglob("*.py")]
    return sorted(f for f in files if f != COMPAT_MODULE)


def _airflow_imports(path: Path) -> list[tuple[str, str, int]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            module = node.module
            if module == "airflow" or module.startswith("airflow."):
                found += [(module, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [
                (alias.name, "", node.lineno)
                for alias in node.names
                if alias.name == "airflow" or alias.name.startswith("airflow.")
            ]
    return found


def test_version_dependent_airflow_names_come_only_from_version_compat() -> None:
    offenders = []
    for path in _shipped_sources():
        for module, name, line in _airflow_imports(path):
            if module.startswith("airflow.providers."):
                continue  # other providers carry their own version ranges
            if name not in STABLE.get(module, set()):
                offenders.append(f"{path.relative_to(REPO)}:{line}: from {module} import {name or '*'}")
    assert not offenders, "import these through airflow_provider_imagesearch.version_compat:\n" + "\n".join(
        offenders
    )


def test_the_scan_sees_the_imports_it_must_judge() -> None:
    # Guard against a scan that silently finds nothing (a wrong folder, a parser change).
    base = PACKAGE / "mixins.py"
    assert ("airflow.sdk", "BaseOperator") in {(m, n) for m, n, _ in _airflow_imports(base)}
    sources = {p.relative_to(REPO).as_posix() for p in _shipped_sources()}
    assert {
        "airflow_provider_imagesearch/sensors/imagesearch.py",
        "dags/imagesearch_instance_archive.py",
    } <= (sources)


@pytest.mark.parametrize("name", ["AirflowFailException", "AirflowSensorTimeout", "AirflowSkipException"])
def test_compat_exceptions_are_the_classes_the_task_runner_catches(name: str) -> None:
    # On every supported release the task runner catches the classes of airflow.exceptions (3.2+
    # re-export the SDK's classes there), so the sensor's fail/skip/timeout reach the task state.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import airflow.exceptions

        expected = getattr(airflow.exceptions, name)
    assert getattr(version_compat, name) is expected


def test_compat_conf_reads_airflow_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    # The sensor's `deferrable` default comes from this option: it must follow the deployment's setting.
    for value, expected in (("True", True), ("False", False)):
        monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", value)
        assert version_compat.conf.getboolean("operators", "default_deferrable", fallback=None) is expected
