"""A delete the hook sent twice: the first took effect but its answer was lost, so the hook's retry was
refused (nothing left to delete). The read-back finds the image gone: this task deleted it."""

from __future__ import annotations

from collections.abc import Callable

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.emulator.routes import R_DELETE_IMAGE
from airflow_provider_imagesearch.operators.imagesearch import ImageSearchDeleteImageOperator
from tests.imports.conftest import obs


def test_a_delete_whose_answer_was_lost_and_whose_retry_was_refused_reports_the_image_deleted(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    path = obs("k6e/lost-delete.jpg")
    emulator.upsert_instance("k6e-lost", status="NORMAL", images={path: {"tags": {}}})
    emulator.set_faults(sequence=["503_after"])
    op = ImageSearchDeleteImageOperator(
        task_id="delete",
        instance_name="k6e-lost",
        path=path,
        imagesearch_conn_id=imagesearch_conn("token", max_attempts=3, backoff_initial=0.01),
    )
    assert op.execute({}) is True
    assert [r["status"] for r in emulator.requests_log() if r["route"] == R_DELETE_IMAGE][:2] == [503, 400]
