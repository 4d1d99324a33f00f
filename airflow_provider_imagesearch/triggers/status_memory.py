"""What an instance-status watcher knows, and which readings are events: the watcher's rules, sans-IO.

A watcher fires when an instance **enters** a watched status. It keeps, per instance, the status it
last read (``None``: the instance does not exist) and how many changes it has seen (``seq``):

* the first reading of an instance is its **baseline**: nothing fires for a status the instance
  already had when the watch began;
* a reading equal to what is known changes nothing, however often it is read;
* a reading that differs is a change; it fires when the new status is a watched one (a change *to*
  "does not exist" never fires: there is no status to enter);
* a failed read (an error, an outage) is no reading: what is known stays as it was, and the next
  reading after the failure is compared with it, so a change during an outage fires once it ends.

The memory is stored (:meth:`StatusMemory.to_stored`) where the deployment keeps state, and read back
when the watcher starts again, so a restarted watcher neither fires again for what it reported nor
misses a change made while it was down. ``epoch_ms`` (when the memory was first made) and ``seq`` make
an event id that is the same if the same change is reported twice (see :meth:`StatusMemory.event_id`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: Format of the stored memory; a stored value of another format is not trusted.
STORED_FORMAT = 1


@dataclass(frozen=True)
class StatusChange:
    """A reading that differs from what the watcher knew.

    :param instance_name: the instance.
    :param old_status: the status known before (``None``: it did not exist).
    :param new_status: the status read now (``None``: it does not exist any more).
    :param seq: the instance's change count, this change included.
    :param fires: whether the new status is watched (the change is an event).
    """

    instance_name: str
    old_status: str | None
    new_status: str | None
    seq: int
    fires: bool


class StatusMemory:
    """The last status of each instance a watcher has read, and the rules of what fires.

    :param watched: the statuses whose entry fires.
    :param epoch_ms: when this memory was first made (epoch milliseconds); part of every event id.
    :param known: instance name -> ``(status or None, seq)``, as stored.
    """

    def __init__(
        self,
        watched: Iterable[str],
        epoch_ms: int,
        known: Mapping[str, tuple[str | None, int]] | None = None,
    ) -> None:
        self.watched = frozenset(watched)
        self.epoch_ms = int(epoch_ms)
        self._known: dict[str, tuple[str | None, int]] = dict(known or {})
        #: Whether there is something the stored copy does not have yet.
        self.dirty = known is None

    def knows(self, instance_name: str) -> bool:
        return instance_name in self._known

    def status(self, instance_name: str) -> str | None:
        """The known status (``None`` when unknown or known not to exist; see :meth:`knows`)."""
        return self._known.get(instance_name, (None, 0))[0]

    def observe(self, instance_name: str, status: str | None) -> StatusChange | None:
        """Record one reading (``status`` None: the instance does not exist); the change it is, if any.

        The first reading of an instance is its baseline: recorded, never a change.
        """
        known = self._known.get(instance_name)
        if known is None:
            self._known[instance_name] = (status, 0)
            self.dirty = True
            return None
        old_status, seq = known
        if status == old_status:
            return None
        seq += 1
        self._known[instance_name] = (status, seq)
        self.dirty = True
        return StatusChange(
            instance_name=instance_name,
            old_status=old_status,
            new_status=status,
            seq=seq,
            fires=status is not None and status in self.watched,
        )

    def event_id(self, watch_id: str, change: StatusChange) -> str:
        """``{watch_id}-{epoch_ms}-{instance}-{seq}``: the same for the same change reported again.

        A watcher that fired and then stopped before its memory was stored reports the change again
        after a restart with the same id (its stored memory still has the old ``seq``); a downstream
        table keyed on it records the change once. A memory made afresh has a new ``epoch_ms``, so its
        ids never collide with those of an earlier memory.
        """
        return f"{watch_id}-{self.epoch_ms}-{change.instance_name}-{change.seq}"

    def to_stored(self) -> dict[str, Any]:
        """A JSON value to store: about 30 bytes per instance."""
        return {
            "format": STORED_FORMAT,
            "epoch_ms": self.epoch_ms,
            "known": {name: [status, seq] for name, (status, seq) in sorted(self._known.items())},
        }

    @classmethod
    def from_stored(cls, value: Any, watched: Iterable[str]) -> StatusMemory | None:
        """The memory a :meth:`to_stored` value holds, or ``None`` when ``value`` is not one."""
        if not isinstance(value, dict) or value.get("format") != STORED_FORMAT:
            return None
        epoch_ms, raw = value.get("epoch_ms"), value.get("known")
        if isinstance(epoch_ms, bool) or not isinstance(epoch_ms, int) or not isinstance(raw, dict):
            return None
        known: dict[str, tuple[str | None, int]] = {}
        for name, entry in raw.items():
            if not (isinstance(entry, list) and len(entry) == 2):
                return None
            status, seq = entry
            if not (status is None or isinstance(status, str)) or isinstance(seq, bool):
                return None
            if not isinstance(seq, int) or seq < 0:
                return None
            known[str(name)] = (status, seq)
        memory = cls(watched, epoch_ms, known)
        memory.dirty = False
        return memory


def watch_digest(**identity: Any) -> str:
    """A stable hex digest of what a watch is (connection, instances, statuses): its memory's key.

    Python's ``hash()`` of a string differs between processes; this does not.
    """
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
