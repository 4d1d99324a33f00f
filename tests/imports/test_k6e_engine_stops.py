"""Where an import stops and what it leaves behind: the ledger rows, ``remaining``, and the next run.

The time limit is met at a chosen point by the engine's own clock (an hour later once a ledger write or
an answer has happened), so each test stops the import at one exact step; a kill between a prune's
marks and its forget is a ledger write that raises.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.emulator.routes import R_DELETE_IMAGE
from airflow_provider_imagesearch.imports import engine as engine_module
from airflow_provider_imagesearch.imports.ledger import Ledger
from tests.imports.conftest import RunImport, api_requests, library, obs, sqlite_ledger_rows
from tests.support.clocks import LateMonotonic

INSTANCE = "k6e-stops"
OUTSIDE = "https://elsewhere.example.com/k6e.jpg"  # not an OBS URL of the region: an invalid row


@pytest.fixture
def run(import_into: Callable[..., RunImport]) -> RunImport:
    return import_into(INSTANCE)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> LateMonotonic:
    clock = LateMonotonic()
    monkeypatch.setattr(engine_module, "time", clock)
    return clock


def _late_after(
    monkeypatch: pytest.MonkeyPatch, clock: LateMonotonic, cls: Any, method: str, calls: int = 1
) -> None:
    """The time limit passes once ``cls.method`` has run ``calls`` times."""
    original = getattr(cls, method)
    seen = {"n": 0}

    def then_late(self: Any, *args: Any, **kwargs: Any) -> Any:
        answer = original(self, *args, **kwargs)
        seen["n"] += 1
        if seen["n"] >= calls:
            clock.late = True
        return answer

    monkeypatch.setattr(cls, method, then_late)


def _rows(prefix: str, count: int) -> list[dict[str, Any]]:
    return [{"path": obs(f"k6e/{prefix}{i}.jpg"), "tags": {"color": "red"}} for i in range(count)]


def test_rows_the_time_limit_leaves_unsent_keep_their_intents_in_the_ledger(
    run: RunImport, sqlite_ledger: Path, monkeypatch: pytest.MonkeyPatch, clock: LateMonotonic
) -> None:
    """Intents are written for every valid row of the batch before any request: each names its path, row
    number and no attempt; the invalid row gets no intent (it is recorded invalid)."""
    _late_after(monkeypatch, clock, Ledger, "intend")
    manifest = [{"path": OUTSIDE}, *_rows("intent", 2)]
    result = run(manifest, time_limit=600, max_failed=1)
    assert (result["invalid"], result["added"], result["remaining"]) == (1, 0, 2), result
    rows = sqlite_ledger_rows(sqlite_ledger, INSTANCE)
    intents = {path: row for path, row in rows.items() if row["outcome"] == "sending"}
    assert sorted(intents) == sorted(r["path"] for r in manifest[1:]), rows
    assert {path: (row["row_number"], row["attempts"]) for path, row in intents.items()} == {
        manifest[1]["path"]: (2, 0),
        manifest[2]["path"]: (3, 0),
    }
    assert rows[OUTSIDE]["outcome"] == "invalid"


def test_a_time_limit_seen_at_the_next_intent_batch_still_reports_what_remains(
    run: RunImport,
    emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    clock: LateMonotonic,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(engine_module, "INTENT_BATCH", 1)
    _late_after(monkeypatch, clock, Ledger, "intend")
    result = run(_rows("batch", 3), time_limit=600)
    assert (result["added"], result["remaining"]) == (0, 3), result
    assert api_requests(emulator) == []
    assert "stopped at its time limit: 0 rows done, 3 left for the next run" in "".join(capfd.readouterr())


def test_a_time_limit_seen_at_the_next_prune_batch_still_reports_what_remains(
    run: RunImport,
    emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    clock: LateMonotonic,
    capfd: pytest.CaptureFixture[str],
) -> None:
    kept, *gone = _rows("prune", 3)
    run([kept, *gone])
    monkeypatch.setattr(engine_module, "PRUNE_BATCH", 1)
    _late_after(monkeypatch, clock, Ledger, "mark_pruning")
    capfd.readouterr()
    result = run([kept], time_limit=600, prune=True)
    assert (result["pruned"], result["remaining"]) == (0, 2), result
    assert set(library(emulator, INSTANCE)) == {r["path"] for r in (kept, *gone)}
    assert "stopped at its time limit: 0 rows done, 2 left for the next run" in "".join(capfd.readouterr())


def test_rows_answered_before_the_time_limit_are_done_the_rest_remain(
    run: RunImport,
    emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    clock: LateMonotonic,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The limit passes as the second answer is recorded: the rows answered by then are done (counted
    once each), those not started are the next run's, and the warning says both."""
    emulator.set_faults(latency_seconds=0.05)
    _late_after(monkeypatch, clock, engine_module.ImportEngine, "_account", calls=2)
    result = run(_rows("answered", 8), time_limit=600, max_concurrency=1)
    added, remaining = result["added"], result["remaining"]
    assert added >= 2, result
    assert remaining >= 1, result
    assert added + remaining == 8, result
    assert len(library(emulator, INSTANCE)) == added
    text = "".join(capfd.readouterr())
    assert f"stopped at its time limit: {added} rows done, {remaining} left for the next run" in text


def test_a_kill_between_a_prunes_marks_and_its_forget_leaves_each_mark_as_it_should(
    run: RunImport, emulator: Emulator, sqlite_ledger: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pruned path may be anywhere between present and deleted: marked with unknown content. A path
    that held nothing (its row was refused) keeps holding nothing. The next run deletes the first again
    (it is gone already: a check says so) and only forgets the second."""
    kept, held = _rows("mark", 2)
    run([kept, held, {"path": OUTSIDE}], max_failed=1)

    def killed(self: Ledger, path_keys: Any) -> None:
        raise RuntimeError("worker killed before the forget")

    forget = Ledger.forget
    monkeypatch.setattr(Ledger, "forget", killed)
    with pytest.raises(RuntimeError, match="worker killed"):
        run([kept], prune=True, max_failed=1)
    monkeypatch.setattr(Ledger, "forget", forget)
    rows = sqlite_ledger_rows(sqlite_ledger, INSTANCE)
    assert (rows[held["path"]]["outcome"], rows[held["path"]]["held_fingerprint"]) == ("pruning", "?")
    assert (rows[OUTSIDE]["outcome"], rows[OUTSIDE]["held_fingerprint"]) == ("pruning", None)
    assert rows[kept["path"]]["outcome"] == "added"
    assert set(library(emulator, INSTANCE)) == {kept["path"]}

    emulator.reset_stats()
    result = run([kept], prune=True, max_failed=1)
    assert result["pruned"] == 1, result
    deletes = [r for r in api_requests(emulator) if r["route"] == R_DELETE_IMAGE]
    assert len(deletes) == 1, api_requests(emulator)  # the held path's only: the refused row held nothing
    assert set(sqlite_ledger_rows(sqlite_ledger, INSTANCE)) == {kept["path"]}
