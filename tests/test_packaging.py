"""The package as Airflow and users see it: provider discovery, DAG-parse imports, lint and types."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_imagesearch.get_provider_info import get_provider_info

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _airflow(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO"}
    return subprocess.run(
        [str(BIN / "airflow"), *args], capture_output=True, text=True, env=env, timeout=180, check=False
    )


def test_provider_info_names_every_module_that_exists() -> None:
    import importlib

    info = get_provider_info()
    assert info["package-name"] == "airflow-provider-imagesearch"
    modules = [
        m
        for key in ("hooks", "operators", "sensors", "triggers")
        for e in info[key]
        for m in e["python-modules"]
    ]
    for module in modules:
        importlib.import_module(module)
    (connection,) = info["connection-types"]
    hook_path = connection["hook-class-name"]
    module_name, _, class_name = hook_path.rpartition(".")
    hook_class = getattr(importlib.import_module(module_name), class_name)
    assert hook_class.conn_type == connection["connection-type"] == "imagesearch"
    assert connection["conn-fields"]["security_token"]["schema"]["format"] == "password"


def test_connection_form_has_the_extras_users_set_most_and_they_take_effect() -> None:
    """verify, the timeouts and the retry budget are form fields; what the form saves is what the hook uses."""
    from airflow_provider_imagesearch.retry import RetryPolicy
    from airflow_provider_imagesearch.settings import (
        DEFAULT_CONNECT_TIMEOUT,
        DEFAULT_READ_TIMEOUT,
        settings_from_connection,
    )

    (connection,) = get_provider_info()["connection-types"]
    fields = connection["conn-fields"]
    defaults = {
        "connect_timeout": DEFAULT_CONNECT_TIMEOUT,
        "read_timeout": DEFAULT_READ_TIMEOUT,
        "max_attempts": RetryPolicy.max_attempts,
        "retry_max_elapsed": RetryPolicy.max_elapsed,
    }
    for key, default in defaults.items():
        assert fields[key]["schema"]["default"] == default, key
    assert "verify" in fields
    # As the UI stores them: strings for every field.
    saved = {
        "region": "cn-north-4",
        "project_id": "0b5e4c3a2f1d4e6a8c7b9d0e1f2a3b4c",
        "token": "t",
        "connect_timeout": "3",
        "read_timeout": "7",
        "max_attempts": "2",
        "retry_max_elapsed": "9",
        "verify": "false",
        "allow_insecure": "true",
    }
    settings = settings_from_connection(host=None, port=None, login=None, password=None, extras=saved)
    assert settings.timeout == (3.0, 7.0)
    assert (settings.retry.max_attempts, settings.retry.max_elapsed) == (2, 9.0)
    assert settings.verify is False
    # An empty form field means the default.
    empty = {**saved, "verify": "", "retry_max_elapsed": "", "allow_insecure": ""}
    settings = settings_from_connection(host=None, port=None, login=None, password=None, extras=empty)
    assert settings.verify is True
    assert settings.retry.max_elapsed == RetryPolicy.max_elapsed


def test_airflow_discovers_the_provider_without_warnings() -> None:
    result = _airflow("providers", "get", "airflow-provider-imagesearch")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "airflow-provider-imagesearch" in result.stdout
    hooks = _airflow("providers", "hooks")
    assert "airflow_provider_imagesearch.hooks.imagesearch.ImageSearchHook" in hooks.stdout
    for output in (result, hooks):
        text = (output.stdout + output.stderr).lower()
        assert "imagesearch" not in " ".join(
            line for line in text.splitlines() if "warn" in line or "error" in line
        )


@pytest.mark.parametrize(
    "module",
    [
        "airflow_provider_imagesearch.operators.imagesearch",
        "airflow_provider_imagesearch.operators.imagesearch_v2",
        "airflow_provider_imagesearch.operators.import_images",
        "airflow_provider_imagesearch.sensors.imagesearch",
    ],
)
def test_operator_modules_import_no_pandas_or_requests(module: str) -> None:
    # Nor the provider's own run-time machinery: a DAG file pays for every module its operators import.
    run_time = ("hooks.imagesearch", "hooks.imagesearch_v2", "searches", "imports.engine", "imports.manifest")
    watched = (
        "pandas",
        "requests",
        "numpy",
        "sqlalchemy.orm",
        *(f"airflow_provider_imagesearch.{m}" for m in run_time),
    )
    code = (
        "import sys, importlib, airflow.sdk; before = set(sys.modules); importlib.import_module(sys.argv[1]);"
        f"print('ADDED=' + ','.join(m for m in {watched!r} "
        "if m in sys.modules and m not in before))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, module], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "ADDED=\n" in out.stdout + "\n", out.stdout[-500:]


@pytest.mark.parametrize("dag_file", sorted((REPO / "dags").glob("*.py")), ids=lambda p: p.name)
def test_dag_files_import_no_pandas_or_requests(dag_file: Path) -> None:
    # Judged by what the file adds on top of `airflow.sdk` (which itself imports httpx).
    code = (
        "import sys, runpy, airflow.sdk; from airflow.sdk import dag, task, Asset, Param;"
        "before = set(sys.modules); runpy.run_path(sys.argv[1]);"
        "print('ADDED=' + ','.join(m for m in ('pandas', 'requests', 'urllib3', 'numpy', 'psycopg2',"
        " 'sqlalchemy.orm') if m in sys.modules and m not in before))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", code, str(dag_file)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "ADDED=\n" in out.stdout + "\n", out.stdout[-2000:]


@pytest.mark.parametrize(
    "command",
    [["ruff", "check", "."], ["ruff", "format", "--check", "."], ["mypy"]],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_code_quality(command: list[str]) -> None:
    result = subprocess.run(
        [str(BIN / command[0]), *command[1:]],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]


def _pyproject() -> dict[str, Any]:
    import tomllib

    return tomllib.loads((REPO / "pyproject.toml").read_text())


def test_published_extras_are_features_not_tooling() -> None:
    """Test, lint, docs and bench tools are dependency groups (never published), not extras."""
    data = _pyproject()
    extras = data["project"]["optional-dependencies"]
    assert not {"test", "tests", "bench", "dev", "docs", "lint"} & set(extras), sorted(extras)
    for name, requirements in extras.items():
        assert not any("==" in r for r in requirements), f"extra {name} pins an exact version: {requirements}"
    groups = data["dependency-groups"]
    assert {"test", "bench", "docs", "lint", "dev"} <= set(groups)


def test_python_classifiers_are_the_versions_tests_run_on() -> None:
    """make test, test-compat, test-wheel and test-lowest all run on this interpreter's Python version."""
    classifiers = _pyproject()["project"]["classifiers"]
    versions = {
        c.rsplit(" :: ", 1)[1]
        for c in classifiers
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    }
    assert versions == {f"{sys.version_info.major}.{sys.version_info.minor}"}, versions


def test_changelog_has_an_entry_for_this_version() -> None:
    version = _pyproject()["project"]["version"]
    changelog = (REPO / "CHANGELOG.md").read_text()
    assert re.search(rf"^## \[{re.escape(version)}\]", changelog, re.M), (
        f"CHANGELOG.md has no entry for {version}"
    )


def test_sdist_leaves_out_tests_and_tooling() -> None:
    """MANIFEST.in prunes what setuptools would otherwise add (tests/test_*.py); make test-wheel checks
    the built sdist itself."""
    manifest = (REPO / "MANIFEST.in").read_text().split()
    for folder in ("tests", "benchmarks", "scripts", "docs"):
        assert f"{folder}" in manifest[manifest.index("prune") :], folder
    for document in ("README.md", "CHANGELOG.md", "LICENSE"):
        assert document in manifest, document
