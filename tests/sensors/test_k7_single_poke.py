"""The single-instance status sensor, run with ``execute`` against the emulator without a DAG run.

What its user sees: the instance's details as the result; a missing instance waited for during
``not_found_grace`` (counted from the wait's first try, also when a reschedule runs the next poke in a
new process) and failed once it has passed, at the first poke when the grace is 0; the custom
``failure_statuses`` failing the task at once; ``max_consecutive_errors`` (default 5, 1 allowed) failed
reads in a row failing it, a good read starting the count again; the console link; the reschedule
hint logged only for IAM password auth in reschedule mode; a fleet handing the triggerer 16 reads at
once by default.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.errors import ImageSearchApiError
from airflow_provider_imagesearch.links import ImageSearchConsoleLink
from airflow_provider_imagesearch.sensors import imagesearch as sensor_module
from airflow_provider_imagesearch.sensors.imagesearch import ImageSearchInstanceStatusSensor
from airflow_provider_imagesearch.version_compat import AirflowFailException, AirflowSensorTimeout
from tests.support.clocks import StillWallClock
from tests.support.deferral import deferral

try:
    from airflow.sdk.exceptions import AirflowRescheduleException
except ImportError:  # Airflow 3.1
    from airflow.exceptions import AirflowRescheduleException  # type: ignore[no-redef]

HINT = "Reschedule mode: each poke runs in a new process"


def _sensor(conn_id: str, name: str, **kwargs: Any) -> ImageSearchInstanceStatusSensor:
    kwargs = {"mode": "poke", "poke_interval": 0.1, "timeout": 10, **kwargs}
    return ImageSearchInstanceStatusSensor(
        task_id="wait", instance_name=name, imagesearch_conn_id=conn_id, **kwargs
    )


def _reads(emulator: Emulator, name: str) -> int:
    return sum(1 for r in emulator.requests_log() if r.get("instance") == name)


class _RescheduledTry:
    """The task instance a reschedule gives a poke: its first try began ``ago`` before now."""

    def __init__(self, ago: datetime.timedelta) -> None:
        self.first = datetime.datetime.now(datetime.UTC) - ago

    def get_first_reschedule_date(self, context: Any) -> datetime.datetime:
        return self.first


def _rescheduled(ago: datetime.timedelta) -> dict[str, Any]:
    return {"ti": _RescheduledTry(ago)}


def test_a_ready_instance_is_the_result_with_its_details(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    emulator.upsert_instance("k7-ready", status="NORMAL", description="shop photos")
    detail = _sensor(imagesearch_conn("token"), "k7-ready").execute({})
    assert (detail["instance_name"], detail["status"], detail["description"]) == (
        "k7-ready",
        "NORMAL",
        "shop photos",
    )


def test_a_missing_instance_is_waited_for_during_the_grace(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    sensor = _sensor(imagesearch_conn("token"), "k7-ghost", not_found_grace=3600, timeout=0.5)
    # Missing within the grace: not a failure, not a success, the wait goes on until its timeout.
    with pytest.raises(AirflowSensorTimeout):
        sensor.execute({})
    assert _reads(emulator, "k7-ghost") >= 2


def test_with_no_grace_a_missing_instance_fails_the_first_poke_though_no_time_has_passed(
    emulator: Emulator, imagesearch_conn: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sensor_module, "time", StillWallClock())
    with pytest.raises(AirflowFailException, match="k7-none"):
        _sensor(imagesearch_conn("token"), "k7-none", not_found_grace=0).execute({})
    assert _reads(emulator, "k7-none") == 1


def test_a_rescheduled_poke_counts_the_grace_from_the_first_try(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    """A reschedule runs each poke in a new process: the grace still counts from the wait's first try."""
    conn_id = imagesearch_conn("token")
    hour = datetime.timedelta(hours=1)
    late = _sensor(conn_id, "k7-gone", mode="reschedule", not_found_grace=600, timeout=7200)
    with pytest.raises(AirflowFailException, match="k7-gone"):
        late.execute(_rescheduled(hour))
    early = _sensor(conn_id, "k7-gone", mode="reschedule", not_found_grace=600, timeout=7200)
    with pytest.raises(AirflowRescheduleException):
        early.execute(_rescheduled(datetime.timedelta(minutes=1)))


def test_a_custom_failure_status_fails_the_task_at_once(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    emulator.upsert_instance("k7-stuck", status="CREATION", transition_after_s=3600.0, next_status="NORMAL")
    sensor = _sensor(imagesearch_conn("token"), "k7-stuck", failure_statuses=["CREATION"])
    with pytest.raises(AirflowFailException, match=r"k7-stuck.*CREATION"):
        sensor.execute({})
    assert _reads(emulator, "k7-stuck") == 1


@pytest.mark.parametrize(
    ("limit", "reads"), [({}, 5), ({"max_consecutive_errors": 1}, 1)], ids=["default", "one"]
)
def test_failed_reads_in_a_row_fail_the_wait_at_the_limit_five_by_default_one_allowed(
    limit: dict[str, int], reads: int, emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    emulator.upsert_instance("k7-flaky", status="CREATION", transition_after_s=3600.0, next_status="NORMAL")
    emulator.set_faults(error_5xx_rate=1.0, error_5xx_kinds=["503_json"])
    with pytest.raises(ImageSearchApiError, match="503"):
        _sensor(imagesearch_conn("token", max_attempts=1), "k7-flaky", **limit).execute({})
    assert _reads(emulator, "k7-flaky") == reads


def test_a_good_read_between_failed_ones_starts_the_count_from_zero(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    emulator.upsert_instance("k7-mixed", status="CREATION", transition_after_s=3600.0, next_status="NORMAL")
    emulator.set_faults(sequence=["503_json", "ok", "503_json", "ok"])
    sensor = _sensor(
        imagesearch_conn("token", max_attempts=1), "k7-mixed", max_consecutive_errors=2, timeout=0.8
    )
    # Never two failed reads in a row: the wait ends at its timeout, not on the second 503.
    with pytest.raises(AirflowSensorTimeout):
        sensor.execute({})
    assert _reads(emulator, "k7-mixed") >= 4


def test_the_console_link_names_the_instance(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    emulator.upsert_instance("k7-linked", status="NORMAL")
    sensor = _sensor(imagesearch_conn("token"), "k7-linked")
    sensor.execute({})
    assert "instance_name=k7-linked" in ImageSearchConsoleLink().get_link(sensor, ti_key=None)


@pytest.mark.parametrize(
    ("auth", "mode", "hinted"),
    [("iam_password", "reschedule", True), ("token", "reschedule", False), ("iam_password", "poke", False)],
)
def test_the_reschedule_hint_is_logged_only_for_iam_password_auth_in_reschedule_mode(
    auth: str,
    mode: str,
    hinted: bool,
    emulator: Emulator,
    imagesearch_conn: Callable[..., str],
    capfd: pytest.CaptureFixture[str],
) -> None:
    emulator.upsert_instance("k7-hint", status="NORMAL")
    sensor = _sensor(imagesearch_conn(auth), "k7-hint", mode=mode)
    assert sensor.execute(_rescheduled(datetime.timedelta(0)))["instance_name"] == "k7-hint"
    assert (HINT in capfd.readouterr().out) is hinted


def test_a_deferred_fleet_hands_the_trigger_sixteen_reads_at_once_by_default(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    names = ["k7-fleet-a", "k7-fleet-b"]
    for name in names:
        emulator.upsert_instance(name, status="CREATION", transition_after_s=3600.0, next_status="NORMAL")
    sensor = ImageSearchInstanceStatusSensor(
        task_id="wait", instance_names=names, imagesearch_conn_id=imagesearch_conn("token"), deferrable=True
    )
    _, kwargs = deferral(sensor).trigger.serialize()
    assert (kwargs["instance_names"], kwargs["max_concurrency"]) == (names, 16)
