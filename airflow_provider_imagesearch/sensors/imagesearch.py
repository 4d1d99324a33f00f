"""Sensors for Huawei Cloud ImageSearch."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_provider_imagesearch import DEFAULT_CONN_ID, outcomes
from airflow_provider_imagesearch.errors import (
    ImageSearchError,
    ImageSearchNotFoundError,
    ImageSearchValidationError,
)
from airflow_provider_imagesearch.models import READY_STATUSES, TERMINAL_FAILURE_STATUSES, InstanceStatus
from airflow_provider_imagesearch.outcomes import failure_status_message, is_permanent, not_found_message
from airflow_provider_imagesearch.version_compat import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    conf,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchHook


class ImageSearchInstanceStatusSensor(BaseSensorOperator):
    """Wait until an ImageSearch instance reaches a target status (``NORMAL`` by default).

    Returns the instance's details as XCom (as :class:`~airflow_provider_imagesearch.operators.imagesearch.InstanceDetailOperator`
    does). Fails at once, without using task retries, when the instance is in one of
    ``failure_statuses``: by default the statuses that never become ``NORMAL`` without a person acting
    (``CREATION_FAILD``, ``DELETING``, ``DELETING_FAILED``, ``ABNORMAL``, ``ARREARAGE``).

    Runs in ``poke`` or ``reschedule`` mode, or deferred to
    :class:`~airflow_provider_imagesearch.triggers.imagesearch.ImageSearchInstanceStatusTrigger` with
    ``deferrable=True``; ``timeout``, ``soft_fail`` and ``poke_interval`` mean the same in all three.

    :param instance_name: the instance to wait for. (templated)
    :param imagesearch_conn_id: connection id of type ``imagesearch``. (templated)
    :param project_id: project id, overriding the connection's. (templated)
    :param region: region id, overriding the connection's. (templated)
    :param map_index_template: label of mapped task instances; the instance name by default.
    :param target_statuses: statuses that end the wait successfully (default ``{NORMAL}``).
    :param failure_statuses: statuses that fail the task at once (default: the terminal ones above).
    :param not_found_grace: seconds (or a timedelta) a missing instance is waited for, counted from
        the start of the wait, before failing (creation can lag behind the call that asked for it).
    :param max_consecutive_errors: transient API errors in a row (each after the hook's own retries)
        that fail the wait; in reschedule mode the count restarts at each reschedule.
    :param deferrable: defer to the triggerer instead of occupying a worker slot.
    """

    template_fields: Sequence[str] = ("instance_name", "project_id", "imagesearch_conn_id", "region")
    ui_color = "#d4e6f9"

    def __init__(
        self,
        *,
        instance_name: str,
        imagesearch_conn_id: str = DEFAULT_CONN_ID,
        project_id: str | None = None,
        region: str | None = None,
        target_statuses: Iterable[str | InstanceStatus] = READY_STATUSES,
        failure_statuses: Iterable[str | InstanceStatus] = TERMINAL_FAILURE_STATUSES,
        not_found_grace: float | timedelta = 0.0,
        max_consecutive_errors: int = 5,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        map_index_template: str | None = "{{ task.instance_name }}",
        **kwargs: Any,
    ) -> None:
        super().__init__(map_index_template=map_index_template, **kwargs)
        self.instance_name = instance_name
        self.imagesearch_conn_id = imagesearch_conn_id
        self.project_id = project_id
        self.region = region
        self.target_statuses = target_statuses
        self.failure_statuses = failure_statuses
        self.not_found_grace = (
            not_found_grace.total_seconds()
            if isinstance(not_found_grace, timedelta)
            else float(not_found_grace)
        )
        self.max_consecutive_errors = max_consecutive_errors
        self.deferrable = deferrable
        self._hook: ImageSearchHook | None = None
        self._targets: frozenset[InstanceStatus] = frozenset()
        self._failures: frozenset[InstanceStatus] = frozenset()
        self._wait_started: float | None = None
        self._errors_in_row = 0

    # --- checks made before the first poke --------------------------------------------------

    def _validate(self) -> None:
        try:
            self._targets = InstanceStatus.parse_names(self.target_statuses, "target_statuses")
            self._failures = InstanceStatus.parse_names(self.failure_statuses, "failure_statuses")
        except ImageSearchValidationError as error:
            raise AirflowFailException(str(error)) from None
        overlap = self._targets & self._failures
        if overlap:
            raise AirflowFailException(
                f"target_statuses and failure_statuses share {sorted(s.value for s in overlap)}: "
                "a status cannot be both success and failure"
            )
        if self.not_found_grace < 0:
            raise AirflowFailException(f"not_found_grace must be >= 0 seconds, got {self.not_found_grace}")
        if self.max_consecutive_errors < 1:
            raise AirflowFailException(
                f"max_consecutive_errors must be >= 1, got {self.max_consecutive_errors}"
            )

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
            self._close_hook()

    def _defer(self) -> None:
        start = self._wait_started or time.time()
        timeout_at = start + self.timeout if self.timeout is not None else None
        remaining = max(timeout_at - time.time(), 0.0) if timeout_at is not None else None
        if remaining == 0.0:
            raise AirflowSensorTimeout(f"Sensor has timed out waiting for {self.instance_name}")
        # Imported here: airflow.triggers.base is airflow-core, not needed to parse a DAG.
        from airflow_provider_imagesearch.triggers.imagesearch import ImageSearchInstanceStatusTrigger

        self.defer(
            trigger=ImageSearchInstanceStatusTrigger(
                instance_name=self.instance_name,
                imagesearch_conn_id=self.imagesearch_conn_id,
                project_id=self.project_id,
                region=self.region,
                target_statuses=sorted(s.value for s in self._targets),
                failure_statuses=sorted(s.value for s in self._failures),
                poll_interval=self.poke_interval,
                not_found_deadline=start + self.not_found_grace,
                timeout_at=timeout_at,
                max_consecutive_errors=self.max_consecutive_errors,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=remaining) if remaining is not None else None,
        )

    def _get_hook(self) -> ImageSearchHook:
        if self._hook is None:
            from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchHook

            self._hook = ImageSearchHook(
                self.imagesearch_conn_id, region=self.region, project_id=self.project_id
            )
        return self._hook

    def _close_hook(self) -> None:
        if self._hook is not None:
            self._hook.close()
            self._hook = None

    def poke(self, context: Context) -> bool | PokeReturnValue:
        hook = self._get_hook()
        try:
            detail = hook.get_instance(self.instance_name)
        except ImageSearchNotFoundError:
            project = self.project_id or hook.settings.project_id
            if time.time() - self._wait_start(context) >= self.not_found_grace:
                raise AirflowFailException(not_found_message(self.instance_name, project)) from None
            self.log.info(
                "Instance %s not found yet; waiting up to %.0fs", self.instance_name, self.not_found_grace
            )
            return False
        except ImageSearchError as error:
            if is_permanent(error):
                raise AirflowFailException(str(error)) from None
            self._errors_in_row += 1
            if self._errors_in_row >= self.max_consecutive_errors:
                raise
            self.log.warning(
                "Polling %s failed (%d/%d in a row): %s",
                self.instance_name,
                self._errors_in_row,
                self.max_consecutive_errors,
                error,
            )
            return False
        self._errors_in_row = 0
        if detail.status in self._targets:
            return PokeReturnValue(is_done=True, xcom_value=detail.to_dict())
        if detail.status in self._failures:
            raise AirflowFailException(failure_status_message(self.instance_name, detail.status))
        self.log.info(
            "Instance %s is %s; waiting for %s",
            self.instance_name,
            detail.status.value,
            sorted(s.value for s in self._targets),
        )
        return False

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Turn the trigger's event into the task's outcome."""
        if not event:
            raise AirflowException(f"Trigger for {self.instance_name} ended without an event")
        kind = event.get("status")
        message = str(event.get("message", ""))
        if kind == outcomes.SUCCESS:
            self.log.info("%s (after %s polls)", message, event.get("polls"))
            return event["instance"]
        if kind == outcomes.TIMEOUT:
            raise AirflowSensorTimeout(message)
        if kind in (outcomes.FAILURE, outcomes.NOT_FOUND):
            raise AirflowFailException(message)
        if kind == outcomes.ERROR and not event.get("retryable", False):
            raise AirflowFailException(message)
        raise AirflowException(message or f"Unexpected trigger event {kind!r}")
