"""What an import plans to do: the manifest diffed against the ledger (a real SQLite ledger here).

The last row of a repeated path wins, and the repeats are named (at most 10 paths, each with at most 10
row numbers, then how many more). An unchanged path already in the library is left alone, a path
refused before and unchanged is counted as known invalid (with its row, path and key), a new or
changed path is sent in manifest order (an update when the library may hold other content), a path
that left the manifest is pruned when the library may hold it and forgotten when it cannot, and a row
without a path is reported by its number. A sharded plan takes its slice of the keys; rows without a key
are reported by shard 0 only, and each shard counts the invalid rows of the others.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_imagesearch.imports.ledger import Ledger, LedgerEntry
from airflow_provider_imagesearch.imports.manifest import check_row, path_key
from airflow_provider_imagesearch.imports.plan import (
    ADD,
    FORGET,
    INVALID,
    PRUNE,
    UPDATE,
    Plan,
    row_list,
    shard_of,
)

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


def _fp(raw: dict[str, Any]) -> str:
    return check_row(raw, 1, region=REGION).fingerprint


def _entry(path: str, fingerprint: str, outcome: str, held: str | None = None) -> LedgerEntry:
    return LedgerEntry(path_key(path), path, fingerprint, outcome, None, None, 1, 1, held)


def _plan(rows: list[dict[str, Any]], ledger: Ledger, *, shard: tuple[int, int] = (0, 1)) -> Plan:
    plan = Plan(shard=shard)
    plan.load_manifest([rows], region=REGION)
    plan.load_ledger(ledger)
    return plan


def test_row_lists_show_at_most_ten_rows_then_how_many_more() -> None:
    assert row_list([3], 1) == "3"
    assert row_list([1, 3, 5], 3) == "1, 3, 5"
    assert row_list(list(range(1, 11)), 10) == "1, 2, 3, 4, 5, 6, 7, 8, 9, 10"
    assert row_list(list(range(1, 11)), 11) == "1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 1 more"
    assert row_list(list(range(1, 13)), 50_000) == "1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 49,990 more"


def test_the_diff_sends_new_and_changed_paths_in_manifest_order_and_prunes_the_rest(ledger: Ledger) -> None:
    same = {"path": obs("same"), "tag.color": "red"}
    changed = {"path": obs("changed"), "tag.color": "blue"}
    refused = {"path": obs("refused"), "tags": "[1]"}
    failed = {"path": obs("failed"), "tag.color": "red"}
    ledger.record(
        [
            _entry(obs("same"), _fp(same), "added"),
            _entry(obs("changed"), _fp({**changed, "tag.color": "red"}), "added"),
            _entry(obs("refused"), _fp(refused), "invalid"),
            _entry(obs("failed"), _fp(failed), "failed", held=None),
            _entry(obs("gone-held"), "f" * 32, "added"),
            _entry(obs("gone-never-held"), "e" * 32, "failed", held=None),
        ]
    )
    rows = [{"path": obs("new")}, changed, same, refused, failed, {"path": None}, {"tags": "{}"}]
    with _plan(rows, ledger) as plan:
        summary = plan.summary
        assert (summary.rows, summary.paths, summary.unchanged, summary.known_invalid) == (7, 5, 1, 1)
        assert (summary.invalid, summary.keyless, summary.keyless_rows) == (3, 2, [6, 7])
        assert plan.known_invalid_examples(10) == [(4, obs("refused"), path_key(obs("refused")))]
        assert plan.known_invalid_examples(0) == []
        sends = [(w.kind, w.row.row, w.row.path) for w in plan.sends()]
        assert sends == [
            (ADD, 1, obs("new")),
            (UPDATE, 2, obs("changed")),
            (ADD, 5, obs("failed")),
        ]
        prunes = sorted((w.kind, w.row.path) for w in plan.prunes())
        assert prunes == [(FORGET, obs("gone-never-held")), (PRUNE, obs("gone-held"))]
        assert plan.count_work(prune=True) == (3, 2)
        assert plan.count_work(prune=False) == (3, 0)
        assert [w.kind for w in plan.work(prune=False)] == [ADD, UPDATE, ADD]
        assert [w.kind for w in plan.work(prune=True)][:3] == [ADD, UPDATE, ADD]
        assert len(list(plan.work(prune=True))) == 5
        pathless = list(plan.pathless_invalid())
        assert [(r.row, r.path) for r in pathless] == [(6, None), (7, None)]
        assert all(r.invalid for r in pathless)
        # Recorded like any invalid row: no tags, the fingerprint of its reason.
        assert [(r.tags, r.fingerprint) for r in pathless] == [
            ({}, check_row(raw, number, region=REGION).fingerprint)
            for number, raw in ((6, {"path": None}), (7, {"tags": "{}"}))
        ]


def test_a_changed_row_refused_before_is_sent_again_as_invalid_with_its_new_reason(ledger: Ledger) -> None:
    ledger.record([_entry(obs("r"), _fp({"path": obs("r"), "tags": "[1]"}), "invalid")])
    with _plan([{"path": obs("r"), "tags": '{"x": 5}'}], ledger) as plan:
        assert plan.summary.known_invalid == 0
        assert [(w.kind, w.previous) for w in plan.sends()] == [(INVALID, "invalid")]


def test_the_last_row_of_a_repeated_path_wins_and_the_repeats_are_named(ledger: Ledger) -> None:
    rows = []
    for n in range(12):  # 12 repeated paths, the first one 12 times
        rows += [{"path": obs(f"p{n}"), "tag.n": str(k)} for k in range(12 if n == 0 else 2)]
    with _plan(rows, ledger) as plan:
        assert (plan.summary.rows, plan.summary.paths, plan.summary.duplicates) == (34, 12, 22)
        examples = plan.summary.duplicate_examples
        assert examples is not None
        assert len(examples) == 10
        assert examples[0] == f"{obs('p0')} (rows 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 2 more)"
        assert examples[1] == f"{obs('p1')} (rows 13, 14)"
        sent = {w.row.path: w.row.tags for w in plan.sends()}
        assert sent[obs("p0")] == {"n": "11"}
        assert sent[obs("p1")] == {"n": "1"}


@pytest.mark.parametrize("index", [0, 1, 2])
def test_a_shard_takes_its_slice_and_shard_0_the_rows_without_a_key(ledger: Ledger, index: int) -> None:
    paths = [obs(f"s{n}") for n in range(30)]
    rows: list[dict[str, Any]] = [{"path": p} for p in paths]
    rows += [{"path": None}, {"path": obs("bad"), "tags": "[1]"}, {"path": obs("bad2"), "tags": "[1]"}]
    ledger.record([_entry(p, _fp({"path": p}), "added") for p in paths[:6]])
    mine = [p for p in paths if shard_of(path_key(p), 3) == index]
    invalid_mine = [p for p in (obs("bad"), obs("bad2")) if shard_of(path_key(p), 3) == index]
    with _plan(rows, ledger, shard=(index, 3)) as plan:
        summary = plan.summary
        assert summary.rows == len(mine) + len(invalid_mine) + (1 if index == 0 else 0)
        assert (summary.keyless, summary.keyless_rows, summary.manifest_paths) == (1, [31], 32)
        assert summary.invalid == len(invalid_mine) + (1 if index == 0 else 0)
        assert summary.other_shards_invalid == 3 - summary.invalid
        assert {w.row.path for w in plan.sends() if w.kind != INVALID} == set(mine) - set(paths[:6])
        assert summary.unchanged == len(set(mine) & set(paths[:6]))
        assert [r.row for r in plan.pathless_invalid()] == ([31] if index == 0 else [])
        assert list(plan.prunes()) == []  # every ledger path is still listed
        unchanged = [p for p in paths[:6] if p in mine]
        assert plan.count_work(prune=True) == (len(mine) - len(unchanged) + len(invalid_mine), 0)


def test_an_unsharded_plan_takes_every_row(ledger: Ledger) -> None:
    with _plan([{"path": obs(f"u{n}")} for n in range(5)] + [{"path": None}], ledger) as plan:
        assert (plan.summary.rows, plan.summary.paths, plan.summary.other_shards_invalid) == (6, 5, 0)


def test_two_shards_split_the_keys_between_them(ledger: Ledger) -> None:
    rows = [{"path": obs(f"t{n}")} for n in range(20)] + [{"path": None}]
    taken = []
    for index in (0, 1):
        with _plan(rows, ledger, shard=(index, 2)) as plan:
            taken.append({w.row.path for w in plan.sends()})
            assert plan.summary.keyless == 1
            assert plan.summary.rows == len(taken[-1]) + (1 if index == 0 else 0)
    assert taken[0].isdisjoint(taken[1])
    assert taken[0] | taken[1] == {row["path"] for row in rows[:20]}
    assert taken[0] == {p for p in taken[0] | taken[1] if shard_of(path_key(p), 2) == 0}
