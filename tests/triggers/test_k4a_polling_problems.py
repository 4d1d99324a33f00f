"""The status watchers' shared poll loop (``poll_rounds``) when a round fails, as the triggerer's log and the
service show it: the warning a failed round logs tells the whole story (what the watchers do about it).

The loop runs as in ``test_trigger_poll_rounds`` (its helpers are reused): waits scripted, one read at a
time, the hook's own retries off.
"""

from __future__ import annotations

from airflow_provider_imagesearch.emulator import Emulator
from tests.support.scripted_waits import ScriptedWaits
from tests.triggers.test_trigger_poll_rounds import CONN, _rounds, _target
from tests.triggers.test_trigger_poll_rounds import conn as conn  # the fixtures
from tests.triggers.test_trigger_poll_rounds import logged as logged
from tests.triggers.test_trigger_poll_rounds import waits as waits


def test_a_failed_round_warns_what_the_watchers_do_about_it(
    conn: str, emulator: Emulator, waits: ScriptedWaits, logged: list[str]
) -> None:
    emulator.upsert_instance("k4a-pl-a", status="NORMAL")
    emulator.set_faults(sequence=["truncated_json"])
    _rounds(_target(), ["k4a-pl-a"], 2)
    [line] = [line for line in logged if line.startswith("ImageSearch round failed")]
    assert line.startswith(
        f"ImageSearch round failed (connection {CONN!r}, 1 round(s) in a row, 0 of 1 instance(s) not read): "
        "ImageSearchError: every read failed, e.g. "
    )
    assert line.endswith(
        ". Watchers keep the statuses they know, fire nothing for this round, and compare the next reading "
        "with what they know."
    )
