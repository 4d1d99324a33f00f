"""The watcher's rules of what fires (StatusMemory), without I/O: each rule of docs/events.rst."""

from __future__ import annotations

import json

import pytest

from airflow_provider_imagesearch.triggers.status_memory import StatusMemory, watch_digest

READY = ["NORMAL"]


def test_the_first_reading_is_the_baseline_and_never_fires() -> None:
    memory = StatusMemory(READY, epoch_ms=1)
    assert memory.observe("shop", "NORMAL") is None  # already NORMAL when the watch began
    assert memory.knows("shop")
    assert memory.status("shop") == "NORMAL"


def test_entering_a_watched_status_fires_once_and_an_unchanged_status_never_again() -> None:
    memory = StatusMemory(READY, epoch_ms=1)
    memory.observe("shop", "CREATION")
    change = memory.observe("shop", "NORMAL")
    assert change is not None
    assert (change.old_status, change.new_status, change.seq, change.fires) == ("CREATION", "NORMAL", 1, True)
    assert [memory.observe("shop", "NORMAL") for _ in range(50)] == [None] * 50


def test_a_change_to_an_unwatched_status_is_recorded_but_does_not_fire() -> None:
    memory = StatusMemory(READY, epoch_ms=1)
    memory.observe("shop", "NORMAL")
    leaving = memory.observe("shop", "ABNORMAL")
    assert leaving is not None
    assert leaving.fires is False
    back = memory.observe("shop", "NORMAL")  # entering again: fires again
    assert back is not None
    assert (back.old_status, back.fires, back.seq) == ("ABNORMAL", True, 2)


def test_a_missing_instance_fires_when_it_appears_in_a_watched_status_and_not_when_it_goes() -> None:
    memory = StatusMemory(READY, epoch_ms=1)
    assert memory.observe("ghost", None) is None  # baseline: does not exist
    assert memory.knows("ghost")
    appears = memory.observe("ghost", "NORMAL")
    assert appears is not None
    assert (appears.old_status, appears.fires) == (None, True)
    gone = memory.observe("ghost", None)
    assert gone is not None
    assert (gone.new_status, gone.fires) == (None, False)


def test_several_statuses_each_fire_on_entry() -> None:
    memory = StatusMemory(["ABNORMAL", "ARREARAGE"], epoch_ms=1)
    memory.observe("shop", "NORMAL")
    first = memory.observe("shop", "ABNORMAL")
    second = memory.observe("shop", "ARREARAGE")  # from one watched status into another: an entry
    assert first is not None
    assert second is not None
    assert first.fires
    assert second.fires


def test_an_instance_created_again_under_its_name_is_a_new_instance_entering_its_status() -> None:
    """Deleted and created again between two reads (or while the watcher was stopped): the status
    string is the same, the creation time is not."""
    memory = StatusMemory(READY, epoch_ms=1)
    assert memory.observe("shop", "NORMAL", "2026-01-01T00:00:00Z") is None
    assert memory.observe("shop", "NORMAL", "2026-01-01T00:00:00Z") is None
    again = memory.observe("shop", "NORMAL", "2026-02-01T00:00:00Z")
    assert again is not None
    assert (again.old_status, again.new_status, again.fires, again.recreated, again.seq) == (
        None,
        "NORMAL",
        True,
        True,
        1,
    )
    assert memory.observe("shop", "NORMAL", "2026-02-01T00:00:00Z") is None  # once
    # A reading without a creation time (or a memory without one) cannot tell: only the status counts.
    assert memory.observe("shop", "NORMAL", None) is None
    other = StatusMemory(READY, epoch_ms=1)
    other.observe("shop", "NORMAL")
    assert other.observe("shop", "NORMAL", "2026-03-01T00:00:00Z") is None  # learnt, not a change
    assert other.dirty
    assert other.observe("shop", "NORMAL", "2026-04-01T00:00:00Z") is not None
    # Gone, then there again: "did not exist" -> NORMAL, not a re-creation of the gone one.
    gone = StatusMemory(READY, epoch_ms=1)
    gone.observe("shop", "NORMAL", "2026-01-01T00:00:00Z")
    assert gone.observe("shop", None) is not None
    back = gone.observe("shop", "NORMAL", "2026-05-01T00:00:00Z")
    assert back is not None
    assert (back.old_status, back.recreated) == (None, False)


def test_the_creation_time_is_kept_across_a_restart() -> None:
    memory = StatusMemory(READY, epoch_ms=1)
    memory.observe("shop", "NORMAL", "2026-01-01T00:00:00Z")
    resumed = StatusMemory(READY, epoch_ms=2)
    assert resumed.resume("shop", _stored(memory, "shop"))
    assert resumed.observe("shop", "NORMAL", "2026-01-01T00:00:00Z") is None
    change = resumed.observe("shop", "NORMAL", "2026-02-01T00:00:00Z")
    assert change is not None
    assert change.recreated


def _stored(memory: StatusMemory, name: str) -> object:
    """What a state store gives back of one instance's entry (stored one instance a value)."""
    return json.loads(json.dumps(memory.to_stored([name])))


def test_the_stored_memory_resumes_exactly_what_was_known() -> None:
    memory = StatusMemory(READY, epoch_ms=1234)
    memory.observe("a", "CREATION")
    memory.observe("a", "NORMAL")
    memory.observe("b", None)
    resumed = StatusMemory(READY, epoch_ms=9999)
    assert resumed.resume("a", _stored(memory, "a"))
    assert resumed.resume("b", _stored(memory, "b"))
    assert resumed.dirty is False  # what was just read back need not be stored again
    # A restarted watcher: what it reported does not fire again ...
    assert resumed.observe("a", "NORMAL") is None
    assert resumed.observe("b", None) is None
    # ... and a change made while it was down fires against what it knew, in the entry's own epoch.
    appeared = resumed.observe("b", "NORMAL")
    assert appeared is not None
    assert (appeared.old_status, appeared.fires, appeared.epoch_ms) == (None, True, 1234)
    assert resumed.dirty


def test_each_instance_is_stored_on_its_own_and_a_watch_of_other_instances_resumes_it() -> None:
    """What is known of an instance does not depend on which other instances are watched with it."""
    memory = StatusMemory(READY, epoch_ms=1)
    memory.observe("a", "CREATION")
    memory.observe("b", "CREATION")
    assert set(memory.unstored()) == {"a", "b"}
    assert memory.unstored()["a"][1] == {"format": 2, "known": {"a": ["CREATION", 0, 1, None]}}
    smaller = StatusMemory(READY, epoch_ms=2)  # the watch edited down to one instance
    assert smaller.resume("a", _stored(memory, "a"))
    change = smaller.observe("a", "NORMAL")
    assert change is not None
    assert change.fires
    edited_back = StatusMemory(READY, epoch_ms=3)  # and edited back
    assert edited_back.resume("a", _stored(smaller, "a"))
    assert edited_back.resume("b", _stored(memory, "b"))
    assert edited_back.observe("a", "NORMAL") is None  # reported already: never again
    assert not edited_back.resume("c", _stored(memory, "b"))  # another instance's entry is not c's


def test_a_change_reported_twice_has_one_event_id_and_a_new_entry_never_reuses_ids() -> None:
    stored = StatusMemory(READY, epoch_ms=1)
    stored.observe("a", "CREATION")
    snapshot = _stored(stored, "a")
    # The watcher fired, then stopped before storing the change: it reports it again after a restart.
    before, again = StatusMemory(READY, epoch_ms=5), StatusMemory(READY, epoch_ms=6)
    assert before.resume("a", snapshot)
    assert again.resume("a", snapshot)
    first, second = before.observe("a", "NORMAL"), again.observe("a", "NORMAL")
    assert first is not None
    assert second is not None
    assert StatusMemory.event_id("w", first) == StatusMemory.event_id("w", second) == "w-1-a-1"
    # An entry made afresh (no store, or a lost one) has its own epoch: no id of the old one recurs.
    fresh = StatusMemory(READY, epoch_ms=2)
    fresh.observe("a", "CREATION")
    third = fresh.observe("a", "NORMAL")
    assert third is not None
    assert StatusMemory.event_id("w", third) != StatusMemory.event_id("w", first)


@pytest.mark.parametrize(
    "value",
    [
        None,
        "text",
        {},
        {"format": 1, "epoch_ms": 1, "known": {"a": ["NORMAL", 0]}},
        {"format": 2, "known": []},
        {"format": 2, "known": {}},
        {"format": 2, "known": {"b": ["NORMAL", 0, 1, None]}},
        {"format": 2, "known": {"a": "NORMAL"}},
        {"format": 2, "known": {"a": ["NORMAL", 0]}},
        {"format": 2, "known": {"a": ["NORMAL", 0, 1]}},
        {"format": 2, "known": {"a": [1, 0, 1, None]}},
        {"format": 2, "known": {"a": ["NORMAL", -1, 1, None]}},
        {"format": 2, "known": {"a": ["NORMAL", 1.5, 1, None]}},
        {"format": 2, "known": {"a": ["NORMAL", 1, "1", None]}},
        {"format": 2, "known": {"a": ["NORMAL", True, 1, None]}},
        {"format": 2, "known": {"a": ["NORMAL", 1, 1, 17]}},
    ],
)
def test_a_stored_value_that_is_not_a_memory_of_the_instance_is_refused(value: object) -> None:
    memory = StatusMemory(READY, epoch_ms=1)
    assert memory.resume("a", value) is False
    assert not memory.knows("a")


def test_an_entry_is_unstored_until_stored_and_a_late_store_of_an_older_copy_changes_nothing() -> None:
    memory = StatusMemory(READY, epoch_ms=1)
    assert not memory.dirty  # knows nothing: nothing to store
    memory.observe("a", "CREATION")
    assert memory.dirty
    old_version, _ = memory.unstored()["a"]
    memory.observe("a", "NORMAL")  # changed again before the first store completed
    new_version, value = memory.unstored()["a"]
    memory.mark_stored("a", new_version)
    memory.mark_stored("a", old_version)  # the older store finishing last
    assert not memory.dirty
    assert value["known"]["a"][0] == "NORMAL"
    memory.observe("a", "NORMAL")
    assert not memory.dirty  # an unchanged reading changes nothing to store


def test_watch_digest_is_stable_and_order_free() -> None:
    one = watch_digest(conn_id="c", instance_names=["a", "b"], statuses=["NORMAL"])
    assert one == watch_digest(statuses=["NORMAL"], instance_names=["a", "b"], conn_id="c")
    assert one != watch_digest(conn_id="c", instance_names=["a"], statuses=["NORMAL"])
    # Python's hash() of a string changes between processes; this must not (it keys stored state).
    assert one == "62b7fd811fff033fff236d777a38d2eab771e5a1cd1fd60a49f7da37316e07ee"
