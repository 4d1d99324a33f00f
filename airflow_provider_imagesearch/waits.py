"""What a status read means for a wait: one rule, used by the sensor, the trigger and the operators.

A wait is for a set of target statuses (``NORMAL``, typically), or for the instance to be gone (after a
delete). Failure statuses end it at once; a missing instance is either the goal, tolerated for a grace
period, or a failure. Sans-IO: callers read the instance with whichever hook they have and ask
:meth:`WaitRule.judge` what the answer means.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_provider_imagesearch.models import (
    READY_STATUSES,
    TERMINAL_FAILURE_STATUSES,
    InstanceStatus,
)

if TYPE_CHECKING:
    from airflow_provider_imagesearch.models import InstanceDetail


class Verdict(enum.Enum):
    """What one read of the instance means for the wait."""

    DONE = "done"
    FAILED = "failed"
    WAITING = "waiting"
    MISSING = "missing"  # not there (yet): the caller applies its grace period


#: What waiting for a deleted instance fails on: the only status a deletion cannot leave by itself.
DELETE_FAILURE_STATUSES: frozenset[InstanceStatus] = frozenset({InstanceStatus.DELETING_FAILED})


@dataclass(frozen=True)
class WaitRule:
    """The statuses a wait ends on.

    :param targets: statuses that end the wait successfully (empty when waiting for ``gone``).
    :param failures: statuses that end it as a failure at once.
    :param gone: the wait is for the instance to disappear (a deletion).
    """

    targets: frozenset[InstanceStatus]
    failures: frozenset[InstanceStatus]
    gone: bool = False

    @classmethod
    def ready(
        cls,
        targets: Iterable[str | InstanceStatus] = READY_STATUSES,
        failures: Iterable[str | InstanceStatus] = TERMINAL_FAILURE_STATUSES,
    ) -> WaitRule:
        """Wait for a target status; raises ``ImageSearchValidationError`` on a bad or overlapping set."""
        from airflow_provider_imagesearch.errors import ImageSearchValidationError

        parsed_targets = InstanceStatus.parse_names(targets, "target_statuses")
        parsed_failures = InstanceStatus.parse_names(failures, "failure_statuses")
        overlap = parsed_targets & parsed_failures
        if overlap:
            raise ImageSearchValidationError(
                "target_statuses/failure_statuses",
                "disjoint sets: a status cannot be both success and failure",
                sorted(s.value for s in overlap),
            )
        return cls(parsed_targets, parsed_failures)

    @classmethod
    def deleted(cls) -> WaitRule:
        """Wait for the instance to be gone; ``DELETING_FAILED`` fails at once."""
        return cls(frozenset(), DELETE_FAILURE_STATUSES, gone=True)

    def judge(self, detail: InstanceDetail | None) -> Verdict:
        """The verdict for one read: ``detail`` is None when the instance does not exist."""
        if detail is None:
            return Verdict.DONE if self.gone else Verdict.MISSING
        if detail.status in self.failures:
            return Verdict.FAILED
        if not self.gone and detail.status in self.targets:
            return Verdict.DONE
        return Verdict.WAITING

    def describe(self) -> str:
        if self.gone:
            return "gone"
        return " or ".join(sorted(s.value for s in self.targets))
