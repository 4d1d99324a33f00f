"""The instance-status watchers' shared poll loop (``poll_rounds``), round by round, against the emulator.

The loop runs on an asyncio loop with its waits scripted (the module's ``asyncio.sleep`` records the wait
asked for and does not wait); the hook's own retries are off (one injected fault, one failed read) and
reads go one at a time unless a test says otherwise, so the emulator's log shows the order of the reads.
Protected, as watchers and the triggerer's log show it:

* each round reads every instance any watcher needs, once: a reading per instance (its status and
  details, "does not exist", or the error of that instance alone);
* a connection-wide error (throttling) stops the round, and the next round starts with the first
  instance it left without an answer;
* a 403 is decided by the round: the credentials' refusal while no read succeeded (nothing is yielded,
  the next round starts after it), that instance's refusal once one did;
* rounds start every interval, and after failed rounds the backoff doubles up to five minutes;
* the log lines of a problem: when it starts, every tenth round, and when it ends;
* the values an event may carry (``wire_safe``), the demand of several watchers, and the fan-out of a
  stream to several watchers before Airflow 3.3 (``LocalStreams``).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchHook
from airflow_provider_imagesearch.triggers import status_polling
from airflow_provider_imagesearch.triggers.status_polling import (
    DEMAND,
    LOCAL_QUEUE_ROUNDS,
    LocalStreams,
    PollTarget,
    Reading,
    StatusRound,
    poll_rounds,
    wire_safe,
    wire_text,
)
from tests.support.log_lines import log_lines
from tests.support.scripted_waits import ScriptedWaits, script_waits

CONN = "imagesearch_poll_rounds"


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> ScriptedWaits:
    return script_waits(monkeypatch, status_polling)


@pytest.fixture
def logged() -> Iterator[list[str]]:
    with log_lines(status_polling.__name__, logging.INFO) as lines:
        yield lines


@pytest.fixture
def conn(imagesearch_conn: Callable[..., str]) -> str:
    return imagesearch_conn("token", conn_id=CONN, max_attempts=1)


@pytest.fixture
def details(conn: str) -> Iterator[Callable[[str], dict[str, Any]]]:
    hook = ImageSearchHook(conn)
    yield lambda name: wire_safe(hook.get_instance(name).to_dict())
    hook.close()


def _target(interval: float = 10.0, concurrency: int = 1) -> PollTarget:
    return PollTarget(CONN, None, None, interval, concurrency)


def _rounds(target: PollTarget, names: list[str], count: int) -> list[StatusRound]:
    """The first ``count`` rounds the loop yields while ``names`` are demanded."""

    async def collect() -> list[StatusRound]:
        DEMAND.add(target.key(), names)
        loop = cast(AsyncGenerator[StatusRound, None], poll_rounds(target))
        try:
            return [await anext(loop) for _ in range(count)]
        finally:
            await loop.aclose()
            DEMAND.remove(target.key(), names)

    return asyncio.run(asyncio.wait_for(collect(), 10))


def _reads(emulator: Emulator) -> list[str]:
    return [r["instance"] for r in emulator.requests_log() if r.get("instance")]


def test_each_round_reads_every_needed_instance_once_with_its_details(
    conn: str, emulator: Emulator, waits: ScriptedWaits, details: Callable[[str], dict[str, Any]]
) -> None:
    emulator.upsert_instance("pr-a", status="NORMAL")
    emulator.upsert_instance("pr-b", status="CREATION")
    before = datetime.now(UTC).timestamp()
    first, second = _rounds(_target(interval=7.0, concurrency=2), ["pr-b", "pr-a", "pr-c"], 2)
    after = datetime.now(UTC).timestamp()
    assert sorted(_reads(emulator)) == ["pr-a", "pr-a", "pr-b", "pr-b", "pr-c", "pr-c"]
    assert (first.number, second.number, first.failure, first.acks) == (1, 2, None, None)
    assert before <= first.started_at <= second.started_at <= after
    assert dict(first.readings) == {
        "pr-a": Reading("NORMAL", details("pr-a")),
        "pr-b": Reading("CREATION", details("pr-b")),
        "pr-c": Reading(None),
    }
    assert waits.sleeps[0] == 7.0


def test_an_error_reading_one_instance_is_that_instances_and_the_others_are_read(
    conn: str, emulator: Emulator, waits: ScriptedWaits, logged: list[str]
) -> None:
    for name in ("pe-a", "pe-b", "pe-c"):
        emulator.upsert_instance(name, status="NORMAL")
    emulator.set_faults(sequence=["ok", "truncated_json"])
    first, second = _rounds(_target(), ["pe-a", "pe-b", "pe-c"], 2)
    assert _reads(emulator) == ["pe-a", "pe-b", "pe-c"] * 2
    assert first.failure is None
    assert (first.readings["pe-b"].status, first.readings["pe-b"].instance) == (None, None)
    assert first.readings["pe-b"].error
    assert [first.readings[n].status for n in ("pe-a", "pe-c")] == ["NORMAL", "NORMAL"]
    assert second.readings["pe-b"] == Reading("NORMAL", second.readings["pe-b"].instance)
    failed = [
        line for line in logged if line.startswith("Reading instance pe-b failed (1 round(s) in a row): ")
    ]
    assert len(failed) == 1
    assert failed[0].endswith("; no reading of it this round")
    assert "Instance pe-b was read again" in logged


def test_rounds_in_which_every_read_failed_back_off_doubling_and_are_logged_when_they_start_and_end(
    conn: str, emulator: Emulator, waits: ScriptedWaits, logged: list[str]
) -> None:
    emulator.upsert_instance("pf-a", status="NORMAL")
    emulator.set_faults(sequence=["truncated_json"] * 4)
    rounds = _rounds(_target(interval=100.0), ["pf-a"], 6)  # a round is yielded before its wait
    assert [r.failure is not None for r in rounds] == [True, True, True, True, False, False]
    assert all(r.failure.startswith("every read failed, e.g. ") for r in rounds[:4] if r.failure)
    assert waits.sleeps[:5] == [100.0, 200.0, 300.0, 300.0, 100.0]
    failures = [line for line in logged if line.startswith("ImageSearch round failed")]
    assert len(failures) == 1  # when it starts (and every tenth round)
    assert failures[0].startswith(
        f"ImageSearch round failed (connection {CONN!r}, 1 round(s) in a row, 0 of 1 instance(s) not read): "
        "ImageSearchError: every read failed, e.g. "
    )
    assert f"ImageSearch (connection {CONN!r}) answered again after 4 failed round(s)" in logged
    assert not [line for line in logged if line.startswith("Reading instance pf-a failed")]


def test_a_long_interval_is_its_own_backoff_cap(conn: str, emulator: Emulator, waits: ScriptedWaits) -> None:
    emulator.upsert_instance("pg-a", status="NORMAL")
    emulator.set_faults(sequence=["truncated_json"] * 2)
    _rounds(_target(interval=400.0), ["pg-a"], 4)
    assert waits.sleeps[:3] == [400.0, 400.0, 400.0]


def test_a_failure_that_lasts_is_logged_again_every_tenth_round(
    conn: str, emulator: Emulator, waits: ScriptedWaits, logged: list[str]
) -> None:
    emulator.upsert_instance("ph-a", status="NORMAL")
    emulator.set_faults(sequence=["truncated_json"] * 20)
    _rounds(_target(interval=1.0), ["ph-a"], 21)
    counts = [line.split(", ")[1] for line in logged if line.startswith("ImageSearch round failed")]
    assert counts == ["1 round(s) in a row", "10 round(s) in a row", "20 round(s) in a row"]


def test_a_round_stopped_by_throttling_resumes_with_the_first_instance_it_did_not_answer(
    conn: str, emulator: Emulator, waits: ScriptedWaits, logged: list[str]
) -> None:
    for name in ("pt-a", "pt-b", "pt-c"):
        emulator.upsert_instance(name, status="NORMAL")
    emulator.set_faults(sequence=["ok", "429"])
    first, second = _rounds(_target(interval=5.0), ["pt-a", "pt-b", "pt-c"], 2)
    assert _reads(emulator) == ["pt-a", "pt-b", "pt-b", "pt-c", "pt-a"]
    assert sorted(first.readings) == ["pt-a"]
    assert first.failure
    assert (sorted(second.readings), second.failure) == (["pt-a", "pt-b", "pt-c"], None)
    assert waits.sleeps[0] == 5.0
    [line] = [line for line in logged if line.startswith("ImageSearch round failed")]
    assert "2 of 3 instance(s) not read): ImageSearchThrottledError: " in line


def test_a_403_before_any_read_succeeded_is_the_credentials_refusal(
    conn: str, emulator: Emulator, waits: ScriptedWaits, logged: list[str]
) -> None:
    for name in ("pc-a", "pc-b", "pc-c"):
        emulator.upsert_instance(name, status="NORMAL")
    emulator.set_faults(sequence=["403"])
    [round_] = _rounds(_target(interval=5.0), ["pc-a", "pc-b", "pc-c"], 1)
    # The refused round yields nothing; the next starts after the refused instance.
    assert _reads(emulator) == ["pc-a", "pc-b", "pc-c", "pc-a"]
    assert (round_.number, sorted(round_.readings), round_.failure) == (2, ["pc-a", "pc-b", "pc-c"], None)
    assert waits.sleeps[0] == 5.0
    [line] = [line for line in logged if line.startswith("ImageSearch round failed")]
    assert "3 of 3 instance(s) not read): ImageSearchAuthError: " in line


def test_a_403_after_a_read_succeeded_is_that_instances_refusal(
    conn: str, emulator: Emulator, waits: ScriptedWaits
) -> None:
    for name in ("pd-a", "pd-b", "pd-c"):
        emulator.upsert_instance(name, status="NORMAL")
    emulator.set_faults(sequence=["ok", "403"])
    [round_] = _rounds(_target(), ["pd-a", "pd-b", "pd-c"], 1)
    assert _reads(emulator) == ["pd-a", "pd-b", "pd-c"]
    assert round_.failure is None
    assert round_.readings["pd-b"].status is None
    assert "403" in (round_.readings["pd-b"].error or "")
    assert round_.readings["pd-c"].status == "NORMAL"


def test_a_missing_instance_is_an_answer_that_decides_a_later_403(
    conn: str, emulator: Emulator, waits: ScriptedWaits
) -> None:
    emulator.upsert_instance("pm-c", status="NORMAL")
    emulator.set_faults(sequence=["ok", "403"])
    [round_] = _rounds(_target(), ["pm-a", "pm-b", "pm-c"], 1)
    assert _reads(emulator) == ["pm-a", "pm-b", "pm-c"]
    assert (round_.readings["pm-a"], round_.readings["pm-c"].status) == (Reading(None), "NORMAL")
    assert round_.readings["pm-b"].error


def test_a_403_waits_for_the_reads_in_flight_and_one_success_makes_it_the_instances(
    conn: str, emulator: Emulator, waits: ScriptedWaits
) -> None:
    for name in ("pw-a", "pw-b", "pw-c", "pw-d"):
        emulator.upsert_instance(name, status="NORMAL")
    emulator.set_faults(sequence=["403", "ok", "ok", "ok"])
    [round_] = _rounds(_target(concurrency=2), ["pw-a", "pw-b", "pw-c", "pw-d"], 1)
    assert sorted(_reads(emulator)) == ["pw-a", "pw-b", "pw-c", "pw-d"]
    assert round_.failure is None
    assert round_.readings["pw-a"].error
    assert [round_.readings[n].status for n in ("pw-b", "pw-c", "pw-d")] == ["NORMAL"] * 3


# --- what an event may carry -----------------------------------------------------------------------


def test_wire_safe_keeps_what_every_hop_accepts_and_converts_the_rest() -> None:
    low, high = -(2**63), 2**64 - 1
    assert wire_safe([low, high, low - 1, high + 1]) == [low, high, str(low - 1), str(high + 1)]
    assert wire_safe([True, False, None, 1.5, -math.inf]) == [True, False, None, 1.5, None]
    assert wire_safe(bytearray(b"ok\xff")) == "ok\ufffd"
    assert wire_safe(memoryview(b"a\x00")) == "a\ufffd"
    assert wire_safe({("k", 1): {2}}) == {"('k', 1)": [2]}
    assert wire_safe(datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05"

    class Odd:
        def __str__(self) -> str:
            return "odd \x00"

    assert wire_safe(Odd()) == "odd \ufffd"


def test_wire_text_keeps_plain_text_and_replaces_nul_and_lone_surrogates() -> None:
    assert wire_text("plain ascii") == "plain ascii"
    assert wire_text("nul\x00") == "nul\ufffd"
    assert wire_text("é\udc80") == "é\ufffd"
    assert wire_text("\ud83d\ude00") == "\U0001f600"


# --- who needs which instances ---------------------------------------------------------------------


def test_an_instance_stays_needed_while_any_watcher_needs_it() -> None:
    async def scenario() -> list[list[str]]:
        key = ("demand-test",)
        seen = [DEMAND.names(key)]
        DEMAND.add(key, ["d-b", "d-a"])
        DEMAND.add(key, ["d-a"])
        seen.append(DEMAND.names(key))
        DEMAND.remove(key, ["d-a", "d-b"])
        seen.append(DEMAND.names(key))
        waiter = asyncio.create_task(DEMAND.wait(key))
        DEMAND.remove(key, ["d-a"])
        await asyncio.sleep(0)
        seen.append(["waiting"] if not waiter.done() else [])
        DEMAND.add(key, ["d-c"])
        await asyncio.wait_for(waiter, 5)
        seen.append(DEMAND.names(key))
        DEMAND.remove(key, ["d-c"])
        DEMAND.remove(("never-added",), ["x"])  # nothing to give back: no error
        return seen

    assert asyncio.run(scenario()) == [[], ["d-a", "d-b"], ["d-a"], ["waiting"], ["d-c"]]


# --- the fan-out before Airflow 3.3 ----------------------------------------------------------------


def test_every_subscriber_gets_every_item_and_the_last_to_leave_stops_the_stream() -> None:
    streams = LocalStreams()
    stopped: list[str] = []

    async def source() -> AsyncIterator[int]:
        try:
            for number in range(3):
                yield number
            await asyncio.Event().wait()
        finally:
            stopped.append("stopped")

    async def scenario() -> tuple[list[int], list[int], int, int]:
        first = streams.subscribe("k", source)
        second = streams.subscribe("k", source)  # joins the running stream
        a = [await anext(first) for _ in range(3)]
        b = [await anext(second) for _ in range(3)]
        await first.aclose()  # type: ignore[attr-defined]
        running = streams.groups()
        await second.aclose()  # type: ignore[attr-defined]
        return a, b, running, streams.groups()

    assert asyncio.run(scenario()) == ([0, 1, 2], [0, 1, 2], 1, 0)
    assert stopped == ["stopped"]


def test_a_stream_that_ends_or_fails_ends_every_subscriber_with_why() -> None:
    streams = LocalStreams()

    async def ending() -> AsyncIterator[int]:
        yield 1

    async def failing() -> AsyncIterator[int]:
        yield 1
        raise ValueError("the loop broke")

    async def drain(stream: AsyncIterator[int]) -> tuple[list[int], BaseException | None]:
        got: list[int] = []
        try:
            async for item in stream:
                got.append(item)
        except Exception as error:
            return got, error
        return got, None

    async def scenario() -> list[tuple[list[int], BaseException | None]]:
        results = [await drain(streams.subscribe("end", ending))]
        results.append(await drain(streams.subscribe("fail", failing)))
        results.append(await drain(streams.subscribe("end", ending)))  # a new stream for the key
        return results

    (got1, error1), (got2, error2), (got3, error3) = asyncio.run(scenario())
    assert (got1, got2, got3) == ([1], [1], [1])
    assert isinstance(error1, RuntimeError)
    assert str(error1) == "the status stream of 'end' ended"
    assert isinstance(error2, ValueError)
    assert str(error2) == "the loop broke"
    assert isinstance(error3, RuntimeError)


def test_a_watcher_arriving_after_a_stream_failed_gets_a_new_stream_not_the_dead_one() -> None:
    """The window between a stream's end and its watchers reading of it: a watcher of the same instances
    arriving then must start a new poll loop; joined to the ended one it would wait for ever."""
    streams = LocalStreams()
    opened: list[str] = []

    async def failing() -> AsyncIterator[str]:
        opened.append("failing")
        yield "before the failure"
        raise ValueError("the loop broke")

    async def healthy() -> AsyncIterator[str]:
        opened.append("healthy")
        yield "a new round"
        await asyncio.Event().wait()

    async def scenario() -> tuple[str, str, int]:
        first = streams.subscribe("k", failing)
        assert await anext(first) == "before the failure"
        for _ in range(10):  # the failed loop ends; its watcher has not yet read why
            await asyncio.sleep(0)
        second = streams.subscribe("k", healthy)
        item = await asyncio.wait_for(anext(second), timeout=5)
        with pytest.raises(ValueError, match="the loop broke"):
            await anext(first)
        running = streams.groups()
        await second.aclose()  # type: ignore[attr-defined]
        return item, ",".join(opened), running

    assert asyncio.run(scenario()) == ("a new round", "failing,healthy", 1)


def test_a_subscriber_that_falls_behind_loses_its_oldest_rounds(logged: list[str]) -> None:
    streams = LocalStreams()
    total = LOCAL_QUEUE_ROUNDS + 3

    async def source() -> AsyncIterator[int]:
        for number in range(total):
            yield number
        await asyncio.Event().wait()

    async def scenario() -> list[int]:
        stream = streams.subscribe("behind", source)
        await asyncio.sleep(0.05)  # the pump runs ahead of a subscriber that reads nothing
        got = [await anext(stream) for _ in range(LOCAL_QUEUE_ROUNDS)]
        await stream.aclose()  # type: ignore[attr-defined]
        return got

    assert asyncio.run(scenario()) == list(range(3, total))
    dropped = [line for line in logged if line.startswith("A watcher fell")]
    assert dropped == [f"A watcher fell {LOCAL_QUEUE_ROUNDS} rounds behind; dropped its oldest round"] * 3


def test_the_loop_reads_the_project_and_region_of_its_target(
    conn: str, emulator: Emulator, waits: ScriptedWaits
) -> None:
    emulator.upsert_instance("pp-a", status="NORMAL")
    [round_] = _rounds(PollTarget(CONN, DEFAULT_PROJECT_ID, "cn-north-4", 10.0, 1), ["pp-a"], 1)
    assert round_.readings["pp-a"].status == "NORMAL"
    assert [r["path"].split("/")[2] for r in emulator.requests_log() if r.get("instance")] == [
        DEFAULT_PROJECT_ID
    ]
