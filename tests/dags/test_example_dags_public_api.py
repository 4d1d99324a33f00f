"""The example DAGs are what users copy: they use only the provider's public names."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

DAGS = sorted((Path(__file__).resolve().parents[2] / "dags").glob("*.py"))


@pytest.mark.parametrize("dag_file", DAGS, ids=lambda p: p.name)
def test_an_example_dag_imports_no_private_name_of_the_provider(dag_file: Path) -> None:
    private = []
    for node in ast.walk(ast.parse(dag_file.read_text(), filename=str(dag_file))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            "airflow_provider_imagesearch"
        ):
            private += [f"{node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
            private += [node.module] if any(p.startswith("_") for p in node.module.split(".")) else []
    assert not private, f"{dag_file.name} imports private names: {private}"


def test_there_are_example_dags() -> None:
    assert len(DAGS) >= 5
