"""What a plan says about each ledger path the manifest no longer lists (a real SQLite ledger here).

Each one carries the ledger's outcome and what the library may hold for it, and is named by its path
alone: no manifest row number and no fingerprint (it has no row in this manifest).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_imagesearch.imports.ledger import Ledger, LedgerEntry
from airflow_provider_imagesearch.imports.manifest import path_key
from airflow_provider_imagesearch.imports.plan import FORGET, PRUNE, Plan

REGION = "ap-southeast-1"
OBS = f"https://shop.obs.{REGION}.myhuaweicloud.com"


def obs(name: str) -> str:
    return f"{OBS}/{name}.jpg"


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger = Ledger(engine, "imagesearch_import_ledger", "catalog", "run-1")
    ledger.create_if_missing()
    yield ledger
    engine.dispose()


def test_each_dropped_path_carries_its_ledger_outcome_and_what_the_library_may_hold(ledger: Ledger) -> None:
    def entry(name: str, outcome: str, held: str | None = None) -> LedgerEntry:
        return LedgerEntry(path_key(obs(name)), obs(name), "a" * 32, outcome, None, None, 7, 1, held)

    ledger.record(
        [
            entry("added", "added"),  # a success holds what was sent
            entry("failed-maybe", "failed", held="?"),
            entry("failed-never", "failed", held=None),
            entry("invalid-older", "invalid", held="b" * 32),
        ]
    )
    plan = Plan(shard=(0, 1))
    plan.load_manifest([[{"path": obs("listed")}]], region=REGION)
    plan.load_ledger(ledger)
    with plan:
        prunes = {w.row.path: w for w in plan.prunes()}
    assert {path: (w.kind, w.key, w.previous) for path, w in prunes.items()} == {
        obs("added"): (PRUNE, path_key(obs("added")), "added"),
        obs("failed-maybe"): (PRUNE, path_key(obs("failed-maybe")), "failed"),
        obs("failed-never"): (FORGET, path_key(obs("failed-never")), "failed"),
        obs("invalid-older"): (PRUNE, path_key(obs("invalid-older")), "invalid"),
    }
    held = {path: w.held for path, w in prunes.items()}
    # A success's is its fingerprint, passed on in the ledger stream's short form: only "held" matters.
    assert held.pop(obs("added")) is not None
    assert held == {obs("failed-maybe"): "?", obs("failed-never"): None, obs("invalid-older"): "b" * 32}
    assert [(w.row.row, w.row.fingerprint, w.row.tags) for w in prunes.values()] == [(0, "", {})] * 4
