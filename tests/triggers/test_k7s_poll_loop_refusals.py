"""The shared poll loop after the credentials' refusal (403 before any read succeeded): what the
triggerer's log says, which instance the next round starts with, and the shared client given back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import cast

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.hooks.imagesearch import SHARED_CLIENTS
from airflow_provider_imagesearch.triggers.status_polling import DEMAND, PollTarget, StatusRound, poll_rounds
from tests.triggers.test_trigger_poll_rounds import CONN, _reads, _rounds, conn, logged, waits

__all__ = ["conn", "logged", "waits"]  # the poll loop tests' fixtures, used here too


@pytest.mark.usefixtures("conn", "waits")
def test_a_lone_instance_refused_is_the_credentials_refusal_logged_as_such(
    emulator: Emulator, logged: list[str]
) -> None:
    # Every instance of the round refused: none is left unanswered, and the round's error is the 403.
    emulator.upsert_instance("k7s-lone", status="NORMAL")
    emulator.set_faults(sequence=["403"])
    [round_] = _rounds(PollTarget(CONN, None, None, 5.0, 1), ["k7s-lone"], 1)
    assert _reads(emulator) == ["k7s-lone", "k7s-lone"]
    assert (round_.number, round_.readings["k7s-lone"].status, round_.failure) == (2, "NORMAL", None)
    [line] = [line for line in logged if line.startswith("ImageSearch round failed")]
    assert "1 of 1 instance(s) not read): ImageSearchAuthError: " in line, line
    assert "Check the connection" in line
    assert "StopIteration" not in line


@pytest.mark.usefixtures("conn", "waits")
def test_the_hook_dropped_after_a_refusal_gives_its_shared_client_back(
    emulator: Emulator, logged: list[str]
) -> None:
    emulator.upsert_instance("k7s-back", status="NORMAL")
    emulator.set_faults(sequence=["403"])
    target = PollTarget(CONN, None, None, 5.0, 1)

    async def scenario() -> tuple[StatusRound, int, int]:
        DEMAND.add(target.key(), ["k7s-back"])
        loop = cast(AsyncGenerator[StatusRound, None], poll_rounds(target))
        try:
            round_ = await anext(loop)  # the second round, on a new hook
            users = SHARED_CLIENTS.users()
        finally:
            await loop.aclose()
            DEMAND.remove(target.key(), ["k7s-back"])
        return round_, users, SHARED_CLIENTS.count()

    round_, users, clients = asyncio.run(asyncio.wait_for(scenario(), 10))
    assert (round_.number, round_.readings["k7s-back"].status) == (2, "NORMAL")
    assert users == 1  # the refused round's hook gave its place back ...
    assert clients == 0  # ... and the loop's end closes the client
    assert not [line for line in logged if line.startswith("Closing the ImageSearch hook failed")]
