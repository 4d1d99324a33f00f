"""How long a throttled row keeps trying, and a time limit reached by ``max_rate``'s pacing."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from tests.imports.conftest import RunImport, add_requests, library, obs

INSTANCE = "k6e-pacing"


def test_a_retry_after_longer_than_the_throttling_budget_fails_the_row_at_once(
    import_into: Callable[..., RunImport], emulator: Emulator
) -> None:
    """Retry-After 5 s against a 3-second budget: waiting would pass it, so the row fails on the first
    429 rather than waiting a shorter backoff of its own."""
    run = import_into(INSTANCE, retry_max_elapsed=3)
    emulator.set_faults(sequence=["429"] * 3, retry_after="5")
    result = run([{"path": obs("k6e/late.jpg")}], max_failed=1)
    assert (result["added"], result["failed"]) == (0, 1), result
    assert [r["status"] for r in add_requests(emulator)] == [429]


def test_the_throttling_budget_counts_from_the_first_429_of_the_row(
    import_into: Callable[..., RunImport], emulator: Emulator
) -> None:
    """Retry-After 0.2 s, a 0.5-second budget: the third 429 comes 0.4 s after the first, one more wait
    would end past the budget, so the row fails there, although each wait alone fits."""
    run = import_into(INSTANCE, retry_max_elapsed=0.5)
    emulator.set_faults(sequence=["429"] * 6, retry_after="0.2")
    result = run([{"path": obs("k6e/budget.jpg")}], max_failed=1)
    assert (result["added"], result["failed"]) == (0, 1), result
    assert [r["status"] for r in add_requests(emulator)] == [429] * 3


def test_a_time_limit_reached_by_the_pacing_leaves_the_rest_for_the_next_run(
    import_into: Callable[..., RunImport], emulator: Emulator, capfd: pytest.CaptureFixture[str]
) -> None:
    """One request a second and a 1.5-second limit: the third request's turn would come after the limit,
    so the import stops there (no request is sent after it) and says what is left."""
    run = import_into(INSTANCE)
    result = run(
        [{"path": obs(f"k6e/paced{i}.jpg")} for i in range(5)], max_rate=1, time_limit=1.5, max_concurrency=1
    )
    added, remaining = result["added"], result["remaining"]
    assert added + remaining == 5, result
    assert added <= 2, result
    assert len(add_requests(emulator)) == added
    assert len(library(emulator, INSTANCE)) == added
    text = "".join(capfd.readouterr())
    assert f"stopped at its time limit: {added} rows done, {remaining} left for the next run" in text


def test_rows_waiting_for_their_turn_are_not_sent_after_a_fatal_refusal(
    import_into: Callable[..., RunImport], emulator: Emulator
) -> None:
    """Two requests a second: the first is refused by authentication (fatal), and the rows already
    waiting for their turn are released unsent, not sent once their turn comes."""
    from airflow_provider_imagesearch.version_compat import AirflowFailException

    run = import_into(INSTANCE)
    emulator.set_faults(sequence=["403"])
    with pytest.raises(AirflowFailException, match="403"):
        run([{"path": obs(f"k6e/denied{i}.jpg")} for i in range(4)], max_rate=2)
    assert [r["status"] for r in add_requests(emulator)] == [403]
    assert library(emulator, INSTANCE) == {}


def test_a_wide_import_keeps_one_connection_per_request_in_flight(
    import_into: Callable[..., RunImport], emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    """Twenty requests in flight, paced or not: the connection pool is as wide as the concurrency, so no
    connection is opened and thrown away for want of room (urllib3 warns when one is)."""
    import logging

    run = import_into(INSTANCE)
    emulator.set_faults(latency_seconds=0.2)
    caplog.set_level(logging.WARNING, logger="urllib3.connectionpool")
    for pacing, name in (({}, "wide"), ({"max_rate": 1000}, "paced")):
        result = run([{"path": obs(f"k6e/{name}{i}.jpg")} for i in range(40)], max_concurrency=20, **pacing)
        assert result["added"] == 40, result
    assert not [r.getMessage() for r in caplog.records if "pool is full" in r.getMessage()]


def test_max_rate_paces_an_import_over_https_too(
    import_into: Callable[..., RunImport],
    emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The same one-request-a-second pacing, through a TLS proxy in front of the emulator: at most two
    rows go out before the 1.5-second limit."""
    from tests.reliability.support import TlsProxy, make_self_signed
    from tests.support.connections import connection_fields, set_connection

    run = import_into(INSTANCE)
    cert = make_self_signed(tmp_path_factory.mktemp("k6e-tls"), "k6e")
    host, port = emulator.url.removeprefix("http://").rsplit(":", 1)
    with TlsProxy(cert, host, int(port)) as proxy:
        fields = connection_fields(proxy.url, "aksk", verify=str(cert.cert))
        set_connection(monkeypatch, "imagesearch_default", **fields)
        result = run([{"path": obs(f"k6e/tls{i}.jpg")} for i in range(5)], max_rate=1, time_limit=1.5)
    assert result["added"] <= 2, result
    assert result["added"] + result["remaining"] == 5, result
    assert proxy.handshakes >= 1
