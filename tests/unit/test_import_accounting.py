"""What the import writes to its ledger for one outcome."""

from __future__ import annotations

from typing import Any

from airflow_provider_imagesearch.imports.engine import ImportEngine, ImportResult, Outcome, Tally
from airflow_provider_imagesearch.imports.ledger import LedgerEntry
from airflow_provider_imagesearch.imports.manifest import ManifestRow
from airflow_provider_imagesearch.imports.plan import Work


def test_a_failure_message_with_a_nul_is_stored_without_it() -> None:
    # PostgreSQL refuses NUL in text: one such message (from the service or an OS error) failed the
    # whole batch's ledger write, losing the outcomes of the good rows beside it.
    row = ManifestRow(row=3, path="https://b.obs.cn-north-4.myhuaweicloud.com/a.jpg", tags={}, file=None,
                      fingerprint="f" * 32, invalid=None)  # fmt: skip
    outcome = Outcome(Work("add", row, "k" * 32), "failed", Tally(requests=1), "IS.0001", "bad\x00 answer")
    pending: list[LedgerEntry] = []
    engine: Any = ImportEngine.__new__(ImportEngine)
    engine._account(outcome, ImportResult(rows=1), pending, [])
    assert [entry.error_message for entry in pending] == ["bad answer"]
