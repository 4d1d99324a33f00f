"""A watcher run by a triggerer before Airflow 3.3, whose triggers have no ``asset_state_store`` at all
(BaseTrigger gained it in 3.3): it works without a memory and reports the changes it sees."""

from __future__ import annotations

from typing import Any, cast

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from tests.triggers.test_event_trigger import Watching, _run, _set, _watch, conn

__all__ = ["conn"]  # the event trigger tests' fixture, used here too


@pytest.mark.usefixtures("conn")
def test_a_trigger_without_the_state_store_attribute_watches_and_reports(emulator: Emulator) -> None:
    _set(emulator, "k7s-old", "CREATION")

    async def scenario() -> list[dict[str, Any]]:
        trigger = _watch(["k7s-old"], ["NORMAL"])
        vars(trigger).pop(
            "asset_state_store", None
        )  # as Airflow 3.1/3.2's BaseTrigger builds it (no attribute)
        async with Watching(emulator, trigger) as watching:
            await watching.rounds("k7s-old", 1)
            _set(emulator, "k7s-old", "NORMAL")
            await watching.until(lambda: bool(watching.events))
            return watching.events

    events = cast(list[dict[str, Any]], _run(scenario))
    assert [(e["instance_name"], e["old_status"]) for e in events] == [("k7s-old", "CREATION")]
