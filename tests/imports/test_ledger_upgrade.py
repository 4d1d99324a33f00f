"""Ledgers written by earlier releases: their ``reconciled`` rows may claim content the library does not hold.

Up to 0.1.0's pre-releases (8752aac), an add whose answer was ambiguous was followed by a check, and a path
found present was recorded ``reconciled`` with the row's fingerprint, although the library may have kept
an older image there. This release reads such a row as "present, content unknown": it overwrites the
path once (never a partial ``data/update``), prunes it when the manifest dropped it, and never writes
``reconciled`` itself. (The end-to-end upgrade from the real previous release is in
``tests/review/test_review_round19.py``.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from airflow_provider_imagesearch.emulator import Emulator
from tests.imports.conftest import add_requests, ledger_rows, ledger_rows_v2, library, obs, v2_routes

RunImport = Callable[..., dict[str, Any]]


def _as_an_earlier_release_left_it(engine: Any, api: str) -> None:
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE imagesearch_import_ledger SET outcome = 'reconciled' WHERE api = :api"),
            {"api": api},
        )


def test_v1_a_reconciled_row_is_overwritten_once_then_unchanged(
    run_import: RunImport, emulator: Emulator, ledger_conn: dict[str, Any]
) -> None:
    manifest = [{"path": obs(f"up/{i}.jpg"), "tags": {"color": "red"}} for i in range(3)]
    run_import(manifest)
    _as_an_earlier_release_left_it(ledger_conn["engine"], "v1")
    emulator.reset_stats()
    result = run_import(manifest)
    assert (result["updated"], result["unchanged"]) == (3, 0)
    assert len(add_requests(emulator)) == 3  # each path overwritten once
    assert {row["outcome"] for row in ledger_rows(ledger_conn["engine"]).values()} == {"updated"}
    emulator.reset_stats()
    again = run_import(manifest)
    assert again["unchanged"] == 3
    assert add_requests(emulator) == []


def test_v1_a_reconciled_row_the_manifest_dropped_is_pruned(
    run_import: RunImport, emulator: Emulator, ledger_conn: dict[str, Any]
) -> None:
    paths = [obs(f"drop/{i}.jpg") for i in range(2)]
    run_import([{"path": p} for p in paths])
    _as_an_earlier_release_left_it(ledger_conn["engine"], "v1")
    result = run_import([{"path": paths[0]}], prune=True)
    assert result["pruned"] == 1
    assert set(library(emulator)) == {paths[0]}


def test_v2_a_reconciled_row_whose_desc_changed_is_added_with_force_not_updated(
    run_v2_import: RunImport, emulator: Emulator, ledger_conn: dict[str, Any]
) -> None:
    """A ``data/update`` changes desc and tags only: on an item whose image is unknown (maybe an older
    one) it would leave that image; the row is overwritten whole instead."""
    item = {"item_id": "sku-1", "image_url": "https://cdn.example.com/1.jpg", "desc": "first"}
    run_v2_import([item])
    _as_an_earlier_release_left_it(ledger_conn["engine"], "v2")
    emulator.reset_stats()
    result = run_v2_import([{**item, "desc": "second"}])
    assert result["updated"] == 1
    assert v2_routes(emulator) == ["add"]
    assert ledger_rows_v2(ledger_conn["engine"])["sku-1"]["outcome"] == "updated"
