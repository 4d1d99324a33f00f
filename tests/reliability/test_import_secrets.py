"""The secrets audit over a bulk import: its logs (at DEBUG), XCom and failure message leak nothing.

IAM password auth (the token is issued, cached and sent on every request), ambiguous adds reconciled,
throttling and an invalid row that fails the task: the autouse ``audit`` fixture searches everything
for the password, the keys and every issued token.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.operators.import_images import ImageSearchImportImagesOperator
from airflow_provider_imagesearch.version_compat import AirflowFailException
from tests.imports.conftest import obs
from tests.reliability.support import SecretAudit, logger_levels
from tests.support.connections import connection_fields, env_name


def test_import_logs_xcom_and_failure_leak_nothing(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, audit: SecretAudit
) -> None:
    emulator.upsert_instance("audited", tags=["color"], images={})
    monkeypatch.setenv(
        env_name("imagesearch_default"), json.dumps(connection_fields(emulator.url, "iam_password"))
    )
    monkeypatch.setenv(
        env_name("imagesearch_archive_db"),
        json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "l.db")}),
    )
    emulator.set_faults(sequence=["503_after", "drop_after", "429"], retry_after="0.01")
    manifest = [{"path": obs(f"s/{i}.jpg"), "tags": {"color": "red"}} for i in range(20)]
    debug = dict.fromkeys(("urllib3", "requests", "airflow.task"), logging.DEBUG)
    with logger_levels(debug):
        op = ImageSearchImportImagesOperator(task_id="import", instance_name="audited", manifest=manifest)
        result = op.execute({"run_id": "audited"})  # type: ignore[arg-type]
        audit.xcom("import xcom", result)
        assert result["added"] + result["reconciled"] == 20
        failing = ImageSearchImportImagesOperator(
            task_id="import_bad", instance_name="audited", manifest=[*manifest, {"path": "obs://x"}]
        )
        with pytest.raises(AirflowFailException) as failure:
            failing.execute({"run_id": "audited-2"})  # type: ignore[arg-type]
        audit.exception("import failure", failure.value)
    assert emulator.stats()["tokens_issued"] >= 1
