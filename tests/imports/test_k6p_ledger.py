"""The ledger's write-ahead intents: the row's manifest number, no request answered yet."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_imagesearch.imports.ledger import Ledger, LedgerEntry


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Any]:
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield engine
    engine.dispose()


def test_an_intent_keeps_the_rows_number_and_counts_no_attempt_yet(engine: Any) -> None:
    ledger = Ledger(engine, "imagesearch_import_ledger", "k6p-ledger", "run-1")
    ledger.create_if_missing()
    ledger.intend([LedgerEntry("k1", "k1.jpg", "1" * 32, "added", None, None, 17, 3)])
    [row] = ledger.rows()
    assert (row["outcome"], row["held_fingerprint"]) == ("sending", "?")
    assert (row["row_number"], row["attempts"]) == (17, 0)
