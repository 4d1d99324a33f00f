"""What a watcher's memory stores, a restarted watcher resumes: at every valid value, the bounds included.

``epoch_ms`` and ``seq`` are counts from zero: an entry made at epoch 0 (a clock at the Unix epoch, as in
a test harness that freezes time there) with its first reading (``seq`` 0) is stored and resumed like
any other; only a negative value marks a store that is not the watcher's.
"""

from __future__ import annotations

from airflow_provider_imagesearch.triggers.status_memory import StatusMemory


def test_an_entry_made_at_epoch_zero_is_resumed_after_a_restart() -> None:
    before = StatusMemory(["NORMAL"], epoch_ms=0)
    before.observe("inst", "CREATION", registered_at="2026-12-01T00:00:00Z")
    stored = before.to_stored(["inst"])
    after = StatusMemory(["NORMAL"], epoch_ms=1_700_000_000_000)
    assert after.resume("inst", stored) is True
    assert after.status("inst") == "CREATION"
    change = after.observe("inst", "NORMAL", registered_at="2026-12-01T00:00:00Z")
    assert change is not None
    assert StatusMemory.event_id("w", change) == "w-0-inst-1"


def test_an_entry_with_a_negative_epoch_or_seq_is_not_resumed() -> None:
    memory = StatusMemory(["NORMAL"], epoch_ms=1)
    for entry in (["NORMAL", 0, -1, None], ["NORMAL", -1, 0, None]):
        stored = {**StatusMemory(["NORMAL"], epoch_ms=1).to_stored(), "known": {"inst": entry}}
        assert memory.resume("inst", stored) is False
    assert not memory.knows("inst")
