"""How ImageSearch errors and statuses become Airflow task outcomes; shared by operator, sensor, trigger.

Errors that no retry can fix (bad credentials, bad arguments, a missing instance) fail the task at once
with ``AirflowFailException``, so task retries are not burnt; transient ones stay ordinary exceptions
and go through Airflow's task retries after the hook's own retry budget.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_imagesearch.errors import (
    ImageSearchApiError,
    ImageSearchConfigError,
    ImageSearchError,
    ImageSearchResponseError,
    ImageSearchServerError,
    ImageSearchThrottledError,
    ImageSearchTransportError,
    ImageSearchValidationError,
)

# Kinds of the trigger's single event; the sensor's ``execute_complete`` maps each to a task outcome.
SUCCESS = "success"
FAILURE = "failure"
NOT_FOUND = "not_found"
TIMEOUT = "timeout"
ERROR = "error"

if TYPE_CHECKING:
    from airflow_provider_imagesearch.models import InstanceStatus

TRANSIENT_ERRORS: tuple[type[ImageSearchError], ...] = (
    ImageSearchServerError,
    ImageSearchThrottledError,
    ImageSearchTransportError,
    ImageSearchResponseError,
)


def is_permanent(error: BaseException) -> bool:
    """True for errors that retrying the task cannot fix."""
    if isinstance(error, ImageSearchConfigError | ImageSearchValidationError):
        return True
    # A refused certificate, or a host name that does not exist (after the hook's few attempts): the
    # connection names a wrong endpoint, and task retries would only repeat the error.
    if isinstance(error, ImageSearchTransportError) and error.error_code in (
        "TLS_ERROR",
        "NAME_NOT_RESOLVED",
    ):
        return True
    if isinstance(error, TRANSIENT_ERRORS):
        return False
    # Any other API answer is a 4xx: the request itself is wrong or forbidden.
    return isinstance(error, ImageSearchApiError)


def not_found_message(instance_name: str, project_id: str | None) -> str:
    return f"ImageSearch instance {instance_name!r} does not exist in project {project_id or '(connection default)'}"


def missing_message(names: list[str], project_id: str | None) -> str:
    """:func:`not_found_message` for one or more instances of a fleet, naming every one."""
    if len(names) == 1:
        return not_found_message(names[0], project_id)
    return (
        f"{len(names)} ImageSearch instances do not exist in project "
        f"{project_id or '(connection default)'}: {', '.join(names)}"
    )


def failure_status_message(instance_name: str, status: InstanceStatus) -> str:
    return (
        f"ImageSearch instance {instance_name!r} is {status.value}: {status.meaning}. "
        "It will not become ready by waiting, so the task fails now."
    )


def result_of_wait_event(event: dict[str, Any] | None, instance_name: str) -> Any:
    """The result of a trigger's wait event (the details, or None once gone), or the task outcome raised.

    Shared by the sensor and the lifecycle operators: a failure status, a missing instance and a
    permanent error fail the task at once; a timeout is a sensor timeout; a wait that gave up after
    transient errors raises :class:`~airflow_provider_imagesearch.errors.ImageSearchWaitError`, which
    Airflow retries (an ``AirflowException`` would be turned into a skip by ``soft_fail``).
    """
    from airflow_provider_imagesearch.errors import ImageSearchWaitError
    from airflow_provider_imagesearch.version_compat import (
        AirflowException,
        AirflowFailException,
        AirflowSensorTimeout,
    )

    if not event:
        raise AirflowException(f"Trigger for {instance_name} ended without an event")
    kind = event.get("status")
    message = str(event.get("message", ""))
    if kind == SUCCESS:
        # A fleet wait's event has every instance's details, in input order.
        return event["instances"] if "instances" in event else event.get("instance")
    if kind == TIMEOUT:
        raise AirflowSensorTimeout(message)
    if kind in (FAILURE, NOT_FOUND):
        raise AirflowFailException(message)
    if kind == ERROR and not event.get("retryable", False):
        raise AirflowFailException(message)
    if kind == ERROR:
        raise ImageSearchWaitError(message)
    raise AirflowException(message or f"Unexpected trigger event {kind!r}")
