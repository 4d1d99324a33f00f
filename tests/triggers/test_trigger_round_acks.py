"""Airflow 3.3's ack mode for the instance-status watchers' poll loop (``round_producer``): when Airflow
reports that a round's events were not all stored, what the watchers registered to store after it is
forgotten, never run (they store it after a later round), the triggerer's shared stream goes on (the
producer's ``advance`` never raises), and the warning says so; a confirmed round runs what was registered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from airflow_provider_imagesearch.triggers import status_polling
from airflow_provider_imagesearch.triggers.status_polling import PollTarget, RoundAcks, round_producer
from tests.support.log_lines import log_lines

TARGET = PollTarget("imagesearch_acks", None, None, 1.0, 4)


def _acks_recording(ran: list[str], *labels: str) -> RoundAcks:
    acks = RoundAcks()
    for label in labels:

        async def store(label: str = label) -> None:
            ran.append(label)

        acks.after_persisted(store)
    return acks


@pytest.fixture
def polling_log() -> Iterator[list[str]]:
    """The lines the poll loop's module logs (whatever handlers Airflow's logging set-up installed)."""
    with log_lines(status_polling.__name__) as lines:
        yield lines


def test_a_round_whose_events_were_not_all_stored_runs_none_of_its_stores_and_the_stream_goes_on(
    polling_log: list[str],
) -> None:
    shared_stream = pytest.importorskip("airflow.triggers.shared_stream", reason="Airflow 3.3+")
    producer = round_producer(TARGET)
    ran: list[str] = []
    failed_round = _acks_recording(ran, "a", "b")
    stored_round = _acks_recording(ran, "c")

    async def scenario() -> None:
        await producer.advance(
            [
                shared_stream.AdvanceItem(failed_round, shared_stream.AdvanceOutcome(acked=1, failed=1)),
                shared_stream.AdvanceItem(stored_round, shared_stream.AdvanceOutcome(acked=2, failed=0)),
            ]
        )
        await failed_round.run()  # dropped: nothing left to run

    asyncio.run(scenario())
    assert ran == ["c"]
    assert [line for line in polling_log if line.startswith("Round events")] == [
        "Round events of 'imagesearch_acks' were not all confirmed stored (1 watcher(s) failed); "
        "the watchers store what they know after a later round"
    ]


def test_drop_forgets_the_registered_stores_and_says_how_many() -> None:
    ran: list[str] = []
    acks = _acks_recording(ran, "a", "b")
    assert acks.drop() == 2
    assert acks.drop() == 0
    asyncio.run(acks.run())
    assert ran == []


def test_a_round_a_watcher_rejected_runs_none_of_its_stores(polling_log: list[str]) -> None:
    shared_stream = pytest.importorskip("airflow.triggers.shared_stream", reason="Airflow 3.3+")
    producer = round_producer(TARGET)
    ran: list[str] = []
    rejected_round = _acks_recording(ran, "a")
    outcome = shared_stream.AdvanceOutcome(acked=1, failed=0, rejected=1)
    asyncio.run(producer.advance([shared_stream.AdvanceItem(rejected_round, outcome)]))
    assert ran == []
    assert any("(1 watcher(s) failed)" in line for line in polling_log)
