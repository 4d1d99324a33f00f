"""The send phase the task's XCom reports (``phases.send``): the time the engine spent sending."""

from __future__ import annotations

from collections.abc import Callable

from airflow_provider_imagesearch.emulator import Emulator
from tests.imports.conftest import RunImport, obs


def test_the_send_phase_holds_the_time_the_requests_took(
    import_into: Callable[..., RunImport], emulator: Emulator
) -> None:
    """Two rows one after the other, each answered after 0.2 s: the send phase lasts at least 0.4 s."""
    run = import_into("k7s-phase")
    emulator.set_faults(latency_seconds=0.2)
    result = run([{"path": obs(f"k7s/phase{i}.jpg")} for i in range(2)], max_concurrency=1)
    assert result["added"] == 2, result
    assert 0.4 <= result["phases"]["send"] <= result["seconds"], result
