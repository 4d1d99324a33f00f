"""A manifest in an S3-compatible object store: moto's S3 server on loopback.

Two ways in: ``manifest="s3://bucket/key.csv"`` with ``manifest_conn_id`` an ``aws`` connection whose
``endpoint_url`` points at the store (Airflow's ``ObjectStoragePath``; the ``[s3]`` extra,
apache-airflow-providers-amazon with s3fs), and a presigned HTTPS URL (signature v4, expiring), which
needs no connection. ``scripts/ensure-moto.sh`` (run by ``make test``) installs the extra and moto into
the project's venv (constraints.txt pins python-dateutil 2.9, which botocore accepts); boto3 creates
the bucket, uploads the manifests and signs the URLs. moto 5 checks neither the signature nor the
expiry of a presigned GET, so the refused URLs here are a missing object (404) and an object a bucket
policy denies (403, what S3 answers an expired URL with).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.errors import ImageSearchConfigError, ImageSearchValidationError
from airflow_provider_imagesearch.imports.manifest import CHUNK_ROWS, read_chunks
from tests.imports.conftest import LEDGER_CONN, add_requests, library, obs
from tests.support.connections import set_connection
from tests.support.waiting import wait_until

RunImport = Callable[..., dict[str, Any]]

REPO = Path(__file__).resolve().parents[2]
MOTO_SERVER = Path(sys.executable).with_name("moto_server")
MOTO_PYTHON = Path(sys.executable)
AWS_CONN = "manifests_s3"
BUCKET = "catalogue-manifests"
# Made-up credentials: moto accepts any; what matters is that the URL carries a credential and a signature.
ACCESS_KEY = "AKIAMOTOTESTKEY00001"
SECRET_KEY = "moto-test-secret-key"

ROWS = [
    {"path": obs("s3/1.jpg"), "tag.color": "red", "tag.size": ""},
    {"path": obs("s3/2.jpg"), "tags": json.dumps({"color": "blue", "size": ["S", "M"]})},
    {"path": obs("s3/3 é.jpg"), "tag.color": "green", "tag.size": "L"},
]
EXPECTED = {
    obs("s3/1.jpg"): {"color": "red"},
    obs("s3/2.jpg"): {"color": "blue", "size": ["S", "M"]},
    obs("s3/3 é.jpg"): {"color": "green", "size": "L"},
}
BIG_ROWS = 12_000  # more than two chunks of CHUNK_ROWS
REPEATED_PATHS = 30

# Runs in a child (no AWS_* variable of the test's environment reaches boto3): reads a JSON job on stdin,
# prints {key: url}.
_S3_JOB = """
import json, sys
import boto3
from botocore.config import Config
job = json.load(sys.stdin)
s3 = boto3.client(
    "s3", endpoint_url=job["endpoint"], region_name="us-east-1",
    aws_access_key_id=job["access_key"], aws_secret_access_key=job["secret_key"],
    config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
)
s3.create_bucket(Bucket=job["bucket"])
s3.put_bucket_policy(Bucket=job["bucket"], Policy=json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
                   "Resource": "arn:aws:s3:::%s/denied/*" % job["bucket"]}],
}))
for key, source in job["upload"].items():
    s3.upload_file(source, job["bucket"], key)
print(json.dumps({
    key: s3.generate_presigned_url(
        "get_object", Params={"Bucket": job["bucket"], "Key": key}, ExpiresIn=job["expires"]
    )
    for key in job["presign"]
}))
"""


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_manifests(folder: Path) -> dict[str, str]:
    """key -> local file: the three rows as CSV (plain, gzip), JSON lines, Parquet; a 12,000-row CSV."""
    import pandas as pd

    frame = pd.DataFrame(ROWS).fillna("")
    files = {"manifest.csv": folder / "manifest.csv", "manifest.jsonl": folder / "manifest.jsonl"}
    frame.to_csv(files["manifest.csv"], index=False)
    files["manifest.csv.gz"] = folder / "manifest.csv.gz"
    frame.to_csv(files["manifest.csv.gz"], index=False, compression="gzip")
    files["manifest.jsonl"].write_text(
        "".join(json.dumps({k: v for k, v in r.items() if v}, ensure_ascii=False) + "\n" for r in ROWS),
        "utf-8",
    )
    with contextlib.suppress(ImportError):
        import pyarrow  # noqa: F401

        files["manifest.parquet"] = folder / "manifest.parquet"
        frame.to_parquet(files["manifest.parquet"], index=False)
    files["big.csv"] = folder / "big.csv"
    pd.DataFrame({"path": [obs(f"big/{i}.jpg") for i in range(BIG_ROWS)]}).to_csv(
        files["big.csv"], index=False
    )
    # The same 12,000 rows over 30 paths: the operator reads every chunk, and adds only 30 images.
    files["repeats.csv"] = folder / "repeats.csv"
    pd.DataFrame({"path": [obs(f"repeat/{i % REPEATED_PATHS}.jpg") for i in range(BIG_ROWS)]}).to_csv(
        files["repeats.csv"], index=False
    )
    files["denied/manifest.csv"] = files["manifest.csv"]
    files["masked/manifest.jsonl"] = files["manifest.jsonl"]  # read by one test only: its own signature
    return {key: str(path) for key, path in files.items()}


@dataclass(frozen=True)
class MotoS3:
    """moto's S3 server with the bucket, and a presigned GET URL (signature v4, 10 minutes) per key."""

    endpoint: str
    urls: dict[str, str]


@pytest.fixture(scope="module")
def moto_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoS3]:
    if not MOTO_SERVER.exists():
        pytest.skip(f"{MOTO_SERVER} is missing: run scripts/ensure-moto.sh (make test does)")
    pytest.importorskip("airflow.providers.amazon", reason="the [s3] extra: run scripts/ensure-moto.sh")
    import requests

    folder = tmp_path_factory.mktemp("moto")
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = (folder / "moto.log").open("wb")
    # Its own process group, so the stop below reaches the server and anything it spawned.
    process = subprocess.Popen(
        [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:

        def up() -> bool:
            if process.poll() is not None:
                return True
            with contextlib.suppress(requests.RequestException):
                return requests.get(f"{endpoint}/moto-api/", timeout=2).ok
            return False

        wait_until(up, bool, timeout=60)
        assert process.poll() is None, (folder / "moto.log").read_text(errors="replace")[-2000:]
        upload = _write_manifests(folder)
        job = {
            "endpoint": endpoint,
            "access_key": ACCESS_KEY,
            "secret_key": SECRET_KEY,
            "bucket": BUCKET,
            "upload": upload,
            "presign": [*upload, "missing.csv"],
            "expires": 600,
        }
        done = subprocess.run(
            [str(MOTO_PYTHON), "-c", _S3_JOB],
            input=json.dumps(job),
            capture_output=True,
            text=True,
            timeout=120,
            env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        )
        assert done.returncode == 0, done.stderr[-2000:]
        yield MotoS3(endpoint, json.loads(done.stdout))
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        log.close()


@pytest.fixture
def sqlite_ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    set_connection(monkeypatch, LEDGER_CONN, conn_type="sqlite", host=str(tmp_path / "ledger.db"))


def _secrets(url: str) -> list[str]:
    """The parts of a presigned URL that must never be shown: its signature and its credential."""
    query = parse_qs(urlsplit(url).query)
    signature, credential = query["X-Amz-Signature"][0], query["X-Amz-Credential"][0]
    assert len(signature) == 64, url  # a real v4 signature, so its absence below means something
    return [signature, credential, ACCESS_KEY, urlsplit(url).query]


def _kinds() -> list[str]:
    kinds = ["csv", "csv.gz", "jsonl"]
    with contextlib.suppress(ImportError):
        import pyarrow  # noqa: F401

        kinds.append("parquet")
    return kinds


def test_presigned_urls_are_signed_v4(moto_s3: MotoS3) -> None:
    for key, url in moto_s3.urls.items():
        assert url.startswith(f"{moto_s3.endpoint}/{BUCKET}/"), key
        query = parse_qs(urlsplit(url).query)
        assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
        assert query["X-Amz-Expires"] == ["600"]


@pytest.mark.parametrize("kind", _kinds())
def test_presigned_url_manifest_imports_then_rerun_sends_nothing(
    moto_s3: MotoS3, run_import: RunImport, emulator: Emulator, sqlite_ledger: None, kind: str
) -> None:
    url = moto_s3.urls[f"manifest.{kind}"]
    result = run_import(url)
    assert (result["rows"], result["added"], result["invalid"]) == (3, 3, 0)
    assert library(emulator) == EXPECTED

    emulator.reset_stats()
    again = run_import(url)
    assert (again["rows"], again["unchanged"], again["added"]) == (3, 3, 0)
    assert emulator.stats()["requests_total"] == 0


def test_a_presigned_urls_signature_and_credential_are_masked_in_logs(moto_s3: MotoS3) -> None:
    """Whoever logs the URL (a DEBUG line of an HTTP library, a user's own task code), Airflow masks it."""
    from airflow.sdk._shared.secrets_masker import redact

    url = moto_s3.urls["masked/manifest.jsonl"]
    signature, credential = _secrets(url)[:2]
    assert signature in str(redact(f"GET {url}"))  # nothing masks it before the read
    assert sum(len(chunk) for chunk in read_chunks(url)) == 3
    logged = str(redact(f"GET {url}"))
    assert signature not in logged
    assert credential not in logged
    assert f"{moto_s3.endpoint}/{BUCKET}/masked/manifest.jsonl?" in logged


def test_http_objectstoragepath_manifest(
    moto_s3: MotoS3, run_import: RunImport, emulator: Emulator, sqlite_ledger: None
) -> None:
    """``ObjectStoragePath("https://...")``: Airflow registers no filesystem for http(s), the reader does."""
    from airflow.sdk import ObjectStoragePath

    result = run_import(ObjectStoragePath(moto_s3.urls["manifest.csv"]))
    assert result["added"] == 3
    assert library(emulator) == EXPECTED


def test_a_manifest_of_several_chunks_is_read_in_chunks(
    moto_s3: MotoS3, run_import: RunImport, emulator: Emulator, sqlite_ledger: None
) -> None:
    assert CHUNK_ROWS < BIG_ROWS
    sizes = [len(chunk) for chunk in read_chunks(moto_s3.urls["big.csv"])]
    assert sizes == [CHUNK_ROWS, CHUNK_ROWS, BIG_ROWS - 2 * CHUNK_ROWS]

    # Through the operator: every row of every chunk is counted; the last row of a path wins.
    result = run_import(moto_s3.urls["repeats.csv"])
    assert (result["rows"], result["duplicates"]) == (BIG_ROWS, BIG_ROWS - REPEATED_PATHS)
    assert (result["added"], result["failed"], result["invalid"]) == (REPEATED_PATHS, 0, 0)
    assert len(add_requests(emulator)) == REPEATED_PATHS


@pytest.mark.parametrize(
    ("key", "status"),
    [
        ("missing.csv", "HTTP 404: NoSuchKey: The specified key does not exist."),
        ("denied/manifest.csv", "HTTP 403"),
    ],
)
def test_a_refused_presigned_url_fails_naming_manifest_without_its_signature(
    moto_s3: MotoS3,
    run_import: RunImport,
    emulator: Emulator,
    sqlite_ledger: None,
    caplog: pytest.LogCaptureFixture,
    key: str,
    status: str,
) -> None:
    from airflow_provider_imagesearch.version_compat import AirflowFailException

    url = moto_s3.urls[key]
    caplog.set_level(logging.DEBUG)
    # The operator fails the task without retries: a refused URL does not become good by waiting.
    with pytest.raises(AirflowFailException) as raised:
        run_import(url)
    message = str(raised.value)
    assert message.startswith("Invalid manifest ")
    assert status in message
    assert f"{moto_s3.endpoint}/{BUCKET}/{key} " in message  # which object, without the query
    shown = "".join(traceback.format_exception(raised.value)) + repr(raised.value) + caplog.text
    for secret in _secrets(url):
        assert secret not in shown
    assert add_requests(emulator) == []


def test_an_unreachable_store_fails_naming_manifest_without_the_signature(
    moto_s3: MotoS3, caplog: pytest.LogCaptureFixture
) -> None:
    url = moto_s3.urls["manifest.csv"].replace(moto_s3.endpoint, f"http://127.0.0.1:{_free_port()}")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ImageSearchValidationError, match="manifest") as raised:
        list(read_chunks(url))
    shown = "".join(traceback.format_exception(raised.value)) + caplog.text
    for secret in _secrets(url):
        assert secret not in shown


@pytest.mark.parametrize(
    ("url", "secrets", "shown"),
    [
        (
            "https://b.obs.x.com/m.xlsx?AccessKeyId=HPUAOBSKEY0001&Expires=1&Signature=c2lnbmF0dXJl",
            ["HPUAOBSKEY0001", "c2lnbmF0dXJl"],
            "https://b.obs.x.com/m.xlsx?<query hidden>",
        ),
        ("https://alice:s3cr?et@b.obs.x.com/m.xlsx", ["alice", "s3cr"], "https://***@b.obs.x.com/m.xlsx"),
        ("https://h/m.xlsx?to=a@b&X-Amz-Signature=c2lnbmF0", ["c2lnbmF0", "to=a"], "https://***@b"),
    ],
)
def test_a_refused_file_name_does_not_show_the_urls_credential(
    url: str, secrets: list[str], shown: str
) -> None:
    """Regression: the 'file name ending in' error showed the URL's first 57 characters, query included."""
    with pytest.raises(ImageSearchValidationError, match="manifest") as raised:
        list(read_chunks(url))
    for secret in secrets:
        assert secret not in str(raised.value)
    assert shown in str(raised.value)


@pytest.fixture
def aws_conn(moto_s3: MotoS3, monkeypatch: pytest.MonkeyPatch) -> str:
    """An ``aws`` connection to the store, as a user would point one at OBS's S3-compatible endpoint."""
    return set_connection(
        monkeypatch,
        AWS_CONN,
        conn_type="aws",
        login=ACCESS_KEY,
        password=SECRET_KEY,
        extra={"endpoint_url": moto_s3.endpoint, "region_name": "us-east-1"},
    )


@pytest.mark.parametrize("kind", _kinds())
def test_s3_manifest_through_objectstoragepath_imports_then_rerun_sends_nothing(
    aws_conn: str, run_import: RunImport, emulator: Emulator, sqlite_ledger: None, kind: str
) -> None:
    url = f"s3://{BUCKET}/manifest.{kind}"
    result = run_import(url, manifest_conn_id=aws_conn)
    assert (result["rows"], result["added"], result["invalid"]) == (3, 3, 0)
    assert library(emulator) == EXPECTED
    emulator.reset_stats()
    again = run_import(url, manifest_conn_id=aws_conn)
    assert (again["unchanged"], again["added"]) == (3, 0)
    assert emulator.stats()["requests_total"] == 0


def test_an_s3_manifest_is_read_in_chunks_with_progress(
    aws_conn: str, run_import: RunImport, emulator: Emulator, sqlite_ledger: None
) -> None:
    result = run_import(f"s3://{BUCKET}/repeats.csv", manifest_conn_id=aws_conn)
    assert (result["rows"], result["added"]) == (BIG_ROWS, REPEATED_PATHS)


def test_a_missing_s3_object_fails_naming_manifest(
    aws_conn: str, run_import: RunImport, emulator: Emulator, sqlite_ledger: None
) -> None:
    from airflow_provider_imagesearch.version_compat import AirflowFailException

    with pytest.raises(
        AirflowFailException, match=r"Invalid manifest 's3://catalogue-manifests/missing.csv'"
    ):
        run_import(f"s3://{BUCKET}/missing.csv", manifest_conn_id=aws_conn)
    assert add_requests(emulator) == []


def test_an_s3_manifests_connection_of_another_type_is_refused_naming_manifest_conn_id(
    moto_s3: MotoS3, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A connection that exists but is not an ``aws`` one (Airflow's s3 filesystem would ignore it and
    use the worker's default credentials) is refused before anything is opened, naming the field."""
    set_connection(monkeypatch, "obs_not_aws", conn_type="sqlite", host=str(tmp_path / "x.db"))
    with pytest.raises(ImageSearchValidationError, match=r"manifest_conn_id.*of type 'sqlite'"):
        list(read_chunks(f"s3://{BUCKET}/manifest.csv", manifest_conn_id="obs_not_aws"))


def test_a_store_file_whose_read_fails_names_manifest(tmp_path: Path) -> None:
    """A read error of the store's file object (a connection dropped mid-read) names ``manifest``."""
    from airflow_provider_imagesearch.imports.manifest import _StoreFile

    path = tmp_path / "m.csv"
    path.write_text("path\n", "utf-8")
    handle = path.open("rb")
    store = _StoreFile(handle, "s3://bucket/m.csv?X-Amz-Signature=secretsecret")
    assert store.read(4) == b"path"
    handle.close()
    with pytest.raises(ImageSearchValidationError, match="manifest") as failure:
        store.read()
    assert "reading it failed: ValueError" in str(failure.value)
    assert "secretsecret" not in str(failure.value)
    for method, args in (("read1", (1,)), ("peek", (1,)), ("readlines", ())):
        with pytest.raises(ImageSearchValidationError, match="manifest"):
            getattr(store, method)(*args)
    assert not hasattr(_StoreFile(object(), "s3://bucket/m.csv"), "peek")  # absent stays absent


def test_manifest_conn_id_is_refused_beside_a_presigned_url(moto_s3: MotoS3) -> None:
    with pytest.raises(ImageSearchValidationError, match="manifest_conn_id"):
        list(read_chunks(moto_s3.urls["manifest.csv"], manifest_conn_id=AWS_CONN))


@pytest.mark.usefixtures("airflow_db")
def test_a_presigned_url_shows_masked_in_the_rendered_template(
    moto_s3: MotoS3,
    imagesearch_conn: Callable[..., str],
    catalog: str,
    emulator: Emulator,
    sqlite_ledger: None,
) -> None:
    """The Rendered Template view (the task instance's rendered fields, stored right after the templates
    are rendered, before ``execute``) shows the URL with its signature and credential masked."""
    import datetime

    import boto3
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.sdk import DAG
    from botocore.config import Config

    from airflow_provider_imagesearch.operators.import_images import ImageSearchImportImagesOperator
    from tests.support.dagrun import run_dag, states

    # Signed here, never seen before by this process's secrets masker (another test's URL would be).
    s3 = boto3.client(
        "s3",
        endpoint_url=moto_s3.endpoint,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET, "Key": "manifest.csv"}, ExpiresIn=1234
    )
    signature, credential = _secrets(url)[:2]
    with DAG("imagesearch_rendered_manifest", schedule=None, start_date=datetime.datetime(2026, 1, 1)) as dag:
        ImageSearchImportImagesOperator(
            task_id="import_catalog",
            instance_name=catalog,
            manifest="{{ params.url }}",
            params={"url": url},
            imagesearch_conn_id=imagesearch_conn("aksk"),
        )
    run = run_dag(dag)
    assert str(run.state) == "success", states(run)
    from airflow import settings

    with settings.Session() as session:  # type: ignore[misc]
        rendered = session.query(RenderedTaskInstanceFields).filter_by(dag_id=dag.dag_id).one()
    shown = json.dumps(rendered.rendered_fields)
    assert f"{moto_s3.endpoint}/{BUCKET}/manifest.csv?" in shown
    assert signature not in shown
    assert credential not in shown


def test_an_s3_manifest_without_s3_support_names_the_missing_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """When Airflow loaded no s3 filesystem (the amazon provider is not installed, or a release too old for
    this Airflow failed to import), the error says so and names the [s3] extra, not "Invalid manifest"."""
    from airflow.sdk.io import fs

    monkeypatch.setattr(fs, "_register_filesystems", lambda: {"file": None, "local": None})
    with pytest.raises(ImageSearchConfigError) as raised:
        list(read_chunks(f"s3://{BUCKET}/manifest.csv", manifest_conn_id=AWS_CONN))
    message = str(raised.value)
    assert "s3 support is missing or failed to import" in message, message
    assert "airflow-provider-imagesearch[s3]" in message, message
    assert "apache-airflow-providers-amazon[s3fs]>=" in message, message
    assert "Invalid manifest" not in message, message
