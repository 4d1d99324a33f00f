"""The lifecycle operators refuse wait settings that would loop or crash, naming the setting, before any
request; good ones pass."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.emulator.routes import R_TOKENS
from airflow_provider_imagesearch.operators.imagesearch import ImageSearchDeleteInstanceOperator


def _delete(conn_id: str, **kwargs: Any) -> ImageSearchDeleteInstanceOperator:
    return ImageSearchDeleteInstanceOperator(
        task_id="delete", instance_name="k6e-wait", deferrable=False, imagesearch_conn_id=conn_id, **kwargs
    )


def _api_requests(emulator: Emulator) -> list[dict[str, Any]]:
    return [r for r in emulator.requests_log() if r["route"] != R_TOKENS]


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("poke_interval", 0),
        ("poke_interval", -1),
        ("poke_interval", "5"),
        ("poke_interval", True),
        ("timeout", 0),
        ("timeout", -0.5),
        ("timeout", "60"),
        ("timeout", True),
    ],
)
def test_a_wait_setting_that_cannot_work_is_refused_before_any_request(
    imagesearch_conn: Callable[..., str], emulator: Emulator, setting: str, value: Any
) -> None:
    from airflow_provider_imagesearch.version_compat import AirflowFailException

    emulator.upsert_instance("k6e-wait", status="NORMAL")
    emulator.reset_stats()
    with pytest.raises(AirflowFailException) as refused:
        _delete(imagesearch_conn(), wait_for_completion=True, **{setting: value}).execute({})
    assert str(refused.value).startswith(f"Invalid {setting} {value!r}: a number of seconds > 0")
    assert _api_requests(emulator) == []


def test_settings_that_cannot_wait_are_not_checked_when_the_task_does_not_wait(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    emulator.upsert_instance("k6e-wait", status="NORMAL")
    _delete(imagesearch_conn(), wait_for_completion=False, poke_interval=0, timeout=0).execute({})
    assert [r["route"] for r in _api_requests(emulator)][-1].startswith("DELETE")
