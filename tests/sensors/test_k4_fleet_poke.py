"""A fleet wait (``ImageSearchInstanceStatusSensor(instance_names=...)``) in poke mode, run with ``execute``
against the emulator, pokes a tenth of a second apart: a failed read is counted and logged as "Reading the
fleet failed (k/N in a row)" and the wait goes on; a good read starts the count again; a missing instance
is waited for during ``not_found_grace`` and fails the task once it has passed (at the first poke when
the grace is 0); the reads run ``max_concurrency`` at a time; and the task's console link names its
first instance."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.links import ImageSearchConsoleLink
from airflow_provider_imagesearch.sensors import imagesearch as sensor_module
from airflow_provider_imagesearch.sensors.imagesearch import ImageSearchInstanceStatusSensor
from airflow_provider_imagesearch.version_compat import AirflowFailException, AirflowSensorTimeout
from tests.support.clocks import StillWallClock


def _sensor(conn_id: str, names: list[str], **kwargs: Any) -> ImageSearchInstanceStatusSensor:
    return ImageSearchInstanceStatusSensor(
        task_id="wait",
        instance_names=names,
        imagesearch_conn_id=conn_id,
        mode="poke",
        poke_interval=0.1,
        **{"timeout": 10, **kwargs},
    )


def _names(details: Any) -> list[str]:
    return [detail["instance_name"] for detail in details]


def test_a_failed_read_is_counted_and_logged_and_the_wait_goes_on(
    emulator: Emulator, imagesearch_conn: Callable[..., str], capfd: pytest.CaptureFixture[str]
) -> None:
    emulator.upsert_instance("fp-a", status="NORMAL")
    emulator.set_faults(sequence=["503_json"])
    sensor = _sensor(imagesearch_conn("token", max_attempts=1), ["fp-a"], max_consecutive_errors=3)
    assert _names(sensor.execute({})) == ["fp-a"]
    assert "Reading the fleet failed (1/3 in a row)" in capfd.readouterr().out


def test_a_good_read_starts_the_count_of_failed_reads_again(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    emulator.upsert_instance("fp-b", status="CREATION", transition_after_s=3600.0, next_status="NORMAL")
    emulator.set_faults(sequence=["503_json", "ok", "503_json", "503_json"])
    sensor = _sensor(
        imagesearch_conn("token", max_attempts=1), ["fp-b"], max_consecutive_errors=3, timeout=2.0
    )
    # Never three failed reads in a row: the wait ends at its timeout, not on an error.
    with pytest.raises(AirflowSensorTimeout):
        sensor.execute({})
    assert sum(1 for r in emulator.requests_log() if r.get("instance") == "fp-b") >= 4


def test_a_missing_instance_is_waited_for_during_the_grace(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    emulator.upsert_instance("fp-c", status="NORMAL")
    sensor = _sensor(imagesearch_conn("token"), ["fp-c", "fp-ghost"], not_found_grace=3600, timeout=0.5)
    with pytest.raises(AirflowSensorTimeout):
        sensor.execute({})


def test_with_no_grace_a_missing_instance_fails_the_first_poke(
    emulator: Emulator, imagesearch_conn: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The clock stands still: no time has passed since the wait began, and a grace of 0 is over."""

    monkeypatch.setattr(sensor_module, "time", StillWallClock())
    emulator.upsert_instance("fp-d", status="NORMAL")
    sensor = _sensor(imagesearch_conn("token"), ["fp-d", "fp-ghost"])
    with pytest.raises(AirflowFailException, match="fp-ghost"):
        sensor.execute({})
    assert sum(1 for r in emulator.requests_log() if r.get("instance") == "fp-ghost") == 1


def test_the_reads_run_max_concurrency_at_a_time(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    """One at a time: the fast second read starts after the slow first one ends."""
    for name in ("fp-e1", "fp-e2"):
        emulator.upsert_instance(name, status="NORMAL")
    emulator.set_faults(sequence=["slow"], slow_seconds=0.3)
    sensor = _sensor(imagesearch_conn("token"), ["fp-e1", "fp-e2"], max_concurrency=1)
    assert _names(sensor.execute({})) == ["fp-e1", "fp-e2"]
    reads = [r for r in emulator.requests_log() if r.get("instance")]
    assert [r["fault"] for r in reads] == ["slow", None]


def test_the_console_link_names_the_first_instance(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    for name in ("fp-f1", "fp-f2"):
        emulator.upsert_instance(name, status="NORMAL")
    sensor = _sensor(imagesearch_conn("token"), ["fp-f1", "fp-f2"])
    assert _names(sensor.execute({})) == ["fp-f1", "fp-f2"]
    assert "instance_name=fp-f1" in ImageSearchConsoleLink().get_link(sensor, ti_key=None)
