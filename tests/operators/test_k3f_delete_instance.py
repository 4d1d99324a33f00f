"""The delete-instance operator run in a worker (``execute``, no DAG run): fast checks of what it sends,
returns and raises for an instance already on its way out, stuck, or whose delete answer was lost."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.emulator.routes import R_DELETE_INSTANCE
from airflow_provider_imagesearch.operators.imagesearch import ImageSearchDeleteInstanceOperator
from airflow_provider_imagesearch.version_compat import AirflowFailException, AirflowSensorTimeout


def _operator(conn_id: str, name: str, **kwargs: Any) -> ImageSearchDeleteInstanceOperator:
    return ImageSearchDeleteInstanceOperator(
        task_id="delete", instance_name=name, deferrable=False, imagesearch_conn_id=conn_id, **kwargs
    )


def _deletes(emulator: Emulator) -> int:
    return sum(1 for r in emulator.requests_log() if r["route"] == R_DELETE_INSTANCE)


def _names(emulator: Emulator) -> list[str]:
    return [i["name"] for i in emulator.control.state()["instances"]]


@pytest.fixture
def slow_deletion(emulator: Emulator) -> Iterator[None]:
    """An accepted delete leaves the instance DELETING for a minute."""
    emulator.control.set_config(deletion_seconds=60.0)
    yield
    emulator.control.set_config(deletion_seconds=5.0)


def test_an_instance_already_deleting_gets_no_second_delete(
    emulator: Emulator, imagesearch_conn: Callable[..., str], instance: Callable[..., str]
) -> None:
    """The instance is already being deleted: the task succeeds without sending a delete."""
    name = instance("k3f-going", status="DELETING", transition_after_s=60.0)
    op = _operator(imagesearch_conn(), name, wait_for_completion=False)
    assert op.execute({}) is None
    assert _deletes(emulator) == 0
    assert name in _names(emulator)


def test_an_instance_whose_deletion_failed_fails_at_once_without_a_delete(
    emulator: Emulator, imagesearch_conn: Callable[..., str], instance: Callable[..., str]
) -> None:
    name = instance("k3f-stuck", status="DELETING_FAILED")
    with pytest.raises(AirflowFailException, match=f"'{name}' is DELETING_FAILED"):
        _operator(imagesearch_conn(), name, poke_interval=0.01).execute({})
    assert _deletes(emulator) == 0
    assert name in _names(emulator)


@pytest.mark.usefixtures("slow_deletion")
def test_a_delete_whose_answer_was_lost_and_reads_back_deleting_took_effect(
    emulator: Emulator,
    imagesearch_conn: Callable[..., str],
    instance: Callable[..., str],
    capfd: pytest.CaptureFixture[str],
) -> None:
    """``max_attempts=1``: the lost answer reaches the read-back at once; the instance DELETING is the
    delete's own effect, so the task succeeds without a second delete."""
    name = instance("k3f-lost")
    emulator.set_faults(sequence=["ok", "drop_after"])  # the status read; the delete, its answer lost
    op = _operator(imagesearch_conn("token", max_attempts=1), name, wait_for_completion=False)
    assert op.execute({}) is None
    assert _deletes(emulator) == 1
    assert [i["status"] for i in emulator.control.state()["instances"] if i["name"] == name] == ["DELETING"]
    out = capfd.readouterr().out
    assert f"Deleting instance {name} took effect: reading it back found what was asked" in out


def test_a_delete_whose_instance_never_goes_fails_after_the_timeout(
    emulator: Emulator, imagesearch_conn: Callable[..., str], instance: Callable[..., str]
) -> None:
    """The instance stays DELETING far longer than ``timeout``: the wait gives up (it would otherwise
    succeed only once the instance goes, seconds later)."""
    name = instance("k3f-slow", status="DELETING", transition_after_s=3.0)
    op = _operator(imagesearch_conn(), name, poke_interval=0.01, timeout=0.05)
    with pytest.raises(AirflowSensorTimeout, match=f"Instance {name} did not become gone"):
        op.execute({})
    assert name in _names(emulator)
    assert _deletes(emulator) == 0, "the instance was already being deleted: no delete is sent"
