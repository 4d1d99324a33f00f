"""``make test-lowest`` really runs on the declared lower bounds (uv ``--resolution lowest-direct``).

Outside that run (no ``IMAGESEARCH_EXPECT_LOWEST``) it checks only that the bounds are readable. In it,
every direct dependency must be installed at exactly its declared lower bound: a resolver that picked a
newer release (because another package needs it) means the bound is untested and must be raised.
"""

from __future__ import annotations

import os
import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def lower_bounds() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    bounds: dict[str, str] = {}
    for requirement in project["dependencies"]:
        match = re.match(r"^([A-Za-z0-9_.-]+)\s*>=\s*([0-9][0-9.]*)", requirement.replace(" ", ""))
        assert match, f"a dependency without a lower bound: {requirement}"
        bounds[match[1].lower()] = match[2]
    return bounds


def _same(installed: str, bound: str) -> bool:
    pad = lambda v: [int(p) for p in re.findall(r"\d+", v)] + [0] * 4  # noqa: E731
    return pad(installed)[:4] == pad(bound)[:4]


def test_every_dependency_has_a_lower_bound() -> None:
    assert {"apache-airflow", "requests", "httpx", "pandas"} <= set(lower_bounds())


@pytest.mark.skipif(not os.environ.get("IMAGESEARCH_EXPECT_LOWEST"), reason="only in make test-lowest")
def test_installed_versions_are_the_declared_lower_bounds() -> None:
    wrong = {
        name: (bound, version(name))
        for name, bound in lower_bounds().items()
        if not _same(version(name), bound)
    }
    assert not wrong, f"installed differs from the declared lower bound (bound, installed): {wrong}"
