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


# The extras make test-lowest installs with the package (its `-e ".[sqlite,parquet]"`).
LOWEST_EXTRAS = ("sqlite", "parquet")


def lower_bounds(extras: tuple[str, ...] = ()) -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    bounds: dict[str, str] = {}
    requirements = list(project["dependencies"])
    for extra in extras:
        requirements += project["optional-dependencies"][extra]
    for requirement in requirements:
        match = re.match(r"^([A-Za-z0-9_.-]+)\s*>=\s*([0-9][0-9.]*)", requirement.replace(" ", ""))
        assert match, f"a dependency without a lower bound: {requirement}"
        bounds[match[1].lower()] = match[2]
    return bounds


def _same(installed: str, bound: str) -> bool:
    pad = lambda v: [int(p) for p in re.findall(r"\d+", v)] + [0] * 4  # noqa: E731
    return pad(installed)[:4] == pad(bound)[:4]


def test_every_dependency_has_a_lower_bound() -> None:
    assert {"apache-airflow", "requests", "httpx", "pandas", "tenacity"} <= set(lower_bounds())
    assert {"apache-airflow-providers-sqlite", "pyarrow"} <= set(lower_bounds(LOWEST_EXTRAS))


def test_makefile_installs_the_extras_it_checks() -> None:
    assert '-e ".[sqlite,parquet]"' in (REPO / "Makefile").read_text()


def test_a_parquet_manifest_is_read(tmp_path: Path) -> None:
    """The [parquet] extra's floor: pyarrow (at its lower bound in make test-lowest, beside whatever numpy
    the resolver picks) writes and the provider's manifest reader reads a Parquet manifest, map column
    included."""
    if not os.environ.get("IMAGESEARCH_EXPECT_LOWEST"):
        pytest.importorskip("pyarrow")
    import pandas as pd

    from airflow_provider_imagesearch.imports.manifest import read_chunks

    paths = [f"https://b.obs.cn-north-4.myhuaweicloud.com/{i}.jpg" for i in range(3)]
    frame = pd.DataFrame({"path": paths, "tag.color": ["red", "blue", "green"]})
    frame.to_parquet(tmp_path / "manifest.parquet", index=False)

    (chunk,) = read_chunks(str(tmp_path / "manifest.parquet"))
    assert [(row["path"], row["tag.color"]) for row in chunk] == list(
        zip(paths, ["red", "blue", "green"], strict=True)
    )


@pytest.mark.skipif(not os.environ.get("IMAGESEARCH_EXPECT_LOWEST"), reason="only in make test-lowest")
def test_installed_versions_are_the_declared_lower_bounds() -> None:
    wrong = {
        name: (bound, version(name))
        for name, bound in lower_bounds(LOWEST_EXTRAS).items()
        if not _same(version(name), bound)
    }
    assert not wrong, f"installed differs from the declared lower bound (bound, installed): {wrong}"
