"""What an instance-status watcher knows, and which readings are events: the watcher's rules, sans-IO.

A watcher fires when an instance **enters** a watched status. It keeps, per instance, the status it
last read (``None``: the instance does not exist) and how many changes it has seen (``seq``):

* the first reading of an instance is its **baseline**: nothing fires for a status the instance
  already had when the watch began;
* a reading equal to what is known changes nothing, however often it is read;
* a reading that differs is a change; it fires when the new status is a watched one (a change *to*
  "does not exist" never fires: there is no status to enter);
* an instance whose creation time (``registered_at``) differs from the known one was deleted and
  created again under its name: a new instance, which entered its status from "does not exist", even
  when the status string is the same as before (the deletion was not seen: it happened between two
  reads, or while the watcher was stopped);
* a failed read (an error, an outage) is no reading: what is known stays as it was, and the next
  reading after the failure is compared with it, so a change during an outage fires once it ends.

What is known of each instance is its own entry, stored on its own (:meth:`StatusMemory.to_stored`
of one name, under a key of the watch and the instance) where the deployment keeps state, and read
back when the watcher starts again: a restarted watcher neither fires again for what it reported nor
misses a change made while it was down, and adding an instance to a watch or taking one out leaves
what is known of the others as it was. ``epoch_ms`` (when an instance's entry was first made) and
``seq`` make an event id that is the same if the same change is reported twice (see
:meth:`StatusMemory.event_id`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

#: Format of the stored memory; a stored value of another format is not trusted.
STORED_FORMAT = 2


@dataclass(frozen=True)
class StatusChange:
    """A reading that differs from what the watcher knew.

    :param instance_name: the instance.
    :param old_status: the status known before (``None``: it did not exist).
    :param new_status: the status read now (``None``: it does not exist any more).
    :param seq: the instance's change count, this change included.
    :param fires: whether the new status is watched (the change is an event).
    :param epoch_ms: when what is known of the instance was first made (part of the event id).
    :param recreated: the instance was deleted and created again under its name (``old_status`` is
        then ``None``: the new instance did not exist before).
    """

    instance_name: str
    old_status: str | None
    new_status: str | None
    seq: int
    fires: bool
    epoch_ms: int
    recreated: bool = False


@dataclass
class _Known:
    status: str | None
    seq: int
    epoch_ms: int
    #: When the instance was created (ISO-8601, as the reading gives it); None when not known.
    registered_at: str | None
    #: Changes made in this process, so that a store of an older copy is not taken for a newer one.
    version: int = 0


class StatusMemory:
    """The last status of each instance a watcher has read, and the rules of what fires.

    :param watched: the statuses whose entry fires.
    :param epoch_ms: the ``epoch_ms`` of the entries made from now on (epoch milliseconds).
    """

    def __init__(self, watched: Iterable[str], epoch_ms: int) -> None:
        self.watched = frozenset(watched)
        self.epoch_ms = int(epoch_ms)
        self._known: dict[str, _Known] = {}
        #: name -> the version of its entry the store holds.
        self._stored: dict[str, int] = {}

    def knows(self, instance_name: str) -> bool:
        return instance_name in self._known

    def status(self, instance_name: str) -> str | None:
        """The known status (``None`` when unknown or known not to exist; see :meth:`knows`)."""
        known = self._known.get(instance_name)
        return known.status if known is not None else None

    def resume(self, instance_name: str, value: Any) -> bool:
        """Take what a store held for ``instance_name`` (a :meth:`to_stored` value); False if not one."""
        known = _known_from_stored(value, instance_name)
        if known is None:
            return False
        self._known[instance_name] = known
        self._stored[instance_name] = known.version
        return True

    def observe(
        self, instance_name: str, status: str | None, registered_at: str | None = None
    ) -> StatusChange | None:
        """Record one reading (``status`` None: the instance does not exist); the change it is, if any.

        The first reading of an instance is its baseline: recorded, never a change.

        :param registered_at: when the instance read was created, if the reading says: a value other
            than the known one is another instance of the same name.
        """
        if status is None:
            registered_at = None
        known = self._known.get(instance_name)
        if known is None:
            self._known[instance_name] = _Known(status, 0, self.epoch_ms, registered_at, version=1)
            return None
        recreated = (
            status is not None
            and known.status is not None
            and registered_at is not None
            and known.registered_at is not None
            and registered_at != known.registered_at
        )
        if status == known.status and not recreated:
            if registered_at is not None and known.registered_at is None:
                known.registered_at, known.version = registered_at, known.version + 1  # learnt, no change
            return None
        old_status = None if recreated else known.status
        known.status, known.seq, known.version = status, known.seq + 1, known.version + 1
        if registered_at is not None or status is None:
            known.registered_at = registered_at
        return StatusChange(
            instance_name=instance_name,
            old_status=old_status,
            new_status=status,
            seq=known.seq,
            fires=status is not None and status in self.watched,
            epoch_ms=known.epoch_ms,
            recreated=recreated,
        )

    @staticmethod
    def event_id(watch_id: str, change: StatusChange) -> str:
        """``{watch_id}-{epoch_ms}-{instance}-{seq}``: the same for the same change reported again.

        A watcher that fired and then stopped before its memory was stored reports the change again
        after a restart with the same id (its stored memory still has the old ``seq``); a downstream
        table keyed on it records the change once. An entry made afresh has a new ``epoch_ms``, so its
        ids never collide with those of an earlier entry.
        """
        return f"{watch_id}-{change.epoch_ms}-{change.instance_name}-{change.seq}"

    @property
    def dirty(self) -> bool:
        """Whether the store lacks something this memory knows."""
        return any(self._stored.get(name) != known.version for name, known in self._known.items())

    def unstored(self) -> dict[str, tuple[int, dict[str, Any]]]:
        """``{name: (version, value to store)}`` of each entry the store does not hold as it is now."""
        return {
            name: (known.version, self.to_stored([name]))
            for name, known in sorted(self._known.items())
            if self._stored.get(name) != known.version
        }

    def mark_stored(self, instance_name: str, version: int) -> None:
        """The store now holds ``version`` of the entry (an older one stored late changes nothing)."""
        if version > self._stored.get(instance_name, -1):
            self._stored[instance_name] = version

    def to_stored(self, names: Iterable[str] | None = None) -> dict[str, Any]:
        """A JSON value to store: what is known of ``names`` (all when None); stored one name a value."""
        wanted = sorted(self._known if names is None else names)
        return {
            "format": STORED_FORMAT,
            "known": {
                name: [known.status, known.seq, known.epoch_ms, known.registered_at]
                for name in wanted
                if (known := self._known.get(name)) is not None
            },
        }


def _known_from_stored(value: Any, instance_name: str) -> _Known | None:
    if not isinstance(value, dict) or value.get("format") != STORED_FORMAT:
        return None
    known = value.get("known")
    if not isinstance(known, dict):
        return None
    entry = known.get(instance_name)
    if not (isinstance(entry, list) and len(entry) == 4):
        return None
    status, seq, epoch_ms, registered_at = entry
    if not all(value is None or isinstance(value, str) for value in (status, registered_at)):
        return None
    if any(isinstance(number, bool) or not isinstance(number, int) for number in (seq, epoch_ms)):
        return None
    if seq < 0 or epoch_ms < 0:
        return None
    return _Known(status, seq, epoch_ms, registered_at)


def watch_digest(**identity: Any) -> str:
    """A stable hex digest of what a watch is (connection, project, region, statuses): its keys' stem.

    Python's ``hash()`` of a string differs between processes; this does not.
    """
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
