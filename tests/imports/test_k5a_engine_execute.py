"""The import engine's send loop as the task's result, the library and the ledger show it: the time limit
stops the import with the rows not done counted ``remaining``; ``prune`` is refused (nothing deleted) when
the bad rows pass ``max_failed`` or a row has no readable key; a ledger row of a path neither the manifest
nor the library holds any more is forgotten by a prune. Against the emulator over loopback HTTP, the
ledger on SQLite.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.imports import engine as engine_module
from airflow_provider_imagesearch.imports.ledger import Ledger
from tests.imports.conftest import RunImport, library, obs, sqlite_ledger_rows
from tests.support.clocks import LateMonotonic

INSTANCE = "k5a-exec"
OUTSIDE = "https://elsewhere.example.com/k5a.jpg"  # not an OBS URL of the region: an invalid row


@pytest.fixture
def run(import_into: Callable[..., RunImport]) -> RunImport:
    """``run(manifest, **operator kwargs)`` -> the task's XCom value, into the instance ``k5a-exec``."""
    return import_into(INSTANCE)


@pytest.fixture
def limit_passes_at_first_intent(monkeypatch: pytest.MonkeyPatch) -> LateMonotonic:
    """The time limit passes (by the engine's clock) as the first batch's intents are written."""
    clock = LateMonotonic()
    monkeypatch.setattr(engine_module, "time", clock)
    intend = Ledger.intend

    def intend_then_late(self: Ledger, entries: Any) -> None:
        intend(self, entries)
        clock.late = True

    monkeypatch.setattr(Ledger, "intend", intend_then_late)
    return clock


def test_a_time_limit_passed_before_the_first_send_leaves_every_row_remaining(
    run: RunImport,
    emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """No row is sent, all three are ``remaining`` for the next run, and the warning says so."""
    clock = LateMonotonic()
    clock.late = True
    monkeypatch.setattr(engine_module, "time", clock)
    manifest = [{"path": obs(f"k5a/tl{i}.jpg"), "tags": {"color": "red"}} for i in range(3)]
    result = run(manifest, time_limit=600)
    assert (result["added"], result["remaining"]) == (0, 3), result
    assert library(emulator, INSTANCE) == {}
    assert "stopped at its time limit: 0 rows done, 3 left for the next run" in "".join(capfd.readouterr())


@pytest.mark.usefixtures("limit_passes_at_first_intent")
def test_rows_recorded_before_the_time_limit_are_not_remaining(
    run: RunImport, emulator: Emulator, capfd: pytest.CaptureFixture[str]
) -> None:
    """The invalid row heading the batch is recorded (no request) before the limit is seen; the two valid
    rows after it are not sent: 2 remaining, 1 done."""
    manifest = [{"path": OUTSIDE}] + [
        {"path": obs(f"k5a/tr{i}.jpg"), "tags": {"color": "red"}} for i in range(2)
    ]
    result = run(manifest, time_limit=600, max_failed=1)
    assert (result["invalid"], result["added"], result["remaining"]) == (1, 0, 2), result
    assert library(emulator, INSTANCE) == {}
    assert "stopped at its time limit: 1 rows done, 2 left for the next run" in "".join(capfd.readouterr())


@pytest.mark.usefixtures("limit_passes_at_first_intent")
def test_a_time_limit_reached_with_every_row_done_leaves_none_remaining(
    run: RunImport, capfd: pytest.CaptureFixture[str]
) -> None:
    """Every row (all invalid) is recorded; the limit is seen before the prune: nothing remaining."""
    manifest = [{"path": f"https://elsewhere.example.com/k5a-{i}.jpg"} for i in range(2)]
    result = run(manifest, time_limit=600, prune=True, max_failed=2)
    assert (result["invalid"], result["remaining"]) == (2, 0), result
    assert "stopped at its time limit: 2 rows done, 0 left for the next run" in "".join(capfd.readouterr())


def test_an_import_without_time_limit_has_nothing_remaining(run: RunImport, emulator: Emulator) -> None:
    """A finished import reports no remaining rows, also when the prune forgot ledger rows."""
    run([{"path": OUTSIDE}, {"path": obs("k5a/keep.jpg"), "tags": {"color": "red"}}], max_failed=1)
    result = run([{"path": obs("k5a/keep.jpg"), "tags": {"color": "red"}}], prune=True)
    assert (result["remaining"], result["unchanged"]) == (0, 1), result


def test_prune_is_refused_when_the_bad_rows_pass_max_failed(run: RunImport, emulator: Emulator) -> None:
    """A bad row within max_failed lets the prune run; day 3 drops an image again with the bad row now past
    max_failed=0: the image stays, and the task's error says why the prune was refused."""
    from airflow.sdk.exceptions import AirflowFailException

    kept, dropped = obs("k5a/kept.jpg"), obs("k5a/dropped.jpg")
    run([{"path": p, "tags": {"color": "red"}} for p in (kept, dropped)])
    result = run([{"path": kept, "tags": {"color": "red"}}, {"path": OUTSIDE}], prune=True, max_failed=1)
    assert (result["prune_refused"], result["pruned"]) == (None, 1), result
    assert set(library(emulator, INSTANCE)) == {kept}
    run([{"path": dropped, "tags": {"color": "red"}}])
    with pytest.raises(AirflowFailException) as failed:
        run([{"path": kept, "tags": {"color": "red"}}, {"path": OUTSIDE}], prune=True, max_failed=0)
    assert set(library(emulator, INSTANCE)) == {kept, dropped}
    assert "Prune refused before any delete: 1 rows failed or were invalid, more than max_failed=0" in str(
        failed.value
    )
    assert "'pruned': 0" in str(failed.value)


def test_a_keyless_row_refusal_ends_telling_to_fix_those_rows(run: RunImport, tmp_path: Path) -> None:
    """The keyless refusal's last words tell the user what to do."""
    manifest = tmp_path / "day.jsonl"
    manifest.write_bytes(
        json.dumps({"path": obs("k5a/ok.jpg"), "tags": {"color": "red"}}).encode() + b"\n" + b'{"tags": {}}\n'
    )
    result = run(str(manifest), prune=True, max_failed=1)
    assert result["prune_refused"].endswith(
        "so an image they list could be pruned; fix those rows to prune"
    ), result


def test_a_prune_forgets_the_ledger_row_of_a_row_no_longer_listed_that_held_nothing(
    run: RunImport, sqlite_ledger: Path
) -> None:
    """Day 1's invalid row left a ledger row holding nothing; day 2 no longer lists it: a prune forgets
    that row (no request), while the listed image's row stays."""
    kept = obs("k5a/fk.jpg")
    run([{"path": kept, "tags": {"color": "red"}}, {"path": OUTSIDE}], max_failed=1)
    before = set(sqlite_ledger_rows(sqlite_ledger, INSTANCE))
    assert kept in before, before
    assert len(before) == 2, before
    result = run([{"path": kept, "tags": {"color": "red"}}], prune=True)
    assert (result["pruned"], result["failed"]) == (0, 0), result
    assert set(sqlite_ledger_rows(sqlite_ledger, INSTANCE)) == {kept}
