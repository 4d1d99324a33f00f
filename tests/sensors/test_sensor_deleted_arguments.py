"""The instance-deleted sensor waits for one thing, the instance gone: it refuses the status sensor's
arguments that would change what it waits for, naming the argument, when the DAG is parsed."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_imagesearch.sensors.imagesearch import ImageSearchInstanceDeletedSensor


@pytest.mark.parametrize(
    ("name", "value"),
    [("target_statuses", ["NORMAL"]), ("failure_statuses", ["ERROR"]), ("not_found_grace", 30.0)],
)
def test_the_deleted_sensor_refuses_an_argument_that_would_change_its_goal(name: str, value: Any) -> None:
    with pytest.raises(
        ValueError, match=f"ImageSearchInstanceDeletedSensor waits for 'gone': it takes no {name}$"
    ):
        ImageSearchInstanceDeletedSensor(task_id="gone", instance_name="old", **{name: value})


def test_the_deleted_sensor_takes_the_arguments_it_shares_with_the_status_sensor() -> None:
    sensor = ImageSearchInstanceDeletedSensor(
        task_id="gone", instance_names=["a", "b"], poke_interval=5, timeout=60, mode="reschedule"
    )
    assert sensor.instance_names == ["a", "b"]
    assert sensor.mode == "reschedule"
