"""A wait trigger never imports httpx's async backend on the triggerer's event loop.

The first request of an ``httpx.AsyncClient`` imports anyio's asyncio backend, its TLS streams and
``anyio.to_thread`` (~50 ms): on the triggerer's loop that is a block every trigger of the triggerer
waits out ("async thread was blocked"). The trigger loads them with the hook, in a worker thread. Run in
a fresh interpreter (nothing imported yet), a trigger's whole wait against the emulator: each of those
modules is imported, and never by the loop's thread.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from airflow_provider_imagesearch.emulator import Emulator
from tests.support.connections import connection_fields, env_name

PRELOADED = ("anyio._backends._asyncio", "anyio.streams.tls", "anyio.to_thread")

CHILD = """
import asyncio, json, sys, threading

PRELOADED = {preloaded!r}
importer = {{}}


class RecordImports:
    def find_spec(self, name, path=None, target=None):
        if name in PRELOADED:
            importer.setdefault(name, threading.current_thread().name)
        return None


sys.meta_path.insert(0, RecordImports())
from airflow_provider_imagesearch.triggers.imagesearch import ImageSearchInstanceStatusTrigger


async def wait():
    trigger = ImageSearchInstanceStatusTrigger(
        instance_name="loop-imports", imagesearch_conn_id="imagesearch_loop_imports", poll_interval=1.0
    )
    events = trigger.run()
    event = await anext(events)
    await events.aclose()
    return event.payload["status"]


status = asyncio.run(wait())
print(json.dumps({{"status": status, "importer": importer, "loop": threading.main_thread().name}}))
"""


def test_the_async_http_backend_is_imported_off_the_event_loop(emulator: Emulator) -> None:
    emulator.upsert_instance("loop-imports", status="NORMAL")
    env = {
        **os.environ,
        env_name("imagesearch_loop_imports"): json.dumps(connection_fields(emulator.url, "token")),
    }
    child = subprocess.run(
        [sys.executable, "-c", CHILD.format(preloaded=PRELOADED)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    seen = json.loads(child.stdout.strip().splitlines()[-1])
    assert seen["status"] == "success"
    assert sorted(seen["importer"]) == sorted(PRELOADED)
    assert seen["loop"] not in seen["importer"].values()
