"""One poll loop per connection and cadence for every instance-status watcher of a triggerer.

Watchers (:class:`~airflow_provider_imagesearch.triggers.events.ImageSearchInstanceStatusEventTrigger`)
that share a connection, project, region, poll interval and concurrency share one loop
(:func:`poll_rounds`): each round reads every instance *any* of them watches once, ``max_concurrency``
at a time, on the triggerer's shared client, and hands the round's readings to each watcher, which picks
its own instances. Twenty watchers of one fleet cost what one costs: one request per instance per
interval. Watchers say which instances they need through :data:`DEMAND`.

Who fans a round out to the watchers: on Airflow 3.3 and later the triggerer itself (the watcher's
``shared_stream_key``), in its *ack mode* (:func:`round_producer`): each round carries a
:class:`RoundAcks` that the triggerer's shared stream runs once every watcher has handled the round and
Airflow has confirmed that the events they made of it are stored in its database; before 3.3,
:data:`LOCAL_STREAMS`, the same fan-out in this module, without confirmations.

Errors never end the loop (an asset watcher whose trigger raises is failed and restarted by Airflow,
a crash loop that would hammer the API):

* a missing instance (``IS.0007``) is a reading: "does not exist";
* credentials refused, a connection that cannot be used, a transport error or throttling after the
  hook's own retries stop the round (the other reads would fail the same way): the watchers get no
  reading of the unread instances, keep what they know, and the next round comes after a backoff
  (the interval, doubling per failed round, capped at ``max(interval, 300 s)``) and starts with the
  first instance this round left without an answer (a refusal is an answer; a throttled read is not),
  so that a quota smaller than the fleet still reads every instance in turn; after a refusal of the
  credentials or an unusable connection the connection is read again for the next round, so a fixed
  connection is picked up without restarting the triggerer;
* a 403 (not allowed) is decided by the whole round: while no read of the round has succeeded, a 403
  starts no further read and waits for the reads in flight; if one of them (or any read of the round)
  succeeds, every 403 of the round is that instance's refusal (an IAM policy may deny one resource) and
  the others are read; if none does, the credentials are refused and the round stops as above;
* any other error reading one instance (a 5xx after retries, a malformed answer) is no reading of that
  instance this round; the others are read.

Each problem is logged when it starts, every tenth round while it lasts, and when it ends.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import dataclasses
import logging
import math
import time
import weakref
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from airflow_provider_imagesearch.errors import (
    ImageSearchAuthError,
    ImageSearchConfigError,
    ImageSearchError,
    ImageSearchNotFoundError,
    ImageSearchThrottledError,
    ImageSearchTransportError,
)
from airflow_provider_imagesearch.outcomes import is_permanent

log = logging.getLogger(__name__)

#: Errors that say the round's other reads would fail the same way: the round stops.
CONNECTION_WIDE_ERRORS: tuple[type[ImageSearchError], ...] = (
    ImageSearchAuthError,
    ImageSearchConfigError,
    ImageSearchTransportError,
    ImageSearchThrottledError,
)
#: Longest wait between rounds while they fail (unless the interval itself is longer).
MAX_BACKOFF_SECONDS = 300.0
#: A problem that lasts is logged again every this many rounds.
LOG_EVERY_ROUNDS = 10
#: Rounds a watcher may have waiting before the oldest is dropped (the newest supersedes it).
LOCAL_QUEUE_ROUNDS = 64
#: The integers every hop of an event takes: the triggerer sends it to its supervisor as msgpack.
WIRE_INT_RANGE = (-(2**63), 2**64 - 1)


def wire_safe(value: Any) -> Any:
    """``value`` as a JSON value that every hop of a trigger event and of the asset state store accepts.

    An instance's details come from a remote service and may hold what Python parses but cannot send
    on: a lone UTF-16 surrogate (``"\\ud83d"``, an emoji cut in half at a length limit) makes the
    triggerer's msgpack encoding raise, which stops its trigger runner and every trigger in it; NUL is
    refused by PostgreSQL text; NaN and infinities are not JSON; integers beyond 64 bits are not
    msgpack; bytes are not JSON. So: lone surrogates and NUL become U+FFFD, NaN and infinities
    ``None``, out-of-range integers their decimal text, bytes their UTF-8 text (invalid bytes U+FFFD),
    tuples and sets lists, datetimes ISO-8601 text, mapping keys text, anything else its ``str()``.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return wire_text(value)
    if isinstance(value, int):
        low, high = WIRE_INT_RANGE
        return value if low <= value <= high else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bytes | bytearray | memoryview):
        return wire_text(bytes(value).decode("utf-8", "replace"))
    if isinstance(value, Mapping):
        return {wire_text(str(key)): wire_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [wire_safe(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return wire_text(str(value))


def wire_text(text: str) -> str:
    """``text`` with each lone surrogate and NUL replaced by U+FFFD (a surrogate pair is joined)."""
    if text.isascii() and "\x00" not in text:
        return text
    # UTF-16 round trip: a pair of surrogates becomes its character, a lone one U+FFFD.
    joined = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return joined.replace("\x00", "\ufffd")


@dataclass(frozen=True)
class PollTarget:
    """What the watchers of one poll loop share: where they read, and how often.

    :param imagesearch_conn_id: the connection (conn type ``imagesearch``).
    :param project_id: project overriding the connection's (None: the connection's).
    :param region: region overriding the connection's (None: the connection's).
    :param poll_interval: seconds from the start of a round to the start of the next.
    :param max_concurrency: reads in flight at once.
    """

    imagesearch_conn_id: str
    project_id: str | None
    region: str | None
    poll_interval: float
    max_concurrency: int

    def key(self) -> tuple[Hashable, ...]:
        return (
            "imagesearch-instance-status",
            self.imagesearch_conn_id,
            self.project_id,
            self.region,
            self.poll_interval,
            self.max_concurrency,
        )


@dataclass(frozen=True)
class Reading:
    """One instance's answer in a round.

    :param status: its status; ``None`` when it does not exist (or when ``error`` is set).
    :param instance: its details (``InstanceDetail.to_dict()``), ``None`` when it does not exist.
    :param error: why it could not be read (then this is no reading of it).
    """

    status: str | None
    instance: dict[str, Any] | None = None
    error: str | None = None


@dataclass(frozen=True)
class StatusRound:
    """The readings of one round, as every watcher of the loop receives them.

    :param number: rounds since the loop started, from 1.
    :param started_at: epoch seconds when the round started.
    :param readings: instance name -> reading; an instance not in it was not read this round.
    :param failure: why the round stopped before reading every instance, if it did.
    :param acks: Airflow 3.3's ack mode: what to do once the round's events are confirmed stored
        (``None``: no confirmation will come).
    """

    number: int
    started_at: float
    readings: Mapping[str, Reading]
    failure: str | None = None
    acks: RoundAcks | None = None


class RoundAcks:
    """What the watchers of one round do once Airflow confirms that the round's events are stored.

    A watcher registers the memory it must store after the round (:meth:`after_persisted`); the
    triggerer's shared stream calls :func:`round_producer`'s ``advance`` once every watcher of the
    round has moved past it and every event they made of it is confirmed stored in Airflow's
    database, which runs them (:meth:`run`); a round whose events were not all stored (Airflow failed
    a watcher: an event it could not store, or one that waited longer than ``[triggerer]
    shared_stream_ack_timeout``) drops them (:meth:`drop`): what they would have stored stays
    unstored, and the watchers store it after a later round.
    """

    def __init__(self) -> None:
        self._callbacks: list[Callable[[], Awaitable[None]]] = []

    def after_persisted(self, callback: Callable[[], Awaitable[None]]) -> None:
        self._callbacks.append(callback)

    async def run(self) -> None:
        """Run the registered callbacks in order; one that fails is logged and does not stop the rest."""
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            try:
                await callback()
            except Exception:
                log.warning("Storing what a watcher knows after a round failed", exc_info=True)

    def drop(self) -> int:
        """Forget the registered callbacks; how many there were."""
        dropped, self._callbacks = len(self._callbacks), []
        return dropped


@dataclass
class _Wanted:
    names: Counter[str] = field(default_factory=Counter)
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class Demand:
    """Which instances the watchers of each poll loop need, per event loop (a triggerer runs one)."""

    def __init__(self) -> None:
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Hashable, _Wanted]] = (
            weakref.WeakKeyDictionary()
        )

    def _entries(self) -> dict[Hashable, _Wanted]:
        return self._by_loop.setdefault(asyncio.get_running_loop(), {})

    def _entry(self, key: Hashable) -> _Wanted:
        entries = self._entries()
        if key not in entries:
            entries[key] = _Wanted()
        return entries[key]

    def add(self, key: Hashable, names: Iterable[str]) -> None:
        entry = self._entry(key)
        entry.names.update(names)
        entry.changed.set()

    def remove(self, key: Hashable, names: Iterable[str]) -> None:
        entries = self._entries()
        entry = entries.get(key)
        if entry is None:
            return
        entry.names.subtract(names)
        entry.names = +entry.names  # drop the names nobody needs any more
        entry.changed.set()
        # The entry stays (one per poll loop ever run): a loop waiting on its event must see the next add.

    def names(self, key: Hashable) -> list[str]:
        """The instances the loop of ``key`` reads this round, in a stable order."""
        entry = self._entries().get(key)
        return sorted(entry.names) if entry is not None else []

    async def wait(self, key: Hashable) -> None:
        """Until some watcher of ``key`` needs an instance."""
        while not self.names(key):
            entry = self._entry(key)
            entry.changed.clear()
            await entry.changed.wait()


DEMAND = Demand()


async def poll_rounds(target: PollTarget) -> AsyncIterator[StatusRound]:
    """Read every instance the watchers of ``target`` need, once per interval, for ever.

    Never raises but for cancellation (see the module doc for errors). Yields a round once it has
    at least one reading.
    """
    key = target.key()
    problems = _Problems(target.imagesearch_conn_id)
    hook: Any = None
    number = 0
    #: The first instance the last stopped round left without an answer: the next round starts with it.
    resume_at: str | None = None
    try:
        while True:
            await DEMAND.wait(key)
            names = _rotated(DEMAND.names(key), resume_at)
            number += 1
            started, started_at = time.monotonic(), time.time()
            failure: BaseException | None = None
            readings: dict[str, Reading] = {}
            try:
                if hook is None:
                    hook = await _new_hook(target)
                await hook.asettings()  # the connection once, not once per concurrent first read
                readings, failure, unanswered = await _read_round(hook, names, target.max_concurrency)
                if unanswered is not None:
                    resume_at = unanswered
            except Exception as error:  # e.g. the connection is not defined: a round that failed
                failure = error
            if failure is None and readings and all(r.error is not None for r in readings.values()):
                failure = ImageSearchError(f"every read failed, e.g. {next(iter(readings.values())).error}")
            problems.round_ended(names, readings, failure)
            log.debug(
                "Round %d of %r: %d of %d instance(s) read in %.2f s",
                number,
                target.imagesearch_conn_id,
                sum(1 for r in readings.values() if r.error is None),
                len(names),
                time.monotonic() - started,
            )
            if failure is not None and _rereads_connection(failure) and hook is not None:
                closing, hook = hook, None
                await _close(closing)
            if readings:
                yield StatusRound(number, started_at, readings, str(failure) if failure else None)
            delay = _delay(target.poll_interval, problems.failed_rounds)
            await asyncio.sleep(max(0.0, delay - (time.monotonic() - started)))
    finally:
        if hook is not None:
            await _close(hook)


def round_producer(target: PollTarget) -> Any:
    """Airflow 3.3+: the poll loop of ``target`` as a shared stream in ack mode.

    The triggerer calls ``advance`` with the rounds every subscriber has handled and whose events are
    all confirmed stored in its database (see ``airflow.triggers.shared_stream``): each round's
    :class:`RoundAcks` then run, or are dropped when a subscriber failed. Imported lazily: Airflow
    before 3.3 has no ``airflow.triggers.shared_stream``, and never calls this.
    """
    from airflow_provider_imagesearch.version_compat import shared_stream_producer_base

    base: Any = shared_stream_producer_base()

    class StatusRoundProducer(base):
        async def open_stream(self) -> AsyncIterator[tuple[StatusRound, RoundAcks]]:
            async for status_round in poll_rounds(target):
                acks = RoundAcks()
                yield dataclasses.replace(status_round, acks=acks), acks

        async def advance(self, batch: Sequence[Any]) -> None:  # airflow's AdvanceItem
            # Never raises (a raise would end the stream of every watcher of the loop).
            for item in batch:
                acks = item.broker_payload
                if item.outcome.failed or item.outcome.rejected:
                    if acks.drop():
                        log.warning(
                            "Round events of %r were not all confirmed stored (%d watcher(s) failed); "
                            "the watchers store what they know after a later round",
                            target.imagesearch_conn_id,
                            item.outcome.failed + item.outcome.rejected,
                        )
                else:
                    await acks.run()

    return StatusRoundProducer()


async def _close(hook: Any) -> None:
    """Give the hook's shared client back; a failure to close never ends the loop."""
    try:
        await hook.aclose()
    except Exception:
        log.warning("Closing the ImageSearch hook failed", exc_info=True)


async def _new_hook(target: PollTarget) -> Any:
    from airflow_provider_imagesearch.triggers.imagesearch import _async_hook_class

    hook_class = await _async_hook_class()
    return hook_class(
        target.imagesearch_conn_id,
        region=target.region,
        project_id=target.project_id,
        shared_client=True,
        # The shared client's gate lets 4 requests through by default; a round asks for its own.
        max_connections=target.max_concurrency,
    )


def _rotated(names: list[str], first: str | None) -> list[str]:
    """``names`` (sorted) starting with ``first`` (or the next name after it if it is gone), wrapping around."""
    if first is None:
        return names
    start = bisect.bisect_left(names, first)
    return names[start:] + names[:start]


async def _read_round(
    hook: Any, names: list[str], concurrency: int
) -> tuple[dict[str, Reading], BaseException | None, str | None]:
    """Read ``names`` in order, ``concurrency`` at a time; stop at the first connection-wide error.

    Returns the readings, the error that stopped the round, and the first instance (in ``names``'
    order) the stopped round left without an answer (``None`` if it did not stop, or answered every
    instance). A refusal (403) is an answer about that instance or the connection; a throttled, failed
    or never started read is none: the next round starts with that instance, so every instance is read
    in turn whatever the quota lets through per round.
    """
    readings: dict[str, Reading] = {}
    stopped: list[tuple[str, BaseException]] = []
    # 403s answered while no read of the round had succeeded: the connection's refusal or the
    # instance's. Undecided until a read succeeds (the instances': an IAM policy may deny one) or
    # every read in flight has ended without one (the connection's). Meanwhile no read starts.
    refusals: list[tuple[str, BaseException]] = []
    pending = iter(names)
    in_flight = 0
    read_one = False  # some read of the round succeeded (a missing instance's answer counts)
    settled = asyncio.Condition()

    def may_go_on() -> bool:
        return bool(stopped) or not refusals or in_flight == 0

    def undecided_refusals_are_the_connections() -> None:
        if refusals and in_flight == 0:  # no read succeeded: a success decides them at once
            stopped[:0] = refusals
            refusals.clear()

    async def worker() -> None:
        nonlocal in_flight, read_one
        while True:
            async with settled:
                await settled.wait_for(may_go_on)
                undecided_refusals_are_the_connections()
                name = None if stopped else next(pending, None)
                if name is None:
                    settled.notify_all()
                    return
                in_flight += 1
            try:
                detail = await hook.get_instance(name)
            except ImageSearchNotFoundError:
                reading: Reading | None = Reading(status=None)
            except ImageSearchAuthError as error:
                reading = None
                if error.status == 403:
                    refusals.append((name, error))
                else:
                    stopped.append((name, error))
            except CONNECTION_WIDE_ERRORS as error:
                reading = None
                stopped.append((name, error))
            except ImageSearchError as error:
                reading = Reading(status=None, error=str(error))
            except Exception as error:  # not the API's answer: this hook cannot be trusted
                reading = None
                stopped.append((name, error))
            else:
                reading = Reading(status=wire_text(detail.status.value), instance=wire_safe(detail.to_dict()))
            async with settled:
                in_flight -= 1
                if reading is not None:
                    readings[name] = reading
                    read_one = read_one or reading.error is None
                if read_one:  # some read succeeded: each refusal is its instance's
                    for refused_name, refusal in refusals:
                        readings[refused_name] = Reading(status=None, error=str(refusal))
                    refusals.clear()
                settled.notify_all()

    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, len(names))))))
    undecided_refusals_are_the_connections()  # a round stopped by another error while they waited
    if not stopped:
        return readings, None, None
    refused = {
        name for name, error in stopped if isinstance(error, ImageSearchAuthError) and error.status == 403
    }
    unanswered = next((name for name in names if name not in readings and name not in refused), None)
    return readings, stopped[0][1], unanswered


def _rereads_connection(error: BaseException) -> bool:
    """After this failure, read the connection again: it may have been fixed since."""
    if isinstance(error, ImageSearchAuthError | ImageSearchConfigError):
        return True
    if isinstance(error, ImageSearchTransportError):
        return is_permanent(error)  # a TLS setting, not an outage
    return not isinstance(error, ImageSearchError)  # not the API's answer: e.g. no such connection


def _delay(interval: float, failed_rounds: int) -> float:
    if failed_rounds == 0:
        return interval
    return min(interval * 2 ** (failed_rounds - 1), max(interval, MAX_BACKOFF_SECONDS))


class _Problems:
    """What went wrong in the last rounds, logged when it starts, every tenth round, and when it ends."""

    def __init__(self, conn_id: str) -> None:
        self.conn_id = conn_id
        self.failed_rounds = 0
        self._instance_errors: Counter[str] = Counter()

    def round_ended(
        self, names: list[str], readings: Mapping[str, Reading], failure: BaseException | None
    ) -> None:
        if failure is None:
            if self.failed_rounds:
                log.info(
                    "ImageSearch (connection %r) answered again after %d failed round(s)",
                    self.conn_id,
                    self.failed_rounds,
                )
            self.failed_rounds = 0
        else:
            self.failed_rounds += 1
            if self.failed_rounds == 1 or self.failed_rounds % LOG_EVERY_ROUNDS == 0:
                self._log_failure(names, readings, failure)
        for name, reading in readings.items():
            if reading.error is None:
                if self._instance_errors.pop(name, 0):
                    log.info("Instance %s was read again", name)
                continue
            self._instance_errors[name] += 1
            count = self._instance_errors[name]
            if failure is None and (count == 1 or count % LOG_EVERY_ROUNDS == 0):
                log.warning(
                    "Reading instance %s failed (%d round(s) in a row): %s; no reading of it this round",
                    name,
                    count,
                    reading.error,
                )

    def _log_failure(self, names: list[str], readings: Mapping[str, Reading], failure: BaseException) -> None:
        unread = len(names) - len(readings)
        what = (
            f"ImageSearch round failed (connection {self.conn_id!r}, {self.failed_rounds} round(s) in a row, "
            f"{unread} of {len(names)} instance(s) not read): {type(failure).__name__}: {failure}. "
            "Watchers keep the statuses they know, fire nothing for this round, and compare the next "
            "reading with what they know"
        )
        if isinstance(failure, ImageSearchAuthError | ImageSearchConfigError):
            log.error("%s. Check the connection: it is read again before the next round.", what)
        elif isinstance(failure, ImageSearchError):
            log.warning("%s.", what)
        else:
            log.error("%s.", what, exc_info=failure if self.failed_rounds == 1 else None)


@dataclass
class _Group:
    queues: list[asyncio.Queue[Any]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None


@dataclass(frozen=True)
class _Ended:
    error: BaseException


class LocalStreams:
    """One poll loop per key, fanned out to its watchers, for Airflow releases before 3.3.

    Airflow 3.3's triggerer does this itself for triggers with a ``shared_stream_key``; before 3.3
    each watcher's ``run()`` subscribes here instead. The first subscriber of a key starts the loop,
    the last one to leave cancels it.
    """

    def __init__(self) -> None:
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Hashable, _Group]] = (
            weakref.WeakKeyDictionary()
        )

    def subscribe(self, key: Hashable, open_stream: Callable[[], AsyncIterator[Any]]) -> AsyncIterator[Any]:
        """The stream of ``key``, started with ``open_stream()`` when nobody reads it yet."""
        groups = self._by_loop.setdefault(asyncio.get_running_loop(), {})
        group = groups.get(key)
        if group is None:
            group = groups[key] = _Group()
            group.task = asyncio.create_task(self._pump(groups, key, group, open_stream()))
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=LOCAL_QUEUE_ROUNDS)
        group.queues.append(queue)
        return self._drain(groups, key, group, queue)

    def groups(self) -> int:
        """Poll loops running on this event loop (for tests)."""
        return len(self._by_loop.get(asyncio.get_running_loop(), {}))

    @staticmethod
    def _offer(queue: asyncio.Queue[Any], item: Any) -> None:
        if queue.full():
            queue.get_nowait()
            log.warning("A watcher fell %d rounds behind; dropped its oldest round", LOCAL_QUEUE_ROUNDS)
        queue.put_nowait(item)

    async def _pump(
        self, groups: dict[Hashable, _Group], key: Hashable, group: _Group, stream: AsyncIterator[Any]
    ) -> None:
        ended: BaseException
        try:
            async for item in stream:
                for queue in list(group.queues):
                    self._offer(queue, item)
            ended = RuntimeError(f"the status stream of {key!r} ended")
        except Exception as error:
            ended = error
        if groups.get(key) is group:
            del groups[key]
        for queue in group.queues:
            self._offer(queue, _Ended(ended))

    async def _drain(
        self, groups: dict[Hashable, _Group], key: Hashable, group: _Group, queue: asyncio.Queue[Any]
    ) -> AsyncIterator[Any]:
        try:
            while True:
                item = await queue.get()
                if isinstance(item, _Ended):
                    raise item.error
                yield item
        finally:
            with contextlib.suppress(ValueError):
                group.queues.remove(queue)
            if not group.queues and group.task is not None:
                if groups.get(key) is group:
                    del groups[key]
                group.task.cancel()
                # Let the loop close its hook (and give back the shared client) before this returns.
                await asyncio.wait([group.task])


LOCAL_STREAMS = LocalStreams()
