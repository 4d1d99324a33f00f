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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
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
INCLUDE_MARKER = re.compile(r"^\s*:(?:start-after|end-before):\s*(.+?)\s*$")
#: Test modules, by path, and their text: what "a test runs this file" is checked against.
TEST_MODULES = {
    path: path.read_text()
    for path in sorted((REPO / "tests").rglob("test_*.py"))
    if path.parent != Path(__file__).parent  # this module names files without running them
}


def _includes() -> list[tuple[Path, Path, list[str]]]:
    """``(page, included file, [start-after/end-before markers])`` of every literalinclude."""
    found = []
    for page in PAGES:
        lines = page.read_text().splitlines()
        for index, line in enumerate(lines):
            match = LITERALINCLUDE.match(line)
            if not match:
                continue
            markers = []
            for option in lines[index + 1 :]:
                if not re.match(r"^\s+:[\w-]+:", option):
                    break
                marker = INCLUDE_MARKER.match(option)
                if marker:
                    markers.append(marker[1])
            found.append((page, (page.parent / match[1]).resolve(), markers))
    return found


def _runs_the_example_dag(path: Path) -> bool:
    """An example DAG in dags/ that a test module names: tests/dags runs them with dag.test(), tests/events
    parses the event-driven ones and runs them in a real airflow standalone."""
    return any(path.name in text for text in TEST_MODULES.values())


def _runs_the_testing_kit_example(path: Path) -> bool:
    """A file of docs/examples/<folder>/ that a test module names, together with that folder (the testing
    kit's user-style tests copy the folder into a fresh project and run pytest there)."""
    folder = path.parent.name
    return any(
        f'"examples" / "{folder}"' in text and f'"{path.name}"' in text for text in TEST_MODULES.values()
    )


def _snippet_runs_in_a_test(path: Path, markers: list[str]) -> bool:
    """A test module whose included snippet sits in a test function, or in a function a test calls."""
    import ast

    if path not in TEST_MODULES or not markers:
        return False
    text = TEST_MODULES[path]
    start = text.splitlines().index(next(line for line in text.splitlines() if markers[0] in line)) + 1
    tree = ast.parse(text)
    functions = [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)]
    holder = [f for f in functions if f.lineno <= start <= (f.end_lineno or f.lineno)]
    if not holder:
        return False
    name = holder[-1].name
    if name.startswith("test_"):
        return True
    return any(
        isinstance(node, ast.Name) and node.id == name
        for test in functions
        if test.name.startswith("test_")
        for node in ast.walk(test)
    )


def test_literal_includes_come_from_files_a_test_runs() -> None:
    """Every ``.. literalinclude::`` shows code that a test runs, between markers that each occur once:

    * an example DAG of ``dags/`` that a test module names (tests/dags, tests/events);
    * a testing-kit example of ``docs/examples/`` that the kit's user-style tests copy and run;
    * a snippet of a test module (``tests/**/test_*.py``) inside a test, or a function a test calls.
    """
    includes = _includes()
    assert includes, "no page includes an example"
    for page, path, markers in includes:
        where_ = f"{page.relative_to(DOCS)} includes {path.relative_to(REPO)}"
        assert path.is_file(), f"{where_}: no such file"
        text = path.read_text()
        for marker in markers:
            assert text.count(marker) == 1, f"{where_}: marker {marker!r} occurs {text.count(marker)} times"
        if path.parent == REPO / "dags":
            assert _runs_the_example_dag(path), f"{where_}: no test runs this example DAG"
        elif DOCS / "examples" in path.parents:
            assert _runs_the_testing_kit_example(path), f"{where_}: no test runs this example"
        elif path in TEST_MODULES:
            assert _snippet_runs_in_a_test(path, markers), f"{where_}: the snippet is in no test"
        else:
            pytest.fail(f"{where_}: include from dags/, docs/examples/ or a test module, which tests run")


def test_the_include_rule_refuses_what_no_test_runs(tmp_path: Path) -> None:
    """Guard for the rule above: a file nothing runs, and a helper no test calls, are refused."""
    helper = REPO / "tests" / "operators" / "test_reliability_examples.py"
    assert _snippet_runs_in_a_test(helper, ["[START howto_reliability_writes]"])
    assert not _runs_the_example_dag(tmp_path / "imagesearch_not_a_dag_of_ours.py")
    assert not _runs_the_testing_kit_example(DOCS / "examples" / "testing" / "not_there.py")
    orphan = REPO / "tests" / "docs" / "test_doc_examples.py"  # not in TEST_MODULES
    assert not _snippet_runs_in_a_test(orphan, ["LITERALINCLUDE"])


#: ``dags/...``, ``tests/...``, ``scripts/...``, ``benchmarks/...`` and ``docs/...`` paths a page names.
REPO_PATH = re.compile(
    r"`{1,2}((?:dags|tests|scripts|benchmarks|docs|airflow_provider_imagesearch)/[\w./-]+?)`{1,2}"
)


def test_repository_paths_named_on_pages_exist() -> None:
    """A page that names a file of the repository (a test, a script, an example DAG) names one that exists."""
    missing = []
    for page in [*PAGES, REPO / "README.md"]:
        for match in REPO_PATH.finditer(page.read_text()):
            name = match[1].rstrip("/")
            if "_build" not in name and not (REPO / name).exists():
                missing.append(f"{page.relative_to(REPO)}: {name}")
    assert not missing, missing


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


def _ui_page_shots() -> set[str]:
    """The screenshots tests/plugin/test_browser.py takes of the ImageSearch page (``shots(page, NAME)``
    saves ``ui-page-NAME.png``, into docs/img with ``make screenshots``)."""
    text = (REPO / "tests" / "plugin" / "test_browser.py").read_text()
    names = re.findall(r'\bshots\(page, "(\w+)"', text)
    assert names, "tests/plugin/test_browser.py takes no screenshot"
    return {f"ui-page-{name}.png" for name in names}


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
    assert shown == set(DOCS_SHOTS.values()) | _ui_page_shots(), (
        "every screenshot the browser tests take is shown, and only those"
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


# --- what the emulator, the hook and the event trigger print (checked-by blocks) ----------------------


def test_print_connection_output() -> None:
    """``imagesearch-emulator --print-connection`` prints what docs/emulator.rst shows.

    The page shortens: an indented line continues the line above (joined by one space), and ``...`` stands
    for text left out. Everything else is compared exactly, line by line.
    """
    words, expected = _console(_block("test_print_connection_output", DOC_BLOCKS))
    assert words[0] == "imagesearch-emulator", words
    script = "import sys; from airflow_provider_imagesearch.emulator.__main__ import main; sys.exit(main())"
    result = subprocess.run(
        [sys.executable, "-c", script, *words[1:]], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    shown: list[str] = []
    for line in expected.splitlines():
        if line.startswith(" ") and shown:
            shown[-1] += " " + line.strip()
        else:
            shown.append(line)
    printed = result.stdout.strip().splitlines()
    assert len(printed) == len(shown), (printed, shown)
    for page_line, real_line in zip(shown, printed, strict=True):
        pattern = ".*?".join(re.escape(part) for part in page_line.split("..."))
        assert re.fullmatch(pattern, real_line), (page_line, real_line)


def test_unresolved_host_message(monkeypatch: pytest.MonkeyPatch, emulator: Emulator) -> None:
    """A connection with only ``host`` set (IAM password auth): the error names the IAM host it derived
    from the region and the setting to change, exactly as docs/connections/imagesearch.rst shows it.

    Public names are never looked up for real: every non-loopback name "does not exist", as for a resolver
    without those records (the machine may have no DNS at all)."""
    import socket

    from airflow_provider_imagesearch.emulator import DEFAULT_DOMAIN, DEFAULT_PASSWORD, DEFAULT_USER
    from airflow_provider_imagesearch.errors import ImageSearchTransportError
    from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchHook
    from tests.support.connections import set_connection

    expected = " ".join(_block("test_unresolved_host_message", DOC_BLOCKS).text.split())
    real = socket.getaddrinfo

    def getaddrinfo(host: object, *args: object, **kwargs: object) -> object:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name in ("127.0.0.1", "localhost", "::1"):
            return real(host, *args, **kwargs)  # type: ignore[arg-type]
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    region = re.search(r"iam\.([a-z0-9-]+)\.myhuaweicloud\.com", expected)
    assert region, expected
    set_connection(
        monkeypatch,
        "host_only",
        conn_type="imagesearch",
        host=emulator.url,
        login=DEFAULT_USER,
        password=DEFAULT_PASSWORD,
        extra={
            "region": region[1],
            "project_id": DEFAULT_PROJECT_ID,
            "domain_name": DEFAULT_DOMAIN,
            "backoff_initial": 0.01,
        },
    )
    with ImageSearchHook("host_only") as hook, pytest.raises(ImageSearchTransportError) as caught:
        hook.get_instance("shop-main")
    assert str(caught.value) == expected


def test_event_payload(imagesearch_conn: Callable[..., str], emulator: Emulator) -> None:
    """A real watcher's event has the keys docs/events.rst shows, with values of the forms it shows."""
    import ast
    import asyncio
    import time

    from airflow_provider_imagesearch.models import InstanceStatus
    from airflow_provider_imagesearch.triggers.events import ImageSearchInstanceStatusEventTrigger

    tree = ast.parse(_block("test_event_payload", DOC_BLOCKS).text, mode="eval").body
    assert isinstance(tree, ast.Dict), "the page shows one dict"
    shown = {ast.literal_eval(key): value for key, value in zip(tree.keys, tree.values, strict=True)}  # type: ignore[arg-type]
    name = ast.literal_eval(shown["instance_name"])
    old, new = ast.literal_eval(shown["old_status"]), ast.literal_eval(shown["new_status"])
    conn_id = imagesearch_conn("token", conn_id=ast.literal_eval(shown["imagesearch_conn_id"]))
    emulator.upsert_instance(name, project_id=DEFAULT_PROJECT_ID, status=old)
    trigger = ImageSearchInstanceStatusEventTrigger(
        instance_names=[name],
        statuses=ast.literal_eval(shown["watched_statuses"]),
        imagesearch_conn_id=conn_id,
        poll_interval=0.2,
    )

    def reads() -> int:
        return sum(1 for r in emulator.requests_log() if r.get("instance") == name and r["method"] == "GET")

    async def first_event() -> dict[str, Any]:
        events: list[dict[str, Any]] = []

        async def consume() -> None:
            async for event in trigger.run():
                events.append(event.payload)

        watching = asyncio.create_task(consume())
        deadline = time.monotonic() + 30

        async def until(condition: Callable[[], bool], what: str) -> None:
            while not condition():
                if watching.done():
                    watching.result()  # the watcher ended: show why
                    pytest.fail(f"the watcher ended before {what}")
                assert time.monotonic() < deadline, f"timed out waiting for {what}"
                await asyncio.sleep(0.05)

        await until(lambda: reads() >= 2, "its baseline")
        emulator.upsert_instance(name, project_id=DEFAULT_PROJECT_ID, status=new)
        await until(lambda: bool(events), "the event")
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)
        return events[0]

    payload = asyncio.run(first_event())
    assert set(payload) == set(shown)
    for key in ("instance_name", "project_id", "old_status", "new_status", "imagesearch_conn_id"):
        assert payload[key] == ast.literal_eval(shown[key]), key
    assert payload["meaning"] == ast.literal_eval(shown["meaning"]) == InstanceStatus(new).meaning
    assert payload["watched_statuses"] == ast.literal_eval(shown["watched_statuses"])
    event_id = rf"[0-9a-f]{{12}}-\d+-{re.escape(name)}-\d+"
    assert re.fullmatch(event_id, payload["event_id"]), payload["event_id"]
    assert re.fullmatch(event_id, ast.literal_eval(shown["event_id"]))
    moment = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
    assert re.fullmatch(moment, payload["observed_at"])
    assert re.fullmatch(moment, ast.literal_eval(shown["observed_at"]))
    assert isinstance(shown["instance"], ast.Set)  # {...}: InstanceDetail.to_dict()
    assert {"instance_name", "status", "tags"} <= set(payload["instance"])
    assert payload["instance"]["status"] == new


def test_ui_page_index_statements(tmp_path: Path) -> None:
    """The ``CREATE INDEX`` statements docs/ui-page.rst gives run on the archive and ledger tables as the
    provider creates them, under the names the page uses, and the page then finds its indexes."""
    import sqlalchemy as sa

    from airflow_provider_imagesearch.plugins import queries, storage

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'tables.db'}")
    metadata = sa.MetaData()
    archive = queries.archive_table("imagesearch_instance_archive", metadata)
    ledger = queries.ledger_table("imagesearch_import_ledger", metadata)
    metadata.create_all(engine)
    statements = [s.strip() for s in _block("test_ui_page_index_statements", DOC_BLOCKS).text.split(";")]
    with engine.begin() as connection:
        for statement in filter(None, statements):
            connection.execute(sa.text(statement))
    inspector = sa.inspect(engine)
    for table, columns in ((archive, queries.ARCHIVE_INDEX), (ledger, queries.LEDGER_INDEX)):
        indexes = {i["name"]: i["column_names"] for i in inspector.get_indexes(table.name)}
        assert indexes == {storage.index_name(table): list(columns)}, (table.name, indexes)
        assert storage._has_index(inspector, table, columns)
