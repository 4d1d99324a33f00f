"""Event-driven scheduling on ImageSearch instance statuses: an asset watcher's trigger.

``ImageSearchInstanceStatusEventTrigger`` in an ``AssetWatcher`` makes an asset event each time a
watched instance enters one of the given statuses, which starts every DAG scheduled on that asset: no
DAG run and no sensor has to wait for it. The rules of what fires are in
:mod:`~airflow_provider_imagesearch.triggers.status_memory`, the shared poll loop in
:mod:`~airflow_provider_imagesearch.triggers.status_polling`; ``docs/events.rst`` is the user's guide.

Importing this module costs a DAG file nothing beyond Airflow's trigger base class: the hook (httpx)
is loaded in a worker thread of the triggerer when the first watcher starts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Hashable, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from airflow_provider_imagesearch import DEFAULT_CONN_ID, validation
from airflow_provider_imagesearch.errors import ImageSearchValidationError
from airflow_provider_imagesearch.models import InstanceStatus
from airflow_provider_imagesearch.triggers.status_memory import StatusChange, StatusMemory, watch_digest
from airflow_provider_imagesearch.triggers.status_polling import (
    DEMAND,
    LOCAL_STREAMS,
    LOG_EVERY_ROUNDS,
    PollTarget,
    Reading,
    StatusRound,
    poll_rounds,
    round_producer,
    wire_safe,
)

#: Instances a watcher's poll loop reads at once, by default.
DEFAULT_MAX_CONCURRENCY = 16
#: Seconds between an event and storing the memory that it was reported, when Airflow gives no
#: confirmation that the event is stored (a 3.3+ triggerer that runs the watcher without its shared
#: stream, see :meth:`ImageSearchInstanceStatusEventTrigger.filter_shared_stream`). The triggerer hands
#: events to its supervisor about once a second: storing first could record as reported an event that a
#: triggerer stopped at that moment never delivered (lost); storing after it leaves only the rarer
#: duplicate, with the same ``event_id``.
STORE_DELAY_SECONDS = 3.0
#: Attempts to read the stored memory when a watcher starts, before it starts afresh.
LOAD_ATTEMPTS = 3
#: Reads or writes of the state store in flight at once (one per instance): the triggerer's supervisor
#: answers them one after the other, and its other messages (events) queue behind them.
STORE_CONCURRENCY = 8


class ImageSearchInstanceStatusEventTrigger(BaseEventTrigger):
    """Fire an event each time a watched ImageSearch instance enters one of ``statuses``.

    For an ``AssetWatcher``: each event becomes an asset event whose ``extra["payload"]`` is::

        {"event_id": "...", "instance_name": "shop-1", "project_id": "...",
         "old_status": "CREATION", "new_status": "NORMAL", "meaning": "the instance is ready to use",
         "observed_at": "2026-01-01T10:00:00Z", "instance": {...details...},
         "imagesearch_conn_id": "...", "watched_statuses": ["NORMAL"]}

    What fires (see ``docs/events.rst``): a change of an instance's status *into* a watched status,
    once. The first reading of each instance is its baseline (nothing fires for where it already is);
    an unchanged status never fires again, whatever the number of polls; a failed read changes
    nothing, so a change made during an outage fires when the outage ends. On Airflow 3.3 and later
    what the watcher knows is kept in the asset's state store, so a restarted triggerer neither fires
    again nor misses a change made while it was down; before 3.3 it is kept in memory, and a
    restarted watcher takes a new baseline. A missing instance is "does not exist": it fires when it
    appears in a watched status. Errors never end the watcher: see
    :mod:`~airflow_provider_imagesearch.triggers.status_polling`.

    Every watcher with the same connection, project, region, ``poll_interval`` and
    ``max_concurrency`` shares one poll loop in the triggerer: one request per watched instance per
    interval, however many watchers (and assets) watch it.

    :param instance_names: the instance (a string) or instances to watch.
    :param statuses: the statuses whose entry fires, e.g. ``["NORMAL"]``.
    :param imagesearch_conn_id: connection id of type ``imagesearch``.
    :param project_id: project id, overriding the connection's.
    :param region: region id, overriding the connection's.
    :param poll_interval: seconds between the starts of two rounds of reads.
    :param max_concurrency: reads in flight at once.
    """

    def __init__(
        self,
        *,
        instance_names: str | Sequence[str],
        statuses: Sequence[str],
        imagesearch_conn_id: str = DEFAULT_CONN_ID,
        project_id: str | None = None,
        region: str | None = None,
        poll_interval: float = 60.0,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    ) -> None:
        super().__init__()
        names = [instance_names] if isinstance(instance_names, str) else instance_names
        if not isinstance(names, Sequence) or not names:
            raise ImageSearchValidationError(
                "instance_names", "an instance name or a non-empty list of them", instance_names
            )
        self.instance_names = list(
            dict.fromkeys(validation.instance_name(n, "instance_names") for n in names)
        )
        self.statuses = sorted(s.value for s in InstanceStatus.parse_names(statuses, "statuses"))
        if not isinstance(imagesearch_conn_id, str) or not imagesearch_conn_id:
            raise ImageSearchValidationError("imagesearch_conn_id", "a connection id", imagesearch_conn_id)
        self.imagesearch_conn_id = imagesearch_conn_id
        self.project_id = None if project_id is None else validation.project_id(project_id)
        self.region = None if region is None else validation.region(region)
        if (
            isinstance(poll_interval, bool)
            or not isinstance(poll_interval, int | float)
            or poll_interval <= 0
        ):
            raise ImageSearchValidationError("poll_interval", "a number of seconds > 0", poll_interval)
        self.poll_interval = float(poll_interval)
        if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int):
            raise ImageSearchValidationError("max_concurrency", "an integer from 1 to 1024", max_concurrency)
        if not 1 <= max_concurrency <= 1024:
            raise ImageSearchValidationError("max_concurrency", "an integer from 1 to 1024", max_concurrency)
        self.max_concurrency = max_concurrency
        digest = watch_digest(
            conn_id=self.imagesearch_conn_id,
            project_id=self.project_id,
            region=self.region,
            statuses=self.statuses,
        )
        #: Short id of what this watcher watches for (not which instances): the prefix of its event ids.
        self.watch_id = digest[:12]
        #: What the keys of this watcher's memory in the asset's state store start with; one key per
        #: instance (:meth:`state_key`), so that a change to the list of instances leaves what is known
        #: of the others as it was.
        self.state_key_prefix = f"imagesearch_instance_status_{digest[:32]}_"

    def state_key(self, instance_name: str) -> str:
        """The key of what this watcher knows of ``instance_name`` in the asset's state store."""
        return self.state_key_prefix + instance_name

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "instance_names": list(self.instance_names),
                "statuses": list(self.statuses),
                "imagesearch_conn_id": self.imagesearch_conn_id,
                "project_id": self.project_id,
                "region": self.region,
                "poll_interval": self.poll_interval,
                "max_concurrency": self.max_concurrency,
            },
        )

    # --- the shared poll loop ---------------------------------------------------------------------

    def poll_target(self) -> PollTarget:
        return PollTarget(
            imagesearch_conn_id=self.imagesearch_conn_id,
            project_id=self.project_id,
            region=self.region,
            poll_interval=self.poll_interval,
            max_concurrency=self.max_concurrency,
        )

    def shared_stream_key(self) -> Hashable | None:
        """Airflow 3.3+: watchers with equal keys share one poll loop (:meth:`open_shared_stream`)."""
        return self.poll_target().key()

    @classmethod
    async def open_shared_stream(cls, kwargs: dict[str, Any]) -> AsyncIterator[Any]:
        """The shared poll loop of the watchers whose ``kwargs`` give this loop's key.

        It reads what every watcher of the key needs (they register it as they start), not only the
        instances in ``kwargs``.
        """
        async for status_round in poll_rounds(cls(**kwargs).poll_target()):
            yield status_round

    @classmethod
    def create_shared_stream_producer(cls, kwargs: dict[str, Any]) -> Any:
        """Airflow 3.3+: the shared poll loop in *ack mode*, which confirms when events are stored.

        The triggerer then drives :func:`~airflow_provider_imagesearch.triggers.status_polling.round_producer`
        instead of :meth:`open_shared_stream`; each round tells its watchers when Airflow has stored the
        events they made of it, and only then do they store that they reported them.
        """
        return round_producer(cls(**kwargs).poll_target())

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Airflow before 3.3 (no shared streams in the triggerer): the same sharing, done here."""
        _, kwargs = self.serialize()
        stream = LOCAL_STREAMS.subscribe(
            self.shared_stream_key(), lambda: type(self).open_shared_stream(kwargs)
        )
        async for event in self.filter_shared_stream(stream):
            yield event

    async def filter_shared_stream(self, shared_stream: AsyncIterator[Any]) -> AsyncIterator[TriggerEvent]:
        """This watcher's events from the shared rounds: the changes into a watched status."""
        key = self.shared_stream_key()
        DEMAND.add(key, self.instance_names)
        try:
            store = _StateStore.of(self)
            memory = await self._recall(store)
            async for status_round in shared_stream:
                if not isinstance(status_round, StatusRound):
                    continue
                payloads = self._judge(memory, status_round)
                for payload in payloads:
                    yield TriggerEvent(payload)
                if store is None or not memory.dirty:
                    continue
                unstored = memory.unstored()  # what this round made known, not what later rounds add
                if status_round.acks is not None:
                    # Airflow 3.3's shared stream in ack mode: stored once Airflow confirms that the
                    # events yielded above are in its database (a triggerer stopped before that reports
                    # them again after its restart, with the same event_id; never lost).
                    status_round.acks.after_persisted(partial(self._remember, store, memory, unstored))
                    continue
                if payloads:
                    # No confirmation from this Airflow: wait until the triggerer has most likely
                    # handed the events over (it does so about every second).
                    await asyncio.sleep(STORE_DELAY_SECONDS)
                await self._remember(store, memory, unstored)
        finally:
            DEMAND.remove(key, self.instance_names)

    # --- the watcher's memory ---------------------------------------------------------------------

    async def _recall(self, store: _StateStore | None) -> StatusMemory:
        memory = StatusMemory(self.statuses, int(time.time() * 1000))
        count, watched = len(self.instance_names), "/".join(self.statuses)
        if store is None:
            self.log.info(
                "Watching %d instance(s) for %s; what the watcher knows is kept in this process only "
                "(no asset state store: Airflow before 3.3, or not run by an asset watcher): the first "
                "readings are the baseline",
                count,
                watched,
            )
            return memory
        values: dict[str, Any] = {}
        pending = list(self.instance_names)
        for attempt in range(1, LOAD_ATTEMPTS + 1):
            loaded = await store.load(pending)
            values.update(
                {name: value for name, value in loaded.items() if not isinstance(value, BaseException)}
            )
            failed = [name for name in pending if isinstance(loaded.get(name), BaseException)]
            if not failed:
                break
            if attempt == LOAD_ATTEMPTS:
                self.log.warning(
                    "Could not read what watcher %s knows of %d instance(s) (%s); their first readings "
                    "are a new baseline",
                    self.watch_id,
                    len(failed),
                    loaded[failed[0]],
                )
                break
            pending = failed
            await asyncio.sleep(2 ** (attempt - 1))
        unusable = [
            name for name, value in values.items() if value is not None and not memory.resume(name, value)
        ]
        if unusable:
            self.log.warning(
                "What watcher %s stored of %d instance(s) is not usable (e.g. %s); their first readings "
                "are a new baseline",
                self.watch_id,
                len(unusable),
                unusable[0],
            )
        resumed = sum(1 for name in self.instance_names if memory.knows(name))
        self.log.info(
            "Watching %d instance(s) for %s; resumed what watcher %s knew of %d of them from the asset "
            "state store (a change made while it was stopped fires now); the first reading of the "
            "others is their baseline, kept in the asset state store from now on",
            count,
            watched,
            self.watch_id,
            resumed,
        )
        return memory

    async def _remember(
        self, store: _StateStore, memory: StatusMemory, unstored: dict[str, tuple[int, dict[str, Any]]]
    ) -> None:
        """Store ``unstored`` (:meth:`StatusMemory.unstored`); an entry whose store failed stays
        unstored, and is tried again after a later round."""
        failed = await store.save({name: value for name, (_, value) in unstored.items()})
        for name, (version, _) in unstored.items():
            if name not in failed:
                memory.mark_stored(name, version)
        if failed:
            store.failures += 1
            if store.failures == 1 or store.failures % LOG_EVERY_ROUNDS == 0:
                self.log.warning(
                    "Could not store what watcher %s knows of %d instance(s) (%d time(s) in a row): %s; "
                    "trying again after the next round. Until it is stored, a restarted triggerer "
                    "reports these changes again",
                    self.watch_id,
                    len(failed),
                    store.failures,
                    next(iter(failed.values())),
                )
        else:
            if store.failures:
                self.log.info("Stored what watcher %s knows again", self.watch_id)
            store.failures = 0

    # --- what fires -------------------------------------------------------------------------------

    def _judge(self, memory: StatusMemory, status_round: StatusRound) -> list[dict[str, Any]]:
        payloads = []
        for name in self.instance_names:
            reading = status_round.readings.get(name)
            if reading is None or reading.error is not None:
                continue  # not read this round: what is known stays
            first = not memory.knows(name)
            registered = (reading.instance or {}).get("registered_at")
            change = memory.observe(name, reading.status, registered if isinstance(registered, str) else None)
            if first:
                if reading.status is None:
                    self.log.info("Instance %s does not exist (yet)", name)
                continue
            if change is None:
                continue
            if change.recreated:
                self.log.info(
                    "Instance %s was deleted and created again (created %s): a new instance",
                    name,
                    registered,
                )
            if change.new_status is None:
                self.log.warning("Instance %s does not exist any more (it was %s)", name, change.old_status)
            elif change.fires:
                self.log.info(
                    "Instance %s: %s -> %s: event", name, _shown(change.old_status), change.new_status
                )
                payloads.append(self._payload(memory, change, reading, status_round))
            else:
                self.log.info("Instance %s: %s -> %s", name, _shown(change.old_status), change.new_status)
        return payloads

    def _payload(
        self, memory: StatusMemory, change: StatusChange, reading: Reading, status_round: StatusRound
    ) -> dict[str, Any]:
        assert change.new_status is not None
        instance = dict(reading.instance or {})
        observed = datetime.fromtimestamp(status_round.started_at, tz=UTC)
        # Every value sendable, whatever the service answered (see wire_safe): an event the triggerer
        # cannot encode stops its trigger runner, and with it every trigger it runs.
        return wire_safe(
            {
                "event_id": StatusMemory.event_id(self.watch_id, change),
                "instance_name": change.instance_name,
                "project_id": instance.get("project_id") or self.project_id,
                "old_status": change.old_status,
                "new_status": change.new_status,
                "meaning": InstanceStatus(change.new_status).meaning,
                "observed_at": observed.isoformat(timespec="seconds").replace("+00:00", "Z"),
                "instance": instance,
                "imagesearch_conn_id": self.imagesearch_conn_id,
                "watched_statuses": list(self.statuses),
            }
        )


def _shown(status: str | None) -> str:
    return status if status is not None else "(did not exist)"


class _StateStore:
    """The watcher's memory in its asset's state store (Airflow 3.3+): one key per instance.

    The triggerer gives each watcher the accessors of the asset(s) it watches. Usually one asset:
    then the accessors' own public ``aget``/``aset``. When one trigger serves several assets (the same
    watcher, with the same arguments, on two assets: Airflow runs it once), those methods refuse
    ("use ...[MY_ASSET]"), and indexing by asset needs the assets' names, which a trigger is not
    told; the per-asset accessors are then read from ``AssetStateStoreAccessors._by_name`` and
    ``_by_uri`` (Airflow 3.3's attributes, not a public interface): the memory is written to each
    asset and read from the first that has it. Should a later Airflow rename them, such a watcher
    logs that it cannot read or store its memory (as when the store is down) and works as on Airflow
    before 3.3: a restart takes a new baseline. A watcher of one asset uses only the public methods.
    """

    def __init__(self, accessors: list[Any], prefix: str) -> None:
        self._accessors = accessors
        self._prefix = prefix
        #: Rounds in a row whose store failed.
        self.failures = 0

    @classmethod
    def of(cls, trigger: ImageSearchInstanceStatusEventTrigger) -> _StateStore | None:
        store = getattr(trigger, "asset_state_store", None)  # set by the 3.3+ triggerer for watchers
        if store is None:
            return None
        per_asset = [
            *(getattr(store, "_by_name", None) or {}).values(),
            *(getattr(store, "_by_uri", None) or {}).values(),
        ]
        return cls(per_asset if len(per_asset) > 1 else [store], trigger.state_key_prefix)

    async def load(self, names: Sequence[str]) -> dict[str, Any]:
        """``{name: stored value, None, or the exception that stopped its read}``."""
        found: dict[str, Any] = {}
        for start in range(0, len(names), STORE_CONCURRENCY):
            part = names[start : start + STORE_CONCURRENCY]
            values = await asyncio.gather(*(self._load_one(name) for name in part), return_exceptions=True)
            found.update(zip(part, values, strict=True))
        return found

    async def _load_one(self, name: str) -> Any:
        for accessor in self._accessors:
            value = await accessor.aget(self._prefix + name)
            if value is not None:
                return value
        return None

    async def save(self, values: dict[str, dict[str, Any]]) -> dict[str, BaseException]:
        """Store each value under its instance's key; ``{name: error}`` of those that failed."""
        names = list(values)
        failed: dict[str, BaseException] = {}
        for start in range(0, len(names), STORE_CONCURRENCY):
            part = names[start : start + STORE_CONCURRENCY]
            results = await asyncio.gather(
                *(self._save_one(name, values[name]) for name in part), return_exceptions=True
            )
            failed.update(
                (name, result)
                for name, result in zip(part, results, strict=True)
                if isinstance(result, BaseException)
            )
        return failed

    async def _save_one(self, name: str, value: dict[str, Any]) -> None:
        for accessor in self._accessors:
            await accessor.aset(self._prefix + name, value)
