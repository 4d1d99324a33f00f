"""The secrets audit over a batch search: its logs (at DEBUG), XCom and failure message leak nothing.

IAM password auth (the token is issued, cached and sent on every request), a throttled search retried,
and an unknown query image that fails the task: the autouse ``audit`` fixture searches everything for
the password, the keys and every issued token.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.operators.imagesearch import ImageSearchSearchImagesOperator
from airflow_provider_imagesearch.version_compat import AirflowFailException
from tests.imports.conftest import obs
from tests.reliability.support import SecretAudit, logger_levels
from tests.support.connections import connection_fields, env_name


def test_batch_search_logs_xcom_and_failure_leak_nothing(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, audit: SecretAudit
) -> None:
    images = {obs(f"s/{i}.jpg"): {"tags": {"color": "red"}} for i in range(12)}
    emulator.upsert_instance("audited", tags=["color"], images=images)
    monkeypatch.setenv(
        env_name("imagesearch_default"), json.dumps(connection_fields(emulator.url, "iam_password"))
    )
    monkeypatch.setenv(
        env_name("imagesearch_archive_db"),
        json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "r.db")}),
    )
    emulator.set_faults(sequence=["429", "503_json"], retry_after="0.01")
    queries = [{"query_id": f"q{i}", "path": path} for i, path in enumerate(images)]
    debug = dict.fromkeys(("urllib3", "requests", "airflow.task"), logging.DEBUG)
    with logger_levels(debug):
        op = ImageSearchSearchImagesOperator(task_id="search", instance_name="audited", queries=queries)
        result = op.execute({"run_id": "audited"})  # type: ignore[arg-type]
        audit.xcom("search xcom", result)
        assert (result["queries"], result["failed"]) == (12, 0)
        failing = ImageSearchSearchImagesOperator(
            task_id="search_bad",
            instance_name="audited",
            queries=[*queries, {"query_id": "gone", "path": obs("gone.jpg")}],
        )
        with pytest.raises(AirflowFailException) as failure:
            failing.execute({"run_id": "audited-2"})  # type: ignore[arg-type]
        audit.exception("search failure", failure.value)
    assert emulator.stats()["tokens_issued"] >= 1
