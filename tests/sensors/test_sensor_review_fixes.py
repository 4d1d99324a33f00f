"""Regressions of the deferrable sensor: soft_fail under an outage (issue 14) and the double poll at start (15)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from airflow.sdk import DAG

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.sensors.imagesearch import ImageSearchInstanceStatusSensor
from tests.support.dagrun import run_dag, states
from tests.support.waiting import after_first_poll

pytestmark = pytest.mark.usefixtures("airflow_db")


def _dag(dag_id: str, **sensor_kwargs: Any) -> DAG:
    with DAG(dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
        ImageSearchInstanceStatusSensor(task_id="wait", **sensor_kwargs)
    return dag


def test_soft_fail_does_not_skip_on_an_outage_in_deferrable_mode(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    """An outage is not a reason to skip downstream work: the task retries and then fails, as in poke mode."""
    emulator.upsert_instance("outage", status="CREATION", transition_after_s=3600.0, next_status="NORMAL")
    emulator.set_faults(error_5xx_rate=1.0, error_5xx_kinds=["503_json"])
    dag = _dag(
        "sensor_outage_soft_fail",
        instance_name="outage",
        imagesearch_conn_id=imagesearch_conn(max_attempts=1),
        deferrable=True,
        soft_fail=True,
        poke_interval=0.2,
        timeout=120,
        max_consecutive_errors=2,
        retries=1,
        retry_delay=timedelta(seconds=0),
    )
    dr = run_dag(dag)
    assert states(dr) == {("wait", -1): ("failed", 2)}


def test_never_fail_skips_on_an_outage_in_deferrable_mode_as_in_poke_mode(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    emulator.upsert_instance("outage-nf", status="CREATION", transition_after_s=3600.0, next_status="NORMAL")
    emulator.set_faults(error_5xx_rate=1.0, error_5xx_kinds=["503_json"])
    outcomes = {}
    for mode, kwargs in (("poke", {"mode": "poke"}), ("deferrable", {"deferrable": True})):
        dag = _dag(
            f"sensor_outage_never_fail_{mode}",
            instance_name="outage-nf",
            imagesearch_conn_id=imagesearch_conn(max_attempts=1),
            never_fail=True,
            poke_interval=0.2,
            timeout=120,
            max_consecutive_errors=2,
            **kwargs,
        )
        outcomes[mode] = states(run_dag(dag))[("wait", -1)]
    assert outcomes == {"poke": ("skipped", 1), "deferrable": ("skipped", 1)}


def test_the_trigger_waits_one_interval_after_the_first_poke(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    """The synchronous poke and the trigger's first poll used to land ~0.1 s apart."""
    emulator.upsert_instance("no-double", status="CREATION")

    def grow() -> None:  # NORMAL after the trigger's first poll, however late the sensor starts
        emulator.upsert_instance("no-double", status="CREATION", transition_after_s=3.0, next_status="NORMAL")

    dag = _dag(
        "sensor_no_double_poll",
        instance_name="no-double",
        imagesearch_conn_id=imagesearch_conn(),
        deferrable=True,
        poke_interval=2,
        timeout=60,
    )
    with after_first_poll(emulator, "no-double", grow):
        dr = run_dag(dag)
    assert states(dr) == {("wait", -1): ("success", 1)}
    polls = [r["ts"] for r in emulator.requests_log() if r.get("instance") == "no-double"]
    assert len(polls) >= 2
    gaps = [later - earlier for earlier, later in itertools.pairwise(polls)]
    # Only a lower bound: a slow machine can make the gap longer, never shorter.
    assert min(gaps) >= 1.9, gaps
