"""The ledger's side of a prune: rows marked ``pruning`` before their deletes, then forgotten.

A marked row says the library may hold the path with unknown content, at a UTC time, for this run only;
only the listed paths of this instance (and API) are marked, and ``forget`` deletes only the rows this
run marked, however many paths a batch names. Real SQLite ledgers, no service.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_imagesearch.imports.ledger import KEYS_PER_STATEMENT, Ledger, LedgerEntry
from airflow_provider_imagesearch.imports.manifest import path_key

TABLE = "imagesearch_import_ledger"
BUCKET = "https://shop.obs.ap-southeast-1.myhuaweicloud.com"
FP = "f" * 32


def _path(name: str) -> str:
    return f"{BUCKET}/{name}.jpg"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Any]:
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield engine
    engine.dispose()


def _ledger(engine: Any, run_id: str, instance: str = "catalog", api: str = "v1") -> Ledger:
    ledger = Ledger(engine, TABLE, instance, run_id, api=api)
    ledger.create_if_missing()
    return ledger


def _added(ledger: Ledger, paths: list[str]) -> None:
    ledger.record(
        [LedgerEntry(path_key(p), p, FP, "added", None, None, n, 1) for n, p in enumerate(paths, 1)]
    )


def _rows(ledger: Ledger) -> dict[str, dict[str, Any]]:
    return {row["path"]: row for row in ledger.rows()}


def test_a_marked_row_says_the_library_may_hold_unknown_content(engine: Any) -> None:
    ledger = _ledger(engine, "prune-run")
    _added(_ledger(engine, "day-1"), [_path("held")])
    ledger.mark_pruning([path_key(_path("held"))])
    row = _rows(ledger)[_path("held")]
    assert (row["outcome"], row["run_id"], row["held_fingerprint"]) == ("pruning", "prune-run", "?")


def test_a_row_marked_for_forgetting_keeps_what_it_held(engine: Any) -> None:
    ledger = _ledger(engine, "prune-run")
    _added(_ledger(engine, "day-1"), [_path("kept")])
    ledger.mark_pruning([path_key(_path("kept"))], unknown_content=False)
    row = _rows(ledger)[_path("kept")]
    assert (row["outcome"], row["held_fingerprint"]) == ("pruning", FP)


@pytest.fixture
def far_from_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A worker whose local time is 10 hours ahead of UTC (no daylight saving time)."""
    # A POSIX rule, not a zone name: it needs no time zone database on the machine.
    monkeypatch.setenv("TZ", "AEST-10")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("far_from_utc")
def test_a_mark_is_dated_in_utc_whatever_the_workers_local_time(engine: Any) -> None:
    ledger = _ledger(engine, "prune-run")
    _added(ledger, [_path("dated")])
    before = datetime.now(UTC).replace(tzinfo=None)
    ledger.mark_pruning([path_key(_path("dated"))])
    after = datetime.now(UTC).replace(tzinfo=None)
    stamp = _rows(ledger)[_path("dated")]["updated_at"]
    if isinstance(stamp, str):
        stamp = datetime.fromisoformat(stamp)
    stamp = stamp.replace(tzinfo=None)
    assert before <= stamp <= after, (before, stamp, after)


def test_only_the_listed_paths_of_this_instance_and_api_are_marked(engine: Any) -> None:
    paths = [_path("gone"), _path("listed")]
    ledger = _ledger(engine, "prune-run")
    other_instance = _ledger(engine, "day-1", instance="other")
    other_api = _ledger(engine, "day-1", api="v2")
    for each in (ledger, other_instance, other_api):
        _added(each, paths)
    ledger.mark_pruning([path_key(_path("gone"))])
    assert {p: r["outcome"] for p, r in _rows(ledger).items()} == {paths[0]: "pruning", paths[1]: "added"}
    for each in (other_instance, other_api):
        assert {r["outcome"] for r in _rows(each).values()} == {"added"}
        assert {r["held_fingerprint"] for r in _rows(each).values()} == {FP}


def test_every_path_of_a_batch_larger_than_two_statements_is_marked_then_forgotten(engine: Any) -> None:
    paths = [_path(f"many/{n:05d}") for n in range(2 * KEYS_PER_STATEMENT + 1)]
    ledger = _ledger(engine, "prune-run")
    _added(ledger, paths)
    keys = [path_key(p) for p in paths]
    ledger.mark_pruning(keys)
    assert {r["outcome"] for r in _rows(ledger).values()} == {"pruning"}
    ledger.forget(keys)
    assert ledger.count() == 0


def test_forget_keeps_this_runs_other_rows_and_other_runs_marks(engine: Any) -> None:
    """Only a row this run marked ``pruning`` is forgotten: neither a row this run wrote otherwise (its
    path listed again) nor a row another run marked for its own prune."""
    mine, theirs, marked = _path("mine-added"), _path("theirs-pruning"), _path("marked")
    ledger = _ledger(engine, "prune-run")
    other = _ledger(engine, "other-run")
    _added(ledger, [mine, marked])
    _added(other, [theirs])
    other.mark_pruning([path_key(theirs)])
    ledger.mark_pruning([path_key(marked)])
    ledger.forget([path_key(mine), path_key(theirs), path_key(marked)])
    rows = _rows(ledger)
    assert {p: (r["run_id"], r["outcome"]) for p, r in rows.items()} == {
        mine: ("prune-run", "added"),
        theirs: ("other-run", "pruning"),
    }
