"""Never twice, never lost: ambiguous adds are reconciled, throttling halves the concurrency."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.emulator.routes import R_CHECK, R_MODIFY
from airflow_provider_imagesearch.imports.engine import AdaptiveLimit
from tests.imports.conftest import add_requests, ledger_rows, library, obs

RunImport = Callable[..., dict[str, Any]]


@pytest.mark.parametrize("fault", ["503_after", "drop_after", "503_json", "drop"])
def test_an_ambiguous_add_is_sent_again_as_an_overwrite(
    run_import: RunImport, emulator: Emulator, ledger_conn: dict[str, Any], fault: str
) -> None:
    """Whether the first add took effect (503_after, drop_after) or not (503_json, drop), the client
    cannot tell: it sends the add again (a v1 add replaces the path), never checks and fixes tags only
    (a present path may hold an older image: a killed run, a dropped ledger)."""
    emulator.set_faults(sequence=[fault])
    result = run_import([{"path": obs("r.jpg"), "tags": {"color": "red"}}], max_concurrency=1)
    assert (result["retried"], result["added"], result["failed"], result["resent"]) == (1, 0, 0, 1)
    assert result["reconciled"] == result["retried"]  # the name earlier releases gave it, kept for DAGs
    routes = [r["route"] for r in emulator.requests_log() if r["route"] != "POST /v3/auth/tokens"]
    assert R_CHECK not in routes
    assert R_MODIFY not in routes
    assert [r["fault"] for r in add_requests(emulator)] == [fault, None]
    assert library(emulator) == {obs("r.jpg"): {"color": "red"}}
    row = ledger_rows(ledger_conn["engine"])[obs("r.jpg")]
    assert (row["outcome"], row["attempts"], row["held_fingerprint"]) == ("retried", 2, row["fingerprint"])


def test_throttling_slows_down_and_every_row_lands(
    run_import: RunImport, emulator: Emulator, ledger_conn: dict[str, Any], capfd: pytest.CaptureFixture[str]
) -> None:
    emulator.set_faults(throttle_429_rate=0.3, retry_after="0.01", random_seed=7)
    manifest = [{"path": obs(f"t/{i}.jpg"), "tags": {"color": "red"}} for i in range(60)]
    result = run_import(manifest, max_concurrency=8)
    assert result["added"] == 60
    assert result["failed"] == 0
    assert set(library(emulator)) == {row["path"] for row in manifest}
    processed = [r for r in add_requests(emulator) if r["status"] == 200]
    assert len(processed) == 60  # a 429 is refused before the service: never an extra add
    assert any(r["status"] == 429 for r in add_requests(emulator))


def test_adaptive_limit_halves_once_per_episode_and_grows_back() -> None:
    limit = AdaptiveLimit(16)
    limit.throttled(0.5)
    assert limit.limit == 8
    limit.throttled(0.5)  # same episode
    assert limit.limit == 8
    limit._quiet_until = 0.0
    limit.throttled(None)
    assert limit.limit == 4
    for _ in range(20):
        limit.succeeded()
    assert limit.limit == 16
    assert limit.acquire(0.01)
    for _ in range(15):
        assert limit.acquire(0.01)
    assert not limit.acquire(0.01)  # at the cap
    limit.release()
    assert limit.acquire(0.01)


def test_a_missing_instance_stops_the_import(run_import: RunImport, ledger_conn: dict[str, Any]) -> None:
    from airflow_provider_imagesearch.version_compat import AirflowFailException

    if ledger_conn["name"] != "sqlite":
        pytest.skip("one backend is enough")
    with pytest.raises(AirflowFailException):
        run_import([{"path": obs("x.jpg")}], instance_name="no-such")


def test_a_throttled_row_waits_out_of_the_limit_so_other_rows_go_on(
    run_import: RunImport, emulator: Emulator, ledger_conn: dict[str, Any]
) -> None:
    # One slot. The first add is refused with a 2 s Retry-After: while it waits, the slot serves the
    # other rows (before, the hook slept holding it and nothing else was sent until its retry).
    emulator.set_faults(sequence=["429"], retry_after="2")
    manifest = [{"path": obs(f"w/{i}.jpg")} for i in range(5)]
    result = run_import(manifest, max_concurrency=1)
    assert (result["added"], result["failed"]) == (5, 0)
    statuses = [r["status"] for r in add_requests(emulator)]
    assert statuses == [429, 200, 200, 200, 200, 200]
    # The library keeps images in the order they were added: the throttled row is no longer first.
    order = list(library(emulator))
    assert order[0] != obs("w/0.jpg"), f"no other row was sent while the throttled one waited: {order}"
    assert sorted(order) == sorted(row["path"] for row in manifest)


def test_a_row_throttled_more_times_than_max_attempts_still_lands(
    run_import: RunImport, emulator: Emulator, ledger_conn: dict[str, Any]
) -> None:
    # Six 429s in a row for one request (max_attempts is 5): throttling is waited out for up to
    # retry_max_elapsed, not a number of attempts, so the row is added, not failed.
    emulator.set_faults(sequence=["429"] * 6, retry_after="0.01")
    result = run_import([{"path": obs("busy.jpg")}], max_concurrency=1)
    assert (result["added"], result["failed"]) == (1, 0)
    assert [r["status"] for r in add_requests(emulator)] == [429] * 6 + [200]
