"""Sensors for Huawei Cloud ImageSearch: an instance reaching a status, or being gone."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import PokeReturnValue

from airflow_provider_imagesearch.errors import (
    ImageSearchError,
    ImageSearchNotFoundError,
    ImageSearchValidationError,
)
from airflow_provider_imagesearch.mixins import imagesearch_template_fields
from airflow_provider_imagesearch.models import READY_STATUSES, TERMINAL_FAILURE_STATUSES, InstanceStatus
from airflow_provider_imagesearch.outcomes import (
    ERROR,
    failure_status_message,
    is_permanent,
    missing_message,
    not_found_message,
    result_of_wait_event,
)
from airflow_provider_imagesearch.sensors.base import ImageSearchBaseSensor
from airflow_provider_imagesearch.version_compat import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    conf,
)
from airflow_provider_imagesearch.waits import Verdict, WaitRule

if TYPE_CHECKING:
    from airflow.sdk import Context


class ImageSearchInstanceStatusSensor(ImageSearchBaseSensor):
    """Wait until an ImageSearch instance reaches a target status (``NORMAL`` by default).

    Returns the instance's details as XCom (as :class:`~airflow_provider_imagesearch.operators.imagesearch.InstanceDetailOperator`
    does). Fails at once, without using task retries, when the instance is in one of
    ``failure_statuses``: by default the statuses that never become ``NORMAL`` without a person acting
    (``CREATION_FAILD``, ``DELETING``, ``DELETING_FAILED``, ``ABNORMAL``, ``ARREARAGE``).

    Runs in ``poke`` or ``reschedule`` mode, or deferred to
    :class:`~airflow_provider_imagesearch.triggers.imagesearch.ImageSearchInstanceStatusTrigger` with
    ``deferrable=True``; ``timeout``, ``soft_fail`` and ``poke_interval`` mean the same in all three.

    **Fleet wait**: with ``instance_names`` the sensor waits for all of them with one hook (one token),
    reading those not yet done ``max_concurrency`` at a time; it succeeds when every one is in a target
    status (XCom: the list of detail dicts, in input order) and fails at once, naming the instance and
    its status, when any is in a failure status. ``not_found_grace`` and ``timeout`` apply to the fleet.
    Deferred, one :class:`~airflow_provider_imagesearch.triggers.imagesearch.ImageSearchFleetStatusTrigger`
    polls them all.

    :param instance_name: the instance to wait for. (templated)
    :param instance_names: the instances to wait for instead (exactly one of the two). (templated)
    :param max_concurrency: reads in flight at once in a fleet wait (default 16).
    :param target_statuses: statuses that end the wait successfully (default ``{NORMAL}``).
    :param failure_statuses: statuses that fail the task at once (default: the terminal ones above).
    :param not_found_grace: seconds (or a timedelta) a missing instance is waited for, counted from
        the start of the wait, before failing (creation can lag behind the call that asked for it).
    :param max_consecutive_errors: transient API errors in a row (each after the hook's own retries)
        that fail the wait; in reschedule mode the count restarts at each reschedule.
    :param deferrable: defer to the triggerer instead of occupying a worker slot.
    """

    template_fields: Sequence[str] = imagesearch_template_fields("instance_name", "instance_names")

    def __init__(
        self,
        *,
        instance_name: str | None = None,
        instance_names: Sequence[str] | None = None,
        max_concurrency: int = 16,
        target_statuses: Iterable[str | InstanceStatus] = READY_STATUSES,
        failure_statuses: Iterable[str | InstanceStatus] = TERMINAL_FAILURE_STATUSES,
        not_found_grace: float | timedelta = 0.0,
        max_consecutive_errors: int = 5,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.take_instances(instance_name, instance_names, max_concurrency)
        self.target_statuses = target_statuses
        self.failure_statuses = failure_statuses
        self.not_found_grace = (
            not_found_grace.total_seconds()
            if isinstance(not_found_grace, timedelta)
            else float(not_found_grace)
        )
        self.max_consecutive_errors = max_consecutive_errors
        self.deferrable: bool = deferrable
        self._rule = WaitRule.deleted()
        self._wait_started: float | None = None
        self._errors_in_row = 0
        #: A fleet wait's instances that reached the goal (their details; None once gone).
        self._fleet_done: dict[str, dict[str, Any] | None] = {}

    # --- checks made before the first poke --------------------------------------------------

    def wait_rule(self) -> WaitRule:
        """What this sensor waits for (validated; the deleted-instance sensor overrides it)."""
        return WaitRule.ready(self.target_statuses, self.failure_statuses)

    def _validate(self) -> None:
        try:
            self._rule = self.wait_rule()
        except ImageSearchValidationError as error:
            raise AirflowFailException(str(error)) from None
        if self.not_found_grace < 0:
            raise AirflowFailException(f"not_found_grace must be >= 0 seconds, got {self.not_found_grace}")
        if self.max_consecutive_errors < 1:
            raise AirflowFailException(
                f"max_consecutive_errors must be >= 1, got {self.max_consecutive_errors}"
            )
        if self.instance_names is not None:
            from airflow_provider_imagesearch.bulk import checked_concurrency, checked_names

            try:
                self.instance_names = checked_names(self.instance_names)
                checked_concurrency(self.max_concurrency)
            except ImageSearchValidationError as error:
                raise AirflowFailException(str(error)) from None

    def _wait_start(self, context: Context) -> float:
        """Epoch seconds when this wait began (survives reschedules; they are separate executions)."""
        if self._wait_started is None:
            first = None
            if self.reschedule:
                first = context["ti"].get_first_reschedule_date(context)
            self._wait_started = first.timestamp() if first is not None else time.time()
        return self._wait_started

    # --- the three modes ----------------------------------------------------------------------

    def execute(self, context: Context) -> Any:
        self._validate()
        self._wait_start(context)
        try:
            if not self.deferrable:
                return super().execute(context)
            # One synchronous look first: an instance that is already ready needs no triggerer.
            result = self.poke(context)
            if isinstance(result, PokeReturnValue) and result.is_done:
                return result.xcom_value
            self._defer()
        except (AirflowFailException, AirflowSensorTimeout) as error:
            # What BaseSensorOperator.execute does for poke/reschedule, so soft_fail means the same here.
            if self.soft_fail or self.never_fail:
                raise AirflowSkipException(
                    f"Skipping ({'soft_fail' if self.soft_fail else 'never_fail'}): {error}"
                ) from error
            raise
        finally:
            self.close_hook()

    def _defer(self) -> None:
        start = self._wait_started or time.time()
        # A sensor's timeout is always a number: Airflow 3.3 turns None into [sensors] default_timeout, 3.1 refuses it.
        timeout_at = start + self.timeout
        remaining = max(timeout_at - time.time(), 0.0)
        if remaining == 0.0:
            raise AirflowSensorTimeout(f"Sensor has timed out waiting for {self.instance_label}")
        self.defer(
            trigger=self.status_trigger(
                self._rule,
                poll_interval=self.poke_interval,
                not_found_deadline=start + self.not_found_grace,
                timeout_at=timeout_at,
                max_consecutive_errors=self.max_consecutive_errors,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=remaining),
        )

    def _count_failed_read(self, error: ImageSearchError, what: str) -> None:
        """A read that failed: permanent errors fail the task; transient ones count, and fail it in a row."""
        if is_permanent(error):
            raise AirflowFailException(str(error)) from None
        self._errors_in_row += 1
        if self._errors_in_row >= self.max_consecutive_errors:
            raise error
        self.log.warning(
            "%s failed (%d/%d in a row): %s", what, self._errors_in_row, self.max_consecutive_errors, error
        )

    def poke(self, context: Context) -> bool | PokeReturnValue:
        if self.instance_names is not None:
            return self._poke_fleet(context)
        hook = self.hook
        try:
            if self.console_link is None:
                self.remember_instance(hook)
                if self.reschedule and hook.settings.credentials.auth_type == "iam_password":
                    self.log.info(
                        "Reschedule mode: each poke runs in a new process, which asks IAM for a token. "
                        "deferrable=True (one token per triggerer) or AK/SK auth (no token) avoid that."
                    )
            try:
                detail = hook.get_instance(self.instance_name)
            except ImageSearchNotFoundError:
                detail = None
        except ImageSearchError as error:
            self._count_failed_read(error, f"Polling {self.instance_name}")
            return False
        self._errors_in_row = 0
        verdict = self._rule.judge(detail)
        if verdict is Verdict.DONE:
            return PokeReturnValue(is_done=True, xcom_value=detail.to_dict() if detail is not None else None)
        if verdict is Verdict.FAILED:
            assert detail is not None
            raise AirflowFailException(failure_status_message(self.instance_name, detail.status))
        if verdict is Verdict.MISSING:
            if time.time() - self._wait_start(context) >= self.not_found_grace:
                raise AirflowFailException(not_found_message(self.instance_name, self.resolved_project_id()))
            self.log.info(
                "Instance %s not found yet; waiting up to %.0fs", self.instance_name, self.not_found_grace
            )
            return False
        assert detail is not None
        self.log.info(
            "Instance %s is %s; waiting for %s",
            self.instance_name,
            detail.status.value,
            self._rule.describe(),
        )
        return False

    def _poke_fleet(self, context: Context) -> bool | PokeReturnValue:
        """One poke of a fleet wait: read the instances not done yet, judge each with the wait rule."""
        from airflow_provider_imagesearch.bulk import read_instances

        names = list(self.instance_names or ())
        # A repeated name is one instance with many positions: read once, done once.
        distinct = list(dict.fromkeys(names))
        hook = self.hook
        pending = [name for name in distinct if name not in self._fleet_done]
        try:
            if self.console_link is None:
                self.remember_instance(hook)
            details = read_instances(hook, pending, max_concurrency=self.max_concurrency)
        except ImageSearchError as error:
            self._count_failed_read(error, "Reading the fleet")
            return False
        self._errors_in_row = 0
        failed: list[str] = []
        missing: list[str] = []
        waiting: list[str] = []
        for name, detail in details.items():
            verdict = self._rule.judge(detail)
            if verdict is Verdict.DONE:
                self._fleet_done[name] = detail.to_dict() if detail is not None else None
                self.log.info("Instance %s is %s", name, detail.status.value if detail else "gone")
            elif verdict is Verdict.FAILED:
                assert detail is not None
                failed.append(failure_status_message(name, detail.status))
            elif verdict is Verdict.MISSING:
                missing.append(name)
            else:
                assert detail is not None
                waiting.append(f"{name} ({detail.status.value})")
        if failed:
            raise AirflowFailException(" ".join(failed))
        if missing and time.time() - self._wait_start(context) >= self.not_found_grace:
            raise AirflowFailException(missing_message(missing, self.resolved_project_id()))
        if all(name in self._fleet_done for name in distinct):
            return PokeReturnValue(is_done=True, xcom_value=[self._fleet_done[name] for name in names])
        shown = waiting + [f"{name} (not found yet)" for name in missing]
        self.log.info(
            "%d/%d instances are %s; waiting for %s%s",
            len(self._fleet_done),
            len(distinct),
            self._rule.describe(),
            ", ".join(shown[:5]),
            f" +{len(shown) - 5} more" if len(shown) > 5 else "",
        )
        return False

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Turn the trigger's event into the task's outcome."""
        self.remember_connection()
        if event and event.get("status") == ERROR and event.get("retryable") and self.never_fail:
            # Poke mode skips on any error under never_fail; the deferred wait does the same.
            raise AirflowSkipException(f"Skipping (never_fail): {event.get('message', '')}")
        if event and event.get("status") == "success":
            self.log.info("%s (after %s polls)", event.get("message", ""), event.get("polls"))
            # Each instance's outcome in the task log, not only in the triggerer's.
            for detail in event.get("instances") or ():
                if detail is not None:
                    self.log.info("Instance %s is %s", detail.get("instance_name"), detail.get("status"))
        return result_of_wait_event(event, self.instance_label)


class ImageSearchInstanceDeletedSensor(ImageSearchInstanceStatusSensor):
    """Wait until an ImageSearch instance is gone (after a delete); ``DELETING_FAILED`` fails at once.

    Poke, reschedule or deferrable, like :class:`ImageSearchInstanceStatusSensor`; returns None.

    :param instance_name: the instance to wait for. (templated)
    :param instance_names: the instances to wait for instead (exactly one of the two). (templated)
    """

    def __init__(
        self, *, instance_name: str | None = None, instance_names: Sequence[str] | None = None, **kwargs: Any
    ) -> None:
        for name in ("target_statuses", "failure_statuses", "not_found_grace"):
            if name in kwargs:
                raise ValueError(f"{type(self).__name__} waits for 'gone': it takes no {name}")
        super().__init__(instance_name=instance_name, instance_names=instance_names, **kwargs)

    def wait_rule(self) -> WaitRule:
        return WaitRule.deleted()
