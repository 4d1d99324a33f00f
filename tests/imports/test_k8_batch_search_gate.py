"""A batch search left at its default ``max_concurrency`` runs eight searches at once, as documented (the
eighth mutation sitting's survivor: every batch test passed its own). Nine queries, the first eight
searches to reach the emulator slow: with eight in flight the ninth waits for a slow one to end, so a slow
answer comes first; with nine, the ninth would be answered first. Which query arrives first is the
threads' choice, so the log is read for faults, not names."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from airflow_provider_imagesearch.emulator.routes import R_SEARCH
from tests.imports.conftest import INSTANCE, obs
from tests.support.sqlite_connection import sqlite_connection

RESULTS_CONN = "k8_gate_results_db"


def test_a_batch_at_its_defaults_runs_eight_searches_at_once(
    emulator: Emulator,
    imagesearch_conn: Callable[..., str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airflow_provider_imagesearch.operators.imagesearch import ImageSearchSearchImagesOperator

    paths = [obs(f"gate/{i}.jpg") for i in range(9)]
    emulator.upsert_instance(INSTANCE, project_id=DEFAULT_PROJECT_ID, images={p: {"tags": {}} for p in paths})
    engine = sqlite_connection(monkeypatch, RESULTS_CONN, tmp_path / "results.db")
    operator = ImageSearchSearchImagesOperator(
        task_id="search",
        instance_name=INSTANCE,
        queries=[{"query_id": f"q{i}", "path": p} for i, p in enumerate(paths)],
        imagesearch_conn_id=imagesearch_conn("token", max_attempts=1),
        results_conn_id=RESULTS_CONN,
        limit=1,
    )
    emulator.set_faults(sequence=["slow"] * 8, slow_seconds=1.0, scope="api")
    try:
        operator.execute({"run_id": "gate"})  # type: ignore[arg-type]
    finally:
        engine.dispose()
    searches = [r for r in emulator.requests_log() if r["route"] == R_SEARCH]
    assert len(searches) == 9
    assert searches[0]["fault"] == "slow"
