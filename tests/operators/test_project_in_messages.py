"""The "does not exist" messages name the project id in effect, not "(connection default)" (issue 20, item 7).

The hook was closed before the message asked it for the resolved project; the triggers knew only the
task's override.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from airflow_provider_imagesearch.operators.imagesearch import (
    ImageSearchAddImageOperator,
    ImageSearchDeleteInstanceOperator,
    InstanceDetailOperator,
)
from airflow_provider_imagesearch.sensors.imagesearch import ImageSearchInstanceStatusSensor

pytestmark = pytest.mark.usefixtures("airflow_db")


# --- item 7: the real project id in "does not exist" -------------------------------------------------------


@pytest.mark.parametrize(
    ("operator", "kwargs"),
    [
        (InstanceDetailOperator, {"instance_name": "ghost-a"}),
        (ImageSearchDeleteInstanceOperator, {"instance_name": "ghost-b", "missing_ok": False}),
        (ImageSearchAddImageOperator, {"instance_name": "ghost-c", "path": "p", "file_base64": "Qk0="}),
        (ImageSearchInstanceStatusSensor, {"instance_name": "ghost-d", "mode": "poke", "timeout": 5}),
    ],
    ids=["detail", "delete", "add", "sensor"],
)
def test_does_not_exist_names_the_project_of_the_connection(
    operator: type, kwargs: dict[str, Any], imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    from airflow_provider_imagesearch.version_compat import AirflowFailException

    op = operator(task_id="x", imagesearch_conn_id=imagesearch_conn("token"), **kwargs)
    with pytest.raises(AirflowFailException) as raised:
        op.execute({"ti": None})  # type: ignore[arg-type]
    message = str(raised.value)
    assert "does not exist" in message
    assert DEFAULT_PROJECT_ID in message
    assert "connection default" not in message


@pytest.mark.parametrize("fleet", [False, True], ids=["single", "fleet"])
def test_a_deferred_wait_names_the_project_of_the_connection(
    fleet: bool, imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    """The triggers' "does not exist" too: their ``project_id`` is only the override (None here)."""
    import asyncio

    from airflow_provider_imagesearch.triggers.imagesearch import (
        ImageSearchFleetStatusTrigger,
        ImageSearchInstanceStatusTrigger,
    )

    target: dict[str, Any] = {"instance_names": ["ghost-e"]} if fleet else {"instance_name": "ghost-e"}
    trigger_class: Any = ImageSearchFleetStatusTrigger if fleet else ImageSearchInstanceStatusTrigger
    trigger = trigger_class(**target, imagesearch_conn_id=imagesearch_conn("token"), poll_interval=0.1)

    async def first() -> dict[str, Any]:
        generator = trigger.run()
        try:
            return dict((await anext(generator)).payload)
        finally:
            await generator.aclose()

    event = asyncio.run(first())
    assert event["status"] == "not_found"
    assert DEFAULT_PROJECT_ID in event["message"]
    assert event["project_id"] == DEFAULT_PROJECT_ID
