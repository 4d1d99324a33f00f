"""Fixtures: a fresh in-process emulator per test (it starts in about a millisecond)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_imagesearch.emulator import Emulator

from .helpers import Api


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(creation_seconds=0.0, deletion_seconds=0.0) as emu:
        yield emu


@pytest.fixture
def api(emulator: Emulator) -> Api:
    return Api(emulator.url)


@pytest.fixture
def ready_instance(api: Api) -> str:
    """A NORMAL instance named ``lib`` with tag names ``animal`` and ``color``."""
    response = api.create("lib", tags=["animal", "color"])
    assert response.status_code == 200
    assert api.query("lib").json()["status"] == "NORMAL"
    return "lib"
