"""Changes to the emulator's instances that a scenario makes, now or at a scripted point of a wait."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from airflow_provider_imagesearch.emulator.client import EmulatorControlError


def status_change(emulator: Emulator, name: str, status: str) -> Callable[[], object]:
    """A change to run later (e.g. as one of ``ScriptedWaits.changes``): instance ``name`` gets ``status``
    (created if it does not exist)."""
    return lambda: emulator.upsert_instance(name, status=status)


def remove_instance(emulator: Emulator, name: str) -> None:
    """Make sure instance ``name`` does not exist in the default project (whether or not it did)."""
    with contextlib.suppress(EmulatorControlError):
        emulator.control.delete_instance(DEFAULT_PROJECT_ID, name)
