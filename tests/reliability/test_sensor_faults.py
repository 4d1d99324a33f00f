"""Item 4: the instance-status sensor through faults, in poke, reschedule and deferrable mode.

* A wait across injected 5xx and 429 answers and an IAM token expiry (every issued token revoked right
  after the first successful poll, so between two polls) ends in success, with the details in XCom;
  every injected fault was consumed, the revoked token was refused exactly once and renewed exactly
  once (2 IAM token requests).

  One explicit expiry rather than ``token_expiry_interval``: with a periodic expiry, a token renewed
  just before the next boundary (or a renewal followed by a chain of 5xx/429 retries crossing it) is
  refused a second time, and the hook's one-renewal budget then ends the call with an auth error that
  fails the sensor for good. That is by design (see the report); it made this test flaky, not wrong.
* A 403 from the gateway fails the task at once, on the first try despite ``retries=2``, after one
  request (deferrable: one synchronous poke, then exactly one request from the trigger), with a message
  naming the 403 and its gateway code, not a loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from airflow.sdk import DAG, task

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.sensors.imagesearch import ImageSearchInstanceStatusSensor
from tests.reliability.support import SecretAudit, run_xcoms
from tests.support.dagrun import run_dag, states, xcom
from tests.support.waiting import after_first_poll

pytestmark = pytest.mark.usefixtures("airflow_db")

MODES: dict[str, dict[str, Any]] = {
    "poke": {"mode": "poke", "deferrable": False},
    "reschedule": {"mode": "reschedule", "deferrable": False},
    "deferrable": {"deferrable": True},
}
FAULT_SEQUENCE = ["503_json", "429", "ok", "502_html", "500_json", "429", "ok", "429", "503_json"]


def _dag(dag_id: str, seed: Callable[[], None] | None = None, **sensor_kwargs: Any) -> DAG:
    """The sensor, after an optional ``seed`` task (so an instance's clock starts with the wait)."""
    sensor_kwargs.setdefault("poke_interval", 1)
    sensor_kwargs.setdefault("timeout", 60)
    sensor_kwargs.setdefault("retries", 2)
    with DAG(dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
        sensor = ImageSearchInstanceStatusSensor(task_id="wait", **sensor_kwargs)
        if seed is not None:
            task(task_id="seed")(seed)() >> sensor
    return dag


def _requests_for(emulator: Emulator, name: str) -> list[dict[str, Any]]:
    return [r for r in emulator.requests_log() if r.get("instance") == name]


@pytest.mark.parametrize("mode", MODES)
def test_wait_through_faults_and_token_expiry_succeeds(
    mode: str, imagesearch_conn: Callable[..., str], emulator: Emulator, audit: SecretAudit
) -> None:
    name = f"rough-{mode[:5]}"

    def seed() -> None:
        emulator.upsert_instance(name, status="CREATION")

    # Tied to the sensor's first successful poll, not to a delay a slow DAG start could overrun.
    def expire_then_grow() -> None:
        emulator.expire_tokens(include_ready=False)
        emulator.upsert_instance(name, status="CREATION", transition_after_s=3.0, next_status="NORMAL")

    emulator.set_faults(sequence=FAULT_SEQUENCE, retry_after="0.02")
    started = time.monotonic()
    dag = _dag(
        f"rel_sensor_rough_{mode}",
        seed,
        instance_name=name,
        imagesearch_conn_id=imagesearch_conn(),
        **MODES[mode],
    )
    with after_first_poll(emulator, name, expire_then_grow) as expired:
        dr = run_dag(dag)
    elapsed = time.monotonic() - started
    assert expired.is_set()
    for key, value in run_xcoms(dr):
        audit.xcom(key, value)
    stats = emulator.stats()
    log = _requests_for(emulator, name)
    audit.figure(
        f"sensor through faults ({mode})",
        state=states(dr)[("wait", -1)],
        polls_200=sum(1 for r in log if r["status"] == 200),
        faults_injected=stats["faults_injected"],
        token_requests=stats["token_requests"],
        expired_token_refusals=stats["token_expiries"],
        wall_s=elapsed,
    )
    assert states(dr) == {("wait", -1): ("success", 1), ("seed", -1): ("success", 1)}
    detail = xcom(dr, "wait")
    assert (detail["instance_name"], detail["status"]) == (name, "NORMAL")
    # Every fault of the sequence hit the sensor, and it still got through.
    assert sum(stats["faults_injected"].values()) == sum(1 for f in FAULT_SEQUENCE if f != "ok")
    assert emulator.control.faults()["sequence"] == []
    # The wait outlived at least one token; each refusal cost exactly one renewal.
    assert stats["token_expiry_events"] == 1
    assert stats["token_expiries"] == 1
    assert stats["token_requests"] == 2
    assert sum(1 for r in log if r["status"] == 200) >= 2


@pytest.mark.parametrize("mode", MODES)
def test_forbidden_fails_clearly_after_one_request(
    mode: str, imagesearch_conn: Callable[..., str], emulator: Emulator, audit: SecretAudit
) -> None:
    name = f"deny-{mode[:5]}"
    emulator.upsert_instance(name, status="CREATION", transition_after_s=3600.0)
    # Deferrable: the synchronous first poke gets through, so the 403 reaches the trigger.
    emulator.set_faults(sequence=["ok"] if mode == "deferrable" else [], forbidden_rate=1.0)
    started = time.monotonic()
    dr = run_dag(
        _dag(
            f"rel_sensor_403_{mode}",
            instance_name=name,
            imagesearch_conn_id=imagesearch_conn(),
            **MODES[mode],
        )
    )
    elapsed = time.monotonic() - started
    output = audit.read_output()
    log = _requests_for(emulator, name)
    audit.figure(
        f"sensor 403 ({mode})",
        state=states(dr)[("wait", -1)],
        api_requests=len(log),
        statuses=[r["status"] for r in log],
        wall_s=elapsed,
    )
    assert states(dr) == {("wait", -1): ("failed", 1)}
    expected = [200, 403] if mode == "deferrable" else [403]
    assert [r["status"] for r in log] == expected
    assert "HTTP 403 APIGW.0302" in output
    assert f"/service/{name}" in output
