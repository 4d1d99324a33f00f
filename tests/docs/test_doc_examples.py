"""The docs pages' code: every example runs, every include comes from a tested file, the site builds.

* Every ``.. code-block::`` of ``docs/**/*.rst`` is run or checked exactly as README blocks are
  (:func:`tests.test_readme.run_block`: python DAGs run with ``dag.test()`` against the emulator, shell
  commands checked, JSON validated, console output compared by a ``checked-by`` test of this module).
* Every ``.. literalinclude::`` comes from an example DAG that a test in ``tests/dags`` runs.
* ``make docs`` (warnings and broken cross-references are errors) builds, and its inventory holds every
  public class of the package (the API reference is generated from the docstrings).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import struct
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from tests.support.readme import Block, rst_blocks
from tests.test_readme import (
    AIRFLOW,
    REQUEST_ID,
    _block,
    _normalise,
    run_block,
    where,
)
from tests.test_readme import (
    BLOCKS as README_BLOCKS,
)

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
PAGES = sorted(p for p in DOCS.rglob("*.rst") if not p.relative_to(DOCS).parts[0].startswith("_"))
DOC_BLOCKS: list[Block] = [block for page in PAGES for block in rst_blocks(page)]


def test_pages_have_blocks_of_each_kind() -> None:
    """Guard against a parser that silently finds nothing."""
    assert len(PAGES) >= 15, PAGES
    assert {"python", "bash", "json", "console"} <= {b.lang for b in DOC_BLOCKS}


@pytest.mark.parametrize(
    "block", DOC_BLOCKS, ids=[f"{b.lang}@{Path(b.source).relative_to(DOCS)}:{b.line}" for b in DOC_BLOCKS]
)
def test_doc_block(block: Block, request: pytest.FixtureRequest) -> None:
    run_block(block, request, globals())


def test_quickstart_is_the_readmes() -> None:
    """The docs' quickstart is the README's, which tests/test_readme.py runs in bash as written."""
    docs = _block("test_quickstart_is_the_readmes", DOC_BLOCKS)
    readme = _block("test_quickstart_runs_as_written", README_BLOCKS)
    assert docs.text == readme.text
    # ...and its first DAGs are the README's, which tests/test_readme.py runs too.
    quickstart_python = [
        b.text for b in DOC_BLOCKS if b.source.endswith("quickstart.rst") and b.lang == "python"
    ]
    assert quickstart_python == [b.text for b in README_BLOCKS if b.lang == "python"]


LITERALINCLUDE = re.compile(r"^\s*\.\. literalinclude::\s*(\S+)\s*$")


def test_literal_includes_come_from_tested_example_dags() -> None:
    included: set[Path] = set()
    for page in PAGES:
        for line in page.read_text().splitlines():
            match = LITERALINCLUDE.match(line)
            if match:
                included.add((page.parent / match[1]).resolve())
    assert included, "no page includes an example"
    tests = "\n".join(p.read_text() for p in (REPO / "tests" / "dags").glob("test_*.py"))
    for path in sorted(included):
        assert path.parent == REPO / "dags", f"{path}: include examples from the example DAGs in dags/"
        assert path.name in tests, f"{path.name}: no test in tests/dags runs this example DAG"


def test_operator_pages_include_a_tested_example_of_every_operator() -> None:
    """Each operator of the package is on a page, with an example included from an example DAG."""
    import inspect

    from airflow.sdk import BaseOperator

    from airflow_provider_imagesearch.operators import imagesearch, imagesearch_v2, import_images

    text = "\n".join(p.read_text() for p in PAGES)
    for module in (imagesearch, imagesearch_v2, import_images):
        for name, cls in inspect.getmembers(module, inspect.isclass):
            private = name.startswith("_") or "Base" in name
            if cls.__module__ != module.__name__ or not issubclass(cls, BaseOperator) or private:
                continue
            assert f"{cls.__module__}.{name}" in text, f"{name} is on no docs page"


def test_requirements_table_is_pyproject() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    index = (DOCS / "index.rst").read_text()
    for requirement in project["dependencies"]:
        name, spec = re.match(r"^([A-Za-z0-9_.-]+)(.*)$", requirement.replace(" ", "")).groups()  # type: ignore[union-attr]
        assert re.search(rf"``{re.escape(name)}``\s+``{re.escape(spec)}``", index), (
            f"docs/index.rst: the requirements table does not say {name} {spec}"
        )


def test_images_are_the_browser_tests_screenshots() -> None:
    from tests.ui.test_connection_form import DOCS_SHOTS

    shown = set()
    for page in PAGES:
        for match in re.finditer(r"^\s*\.\. image::\s*(\S+)", page.read_text(), re.M):
            path = (page.parent / match[1]).resolve()
            shown.add(path.name)
            data = path.read_bytes()
            assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path}: not a PNG"
            width, height = struct.unpack(">II", data[16:24])
            assert width >= 800, (path, width)
            assert height >= 400, (path, height)
    assert shown == set(DOCS_SHOTS.values()), (
        "every screenshot the browser test takes is shown, and only those"
    )


def test_docs_build_with_every_public_class(tmp_path: Path) -> None:
    """``make docs`` is green (-W -n) and the API reference documents every public class."""
    import importlib
    import inspect

    from sphinx.util.inventory import InventoryFile

    out = tmp_path / "html"
    result = subprocess.run(
        ["make", "-s", "docs", f"DOCS_BUILD={out}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    with (out / "objects.inv").open("rb") as stream:
        inventory = InventoryFile.load(stream, "", lambda base, uri: uri)
    documented = set(inventory.get("py:class", {})) | set(inventory.get("py:exception", {}))
    sys.path.insert(0, str(DOCS))
    try:
        import conf  # docs/conf.py: the module list the API pages are generated from
    finally:
        sys.path.remove(str(DOCS))
    missing = []
    for module_name in conf.public_modules():
        module = importlib.import_module(module_name)
        for name, cls in inspect.getmembers(module, inspect.isclass):
            public = cls.__module__ == module_name and not name.startswith("_")
            if public and f"{module_name}.{name}" not in documented:
                missing.append(f"{module_name}.{name}")
    for name in ("Emulator", "EmulatorProcess", "EmulatorClient", "FaultConfig"):
        if f"airflow_provider_imagesearch.emulator.{name}" not in documented:
            missing.append(f"airflow_provider_imagesearch.emulator.{name}")
    assert not missing, f"public classes missing from the API reference: {missing}"
    assert len(documented) > 50


# --- what a connection test shows (checked-by blocks) ------------------------------------------


@pytest.fixture
def connection_tests_enabled(monkeypatch: pytest.MonkeyPatch, readme_world: Emulator) -> Emulator:
    monkeypatch.setenv("AIRFLOW__CORE__TEST_CONNECTION", "Enabled")
    return readme_world


def _console(block: Block) -> tuple[list[str], str]:
    """A ``console`` block: the command after ``$ `` (continued with ``\\``) and the output below it."""
    lines = block.text.splitlines()
    assert lines, f"{where(block)}: an empty console block"
    assert lines[0].startswith("$ "), f"{where(block)}: a console block starts with '$ '"
    command = lines[0][2:]
    index = 1
    while command.endswith("\\"):
        command = command[:-1] + lines[index].strip()
        index += 1
    return shlex.split(command), "\n".join(lines[index:]).strip()


@pytest.mark.usefixtures("airflow_db")
def test_cli_connection_test_output(connection_tests_enabled: Emulator) -> None:
    """``airflow connections test`` prints what the README shows: no hook message, no request id."""
    words, expected = _console(_block("test_cli_connection_test_output", DOC_BLOCKS))
    assert words[:3] == ["airflow", "connections", "test"], words
    result = subprocess.run(
        [AIRFLOW, *words[1:]],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert _normalise(result.stdout.strip()) == _normalise(expected)
    assert "request id" not in result.stdout


@pytest.mark.usefixtures("airflow_db")
def test_rest_connection_test_output(
    connection_tests_enabled: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``POST /api/v2/connections/test`` answers the hook's own message, request id included."""
    from airflow.api_fastapi.app import create_app, purge_cached_app
    from fastapi.testclient import TestClient

    words, expected = _console(_block("test_rest_connection_test_output", DOC_BLOCKS))
    assert words[0] == "curl", words
    assert "/api/v2/connections/test" in " ".join(words), words
    body = json.loads(words[words.index("-d") + 1])
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")
    purge_cached_app()
    try:
        with TestClient(create_app("core")) as client:
            response = client.post("/api/v2/connections/test", json=body)
    finally:
        purge_cached_app()
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["status"] is True, answer
    assert REQUEST_ID.search(answer["message"]), answer
    assert _normalise(json.dumps(answer, separators=(",", ":"))) == _normalise(expected)
