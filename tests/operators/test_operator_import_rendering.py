"""Rendering the import operators' templates (v1 ``ImageSearchImportImagesOperator`` and v2
``ImageSearchV2ImportDataOperator``).

What a user sees after ``render_template_fields``: the manifest and the other fields rendered from the
task's context, with the Jinja environment the caller passes (its filters work), and a presigned manifest
URL's signature and credential registered with Airflow's secrets masker as soon as it is rendered, whether
the manifest is the URL's text or an ``ObjectStoragePath`` of it, so that the Rendered Template view (stored
right after rendering, before ``execute``) and every log line show them masked.
"""

from __future__ import annotations

import datetime
import json
import secrets
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
import pytest

from airflow_provider_imagesearch.emulator import DEFAULT_REGION, Emulator
from airflow_provider_imagesearch.operators.import_images import (
    ImageSearchImportImagesOperator,
    ImageSearchV2ImportDataOperator,
)
from tests.support.loopback_store import Answer, LoopbackStore
from tests.support.sqlite_connection import sqlite_connection

BUCKET = f"https://shop.obs.{DEFAULT_REGION}.myhuaweicloud.com"
URL = "https://shop.obs.cn-north-4.myhuaweicloud.com/manifests/{day}.csv"


def _operator(kind: str, **kwargs: Any) -> Any:
    if kind == "v1":
        return ImageSearchImportImagesOperator(task_id="import", instance_name="catalog", **kwargs)
    return ImageSearchV2ImportDataOperator(task_id="import", service_name="catalog", **kwargs)


def _presigned() -> tuple[str, str, str]:
    """A presigned URL never seen before by this process's masker, its signature and its credential."""
    signature = uuid.uuid4().hex + uuid.uuid4().hex
    credential = f"AKIA{uuid.uuid4().hex[:16].upper()}%2F20261202%2Fus-east-1%2Fs3%2Faws4_request"
    url = (
        "https://shop.obs.cn-north-4.myhuaweicloud.com/manifest.csv?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        f"&X-Amz-Credential={credential}&X-Amz-Expires=600&X-Amz-Signature={signature}"
    )
    return url, signature, credential


def _shown(text: str) -> str:
    from airflow.sdk._shared.secrets_masker import redact

    return str(redact(text))


@pytest.mark.parametrize("kind", ["v1", "v2"])
def test_the_manifest_and_ledger_render_from_the_context(kind: str) -> None:
    op = _operator(kind, manifest=URL.format(day="{{ ds }}"), ledger_table="ledger_{{ params.team }}")
    op.render_template_fields({"ds": "2026-12-02", "params": {"team": "shoes"}})
    assert op.manifest == URL.format(day="2026-12-02")
    assert op.ledger_table == "ledger_shoes"


@pytest.mark.parametrize("kind", ["v1", "v2"])
def test_the_callers_jinja_environment_renders_the_fields(kind: str) -> None:
    env = jinja2.Environment()
    env.filters["compact"] = lambda value: value.replace("-", "")
    op = _operator(kind, manifest=URL.format(day="{{ ds | compact }}"))
    op.render_template_fields({"ds": "2026-12-02"}, jinja_env=env)
    assert op.manifest == URL.format(day="20261202")


@pytest.mark.parametrize("kind", ["v1", "v2"])
def test_a_rendered_presigned_url_is_masked_before_execute(kind: str) -> None:
    url, signature, credential = _presigned()
    assert signature in _shown(url)  # the control: nothing masks it before the render
    op = _operator(kind, manifest="{{ params.url }}")
    op.render_template_fields({"params": {"url": url}})
    assert op.manifest == url
    shown = _shown(f"manifest: {op.manifest}")
    assert signature not in shown
    assert credential not in shown
    assert "https://shop.obs.cn-north-4.myhuaweicloud.com/manifest.csv?" in shown


@pytest.mark.parametrize("kind", ["v1", "v2"])
def test_a_presigned_objectstoragepath_manifest_is_masked_when_rendered(kind: str) -> None:
    from airflow.sdk import ObjectStoragePath

    url, signature, credential = _presigned()
    assert signature in _shown(url)  # the control: nothing masks it before the render
    op = _operator(kind, manifest=ObjectStoragePath(url))
    op.render_template_fields({})
    # The Rendered Template view stores the path's URL right after rendering: it must show it masked.
    shown = _shown(f"manifest: {op.manifest}")
    assert signature not in shown
    assert credential not in shown


def _fresh(prefix: str) -> str:
    """A secret never seen before by this process's masker."""
    return prefix + uuid.uuid4().hex[:20]


@pytest.mark.parametrize(
    "template",
    [
        "s3://AKIAEXAMPLE:{secret}@catalogue/manifest.csv",
        "https://alice:{secret}@files.example.com/manifest.csv?to=ops@example.com",
        "gs://bucket/m.csv?X-Goog-Credential=svc&X-Goog-Signature={secret}",
        "https://acct.blob.core.windows.net/exports/manifest.csv?sv=2022-11-02&sp=r&sig={secret}",
    ],
    ids=["store-url-key-and-secret", "https-user-and-password", "gcs-signature", "azure-sas-sig"],
)
@pytest.mark.parametrize("kind", ["v1", "v2"])
def test_a_rendered_urls_password_or_signature_is_masked_before_execute(kind: str, template: str) -> None:
    """Any scheme's ``user:password@`` and any presigned URL's signature (S3, OBS, GCS, an Azure SAS's
    ``sig``) are masked as soon as the manifest is rendered, in the view and in every log line."""
    secret = _fresh("s3cr/t%2B")
    url = template.format(secret=secret)
    assert secret in _shown(url)  # the control: nothing masks it before the render
    op = _operator(kind, manifest="{{ params.url }}")
    op.render_template_fields({"params": {"url": url}})
    assert op.manifest == url
    shown = _shown(f"manifest: {op.manifest}")
    assert secret not in shown
    assert "s3cr" not in shown


@pytest.mark.parametrize("kind", ["v1", "v2"])
def test_an_https_objectstoragepath_with_a_password_is_masked_when_rendered(kind: str) -> None:
    """The path's text, which Airflow stores in the Rendered Template view, holds the password."""
    from airflow.sdk import ObjectStoragePath

    password = _fresh("pw")
    path = ObjectStoragePath(f"https://alice:{password}@files.example.com/manifest.csv")
    assert password in _shown(str(path))  # the control
    op = _operator(kind, manifest=path)
    op.render_template_fields({})
    assert password not in _shown(f"manifest: {op.manifest}")


@pytest.mark.parametrize("kind", ["v1", "v2"])
def test_a_list_manifest_renders_each_rows_templates(kind: str) -> None:
    op = _operator(kind, manifest=[{"path": URL.format(day="{{ ds }}")}])
    op.render_template_fields({"ds": "2026-12-02"})
    assert op.manifest == [{"path": URL.format(day="2026-12-02")}]


@pytest.mark.usefixtures("airflow_db")
def test_a_sharded_v2_imports_presigned_manifest_shows_masked_in_each_shards_rendered_template(
    emulator: Emulator,
    imagesearch_conn: Callable[..., str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The v2 twin of the sharded import (``.partial(manifest=...).expand(shard=...)``): Airflow renders a
    mapped task without the operator's ``render_template_fields``, yet each shard's Rendered Template shows
    the presigned manifest's signature and credential masked, and the shards import every item."""
    from airflow import settings
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.sdk import DAG

    from tests.support.dagrun import run_dag, states

    service = "r25d-sharded-v2"
    emulator.upsert_v2_service(service, custom_tags=["color"], items={})
    engine = sqlite_connection(monkeypatch, "mapped_v2_ledger", tmp_path / "ledger.db")
    engine.dispose()
    signature = secrets.token_hex(16)
    credential = "AKIA" + secrets.token_hex(8).upper()
    rows = "".join(f"item-{n},{BUCKET}/{n}.jpg,red\n" for n in range(4))
    with LoopbackStore() as store:
        url = store.put("manifest.csv", Answer(200, f"item_id,image_url,tag.color\n{rows}".encode()))
        url += f"?X-Amz-Credential={credential}%2F20260101%2Fus-east-1&X-Amz-Signature={signature}"
        with DAG("mapped_v2_rendered", schedule=None, start_date=datetime.datetime(2026, 1, 1)) as dag:
            ImageSearchV2ImportDataOperator.partial(
                task_id="import_catalog",
                service_name=service,
                manifest="{{ params.url }}",
                ledger_conn_id="mapped_v2_ledger",
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
    (state,) = [s for s in emulator.control.state().get("v2_services", []) if s["name"] == service]
    assert sorted(state["items"]) == [f"item-{n}" for n in range(4)]
