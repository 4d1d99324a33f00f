"""InstanceDetailOperator(instance_names=[...]): bulk reads against the emulator."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from airflow.sdk import DAG
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from airflow_provider_imagesearch.errors import ImageSearchError
from airflow_provider_imagesearch.operators.imagesearch import InstanceDetailOperator
from tests.support.connections import FAST_RETRY_EXTRAS
from tests.support.dagrun import run_dag, states, task_instances, xcom
from tests.support.waiting import wait_until


def _seed(emulator: Emulator, prefix: str, count: int) -> list[str]:
    names = [f"{prefix}-{index:03d}" for index in range(count)]
    emulator.control.upsert_instances(
        [{"name": name, "status": "NORMAL", "project_id": DEFAULT_PROJECT_ID} for name in names]
    )
    return names


def _gets(emulator: Emulator, prefix: str) -> list[str]:
    return [
        str(r["instance"])
        for r in emulator.requests_log()
        if str(r.get("instance") or "").startswith(prefix) and r["method"] == "GET"
    ]


def _read(conn_id: str, names: list[str], **kwargs: Any) -> Any:
    operator = InstanceDetailOperator(
        task_id="read", imagesearch_conn_id=conn_id, instance_names=names, **kwargs
    )
    return operator.execute({})  # type: ignore[arg-type]


def test_exactly_one_of_instance_name_and_instance_names() -> None:
    with pytest.raises(ValueError, match=r"exactly one of instance_name .* or instance_names"):
        InstanceDetailOperator(task_id="both", instance_name="a", instance_names=["b"])
    with pytest.raises(ValueError, match="neither"):
        InstanceDetailOperator(task_id="neither")


def test_returns_details_in_input_order_over_one_token(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    names = _seed(emulator, "ord", 40)
    wanted = list(reversed(names))
    result = _read(imagesearch_conn(), wanted, max_concurrency=8)
    assert [detail["instance_name"] for detail in result] == wanted
    assert all(detail["status"] == "NORMAL" for detail in result)
    assert sorted(_gets(emulator, "ord-")) == sorted(names)
    assert emulator.stats()["token_requests"] == 1


def test_missing_fail_reads_all_others_then_names_every_missing_one(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    names = _seed(emulator, "mf", 6)
    wanted = [names[0], "mf-ghost-a", *names[1:], "mf-ghost-b"]
    with pytest.raises(AirflowFailException) as raised:
        _read(imagesearch_conn(), wanted, max_concurrency=3)
    assert "mf-ghost-a" in str(raised.value)
    assert "mf-ghost-b" in str(raised.value)
    assert "2 ImageSearch instances do not exist" in str(raised.value)
    # Every instance was read before failing.
    assert sorted(_gets(emulator, "mf-")) == sorted(wanted)


def test_missing_skip_leaves_the_missing_ones_out(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    names = _seed(emulator, "ms", 4)
    wanted = ["ms-ghost", *names]
    result = _read(imagesearch_conn(), wanted, missing="skip")
    assert [detail["instance_name"] for detail in result] == names


def test_bad_missing_and_concurrency_are_refused_naming_the_field(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    names = _seed(emulator, "bad", 2)
    with pytest.raises(AirflowFailException, match="missing"):
        _read(imagesearch_conn(), names, missing="ignore")
    with pytest.raises(AirflowFailException, match="max_concurrency"):
        _read(imagesearch_conn(), names, max_concurrency=0)
    with pytest.raises(AirflowFailException, match="instance_names"):
        _read(imagesearch_conn(), "bad-000")  # type: ignore[arg-type]


def test_faults_are_retried_by_the_hook(imagesearch_conn: Callable[..., str], emulator: Emulator) -> None:
    names = _seed(emulator, "flt", 60)
    emulator.set_faults(
        error_5xx_rate=0.15, throttle_429_rate=0.1, retry_after="0", drop_rate=0.1, random_seed=7
    )
    conn_id = imagesearch_conn("iam_password", **{**FAST_RETRY_EXTRAS, "max_attempts": 10})
    result = _read(conn_id, names, max_concurrency=8)
    assert [detail["instance_name"] for detail in result] == names
    by_status = emulator.stats()["by_status"]
    # The faults did happen: 5xx, 429 and dropped connections were among the requests.
    assert any(code.startswith("5") for code in by_status)
    assert "429" in by_status
    assert "dropped" in by_status


def test_token_expiring_in_the_middle_is_renewed_once(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    names = _seed(emulator, "tok", 80)
    emulator.set_faults(latency_seconds=0.02)
    expired = threading.Event()

    def expire_after_some_reads() -> None:
        wait_until(lambda: len(_gets(emulator, "tok-")), lambda n: n >= 20, timeout=120, every=0.005)
        emulator.expire_tokens(include_ready=False)
        expired.set()

    watcher = threading.Thread(target=expire_after_some_reads, daemon=True)
    watcher.start()
    result = _read(imagesearch_conn(), names, max_concurrency=4)
    watcher.join(30)
    assert expired.is_set()
    assert [detail["instance_name"] for detail in result] == names
    stats = emulator.stats()
    assert stats["token_expiries"] >= 1
    assert stats["token_requests"] == 2


def test_a_permanent_error_fails_at_once(imagesearch_conn: Callable[..., str], emulator: Emulator) -> None:
    names = _seed(emulator, "perm", 50)
    emulator.set_faults(forbidden_rate=1.0)
    with pytest.raises(AirflowFailException, match=r"403|IS\.0003|orbidden"):
        _read(imagesearch_conn("token"), names, max_concurrency=4)
    # Reads not started yet were never sent: a few in flight at the time, not all 50.
    assert len(_gets(emulator, "perm-")) <= 8


def test_transient_errors_after_the_hook_retries_fail_the_try(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    names = _seed(emulator, "trn", 10)
    emulator.set_faults(error_5xx_rate=1.0, error_5xx_kinds=["503_json"])
    conn_id = imagesearch_conn("token", **{**FAST_RETRY_EXTRAS, "max_attempts": 2})
    with pytest.raises(ImageSearchError) as raised:
        _read(conn_id, names, max_concurrency=2)
    # Not AirflowFailException: Airflow retries the task.
    assert not isinstance(raised.value, AirflowFailException)


@pytest.mark.usefixtures("airflow_db")
def test_mapped_batches_in_dag_test(imagesearch_conn: Callable[..., str], emulator: Emulator) -> None:
    names = _seed(emulator, "bat", 5)
    conn_id = imagesearch_conn("token", conn_id="bulk_conn")
    with DAG("bulk_batches", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
        InstanceDetailOperator.partial(task_id="read", imagesearch_conn_id=conn_id).expand(
            instance_names=[names[:3], names[3:]]
        )
    dr = run_dag(dag)
    assert states(dr) == {("read", 0): ("success", 1), ("read", 1): ("success", 1)}
    assert [d["instance_name"] for d in xcom(dr, "read", 0)] == names[:3]
    assert [d["instance_name"] for d in xcom(dr, "read", 1)] == names[3:]
    tis = task_instances(dr)
    assert [tis[("read", i)].rendered_map_index for i in range(2)] == ["bat-000 +2 more", "bat-003 +1 more"]
