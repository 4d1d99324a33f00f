"""Review r25d: the manifest's text (951637a), and where else a presigned URL's secrets may show."""

from __future__ import annotations

import datetime
import json
import secrets
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, DEFAULT_REGION, Emulator
from tests.support.loopback_store import Answer, LoopbackStore
from tests.support.sqlite_connection import sqlite_connection

BUCKET = f"https://shop.obs.{DEFAULT_REGION}.myhuaweicloud.com"


@pytest.mark.usefixtures("airflow_db")
def test_a_presigned_queries_url_shows_masked_in_the_rendered_template(
    emulator: Emulator,
    imagesearch_conn: Callable[..., str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``ImageSearchSearchImagesOperator(queries=...)`` reads its queries "like an import manifest": a
    presigned http(s) URL is a documented source. The import operators register the URL's signature and
    credential with the secrets masker as soon as the template is rendered, because the Rendered Template
    view is stored before ``execute``; the batch search did not, so anyone who could see the task's
    Rendered Template read a signature that opens the object until it expires (the masking in
    ``_download`` comes during ``execute``, after the view was stored). Fixed: the search operator
    masks its ``queries`` as the imports mask their manifest (``PresignedUrlMaskMixin``)."""
    from airflow import settings
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.sdk import DAG

    from airflow_provider_imagesearch.operators.imagesearch import ImageSearchSearchImagesOperator
    from tests.support.dagrun import run_dag, states

    instance = "r25d-batch"
    image = f"{BUCKET}/lib/000.jpg"
    emulator.upsert_instance(
        instance, project_id=DEFAULT_PROJECT_ID, tags=["color"], images={image: {"tags": {"color": "red"}}}
    )
    engine = sqlite_connection(monkeypatch, "r25d_results", tmp_path / "results.db")
    engine.dispose()
    # Never seen by this process's secrets masker before: only this task could have registered them.
    signature = secrets.token_hex(16)
    credential = "AKIA" + secrets.token_hex(8).upper()
    with LoopbackStore() as store:
        url = store.put("queries.csv", Answer(200, f"query_id,path\nq0,{image}\n".encode()))
        url += f"?X-Amz-Credential={credential}%2F20260101%2Fus-east-1&X-Amz-Signature={signature}"
        with DAG("r25d_rendered_queries", schedule=None, start_date=datetime.datetime(2026, 1, 1)) as dag:
            ImageSearchSearchImagesOperator(
                task_id="batch",
                instance_name=instance,
                queries="{{ params.url }}",
                params={"url": url},
                results_conn_id="r25d_results",
                imagesearch_conn_id=imagesearch_conn("aksk", max_attempts=1),
            )
        run = run_dag(dag)
    assert str(run.state) == "success", states(run)
    with settings.Session() as session:  # type: ignore[misc]
        rendered = session.query(RenderedTaskInstanceFields).filter_by(dag_id=dag.dag_id).one()
    shown = json.dumps(rendered.rendered_fields)
    assert "/bucket/queries.csv?" in shown, shown
    assert signature not in shown, shown
    assert credential not in shown, shown


@pytest.mark.usefixtures("airflow_db")
def test_a_sharded_imports_presigned_manifest_shows_masked_in_the_rendered_template(
    emulator: Emulator,
    imagesearch_conn: Callable[..., str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The sharded import of docs/bulk-import.rst and dags/imagesearch_catalog_import.py
    (``ImageSearchImportImagesOperator.partial(manifest="{{ params.manifest }}", ...).expand(shard=...)``)
    with a presigned URL as the manifest. docs/bulk-import.rst promises the Rendered Template view shows
    its signature and credential masked: the masking ran in the operator's ``render_template_fields``, but
    Airflow renders a mapped task through ``MappedOperator.render_template_fields`` ->
    ``unmapped_task._do_render_template_fields``, which never called the operator's override, so each
    shard's Rendered Template showed the signature. Fixed: ``PresignedUrlMaskMixin`` masks in
    ``_do_render_template_fields``, which both paths call."""
    from airflow import settings
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.sdk import DAG

    from airflow_provider_imagesearch.operators.import_images import ImageSearchImportImagesOperator
    from tests.support.dagrun import run_dag, states

    instance = "r25d-sharded"
    emulator.upsert_instance(instance, project_id=DEFAULT_PROJECT_ID, tags=["color"], images={})
    engine = sqlite_connection(monkeypatch, "r25d_ledger", tmp_path / "ledger.db")
    engine.dispose()
    signature = secrets.token_hex(16)
    credential = "AKIA" + secrets.token_hex(8).upper()
    with LoopbackStore() as store:
        url = store.put("manifest.csv", Answer(200, f"path,tag.color\n{BUCKET}/a.jpg,red\n".encode()))
        url += f"?X-Amz-Credential={credential}%2F20260101%2Fus-east-1&X-Amz-Signature={signature}"
        with DAG("r25d_rendered_sharded", schedule=None, start_date=datetime.datetime(2026, 1, 1)) as dag:
            ImageSearchImportImagesOperator.partial(
                task_id="import_catalog",
                instance_name=instance,
                manifest="{{ params.url }}",
                ledger_conn_id="r25d_ledger",
                imagesearch_conn_id=imagesearch_conn("aksk", max_attempts=1),
                params={"url": url},
            ).expand(shard=[(0, 2), (1, 2)])
        run = run_dag(dag)
    assert str(run.state) == "success", states(run)
    with settings.Session() as session:  # type: ignore[misc]
        rendered = session.query(RenderedTaskInstanceFields).filter_by(dag_id=dag.dag_id).all()
    assert len(rendered) == 2
    shown = json.dumps([row.rendered_fields for row in rendered])
    assert "/bucket/manifest.csv?" in shown, shown
    assert signature not in shown, shown
    assert credential not in shown, shown


@pytest.mark.not_in_mutation_run
def test_key_prints_a_mutants_equivalence_key_without_a_full_run(tmp_path: Path) -> None:
    """docs/mutation-testing.rst: a survivor ``check`` reports (``check`` needs no full run: it works in a
    scratch copy and leaves no ``mutants/``) is noted as equivalent with the line that
    ``.venv/bin/python scripts/mutation.py key NAME`` prints. In a checkout without a full run's
    ``mutants/`` (a fresh clone, CI, a worktree) ``key`` dies with ``FileNotFoundError:
    'mutants/airflow_provider_imagesearch/retry.py'`` and a traceback, where ``report`` says "run `make
    mutation` first"; and where ``mutants/`` is an older run's, it prints the key of that run's mutant of
    the same number, not of the checkout's."""
    import shutil
    import subprocess
    import sys

    pytest.importorskip("mutmut")  # the mutation tooling's venv (.venv), not the floor Airflow's
    repo = Path(__file__).resolve().parents[2]
    for name in ("airflow_provider_imagesearch", "scripts"):
        shutil.copytree(repo / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy2(repo / name, tmp_path / name)
    result = subprocess.run(
        [
            sys.executable,
            "scripts/mutation.py",
            "key",
            "airflow_provider_imagesearch.retry.x_is_request_error__mutmut_11",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Traceback" not in result.stderr, result.stderr[-1500:]
    assert result.returncode == 0, result.stderr[-1500:]
    assert result.stdout.startswith("airflow_provider_imagesearch.retry.x_is_request_error "), result.stdout


@pytest.mark.not_in_mutation_run
def test_check_reports_a_name_of_a_module_that_does_not_exist_as_unknown() -> None:
    """docs/mutation-testing.rst: "A name this checkout's code has no mutant of is reported ``unknown``".
    A name whose module is misspelt or was moved (``imports.manifst``) is one, but ``check`` stops with
    ``FileNotFoundError`` from mutmut's copy and a traceback, and checks none of the other names given."""
    import subprocess
    import sys

    pytest.importorskip("mutmut")  # the mutation tooling's venv (.venv), not the floor Airflow's
    repo = Path(__file__).resolve().parents[2]
    bad = "airflow_provider_imagesearch.imports.manifst.x_url_text__mutmut_1"
    result = subprocess.run(
        [
            sys.executable,
            "scripts/mutation.py",
            "check",
            bad,
            "--tests",
            "tests/imports/test_engine_adaptive_limit.py::test_a_row_waits_out_its_timeout_when_no_slot_frees",
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert "Traceback" not in result.stderr, result.stderr[-1500:]
    assert f"unknown  {bad}" in result.stdout, result.stdout[-1500:]


REPO = Path(__file__).resolve().parents[2]
COMPAT_PYTHON = REPO / ".venv-compat" / "bin" / "python"

_XCOM_CHILD = r"""
import http.server, threading, types
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"path,tag.color\nhttps://shop.obs.x/1.jpg,red\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
threading.Thread(target=srv.serve_forever, daemon=True).start()
from airflow.sdk import ObjectStoragePath
from airflow.sdk.bases.xcom import BaseXCom
from airflow_provider_imagesearch.errors import ImageSearchValidationError
from airflow_provider_imagesearch.imports.manifest import read_chunks
url = f"http://127.0.0.1:{srv.server_address[1]}/m.csv?X-Amz-Signature=abcdefghijk"
# What the import task receives when an upstream task returned the path (manifest=upstream.output).
stored = BaseXCom.serialize_value(ObjectStoragePath(url))
manifest = BaseXCom.deserialize_value(types.SimpleNamespace(value=stored))
try:
    rows = [r for chunk in read_chunks(manifest) for r in chunk]
    print("ROWS", len(rows))
except ImageSearchValidationError as error:
    print("ERROR", error)
"""


@pytest.mark.skipif(not COMPAT_PYTHON.exists(), reason="needs .venv-compat (make compat-install)")
def test_an_http_objectstoragepath_manifest_from_xcom_reads_on_the_floor_airflow() -> None:
    """951637a reads an http(s) ``ObjectStoragePath`` by its ``.path`` because 3.1.8 prints it with its
    scheme twice. But 3.1.8's serde (XCom, and the serialized DAG ``dag.test()`` runs its tasks from)
    stores ``str(path)``, so the path that comes back holds the doubled scheme in ``.path`` as well: an
    upstream task returning ``ObjectStoragePath("https://<presigned>")`` to ``manifest=upstream.output``
    still fails with "Invalid manifest 'http://http://127.0.0.1:...': ... gaierror", the error 951637a
    and its CHANGELOG entry ("on every supported Airflow") say is gone."""
    import subprocess

    result = subprocess.run(
        [str(COMPAT_PYTHON), "-c", _XCOM_CHILD], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert "ROWS 1" in result.stdout, result.stdout[-1500:] + result.stderr[-1500:]


@pytest.mark.usefixtures("airflow_db")
def test_an_http_objectstoragepath_manifest_imports_in_a_dag_run(
    emulator: Emulator,
    imagesearch_conn: Callable[..., str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``ImageSearchImportImagesOperator(manifest=ObjectStoragePath(presigned_url))`` run by ``dag.test()``
    (the form docs/bulk-import.rst documents). On 3.3 the row is added; on the floor 3.1.8 the task fails
    with the doubled scheme of the original bug, and its Rendered Template shows the path with the scheme
    three times. Run it with .venv-compat's python to see it fail."""
    from airflow.sdk import DAG, ObjectStoragePath

    from airflow_provider_imagesearch.operators.import_images import ImageSearchImportImagesOperator
    from tests.support.dagrun import run_dag, states, xcom

    instance = "r25d-osp"
    emulator.upsert_instance(instance, project_id=DEFAULT_PROJECT_ID, tags=["color"], images={})
    sqlite_connection(monkeypatch, "r25d_ledger", tmp_path / "ledger.db").dispose()
    with LoopbackStore() as store:
        url = store.put("manifest.csv", Answer(200, f"path,tag.color\n{BUCKET}/a.jpg,red\n".encode()))
        url += f"?X-Amz-Signature={secrets.token_hex(16)}"
        with DAG("r25d_osp_manifest", schedule=None, start_date=datetime.datetime(2026, 1, 1)) as dag:
            ImageSearchImportImagesOperator(
                task_id="import_catalog",
                instance_name=instance,
                manifest=ObjectStoragePath(url),
                ledger_conn_id="r25d_ledger",
                imagesearch_conn_id=imagesearch_conn("aksk", max_attempts=1),
            )
        run = run_dag(dag)
    assert str(run.state) == "success", states(run)
    assert xcom(run, "import_catalog")["added"] == 1


_SAMPLE_CHILD = r"""
import sys
sys.path.insert(0, "scripts")
import mutation

left_out = "tests/review/test_review_r25d.py::test_check_reports_a_name_of_a_module_that_does_not_exist_as_unknown"
sampled = mutation.load_sample()[0]  # the sample's first mutant, with the tests that kill it
# The same mutant again, as recorded with a test that is now marked not_in_mutation_run.
mutation.load_sample = lambda: [sampled, mutation.SampleEntry(sampled.function, sampled.key, [left_out])]
sys.exit(mutation.sample())
"""


@pytest.mark.not_in_mutation_run
def test_the_sample_does_not_call_a_mutant_whose_tests_are_left_out_a_survivor() -> None:
    """239be53: "the sample now also reports a left-out test". It does, in the control run ("1 of the
    named tests never run for a mutant ... left out here too"), and then runs the entry anyway: pytest
    deselects everything (exit 5), the mutant is printed ``SURVIVED ... (pytest exit 5: the tests did not
    run)`` and the sample fails with "a sampled mutant survived: a test that killed it no longer does".
    No test stopped killing it; the test was left out. Such an entry is stale like one whose tests were
    removed (``none of its tests exists any more``), not a survivor."""
    import subprocess
    import sys

    pytest.importorskip("mutmut")  # the mutation tooling's venv (.venv), not the floor Airflow's
    result = subprocess.run(
        [sys.executable, "-c", _SAMPLE_CHILD], cwd=REPO, capture_output=True, text=True, timeout=900
    )
    assert "left out here too" in result.stdout, result.stdout[-1500:] + result.stderr[-1500:]
    assert "(pytest exit 5" not in result.stdout, result.stdout[-1500:]
    assert "a test that killed it no longer does" not in result.stderr, result.stderr[-1500:]
