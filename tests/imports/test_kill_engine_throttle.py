"""How an import's concurrency answers 429s, as its progress log shows it (``concurrency N``), and how long
a row keeps waiting out 429s without a usable ``Retry-After`` (the connection's exponential backoff, until
the next wait would pass ``retry_max_elapsed``).

A throttling episode halves the concurrency once: a 429 within the episode (its ``Retry-After``, else one
second) does not halve it again. The concurrency never goes below one request, and every success grows it
back by one up to ``max_concurrency``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.imports import engine as engine_module
from airflow_provider_imagesearch.version_compat import AirflowFailException
from tests.imports.conftest import add_requests, library, obs
from tests.support.clocks import FrozenMonotonic
from tests.support.connections import connection_fields, set_connection
from tests.support.rewriting_proxy import RewritingProxy

RunImport = Callable[..., dict[str, Any]]


def _last_concurrency(out: str) -> int:
    found = re.findall(r"Import progress: .*, concurrency (\d+)", out)
    assert found, out
    return int(found[-1])


@pytest.fixture
def one_backend(ledger_conn: dict[str, Any]) -> None:
    if ledger_conn["name"] != "sqlite":
        pytest.skip("the throttling does not depend on the ledger's database")


@pytest.mark.usefixtures("one_backend")
def test_a_429_at_a_concurrency_of_one_keeps_it_at_one(
    run_import: RunImport, emulator: Emulator, capfd: pytest.CaptureFixture[str]
) -> None:
    emulator.set_faults(sequence=["429"], retry_after="0.001")
    result = run_import([{"path": obs("one.jpg")}], max_concurrency=1)
    assert (result["added"], result["failed"], result["throttled"]) == (1, 0, 1)
    assert [r["status"] for r in add_requests(emulator)] == [429, 200]
    assert _last_concurrency(capfd.readouterr().out) == 1


@pytest.mark.usefixtures("one_backend")
def test_a_429_after_its_retry_after_has_passed_is_a_new_episode_and_halves_again(
    run_import: RunImport, emulator: Emulator, capfd: pytest.CaptureFixture[str]
) -> None:
    """Each resend comes after the previous 429's Retry-After (1 ms): three episodes, 8 -> 4 -> 2 -> 1,
    then the success grows it back to 2."""
    emulator.set_faults(sequence=["429"] * 3, retry_after="0.001")
    result = run_import([{"path": obs("busy.jpg")}], max_concurrency=8)
    assert (result["added"], result["failed"], result["throttled"]) == (1, 0, 3)
    assert [r["status"] for r in add_requests(emulator)] == [429, 429, 429, 200]
    assert _last_concurrency(capfd.readouterr().out) == 2


class _ShiftedMonotonic:
    """The real clocks, the monotonic one moved forward by ``shift`` seconds at a time."""

    def __init__(self) -> None:
        self.offset = 0.0

    @staticmethod
    def time() -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic() + self.offset


def test_a_429_without_retry_after_over_a_second_after_the_last_halves_again(
    monkeypatch: pytest.MonkeyPatch,
    emulator: Emulator,
    service: str,
    ledger_conn: dict[str, Any],
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Without Retry-After an episode lasts one second: a 429 coming 1.2 s (by the import's clock) after
    the first halves the concurrency again (8 -> 4 -> 2, then the success: 3). The proxy in front of the
    service drops the Retry-After header, and moves the import's clock on by 1.2 s at each 429."""
    from airflow_provider_imagesearch.operators.import_images import ImageSearchV2ImportDataOperator

    if ledger_conn["name"] != "sqlite":
        pytest.skip("the throttling does not depend on the ledger's database")
    clock = _ShiftedMonotonic()
    monkeypatch.setattr(engine_module, "time", clock)

    def later(path: str, body: dict[str, Any], status: int, answer: Any) -> Any:
        if status == 429:
            clock.offset += 1.2
        return answer

    emulator.set_faults(sequence=["429", "429"])
    with RewritingProxy(emulator.url, later) as proxy:
        fields = connection_fields(emulator.url, "token", backoff_initial=0.001, backoff_max=0.001)
        fields["extra"]["mms_endpoint"] = proxy.url
        op = ImageSearchV2ImportDataOperator(
            task_id="import",
            service_name=service,
            manifest=[{"item_id": "it-1", "image_url": "https://cdn.example/1.jpg"}],
            max_concurrency=8,
            imagesearch_conn_id=set_connection(monkeypatch, "through_proxy", **fields),
        )
        result = op.execute({"run_id": "run-1"})

    assert (result["added"], result["failed"]) == (1, 0)
    assert clock.offset == pytest.approx(2.4), "two 429s"
    assert _last_concurrency(capfd.readouterr().out) == 3


@pytest.mark.usefixtures("one_backend")
def test_429s_without_retry_after_are_waited_out_while_the_backoff_fits_in_max_elapsed(
    imagesearch_conn: Callable[..., str],
    emulator: Emulator,
    catalog: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """By a clock that does not move, only the waits count: 1, 2 and 4 units of ``backoff_initial`` fit in
    ``retry_max_elapsed`` = 4 units, so the fourth send lands. (Powers of two: the sums are exact.)"""
    from airflow_provider_imagesearch.operators.import_images import ImageSearchImportImagesOperator

    monkeypatch.setattr(engine_module, "time", FrozenMonotonic())
    unit = 2.0**-7
    conn_id = imagesearch_conn("aksk", backoff_initial=unit, backoff_max=1.0, retry_max_elapsed=4 * unit)
    emulator.set_faults(sequence=["429"] * 3, retry_after="soon")  # not seconds, not a date
    op = ImageSearchImportImagesOperator(
        task_id="import",
        instance_name=catalog,
        manifest=[{"path": obs("busy.jpg")}],
        imagesearch_conn_id=conn_id,
    )
    result = op.execute({"run_id": "run-1"})
    assert (result["added"], result["failed"]) == (1, 0)
    assert [r["status"] for r in add_requests(emulator)] == [429, 429, 429, 200]
    assert obs("busy.jpg") in library(emulator)


@pytest.mark.usefixtures("one_backend")
def test_a_429_whose_next_backoff_would_pass_max_elapsed_fails_the_row(
    imagesearch_conn: Callable[..., str],
    emulator: Emulator,
    catalog: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same, with one 429 more: its wait (8 units) would pass ``retry_max_elapsed``: the row fails on
    the 429, and no fifth send is made."""
    from airflow_provider_imagesearch.operators.import_images import ImageSearchImportImagesOperator

    monkeypatch.setattr(engine_module, "time", FrozenMonotonic())
    unit = 2.0**-7
    conn_id = imagesearch_conn("aksk", backoff_initial=unit, backoff_max=1.0, retry_max_elapsed=4 * unit)
    emulator.set_faults(sequence=["429"] * 4, retry_after="soon")
    op = ImageSearchImportImagesOperator(
        task_id="import",
        instance_name=catalog,
        manifest=[{"path": obs("busy.jpg")}],
        imagesearch_conn_id=conn_id,
    )
    with pytest.raises(AirflowFailException, match="row 1"):
        op.execute({"run_id": "run-1"})
    assert [r["status"] for r in add_requests(emulator)] == [429, 429, 429, 429]
