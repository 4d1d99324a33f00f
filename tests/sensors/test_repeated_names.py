"""A repeated name in ``instance_names`` is one instance with many positions, in every mode (issue 20, item 1).

The fleet poke counted the distinct names done against the length of the list, repeats included, so a list
with a repeat never finished in poke or reschedule mode (it ended only at ``timeout``), and the deferrable
mode deferred once for nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from airflow.sdk import DAG

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.sensors.imagesearch import (
    ImageSearchInstanceDeletedSensor,
    ImageSearchInstanceStatusSensor,
)
from tests.support.dagrun import run_dag, states, xcom

pytestmark = pytest.mark.usefixtures("airflow_db")

MODES: dict[str, dict[str, Any]] = {
    "poke": {"mode": "poke", "deferrable": False},
    "reschedule": {"mode": "reschedule", "deferrable": False},
    "deferrable": {"deferrable": True},
}
TRIGGER_RAN = "[DAG TEST] running trigger in line"


def _run(dag_id: str, sensor: type, **kwargs: Any) -> Any:
    # A timeout the old code ran into: it never saw the fleet done, and ended only here.
    kwargs.setdefault("poke_interval", 0.5)
    kwargs.setdefault("timeout", 8)
    with DAG(dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
        sensor(task_id="wait", **kwargs)
    return run_dag(dag)


@pytest.mark.parametrize("mode", MODES)
def test_a_repeated_ready_instance_ends_the_wait_at_the_first_look(
    mode: str,
    imagesearch_conn: Callable[..., str],
    emulator: Emulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    a, b = f"rep-{mode[:4]}-a", f"rep-{mode[:4]}-b"
    emulator.upsert_instance(a, status="NORMAL")
    emulator.upsert_instance(b, status="NORMAL")
    with caplog.at_level("INFO", logger="airflow.sdk.definitions.dag"):
        dr = _run(
            f"repeated_ready_{mode}",
            ImageSearchInstanceStatusSensor,
            instance_names=[a, b, a],
            imagesearch_conn_id=imagesearch_conn("token"),
            **MODES[mode],
        )
    assert states(dr) == {("wait", -1): ("success", 1)}
    # One entry per position, a repeat repeating its details.
    assert [d["instance_name"] for d in xcom(dr, "wait")] == [a, b, a]
    # Both were NORMAL at the first look: no deferral, no second round.
    assert caplog.text.count(TRIGGER_RAN) == 0
    reads = [r for r in emulator.requests_log() if r["method"] == "GET" and r.get("instance") in (a, b)]
    assert sorted(r["instance"] for r in reads) == sorted([a, b])


@pytest.mark.parametrize("mode", MODES)
def test_a_repeated_gone_instance_ends_the_deleted_wait(
    mode: str, imagesearch_conn: Callable[..., str], emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("INFO", logger="airflow.sdk.definitions.dag"):
        dr = _run(
            f"repeated_gone_{mode}",
            ImageSearchInstanceDeletedSensor,
            instance_names=["gone-x", "gone-y", "gone-y"],
            imagesearch_conn_id=imagesearch_conn("token"),
            **MODES[mode],
        )
    assert states(dr) == {("wait", -1): ("success", 1)}
    assert xcom(dr, "wait") == [None, None, None]
    assert caplog.text.count(TRIGGER_RAN) == 0  # gone at the first look: nothing to defer for


def test_a_repeated_name_waits_until_its_instance_is_ready(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    """The repeat is not 'done' by itself: the wait still ends only once that one instance is ready."""
    emulator.upsert_instance("rep-slow", status="CREATION", transition_after_s=1.5, next_status="NORMAL")
    emulator.upsert_instance("rep-fast", status="NORMAL")
    dr = _run(
        "repeated_slow",
        ImageSearchInstanceStatusSensor,
        instance_names=["rep-slow", "rep-fast", "rep-slow"],
        imagesearch_conn_id=imagesearch_conn("token"),
        mode="poke",
        timeout=60,
    )
    assert states(dr) == {("wait", -1): ("success", 1)}
    assert [d["status"] for d in xcom(dr, "wait")] == ["NORMAL"] * 3
