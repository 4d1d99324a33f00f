"""One poll round's readings: an instance whose answer could not be read carries that error's text, and a
403 answered while another read is in flight is that instance's refusal once the other read succeeds,
even when a throttled read stops the round meanwhile. (From the k6t helper's tests.)"""

from __future__ import annotations

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.triggers.status_polling import PollTarget, Reading
from tests.triggers.test_trigger_poll_rounds import CONN, _rounds, conn, logged, waits

__all__ = ["conn", "logged", "waits"]  # the poll loop tests' fixtures, used here too


@pytest.mark.usefixtures("conn", "waits")
def test_an_instance_whose_answer_could_not_be_read_carries_that_errors_text(
    emulator: Emulator, logged: list[str]
) -> None:
    for name in ("k6e-pe-a", "k6e-pe-b"):
        emulator.upsert_instance(name, status="NORMAL")
    emulator.set_faults(sequence=["ok", "truncated_json"])
    [round_] = _rounds(PollTarget(CONN, None, None, 10.0, 1), ["k6e-pe-a", "k6e-pe-b"], 1)
    error = round_.readings["k6e-pe-b"].error
    assert error is not None
    assert "MALFORMED_RESPONSE" in error, error
    assert (
        f"Reading instance k6e-pe-b failed (1 round(s) in a row): {error}; no reading of it this round"
        in logged
    )


@pytest.mark.usefixtures("conn", "waits")
def test_a_403_while_another_read_is_in_flight_is_that_instances_once_the_other_succeeds(
    emulator: Emulator,
) -> None:
    names = ["k6e-pw-a", "k6e-pw-b", "k6e-pw-c"]
    for name in names:
        emulator.upsert_instance(name, status="NORMAL")
    # All three reads in flight at once: the first answered late (and read), one refused, one throttled.
    emulator.set_faults(sequence=["slow", "403", "429"], slow_seconds=0.5)
    [round_] = _rounds(PollTarget(CONN, None, None, 10.0, 3), names, 1)
    readings = {name: round_.readings.get(name, Reading(None)) for name in names}
    refused = [name for name, reading in readings.items() if "403" in (reading.error or "")]
    read = [name for name in names if name in round_.readings and round_.readings[name].error is None]
    assert (len(refused), len(read)) == (1, 1), round_
    assert round_.failure is not None
    assert "403" not in round_.failure, round_.failure
