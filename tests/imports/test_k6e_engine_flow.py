"""The engine's flow of rows: how many run at once, when answers reach the ledger, when a stop is seen.

Observed from outside the engine: requests in flight at the transport, the ledger file read while the
import runs, the task's log and its result.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.imports import engine as engine_module
from airflow_provider_imagesearch.imports.ledger import Ledger
from tests.imports.conftest import RunImport, library, obs, sqlite_ledger_rows
from tests.support.clocks import LateMonotonic

INSTANCE = "k6e-flow"


@pytest.fixture
def run(import_into: Callable[..., RunImport]) -> RunImport:
    return import_into(INSTANCE)


def _rows(prefix: str, count: int) -> list[dict[str, Any]]:
    return [{"path": obs(f"k6e/{prefix}{i}.jpg"), "tags": {"color": "red"}} for i in range(count)]


def _on_each_request(monkeypatch: pytest.MonkeyPatch, seen: Callable[[int], None]) -> None:
    """``seen(n)`` before the n-th request (1-based) leaves the transport."""
    import requests

    send = requests.adapters.HTTPAdapter.send
    count = {"n": 0}
    lock = threading.Lock()

    def observed(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        with lock:
            count["n"] += 1
            n = count["n"]
        seen(n)
        return send(self, request, *args, **kwargs)

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", observed)


def _outcomes(ledger: Path) -> list[str]:
    return [row["outcome"] for row in sqlite_ledger_rows(ledger, INSTANCE).values()]


def test_an_import_that_ends_normally_warns_of_no_time_limit(
    run: RunImport, capfd: pytest.CaptureFixture[str]
) -> None:
    result = run(_rows("normal", 2))
    assert (result["added"], result["remaining"]) == (2, 0), result
    assert "time limit" not in "".join(capfd.readouterr())


def test_requests_in_flight_reach_max_concurrency(
    run: RunImport, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight rows at once with ``max_concurrency=8``, whatever the machine's CPU count."""
    import requests

    send = requests.adapters.HTTPAdapter.send
    state = {"now": 0, "peak": 0}
    lock = threading.Lock()

    def counted(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        try:
            return send(self, request, *args, **kwargs)
        finally:
            with lock:
                state["now"] -= 1

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", counted)
    emulator.set_faults(latency_seconds=0.3)
    result = run(_rows("wide", 16), max_concurrency=8)
    assert result["added"] == 16
    assert state["peak"] == 8


def test_answers_wait_for_the_next_batched_write_until_a_bound_is_reached(
    run: RunImport, sqlite_ledger: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Neither 1,000 answers nor an hour: no answer is written while the import runs, all at its end."""
    monkeypatch.setattr(engine_module, "FLUSH_ROWS", 1000)
    monkeypatch.setattr(engine_module, "FLUSH_SECONDS", 3600.0)
    seen: list[list[str]] = []
    _on_each_request(monkeypatch, lambda n: seen.append(_outcomes(sqlite_ledger)) if n == 5 else None)
    result = run(_rows("batched", 6), max_concurrency=1)
    assert result["added"] == 6
    assert seen == [["sending"] * 6]
    assert _outcomes(sqlite_ledger) == ["added"] * 6


def test_answers_are_written_once_flush_rows_of_them_wait(
    run: RunImport, sqlite_ledger: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "FLUSH_ROWS", 2)
    monkeypatch.setattr(engine_module, "FLUSH_SECONDS", 3600.0)
    seen: list[list[str]] = []
    _on_each_request(monkeypatch, lambda n: seen.append(_outcomes(sqlite_ledger)) if n == 6 else None)
    run(_rows("rows", 7), max_concurrency=1)
    assert seen[0].count("added") >= 2, seen


def test_forgotten_paths_are_written_once_flush_rows_of_them_wait(
    run: RunImport, sqlite_ledger: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A prune's forgets count toward the bound like answers do."""
    kept, *gone = _rows("forget", 8)
    run([kept, *gone])
    monkeypatch.setattr(engine_module, "FLUSH_ROWS", 2)
    monkeypatch.setattr(engine_module, "FLUSH_SECONDS", 3600.0)
    seen: list[int] = []
    _on_each_request(
        monkeypatch,
        lambda n: seen.append(len(sqlite_ledger_rows(sqlite_ledger, INSTANCE))) if n == 6 else None,
    )
    assert run([kept], prune=True, max_concurrency=1)["pruned"] == 7
    assert seen[0] <= 8 - 2, seen  # at least two of the seven forgotten by the sixth delete


def test_a_ledger_write_that_fails_mid_import_still_records_the_answers_in_flight(
    run: RunImport, emulator: Emulator, sqlite_ledger: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second batch's intents cannot be written: the task fails with that error, and the first
    batch's row, still in flight, is answered and recorded before it does."""
    monkeypatch.setattr(engine_module, "INTENT_BATCH", 1)
    emulator.set_faults(latency_seconds=0.3)
    intend = Ledger.intend
    calls = {"n": 0}

    def second_write_fails(self: Ledger, entries: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("the ledger database went away")
        intend(self, entries)

    monkeypatch.setattr(Ledger, "intend", second_write_fails)
    first, second = _rows("inflight", 2)
    with pytest.raises(RuntimeError, match="went away"):
        run([first, second], max_concurrency=1)
    rows = sqlite_ledger_rows(sqlite_ledger, INSTANCE)
    assert {path: row["outcome"] for path, row in rows.items()} == {first["path"]: "added"}
    assert set(library(emulator, INSTANCE)) == {first["path"]}


def test_a_time_limit_passing_while_a_row_is_in_flight_stops_the_next_row(
    run: RunImport, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The limit passes 0.1 s into the first row's one-second request: the engine looks again while it
    waits for that answer, so the second row, already handed to the pool, is never sent."""

    clock = LateMonotonic()
    monkeypatch.setattr(engine_module, "time", clock)

    def first_request(n: int) -> None:
        if n == 1:
            threading.Timer(0.1, lambda: setattr(clock, "late", True)).start()

    _on_each_request(monkeypatch, first_request)
    emulator.set_faults(latency_seconds=1.0)
    result = run(_rows("flight", 2), time_limit=600, max_concurrency=1)
    assert (result["added"], result["remaining"]) == (1, 1), result
    assert len(library(emulator, INSTANCE)) == 1


def test_two_fatal_answers_still_leave_every_earlier_answer_recorded(
    run: RunImport, emulator: Emulator, sqlite_ledger: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two rows are refused by authentication at once while a third is still in flight: the task fails
    with the first refusal, after the third row's answer is written to the ledger."""
    from airflow_provider_imagesearch.errors import ImageSearchAuthError

    process = engine_module.ImportEngine._process

    def denied_for_some(self: Any, work: Any) -> Any:
        if "denied" in (work.row.path or ""):
            time.sleep(0.05)  # both handed to the pool before either is refused
            raise ImageSearchAuthError(
                status=403, error_code="APIGW.0301", error_msg="denied", path=work.row.path
            )
        return process(self, work)

    monkeypatch.setattr(engine_module.ImportEngine, "_process", denied_for_some)
    emulator.set_faults(latency_seconds=0.3)
    slow, *denied = _rows("slow", 1) + _rows("denied", 2)
    from airflow_provider_imagesearch.version_compat import AirflowFailException

    with pytest.raises(AirflowFailException, match=r"HTTP 403 APIGW\.0301: denied"):
        run([slow, *denied], max_concurrency=3)
    rows = sqlite_ledger_rows(sqlite_ledger, INSTANCE)
    assert rows[slow["path"]]["outcome"] == "added"
    assert {rows[d["path"]]["outcome"] for d in denied} == {"sending"}


def test_intents_are_written_intent_batch_rows_per_transaction(
    run: RunImport, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "INTENT_BATCH", 2)
    intend = Ledger.intend
    sizes: list[int] = []

    def counted(self: Ledger, entries: Any) -> None:
        sizes.append(len(entries))
        intend(self, entries)

    monkeypatch.setattr(Ledger, "intend", counted)
    assert run(_rows("intents", 5))["added"] == 5
    assert sizes == [2, 2, 1]
