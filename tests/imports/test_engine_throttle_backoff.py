"""A row throttled by 429s that give no usable ``Retry-After`` waits the connection's exponential
backoff between its sends (``backoff_initial`` doubling, at most ``backoff_max``), then lands.

Only lower bounds are asserted (a wait never ends early; how much later it ends is the scheduler's)."""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise
from typing import Any

from airflow_provider_imagesearch.emulator import Emulator
from tests.imports.conftest import add_requests, library, obs


def test_a_row_throttled_without_retry_after_backs_off_exponentially_then_lands(
    imagesearch_conn: Callable[..., str], emulator: Emulator, catalog: str, ledger_conn: dict[str, Any]
) -> None:
    from airflow_provider_imagesearch.operators.import_images import ImageSearchImportImagesOperator

    conn_id = imagesearch_conn("aksk", backoff_initial=0.05, backoff_max=0.1)
    emulator.set_faults(sequence=["429"] * 3, retry_after="soon")  # not seconds, not a date
    op = ImageSearchImportImagesOperator(
        task_id="import",
        instance_name=catalog,
        manifest=[{"path": obs("busy.jpg")}],
        imagesearch_conn_id=conn_id,
    )
    result = op.execute({"run_id": "run-1"})  # type: ignore[arg-type]

    assert (result["added"], result["failed"]) == (1, 0)
    assert obs("busy.jpg") in library(emulator)
    sends = add_requests(emulator)
    assert [r["status"] for r in sends] == [429, 429, 429, 200]
    gaps = [later["ts"] - earlier["ts"] for earlier, later in pairwise(sends)]
    # Each wait is at least its backoff (a wait never ends early): 0.05 s, then doubled, capped at 0.1 s.
    assert gaps[0] >= 0.05, gaps
    assert gaps[1] >= 0.1, gaps
    assert gaps[2] >= 0.1, gaps
