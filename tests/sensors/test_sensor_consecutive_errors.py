"""``max_consecutive_errors``: transient read errors in a row fail the sensor on exactly the Nth.

Each poke whose read fails with a transient error (a 503 after the hook's own retries) is counted and
logged as ``(k/N in a row)`` and the sensor keeps waiting; the Nth in a row re-raises the error, failing
the try. A successful read starts the count again.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.errors import ImageSearchApiError
from airflow_provider_imagesearch.sensors.imagesearch import ImageSearchInstanceStatusSensor
from airflow_provider_imagesearch.version_compat import AirflowSensorTimeout


def _sensor(conn_id: str) -> ImageSearchInstanceStatusSensor:
    return ImageSearchInstanceStatusSensor(
        task_id="wait",
        instance_name="flaky",
        imagesearch_conn_id=conn_id,
        max_consecutive_errors=3,
        mode="poke",
        poke_interval=0.1,
        timeout=5,
    )


def _reads(emulator: Emulator) -> int:
    return sum(1 for r in emulator.requests_log() if r.get("instance") == "flaky")


def test_the_third_transient_error_in_a_row_fails_the_sensor_not_the_second(
    emulator: Emulator, imagesearch_conn: Callable[..., str], capfd: pytest.CaptureFixture[str]
) -> None:
    emulator.upsert_instance("flaky", status="CREATION", transition_after_s=3600.0, next_status="NORMAL")
    emulator.set_faults(error_5xx_rate=1.0, error_5xx_kinds=["503_json"])
    with pytest.raises(ImageSearchApiError, match="503"):
        _sensor(imagesearch_conn("token", max_attempts=1)).execute({})
    assert _reads(emulator) == 3
    out = capfd.readouterr().out
    assert "Polling flaky failed (1/3 in a row)" in out
    assert "Polling flaky failed (2/3 in a row)" in out
    assert "(3/3 in a row)" not in out


def test_a_successful_read_starts_the_count_again(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    # Two failed reads, one that answers, two more failed, then answers: never three in a row, so the
    # sensor waits on until its timeout instead of failing on the error.
    emulator.upsert_instance("flaky", status="CREATION", transition_after_s=3600.0, next_status="NORMAL")
    emulator.set_faults(sequence=["503_json", "503_json", "ok", "503_json", "503_json"])
    sensor = _sensor(imagesearch_conn("token", max_attempts=1))
    sensor.timeout = 1.5
    with pytest.raises(AirflowSensorTimeout):
        sensor.execute({})
    assert _reads(emulator) > 5
