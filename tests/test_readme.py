"""Every fenced block of README.md runs (or is checked) against the emulator, so the README cannot rot.

Blocks are found by ``tests/support/readme.py``; a new block is covered as soon as it is written. By
language:

* ``python``: executed as a user would paste it, against the emulator as the quickstart starts it (the
  package's sample seed, ``--seed seed.json``, and nothing else) with ``imagesearch_default`` as the
  quickstart exports it (the first line of ``--print-connection``): nothing is seeded behind the reader's
  back. Every
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
  has exactly the keys of a real ``InstanceDetail.to_dict()``; an emulator seed (has ``instances``) is
  loaded into a real emulator.

The quickstart block (``checked-by test_quickstart_runs_as_written``) is run by bash exactly as written,
from the repository root: its own emulator on the port it names, its own connection, ``airflow dags
test``. The same runner serves the docs pages (tests/docs/test_doc_examples.py).
* Anything else, or a block that cannot run here (``pip install`` of the published package), needs a
  marker on the line before its fence: ``<!-- readme-test: skip (reason) -->`` (reported as a skipped test
  with that reason) or ``<!-- readme-test: checked-by test_name (what) -->`` for output that the named
  test of this module compares with a real run. An unmarked block of another language fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
#: What the quickstart starts the emulator with (``--seed seed.json``): the package's sample seed. The
#: examples find there what they name; a name it lacks fails their test, as it would fail the reader.
SAMPLE_SEED = json.loads((REPO / "airflow_provider_imagesearch" / "emulator" / "seed.json").read_text())
#: An instance of the sample seed, read to check an exported connection works.
SAMPLE_INSTANCE = "shop-main"
SHELL_LANGS = ("bash", "sh", "shell")
#: Request ids (32 hex characters) differ from run to run: compared as this placeholder.
REQUEST_ID = re.compile(r"\b[0-9a-f]{32}\b")
#: The emulator listens on a free port: compared as this placeholder.
LOOPBACK_PORT = re.compile(r"127\.0\.0\.1:\d+")
AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def where(block: Block) -> str:
    """``FILE:LINE`` of a block, for messages."""
    return f"{Path(block.source).name}:{block.line}"


def _block(test_name: str, blocks: list[Block] | None = None) -> Block:
    """The block whose ``checked-by`` marker names ``test_name`` (exactly one)."""
    found = [b for b in (BLOCKS if blocks is None else blocks) if b.checked_by == test_name]
    assert len(found) == 1, f"expected one README block marked checked-by {test_name}, found {len(found)}"
    return found[0]


def _normalise(text: str) -> str:
    return LOOPBACK_PORT.sub("127.0.0.1:<port>", REQUEST_ID.sub("<request id>", text))


# --- the generic test --------------------------------------------------------------------------


def test_readme_has_blocks_of_each_kind() -> None:
    """Guard against a parser that silently finds nothing: the README's kinds are all present."""
    langs = {b.lang for b in BLOCKS}
    assert {"python", "bash"} <= langs, langs
    assert any(b.skip_reason for b in BLOCKS)


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_readme_block(block: Block, request: pytest.FixtureRequest) -> None:
    run_block(block, request, globals())


def run_block(block: Block, request: pytest.FixtureRequest, checkers: dict[str, Any]) -> None:
    """Run or check one block (README or docs page); ``checkers`` holds its module's checked-by tests."""
    if block.skip_reason is not None:
        pytest.skip(f"{where(block)} marked skip: {block.skip_reason}")
    if block.checked_by is not None:
        checker = checkers.get(block.checked_by)
        assert callable(checker), f"{where(block)}: checked-by names no test here: {block.checked_by}"
        return
    if block.lang == "python":
        _run_python(block, request)
    elif block.lang in SHELL_LANGS:
        commands = shell_commands(block.text)
        assert commands, f"{where(block)}: a shell block without a command"
        for words in commands:
            _check_command(block, words, request)
    elif block.lang == "json":
        _check_json(block, request)
    else:
        pytest.fail(
            f"{where(block)}: a {block.lang or 'plain'!r} block that nothing runs: handle its language "
            "in tests/test_readme.py or mark it readme-test: skip (reason)"
        )


# --- python ------------------------------------------------------------------------------------


@pytest.fixture
def readme_world(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    """The emulator as the README's quickstart starts it (``--seed seed.json``: the sample seed, nothing
    more) and ``imagesearch_default`` as the quickstart exports it (``--print-connection``'s first line)."""
    from airflow_provider_imagesearch.emulator.connection import export_lines

    with Emulator(seed=SAMPLE_SEED) as emulator:
        first = next(line for line in export_lines(emulator.url).splitlines() if line.startswith("export "))
        ((name, _, value),) = [word.partition("=") for word in shlex.split(first)[1:]]
        monkeypatch.setenv(name, value)
        yield emulator


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
    # Padded so that a traceback's line numbers are the file's.
    code = compile("\n" * block.line + block.text, block.source, "exec")
    namespace: dict[str, Any] = {"__name__": f"readme_block_{block.line}"}
    exec(code, namespace)
    dags = _dags_in(namespace)
    if not dags:
        # A block that checks its own outcome (it runs its own emulator) has asserted already.
        asserts = re.search(r"^\s*assert\b", block.text, re.M) is not None
        assert emulator.stats()["requests_total"] > 0 or asserts, (
            f"{where(block)}: the block defines no DAG, sent no request to the emulator and asserts nothing"
        )
        return
    request.getfixturevalue("airflow_db")
    for dag in dags:
        dag_run = run_dag(dag)
        outcome = states(dag_run)
        assert outcome, f"{where(block)}: DAG {dag.dag_id} ran no task"
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
    at = f"{where(block)}: {shlex.join(words)[:80]}"
    head = words[0]
    if head == "make":
        unknown = [w for w in words[1:] if not w.startswith("-") and "=" not in w] or ["all"]
        assert set(unknown) <= _make_targets(), f"{at}: no such Makefile target"
    elif head == "export":
        for assignment in words[1:]:
            name, _, value = assignment.partition("=")
            _check_export(at, name, value, request)
    elif Path(head).name in ("python", "python3") and words[1:2] == ["-m"]:
        _check_options(at, [sys.executable, "-m", words[2]], words[3:])
    elif Path(head).name in ("python", "python3") and words[1:2] and (REPO / words[1]).suffix == ".py":
        # A script of the checkout with a subcommand (scripts/mutation.py check ...): its own --help.
        subcommand = words[2:3] if words[2:3] and not words[2].startswith("-") else []
        _check_options(at, [sys.executable, str(REPO / words[1]), *subcommand], words[3:])
    elif head in _console_scripts():
        module, _, function = _console_scripts()[head].partition(":")
        script = f"import sys; from {module} import {function}; sys.exit({function}())"
        _check_options(at, [sys.executable, "-c", script], words[1:])
    elif head == "airflow":
        subcommands = [w for w in words[1:] if not w.startswith("-")]
        _check_options(at, [AIRFLOW, *subcommands], words[1:])
    else:
        pytest.fail(f"{at}: tests/test_readme.py cannot check {head!r}: teach it, or mark the block skip")


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
    monkeypatch.setenv(name, value)
    local = urlsplit(str(fields.get("host") or ""))
    if local.hostname in ("127.0.0.1", "localhost") and local.port:
        # A connection to a local emulator: one runs on that very port, and the connection is used as
        # written (no substitution).
        with Emulator(port=local.port, seed=SAMPLE_SEED) as on_port:
            with ImageSearchHook(conn_id) as hook:
                ok, message = hook.test_connection()
                assert ok, f"{where}: test_connection() failed: {message}"
                assert hook.get_instance(SAMPLE_INSTANCE).instance_name == SAMPLE_INSTANCE
            requests = on_port.stats()["requests_total"]
        assert requests >= 2, (where, requests)
        return
    # As written: the provider reads it without complaint and aims at Huawei Cloud.
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
        assert hook.get_instance(SAMPLE_INSTANCE).instance_name == SAMPLE_INSTANCE
    by_auth = emulator.stats()["requests_by_auth"]
    assert by_auth["aksk" if auth_type == "aksk" else "token"] >= 1, (where, by_auth)


# --- json --------------------------------------------------------------------------------------


def _check_json(block: Block, request: pytest.FixtureRequest) -> None:
    try:
        value = json.loads(block.text)
    except json.JSONDecodeError as error:
        pytest.fail(f"{where(block)}: invalid JSON: {error}")
    if isinstance(value, dict) and "instances" in value:
        # An emulator seed: a real emulator loads it, and serves every instance it names.
        with Emulator(seed=value) as seeded:
            names = {i["name"] for i in value["instances"]}
            served = {i["name"] for i in seeded.control.state()["instances"]}
        assert names <= served, f"{where(block)}: the emulator did not load {names - served}"
        return
    if isinstance(value, dict) and {"instance_name", "status"} <= set(value):
        from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchHook

        request.getfixturevalue("readme_world")
        with ImageSearchHook("imagesearch_default") as hook:
            real = hook.get_instance(value["instance_name"]).to_dict()
        assert set(value) == set(real), f"{where(block)}: keys differ from InstanceDetail.to_dict()"


# --- the quickstart, as written ---------------------------------------------------------------


def test_quickstart_runs_as_written(tmp_path: Path) -> None:
    """The README's quickstart in bash, unchanged: its emulator, its connection, its DAG run."""
    block = _block("test_quickstart_runs_as_written")
    commands = shell_commands(block.text)
    assert len(commands) <= 10, f"{where(block)}: a quickstart of {len(commands)} commands (at most 10)"
    run_bash_as_written(block, tmp_path)


def run_bash_as_written(block: Block, tmp_path: Path) -> str:
    """Run a bash block exactly as written; its output. Every ``airflow dags test`` must succeed.

    Run from the repository root (where the reader is) with this venv's commands on PATH, as after the
    install. Nothing of the test session's environment leaks in (no AIRFLOW_* variable, no connection).
    The block's AIRFLOW_HOME, ``.quickstart``, is removed afterwards.
    """
    import signal

    assert block.lang == "bash"
    commands = shell_commands(block.text)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTHONPATH"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    log = tmp_path / "block.log"
    quickstart_home = REPO / ".quickstart"
    with log.open("w") as sink:
        process = subprocess.Popen(
            ["bash", "-e", "-c", block.text],
            cwd=REPO,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            returncode = process.wait(timeout=900)
        finally:
            # The emulator the block started in the background, if the block failed before `kill %1`.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            shutil.rmtree(quickstart_home, ignore_errors=True)
    output = log.read_text(errors="replace")
    assert returncode == 0, f"{where(block)}: the block failed ({returncode}):\n{output[-4000:]}"
    # `airflow dags test` exits non-zero ("DagRun failed") unless the run succeeded; bash -e passes it on.
    assert any(words[:3] == ["airflow", "dags", "test"] for words in commands), "the block runs no DAG"
    assert "DagRun failed" not in output
    return output
