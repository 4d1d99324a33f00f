"""What a ledger reads back is its own target's: ``errors`` and ``rows`` of one instance or service.

Several instances, and a v1 instance and a v2 service of the same name, share one ledger table: a
ledger's reads return only the rows of its (instance, API), and ``errors`` only the keys asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_provider_imagesearch.imports.ledger import Ledger, LedgerEntry


@pytest.fixture
def engine(tmp_path: Path) -> Any:
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield engine
    engine.dispose()


def _ledger(engine: Any, instance: str, api: str = "v1", run_id: str = "run-1") -> Ledger:
    ledger = Ledger(engine, "imagesearch_import_ledger", instance, run_id, api=api)
    ledger.create_if_missing()
    return ledger


def _invalid(key: str, path: str, code: str, message: str) -> LedgerEntry:
    return LedgerEntry(key, path, "f" * 32, "invalid", code, message, 3, 1)


def test_errors_are_those_of_this_instance_and_api_and_of_the_keys_asked(engine: Any) -> None:
    catalog = _ledger(engine, "catalog")
    catalog.record([_invalid("k1", "a.jpg", "IS.0002", "mine"), _invalid("k2", "b.jpg", "IS.0003", "other")])
    _ledger(engine, "archive").record([_invalid("k3", "c.jpg", "IS.0016", "another instance's")])
    _ledger(engine, "catalog", api="v2").record([_invalid("k3", "c", "MMS.0003", "the v2 service's")])

    assert catalog.errors(["k1"]) == {"k1": ("IS.0002", "mine")}
    assert catalog.errors(["k1", "k3"]) == {"k1": ("IS.0002", "mine")}
    assert _ledger(engine, "archive").errors(["k1", "k3"]) == {"k3": ("IS.0016", "another instance's")}
    assert _ledger(engine, "catalog", api="v2").errors(["k3"]) == {"k3": ("MMS.0003", "the v2 service's")}
    assert catalog.errors([]) == {}


def test_rows_are_every_row_of_this_instance_and_api_with_every_column(engine: Any) -> None:
    catalog = _ledger(engine, "catalog", run_id="run-7")
    catalog.record(
        [
            LedgerEntry("k1", "a.jpg", "1" * 32, "added", None, None, 1, 1),
            _invalid("k2", "b.jpg", "IS.0002", "not an image"),
        ]
    )
    _ledger(engine, "archive").record([LedgerEntry("k1", "a.jpg", "2" * 32, "added", None, None, 1, 1)])
    _ledger(engine, "catalog", api="v2").record([LedgerEntry("k1", "a", "3" * 32, "added", None, None, 1, 1)])

    rows = sorted(catalog.rows(), key=lambda row: row["path_key"])

    assert [{k: v for k, v in row.items() if k != "updated_at"} for row in rows] == [
        {
            "instance_name": "catalog",
            "api": "v1",
            "path_key": "k1",
            "path": "a.jpg",
            "fingerprint": "1" * 32,
            "held_fingerprint": "1" * 32,
            "outcome": "added",
            "error_code": None,
            "error_message": None,
            "row_number": 1,
            "attempts": 1,
            "run_id": "run-7",
        },
        {
            "instance_name": "catalog",
            "api": "v1",
            "path_key": "k2",
            "path": "b.jpg",
            "fingerprint": "f" * 32,
            "held_fingerprint": None,
            "outcome": "invalid",
            "error_code": "IS.0002",
            "error_message": "not an image",
            "row_number": 3,
            "attempts": 1,
            "run_id": "run-7",
        },
    ]
    assert all(row["updated_at"] is not None for row in rows)
    assert _ledger(engine, "nothing-here").rows() == []
