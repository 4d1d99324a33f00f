"""Behaviour of the watcher's memory that the mutation run found untested (docs/mutation-testing.rst)."""

from __future__ import annotations

from airflow_provider_imagesearch.triggers.status_memory import StatusMemory


def test_the_status_of_an_instance_never_read_is_none_and_it_is_not_known() -> None:
    # A watcher asks for the status of every instance it watches before the first round has read them.
    memory = StatusMemory(["NORMAL"], epoch_ms=1)
    assert memory.status("never-read") is None
    assert not memory.knows("never-read")
