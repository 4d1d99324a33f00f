"""A wait trigger never imports httpx's async backend on the triggerer's event loop.

The first request of an ``httpx.AsyncClient`` imports anyio's asyncio backend, its TLS streams and
``anyio.to_thread`` (~50 ms): on the triggerer's loop that is a block every trigger of the triggerer
waits out ("async thread was blocked"). The trigger loads them with the hook, in a worker thread. Run in
a fresh interpreter that has loaded only what the triggerer has before it runs a trigger (Airflow's
trigger base), the trigger's module imported and its whole wait run on the event loop, as the triggerer
does, against the emulator: the wait needs modules of anyio not loaded yet, and none is imported on the
loop. Every module of the ``anyio`` package counts, not a list of its internal module names: a module a
new anyio release adds to the first request is caught where it is imported on the loop, and a renaming
that changes nothing on the loop is no failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from airflow_provider_imagesearch.emulator import Emulator
from tests.support.connections import connection_fields, env_name

PACKAGE = "anyio"

CHILD = """
import asyncio, json, sys

PACKAGE = {package!r}
started = False
imported = {{}}


class RecordImports:
    def find_spec(self, name, path=None, target=None):
        if (name == PACKAGE or name.startswith(PACKAGE + ".")) and name not in imported:
            try:
                asyncio.get_running_loop()
                on_loop = True
            except RuntimeError:
                on_loop = False
            imported[name] = {{"after_start": started, "on_loop": on_loop}}
        return None


sys.meta_path.insert(0, RecordImports())
import airflow.triggers.base  # what the triggerer has loaded before it runs a trigger

started = True


async def wait():
    # The triggerer imports a trigger's module on its event loop.
    from airflow_provider_imagesearch.triggers.imagesearch import ImageSearchInstanceStatusTrigger

    trigger = ImageSearchInstanceStatusTrigger(
        instance_name="loop-imports", imagesearch_conn_id="imagesearch_loop_imports", poll_interval=1.0
    )
    events = trigger.run()
    event = await anext(events)
    await events.aclose()
    return event.payload["status"]


status = asyncio.run(wait())
# Only the modules that were imported: a failed attempt (an optional module that is not there) loads nothing.
print(json.dumps({{"status": status, "imported": {{n: i for n, i in imported.items() if n in sys.modules}}}}))
"""


def test_the_async_http_backend_is_imported_off_the_event_loop(emulator: Emulator) -> None:
    emulator.upsert_instance("loop-imports", status="NORMAL")
    env = {
        **os.environ,
        env_name("imagesearch_loop_imports"): json.dumps(connection_fields(emulator.url, "token")),
    }
    child = subprocess.run(
        [sys.executable, "-c", CHILD.format(package=PACKAGE)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    seen = json.loads(child.stdout.strip().splitlines()[-1])
    assert seen["status"] == "success"
    loaded = sorted(name for name, how in seen["imported"].items() if how["after_start"])
    assert loaded, "the trigger loaded no module of anyio: nothing it could have imported on the loop"
    on_loop = sorted(name for name, how in seen["imported"].items() if how["on_loop"])
    assert on_loop == [], f"imported on the event loop: {on_loop}"
