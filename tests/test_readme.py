"""Every fenced block of README.md runs (or is checked) against the emulator, so the README cannot rot.

Blocks are found by ``tests/support/readme.py``; a new block is covered as soon as it is written. By
language:

* ``python``: executed as a user would paste it, with the connection ``imagesearch_default`` pointing at
  the emulator (IAM password auth) and the instances in :data:`README_INSTANCES` seeded ``NORMAL``. Every
  DAG the block defines (bound to a name, or reachable from a task bound to a name) is then run with
  ``dag.test()`` and every task instance must succeed. A block that defines no DAG (a hook block) must
  have sent at least one API request to the emulator.
* ``bash``/``sh``/``shell``: each command is checked by :func:`_check_command`: ``make T`` names a real
  Makefile target; ``export AIRFLOW_CONN_X='...'`` is valid JSON that the provider reads as written
  (endpoint, auth type), and the same connection with the emulator substituted for the cloud (see
  :func:`_on_emulator`) passes ``test_connection()`` and reads an instance; ``export AIRFLOW__S__K=...``
  names a real Airflow option; ``python -m M --opt ...``, the package's console scripts and ``airflow ...``
  name options that ``--help`` lists. Any other command fails: teach this module to check it, or mark the
  block.
* ``json``: valid JSON; a JSON object documenting ``InstanceDetail`` (has ``instance_name`` and ``status``)
  has exactly the keys of a real ``InstanceDetail.to_dict()``.
* Anything else, or a block that cannot run here (``pip install`` of the published package), needs a
  marker on the line before its fence: ``<!-- readme-test: skip (reason) -->`` (reported as a skipped test
  with that reason) or ``<!-- readme-test: checked-by test_name (what) -->`` for output that the named
  test of this module compares with a real run. An unmarked block of another language fails.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_DOMAIN,
    DEFAULT_PASSWORD,
    DEFAULT_READY_TOKEN,
    DEFAULT_SECRET_KEY,
    DEFAULT_SECURITY_TOKEN,
    DEFAULT_TEMP_ACCESS_KEY,
    DEFAULT_TEMP_SECRET_KEY,
    DEFAULT_USER,
    Emulator,
)
from tests.support.readme import Block, blocks, shell_commands

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
BLOCKS = blocks(README)
#: Instances the README's examples name; seeded NORMAL before each python block (add new names here).
README_INSTANCES = ("shop-main", "shop-new")
SHELL_LANGS = ("bash", "sh", "shell")
#: Request ids (32 hex characters) differ from run to run: compared as this placeholder.
REQUEST_ID = re.compile(r"\b[0-9a-f]{32}\b")
#: The emulator listens on a free port: compared as this placeholder.
LOOPBACK_PORT = re.compile(r"127\.0\.0\.1:\d+")
AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def _block(test_name: str) -> Block:
    """The README block whose ``checked-by`` marker names ``test_name`` (exactly one)."""
    found = [b for b in BLOCKS if b.checked_by == test_name]
    assert len(found) == 1, f"expected one README block marked checked-by {test_name}, found {len(found)}"
    return found[0]


def _normalise(text: str) -> str:
    return LOOPBACK_PORT.sub("127.0.0.1:<port>", REQUEST_ID.sub("<request id>", text))


# --- the generic test --------------------------------------------------------------------------


def test_readme_has_blocks_of_each_kind() -> None:
    """Guard against a parser that silently finds nothing: the README's kinds are all present."""
    langs = {b.lang for b in BLOCKS}
    assert {"python", "bash", "json"} <= langs, langs
    assert any(b.skip_reason for b in BLOCKS)


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_readme_block(block: Block, request: pytest.FixtureRequest) -> None:
    if block.skip_reason is not None:
        pytest.skip(f"README.md:{block.line} marked skip: {block.skip_reason}")
    if block.checked_by is not None:
        checker = globals().get(block.checked_by)
        assert callable(checker), f"README.md:{block.line}: checked-by names no test here: {block.checked_by}"
        return
    if block.lang == "python":
        _run_python(block, request)
    elif block.lang in SHELL_LANGS:
        commands = shell_commands(block.text)
        assert commands, f"README.md:{block.line}: a shell block without a command"
        for words in commands:
            _check_command(block, words, request)
    elif block.lang == "json":
        _check_json(block, request)
    else:
        pytest.fail(
            f"README.md:{block.line}: a {block.lang or 'plain'!r} block that nothing runs: handle its language "
            "in tests/test_readme.py or mark it <!-- readme-test: skip (reason) -->"
        )


# --- python ------------------------------------------------------------------------------------


@pytest.fixture
def readme_world(
    emulator: Emulator, imagesearch_conn: Callable[..., str], instance: Callable[..., str]
) -> Emulator:
    """The emulator as the README's examples expect it: ``imagesearch_default`` and its instances."""
    imagesearch_conn("iam_password", conn_id="imagesearch_default")
    for name in README_INSTANCES:
        instance(name, tags=["color"])
    return emulator


def _dags_in(namespace: dict[str, Any]) -> list[Any]:
    from airflow.sdk import DAG

    found: dict[int, Any] = {}
    for value in namespace.values():
        candidate = value if isinstance(value, DAG) else getattr(value, "dag", None)
        if isinstance(candidate, DAG):
            found[id(candidate)] = candidate
    return list(found.values())


def _run_python(block: Block, request: pytest.FixtureRequest) -> None:
    from tests.support.dagrun import run_dag, states

    emulator: Emulator = request.getfixturevalue("readme_world")
    emulator.reset_stats()
    # Padded so that a traceback's line numbers are README.md's.
    code = compile("\n" * block.line + block.text, str(README), "exec")
    namespace: dict[str, Any] = {"__name__": f"readme_block_{block.line}"}
    exec(code, namespace)
    dags = _dags_in(namespace)
    if not dags:
        assert emulator.stats()["requests_total"] > 0, (
            f"README.md:{block.line}: the block defines no DAG and sent no request to the emulator"
        )
        return
    request.getfixturevalue("airflow_db")
    for dag in dags:
        dag_run = run_dag(dag)
        outcome = states(dag_run)
        assert outcome, f"README.md:{block.line}: DAG {dag.dag_id} ran no task"
        assert str(dag_run.state) == "success", (dag.dag_id, outcome)
        assert all(state == "success" for state, _ in outcome.values()), (dag.dag_id, outcome)


# --- shell -------------------------------------------------------------------------------------


def _make_targets() -> set[str]:
    targets: set[str] = set()
    for line in (REPO / "Makefile").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\- ]+):(?!=)", line)
        if match:
            targets.update(match[1].split())
    return targets


def _check_command(block: Block, words: list[str], request: pytest.FixtureRequest) -> None:
    where = f"README.md:{block.line}: {shlex.join(words)[:80]}"
    head = words[0]
    if head == "make":
        unknown = [w for w in words[1:] if not w.startswith("-") and "=" not in w] or ["all"]
        assert set(unknown) <= _make_targets(), f"{where}: no such Makefile target"
    elif head == "export":
        for assignment in words[1:]:
            name, _, value = assignment.partition("=")
            _check_export(where, name, value, request)
    elif Path(head).name in ("python", "python3") and words[1:2] == ["-m"]:
        _check_options(where, [sys.executable, "-m", words[2]], words[3:])
    elif head in _console_scripts():
        module, _, function = _console_scripts()[head].partition(":")
        script = f"import sys; from {module} import {function}; sys.exit({function}())"
        _check_options(where, [sys.executable, "-c", script], words[1:])
    elif head == "airflow":
        subcommands = [w for w in words[1:] if not w.startswith("-")]
        _check_options(where, [AIRFLOW, *subcommands], words[1:])
    else:
        pytest.fail(f"{where}: tests/test_readme.py cannot check {head!r}: teach it, or mark the block skip")


def _console_scripts() -> dict[str, str]:
    from importlib.metadata import entry_points

    return {
        ep.name: ep.value
        for ep in entry_points(group="console_scripts")
        if ep.value.startswith("airflow_provider_imagesearch")
    }


def _check_options(where: str, command: list[str], args: list[str]) -> None:
    """``command --help`` succeeds and lists every ``--option`` of ``args``."""
    result = subprocess.run(
        [*command, "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 0, f"{where}: --help failed: {result.stderr[-500:]}"
    for option in (a.split("=")[0] for a in args if a.startswith("--")):
        assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", result.stdout), (
            f"{where}: {option} is not an option of {command[-1]}"
        )


def _check_export(where: str, name: str, value: str, request: pytest.FixtureRequest) -> None:
    if name.startswith("AIRFLOW_CONN_"):
        _check_connection(where, name, value, request)
    elif name.startswith("AIRFLOW__"):
        from airflow.configuration import conf

        section, _, key = name[len("AIRFLOW__") :].lower().partition("__")
        # An option without a default (e.g. [celery] result_backend) is not "set", but still described.
        described = conf.configuration_description.get(section, {}).get("options", {})
        assert conf.has_option(section, key) or key in described, (
            f"{where}: [{section}] {key} is no Airflow option"
        )
    else:
        pytest.fail(f"{where}: tests/test_readme.py cannot check the variable {name}")


def _on_emulator(fields: dict[str, Any], auth_type: str, url: str) -> dict[str, Any]:
    """The README's connection with the emulator in place of Huawei Cloud.

    Substituted: ``host`` and the ``iam_endpoint`` extra become the emulator's URL (the README's
    connections use the default cloud endpoints); the credential placeholders become the emulator's
    well-known credentials of the same auth type: IAM user, password and domain; permanent AK/SK (the
    temporary AK/SK and its security token when ``security_token`` is set); the ready token. Everything
    else (region, project id, conn type, any other extra) is used as written, so a README project id or
    region the emulator does not know fails here.
    """
    extra = dict(fields.get("extra") or {})
    out = {**fields, "host": url, "extra": extra}
    extra["iam_endpoint"] = url
    if auth_type == "iam_password":
        out.update(login=DEFAULT_USER, password=DEFAULT_PASSWORD)
        extra["domain_name"] = DEFAULT_DOMAIN
    elif auth_type == "aksk" and "security_token" in extra:
        out.update(login=DEFAULT_TEMP_ACCESS_KEY, password=DEFAULT_TEMP_SECRET_KEY)
        extra["security_token"] = DEFAULT_SECURITY_TOKEN
    elif auth_type == "aksk":
        out.update(login=DEFAULT_ACCESS_KEY, password=DEFAULT_SECRET_KEY)
    elif auth_type == "token":
        extra["token"] = DEFAULT_READY_TOKEN
    else:
        pytest.fail(f"unknown auth type {auth_type!r}")
    return out


def _check_connection(where: str, name: str, value: str, request: pytest.FixtureRequest) -> None:
    from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchHook

    monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
    emulator: Emulator = request.getfixturevalue("readme_world")
    try:
        fields = json.loads(value)
    except json.JSONDecodeError as error:
        pytest.fail(f"{where}: the exported connection is not valid JSON: {error}")
    assert isinstance(fields, dict), f"{where}: not a JSON object"
    assert fields.get("conn_type") == "imagesearch", f"{where}: conn_type {fields.get('conn_type')!r}"
    conn_id = name[len("AIRFLOW_CONN_") :].lower()
    # As written: the provider reads it without complaint and aims at Huawei Cloud.
    monkeypatch.setenv(name, value)
    settings = ImageSearchHook(conn_id).settings
    region = settings.region
    assert settings.endpoint.rstrip("/") == f"https://imagesearch.{region}.myhuaweicloud.com", (
        settings.endpoint
    )
    auth_type = settings.credentials.auth_type
    # On the emulator: it authenticates and works.
    monkeypatch.setenv(name, json.dumps(_on_emulator(fields, auth_type, emulator.url)))
    emulator.reset_stats()
    with ImageSearchHook(conn_id) as hook:
        assert hook.settings.credentials.auth_type == auth_type
        ok, message = hook.test_connection()
        assert ok, f"{where}: test_connection() failed: {message}"
        assert hook.get_instance(README_INSTANCES[0]).instance_name == README_INSTANCES[0]
    by_auth = emulator.stats()["requests_by_auth"]
    assert by_auth["aksk" if auth_type == "aksk" else "token"] >= 1, (where, by_auth)


# --- json --------------------------------------------------------------------------------------


def _check_json(block: Block, request: pytest.FixtureRequest) -> None:
    try:
        value = json.loads(block.text)
    except json.JSONDecodeError as error:
        pytest.fail(f"README.md:{block.line}: invalid JSON: {error}")
    if isinstance(value, dict) and {"instance_name", "status"} <= set(value):
        from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchHook

        request.getfixturevalue("readme_world")
        with ImageSearchHook("imagesearch_default") as hook:
            real = hook.get_instance(value["instance_name"]).to_dict()
        assert set(value) == set(real), f"README.md:{block.line}: keys differ from InstanceDetail.to_dict()"


# --- what a connection test shows (checked-by blocks) ------------------------------------------


@pytest.fixture
def connection_tests_enabled(monkeypatch: pytest.MonkeyPatch, readme_world: Emulator) -> Emulator:
    monkeypatch.setenv("AIRFLOW__CORE__TEST_CONNECTION", "Enabled")
    return readme_world


def _console(block: Block) -> tuple[list[str], str]:
    """A ``console`` block: the command after ``$ `` (continued with ``\\``) and the output below it."""
    lines = block.text.splitlines()
    assert lines, f"README.md:{block.line}: an empty console block"
    assert lines[0].startswith("$ "), f"README.md:{block.line}: a console block starts with '$ '"
    command = lines[0][2:]
    index = 1
    while command.endswith("\\"):
        command = command[:-1] + lines[index].strip()
        index += 1
    return shlex.split(command), "\n".join(lines[index:]).strip()


@pytest.mark.usefixtures("airflow_db")
def test_cli_connection_test_output(connection_tests_enabled: Emulator) -> None:
    """``airflow connections test`` prints what the README shows: no hook message, no request id."""
    words, expected = _console(_block("test_cli_connection_test_output"))
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

    words, expected = _console(_block("test_rest_connection_test_output"))
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
