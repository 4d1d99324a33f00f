"""A v2 item as the emulator holds it, read from its control state (not through the API under test)."""

from __future__ import annotations

from typing import Any

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator


def v2_item(emulator: Emulator, service: str, item_id: str) -> dict[str, Any]:
    """The item ``item_id`` of the default project's v2 service ``service``; KeyError when it is not there."""
    (found,) = [
        s
        for s in emulator.control.state()["v2_services"]
        if s["name"] == service and s["project_id"] == DEFAULT_PROJECT_ID
    ]
    item: dict[str, Any] = found["items"][item_id]
    return item
