"""Where an event watcher reads: the project it is given, and as many instances at once as it is told."""

from __future__ import annotations

import threading
from typing import Any, cast

import pytest

from airflow_provider_imagesearch.emulator import DEFAULT_SUB_PROJECT_ID, Emulator
from tests.triggers.test_event_trigger import INSTANCE_ROUTE, Watching, _run, _watch, conn

__all__ = ["conn"]  # the event trigger tests' connection fixture, used here too


@pytest.mark.usefixtures("conn")
def test_a_watcher_given_a_project_reads_and_fires_in_that_project(emulator: Emulator) -> None:
    emulator.upsert_instance("k6e-sub", project_id=DEFAULT_SUB_PROJECT_ID, status="CREATION")

    async def scenario() -> list[dict[str, Any]]:
        trigger = _watch(["k6e-sub"], ["NORMAL"], project_id=DEFAULT_SUB_PROJECT_ID)
        async with Watching(emulator, trigger) as watching:
            await watching.rounds("k6e-sub", 1)
            emulator.upsert_instance("k6e-sub", project_id=DEFAULT_SUB_PROJECT_ID, status="NORMAL")
            await watching.until(lambda: bool(watching.events), timeout=15)
            return watching.events

    events = cast(list[dict[str, Any]], _run(scenario))
    assert [(e["project_id"], e["new_status"]) for e in events] == [(DEFAULT_SUB_PROJECT_ID, "NORMAL")]
    projects = {
        r["path"].split("/")[2]
        for r in emulator.requests_log()
        if r["route"] == INSTANCE_ROUTE and r["instance"] == "k6e-sub"
    }
    assert projects == {DEFAULT_SUB_PROJECT_ID}


@pytest.mark.usefixtures("conn")
def test_a_watcher_reads_max_concurrency_instances_at_once(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    import httpx

    send = httpx.AsyncClient.send
    state = {"now": 0, "peak": 0}
    lock = threading.Lock()

    async def counted(self: httpx.AsyncClient, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        try:
            return await send(self, request, **kwargs)
        finally:
            with lock:
                state["now"] -= 1

    monkeypatch.setattr(httpx.AsyncClient, "send", counted)
    names = [f"k6e-wide-{i}" for i in range(8)]
    for name in names:
        emulator.upsert_instance(name, status="CREATION")
    emulator.set_faults(latency_seconds=0.3)

    async def scenario() -> None:
        async with Watching(emulator, _watch(names, ["NORMAL"], max_concurrency=8)) as watching:
            await watching.rounds(names[-1], 1)

    _run(scenario)
    assert state["peak"] == 8
