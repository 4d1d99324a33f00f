"""Review r26a: URL secrets registered with the secrets masker (1acdaab, ``mask_url_secrets``)."""

from __future__ import annotations

import datetime
import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from airflow_provider_imagesearch.mixins import mask_presigned_urls
from tests.support.loopback_store import Answer, LoopbackStore
from tests.support.sqlite_connection import sqlite_connection


def _shown(text: str) -> str:
    from airflow.sdk._shared.secrets_masker import redact

    return str(redact(text))


def _fresh(prefix: str) -> str:
    """A secret never seen before by this process's masker (it is process-global)."""
    return prefix + uuid.uuid4().hex[:12]


def test_a_path_with_a_timestamp_and_an_at_sign_masks_no_timestamp() -> None:
    """Found by review r26a: everything between a path's first ':' and its last '@' was taken for a
    password (here a timestamp's ``00:00+00:00``), so every later log line with a timestamp showed ``***``.
    Now only a reading whose user part is a name (no / ? #) is user info."""
    """No user info here: ``bucket/runs/2026-12-01T00`` cannot be a URL's user (it holds '/')."""
    mask_presigned_urls(["s3://bucket/runs/2026-12-01T00:00:00+00:00@v2/manifest.csv"])
    line = "Marking task as SUCCESS. logical_date=2026-12-02T00:00:00+00:00"
    assert _shown(line) == line


def test_a_password_with_a_slash_and_an_at_sign_is_masked_on_its_own() -> None:
    """Found by review r26a: a password holding '/' and '@', in a URL whose query holds an '@', was
    masked only as part of a longer string. Now each '@' is tried as the end of the user info."""
    password = _fresh("ab/c@d")
    mask_presigned_urls([f"s3://KEY:{password}@bucket/manifest.csv?owner=ops@example.com"])
    assert password not in _shown(f"connection KEY:{password}")


def test_an_http_manifest_with_user_info_is_read_or_refused_naming_the_user_info() -> None:
    """Found by review r26a: a download sends no credentials, so ``user:password@host`` was resolved as a
    host name ("Name or service not known"). Now refused, naming what to use instead."""
    from airflow_provider_imagesearch.imports.manifest import _open

    password = _fresh("pw")
    with LoopbackStore() as store:
        url = store.put("manifest.csv", Answer(200, b"path\nhttps://x/a.jpg\n"))
        url = url.replace("://", f"://alice:{password}@", 1)
        try:
            body = _open(url).read()
        except Exception as error:  # refused: the message must say what is wrong with the URL
            message = str(error)
            assert password not in message
            assert "user" in message.lower() or "password" in message.lower(), message
        else:
            assert body.startswith(b"path")


def test_a_short_password_is_left_unmasked_by_airflow_not_by_the_provider() -> None:
    """Airflow's masker skips secrets under ``[logging] min_length_masked_secret`` (5): a 4-character
    password shows. The same rule as for a connection's password: noted, acceptable."""
    password = uuid.uuid4().hex[:4]
    mask_presigned_urls([f"s3://KEY:{password}@bucket/manifest.csv"])
    assert password in _shown(f"s3://KEY:{password}@bucket/manifest.csv")


@pytest.mark.usefixtures("airflow_db")
def test_manifests_mapped_from_an_upstream_xcom_show_masked_in_the_rendered_template(
    emulator: Emulator,
    imagesearch_conn: Callable[..., str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``.partial(...).expand(manifest=upstream())``: each mapped manifest (a URL's password, a GCS
    signature) comes from XCom, never through Jinja; the Rendered Template view of each map index must
    show them masked. (Both tasks fail reading: the view is stored before ``execute``.)"""
    from airflow import settings
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.sdk import DAG, task

    from airflow_provider_imagesearch.operators.import_images import ImageSearchImportImagesOperator
    from tests.support.dagrun import run_dag

    instance = "r26a-mapped"
    emulator.upsert_instance(instance, project_id=DEFAULT_PROJECT_ID, tags=["color"], images={})
    sqlite_connection(monkeypatch, "r26a_ledger", tmp_path / "ledger.db").dispose()
    password = _fresh("pw/")
    signature = _fresh("sig")
    urls = [
        f"http://alice:{password.replace('/', '%2F')}@127.0.0.1:9/manifest.csv",
        f"gs://bucket/manifest.csv?X-Goog-Credential=svc&X-Goog-Signature={signature}",
    ]
    with DAG("r26a_mapped_manifests", schedule=None, start_date=datetime.datetime(2026, 1, 1)) as dag:

        @task
        def manifests() -> list[str]:
            return urls

        ImageSearchImportImagesOperator.partial(
            task_id="import_catalog",
            instance_name=instance,
            ledger_conn_id="r26a_ledger",
            imagesearch_conn_id=imagesearch_conn("aksk", max_attempts=1),
        ).expand(manifest=manifests())
    run_dag(dag)
    with settings.Session() as session:  # type: ignore[misc]
        rendered = (
            session.query(RenderedTaskInstanceFields)
            .filter_by(dag_id=dag.dag_id, task_id="import_catalog")
            .all()
        )
    assert len(rendered) == 2
    shown = json.dumps([row.rendered_fields for row in rendered])
    assert "127.0.0.1:9/manifest.csv" in shown, shown
    assert password.replace("/", "%2F") not in shown, shown
    assert signature not in shown, shown


def test_an_objectstoragepaths_password_is_masked_when_the_manifest_is_opened() -> None:
    """Not only when a template is rendered: a manifest passed as a path object to the reader (a task
    calling it directly) has its password masked as it is opened, even when opening it then fails."""
    from airflow.sdk import ObjectStoragePath

    from airflow_provider_imagesearch.imports.manifest import read_chunks

    password = _fresh("pw")
    with pytest.raises(ValueError, match="No filesystem registered"):  # only the masking matters here
        list(read_chunks(ObjectStoragePath(f"memory://KEY:{password}@bucket/m.csv")))
    assert password not in _shown(f"password {password}")


def test_an_http_manifest_with_user_info_is_refused_before_any_request(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    from airflow_provider_imagesearch.operators.import_images import ImageSearchImportImagesOperator
    from airflow_provider_imagesearch.version_compat import AirflowFailException

    password = _fresh("pw")
    op = ImageSearchImportImagesOperator(
        task_id="import",
        instance_name="catalog",
        manifest=f"https://alice:{password}@files.example.com/manifest.csv",
        imagesearch_conn_id=imagesearch_conn("token"),
    )
    with pytest.raises(AirflowFailException, match="without user:password@") as refused:
        op.execute({})
    assert password not in str(refused.value)
    assert emulator.requests_log() == []
