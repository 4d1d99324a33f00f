"""ImageSearchInstanceStatusSensor in poke, reschedule and deferrable modes, in real Airflow."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from airflow.sdk import DAG

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.models import TERMINAL_FAILURE_STATUSES
from airflow_provider_imagesearch.sensors.imagesearch import ImageSearchInstanceStatusSensor
from tests.support.dagrun import run_dag, states, xcom
from tests.support.waiting import after_first_poll, transition_at

pytestmark = pytest.mark.usefixtures("airflow_db")

MODES: dict[str, dict[str, Any]] = {
    "poke": {"mode": "poke", "deferrable": False},
    "reschedule": {"mode": "reschedule", "deferrable": False},
    "deferrable": {"deferrable": True},
}


def _dag(dag_id: str, **sensor_kwargs: Any) -> DAG:
    sensor_kwargs.setdefault("poke_interval", 1)
    sensor_kwargs.setdefault("timeout", 60)
    sensor_kwargs.setdefault("retries", 2)
    with DAG(dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
        ImageSearchInstanceStatusSensor(task_id="wait", **sensor_kwargs)
    return dag


def _polls(emulator: Emulator, name: str) -> int:
    return sum(1 for r in emulator.requests_log() if r.get("instance") == name and r["method"] == "GET")


@pytest.mark.parametrize("mode", MODES)
def test_creation_becomes_normal(mode: str, imagesearch_conn: Callable[..., str], emulator: Emulator) -> None:
    name = f"grow-{mode[:5]}"
    emulator.upsert_instance(name, status="CREATION")
    # The instance turns NORMAL a little after the sensor first saw it in CREATION.
    grow = functools.partial(
        emulator.upsert_instance, name, status="CREATION", transition_after_s=1.5, next_status="NORMAL"
    )
    with after_first_poll(emulator, name, grow) as grown:
        dr = run_dag(
            _dag(
                f"sensor_ok_{mode}", instance_name=name, imagesearch_conn_id=imagesearch_conn(), **MODES[mode]
            )
        )
    assert grown.is_set()
    assert states(dr) == {("wait", -1): ("success", 1)}
    detail = xcom(dr, "wait")
    assert detail["status"] == "NORMAL"
    assert detail["instance_name"] == name
    assert _polls(emulator, name) >= 2


@pytest.mark.parametrize("mode", MODES)
def test_creation_failed_fails_at_once_without_retries(
    mode: str, imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    name = f"fail-{mode[:5]}"
    emulator.upsert_instance(name, status="CREATION")
    failed_at: list[float] = []

    def fail_soon() -> None:
        emulator.upsert_instance(
            name, status="CREATION", transition_after_s=1.5, next_status="CREATION_FAILD"
        )
        failed_at.append(transition_at(emulator, name))

    with after_first_poll(emulator, name, fail_soon):
        dr = run_dag(
            _dag(
                f"sensor_fail_{mode}",
                instance_name=name,
                imagesearch_conn_id=imagesearch_conn(),
                **MODES[mode],
            )
        )
    assert states(dr) == {("wait", -1): ("failed", 1)}
    log = [r for r in emulator.requests_log() if r.get("instance") == name]
    # The poke that saw CREATION_FAILD was the last one, and the only one after the change.
    assert log[-1]["status"] == 200
    assert failed_at, "the instance never moved towards CREATION_FAILD"
    faild_polls = [r for r in log if r["ts"] >= failed_at[0]]
    assert len(faild_polls) == 1
    assert len(log) >= 2


@pytest.mark.parametrize("status", sorted(s.value for s in TERMINAL_FAILURE_STATUSES))
def test_every_failure_status_fails_on_the_first_poke(
    status: str, imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    name = f"st-{status.lower()[:10]}".replace("_", "-")
    emulator.upsert_instance(name, status=status)
    dr = run_dag(
        _dag(
            f"sensor_status_{status}", instance_name=name, imagesearch_conn_id=imagesearch_conn(), mode="poke"
        )
    )
    assert states(dr) == {("wait", -1): ("failed", 1)}
    assert _polls(emulator, name) == 1


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("soft_fail", [False, True])
def test_timeout_fails_or_skips(
    mode: str, soft_fail: bool, imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    name = f"slow-{mode[:5]}"
    emulator.upsert_instance(name, status="CREATION", transition_after_s=3600.0, next_status="NORMAL")
    dag = _dag(
        f"sensor_timeout_{mode}_{soft_fail}",
        instance_name=name,
        imagesearch_conn_id=imagesearch_conn(),
        timeout=3,
        soft_fail=soft_fail,
        **MODES[mode],
    )
    dr = run_dag(dag)
    assert states(dr) == {("wait", -1): ("skipped" if soft_fail else "failed", 1)}


@pytest.mark.parametrize("mode", MODES)
def test_token_expiring_mid_wait_is_renewed(
    mode: str, imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    name = f"tok-{mode[:5]}"
    emulator.upsert_instance(name, status="CREATION")

    # One expiry in the middle of the wait, after the first poll (a periodic expiry could land between
    # a renewal and its use, which no real 24 h token does); NORMAL comes polls later.
    def expire_then_grow() -> None:
        emulator.expire_tokens(include_ready=False)
        emulator.upsert_instance(name, status="CREATION", transition_after_s=2.5, next_status="NORMAL")

    with after_first_poll(emulator, name, expire_then_grow) as expired:
        dr = run_dag(
            _dag(
                f"sensor_token_{mode}",
                instance_name=name,
                imagesearch_conn_id=imagesearch_conn(),
                **MODES[mode],
            )
        )
    assert expired.is_set()
    assert states(dr) == {("wait", -1): ("success", 1)}
    stats = emulator.stats()
    assert stats["token_expiries"] >= 1
    assert stats["token_requests"] == 2


@pytest.mark.parametrize("mode", MODES)
def test_transient_errors_during_the_wait_do_not_fail_it(
    mode: str, imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    name = f"flaky-{mode[:5]}"
    emulator.upsert_instance(name, status="CREATION")
    emulator.set_faults(sequence=["503_json", "429", "502_html", "ok", "500_json", "429"], retry_after="0.05")
    # NORMAL a while after the first poll answered (a slow DAG start must not skip the faulted polls).
    grow = functools.partial(
        emulator.upsert_instance, name, status="CREATION", transition_after_s=3.0, next_status="NORMAL"
    )
    with after_first_poll(emulator, name, grow):
        dr = run_dag(
            _dag(
                f"sensor_flaky_{mode}",
                instance_name=name,
                imagesearch_conn_id=imagesearch_conn(),
                **MODES[mode],
            )
        )
    assert states(dr) == {("wait", -1): ("success", 1)}
    faults = emulator.stats()["faults_injected"]
    assert sum(faults.values()) == 5


@pytest.mark.parametrize("mode", MODES)
def test_missing_instance_waits_for_grace_then_fails(
    mode: str, imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    name = f"late-{mode[:5]}"
    # The grace counts from the start of the wait, so a first poke slower than the grace (its token and
    # its read, on a loaded machine: seen on Airflow 3.1.8 in CI) rightly fails after one poll. A grace
    # of several poke intervals keeps the second poll, which shows the wait, out of the scheduler's hands.
    dag = _dag(
        f"sensor_missing_{mode}",
        instance_name=name,
        imagesearch_conn_id=imagesearch_conn(),
        not_found_grace=6,
        **MODES[mode],
    )
    dr = run_dag(dag)
    assert states(dr) == {("wait", -1): ("failed", 1)}
    assert _polls(emulator, name) >= 2


def test_a_typo_in_statuses_fails_before_the_first_poke(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    dr = run_dag(
        _dag(
            "sensor_typo",
            instance_name="whatever",
            imagesearch_conn_id=imagesearch_conn(),
            target_statuses=["NORMALL"],
        )
    )
    assert states(dr) == {("wait", -1): ("failed", 1)}
    assert emulator.stats()["requests_total"] == 0


def test_forbidden_fails_after_one_request_in_deferrable_mode(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    name = "deny-me"
    emulator.upsert_instance(name, status="CREATION", transition_after_s=3600.0)
    emulator.set_faults(sequence=["ok"], forbidden_rate=1.0)
    dr = run_dag(
        _dag("sensor_403", instance_name=name, imagesearch_conn_id=imagesearch_conn(), deferrable=True)
    )
    assert states(dr) == {("wait", -1): ("failed", 1)}
    # One poke before deferring (ok), then exactly one request from the trigger (403).
    assert _polls(emulator, name) == 2


@pytest.mark.parametrize("mode", MODES)
def test_soft_fail_skips_on_a_failure_status(
    mode: str, imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    name = f"soft-{mode[:5]}"
    emulator.upsert_instance(name, status="ABNORMAL")
    dag = _dag(
        f"sensor_soft_{mode}",
        instance_name=name,
        imagesearch_conn_id=imagesearch_conn(),
        soft_fail=True,
        **MODES[mode],
    )
    dr = run_dag(dag)
    assert states(dr) == {("wait", -1): ("skipped", 1)}
    assert _polls(emulator, name) == 1
