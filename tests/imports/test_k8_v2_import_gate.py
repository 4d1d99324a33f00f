"""A v2 import left at its default ``max_concurrency`` sends eight adds at once, as documented (the eighth
mutation sitting's survivor: every v2 import test passed its own). Nine rows, the first eight adds to reach
the emulator slow: with eight in flight the ninth waits for a slow one to end, so a slow answer comes
first; with nine, the ninth would be answered first. Against the emulator (``import_into``)."""

from __future__ import annotations

from collections.abc import Callable

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.emulator.routes_v2 import R2_ADD
from tests.imports.conftest import RunImport

SERVICE = "k8-v2-gate"


def test_a_v2_import_at_its_defaults_sends_eight_adds_at_once(
    import_into: Callable[..., RunImport], emulator: Emulator
) -> None:
    run = import_into(SERVICE, v2=True)
    rows = [{"item_id": f"g{i}", "image_url": f"https://cdn.example/k8/g{i}.jpg"} for i in range(9)]
    before = len(emulator.requests_log())
    emulator.set_faults(sequence=["slow"] * 8, slow_seconds=1.0, scope="api")
    run(rows)
    answered = [r for r in emulator.requests_log()[before:] if r["route"] == R2_ADD]
    assert len(answered) == 9
    assert answered[0]["fault"] == "slow"
