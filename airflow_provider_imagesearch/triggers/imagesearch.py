"""Triggers for Huawei Cloud ImageSearch."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_imagesearch.errors import (
    ImageSearchApiError,
    ImageSearchError,
    ImageSearchNotFoundError,
)
from airflow_provider_imagesearch.outcomes import (
    ERROR,
    FAILURE,
    NOT_FOUND,
    SUCCESS,
    TIMEOUT,
    failure_status_message,
    is_permanent,
    not_found_message,
)

MAX_ERROR_BACKOFF = 300.0


class ImageSearchInstanceStatusTrigger(BaseTrigger):
    """Poll an instance until its status is a target status, asynchronously, then yield one event.

    Uses one :class:`~airflow_provider_imagesearch.hooks.imagesearch.ImageSearchAsyncHook` (one HTTP
    client, one token that is renewed when it expires) for the whole wait, never blocks the event loop,
    and closes the client on every exit. Transient errors that outlast the hook's own retries are
    retried after an exponential backoff and counted; ``max_consecutive_errors`` of them in a row end
    the wait with an error event. A permanent error (4xx, bad credentials) ends it at once: nothing is
    ever retried without a sleep.

    The payload is ``{"status": "success", "instance": {...}}``, ``{"status": "failure", ...}`` (a
    failure status), ``{"status": "not_found", ...}``, ``{"status": "timeout", ...}`` or
    ``{"status": "error", ...}``.

    :param instance_name: the instance to watch.
    :param imagesearch_conn_id: connection id of type ``imagesearch``.
    :param project_id: project id, overriding the connection's.
    :param region: region id, overriding the connection's.
    :param target_statuses: status names that end the wait successfully.
    :param failure_statuses: status names that end it as a failure.
    :param wait_for_gone: wait for the instance to disappear (after a delete) instead of for a target
        status; a missing instance is then the success, with ``"instance": None``.
    :param poll_interval: seconds between polls.
    :param first_poll_at: epoch seconds of the first poll (None: at once). The sensor sets it one
        interval after its own synchronous poke, so the two do not poll back to back.
    :param not_found_deadline: epoch seconds after which a missing instance is a failure (None: at once).
    :param timeout_at: epoch seconds after which the wait times out (None: never; the deferral's own
        timeout still applies in a real triggerer).
    :param max_consecutive_errors: transient errors in a row that end the wait.
    """

    def __init__(
        self,
        *,
        instance_name: str,
        imagesearch_conn_id: str,
        project_id: str | None = None,
        region: str | None = None,
        target_statuses: Sequence[str] = ("NORMAL",),
        failure_statuses: Sequence[str] = (),
        wait_for_gone: bool = False,
        poll_interval: float = 60.0,
        first_poll_at: float | None = None,
        not_found_deadline: float | None = None,
        timeout_at: float | None = None,
        max_consecutive_errors: int = 5,
    ) -> None:
        super().__init__()
        self.instance_name = instance_name
        self.imagesearch_conn_id = imagesearch_conn_id
        self.project_id = project_id
        self.region = region
        self.target_statuses = sorted(target_statuses)
        self.failure_statuses = sorted(failure_statuses)
        self.wait_for_gone = bool(wait_for_gone)
        self.poll_interval = float(poll_interval)
        self.first_poll_at = first_poll_at
        self.not_found_deadline = not_found_deadline
        self.timeout_at = timeout_at
        self.max_consecutive_errors = int(max_consecutive_errors)
        self._hook: Any = None
        #: Polls made (for logs and tests).
        self.polls = 0

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "instance_name": self.instance_name,
                "imagesearch_conn_id": self.imagesearch_conn_id,
                "project_id": self.project_id,
                "region": self.region,
                "target_statuses": list(self.target_statuses),
                "failure_statuses": list(self.failure_statuses),
                "wait_for_gone": self.wait_for_gone,
                "poll_interval": self.poll_interval,
                "first_poll_at": self.first_poll_at,
                "not_found_deadline": self.not_found_deadline,
                "timeout_at": self.timeout_at,
                "max_consecutive_errors": self.max_consecutive_errors,
            },
        )

    def _base(self, status: str, message: str) -> dict[str, Any]:
        return {
            "status": status,
            "message": message,
            "instance_name": self.instance_name,
            "project_id": self.project_id,
            "polls": self.polls,
        }

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchAsyncHook

        self._hook = hook = ImageSearchAsyncHook(
            self.imagesearch_conn_id, region=self.region, project_id=self.project_id
        )
        try:
            yield TriggerEvent(await self._wait(hook))
        finally:
            await self._close()

    async def _wait(self, hook: Any) -> dict[str, Any]:
        from airflow_provider_imagesearch.models import InstanceStatus
        from airflow_provider_imagesearch.waits import Verdict, WaitRule

        rule = WaitRule(
            frozenset(InstanceStatus(s) for s in self.target_statuses),
            frozenset(InstanceStatus(s) for s in self.failure_statuses),
            gone=self.wait_for_gone,
        )
        errors_in_row = 0
        if self.first_poll_at is not None:
            wait = self.first_poll_at - time.time()
            if self.timeout_at is not None:
                wait = min(wait, self.timeout_at - time.time())
            if wait > 0:
                await asyncio.sleep(wait)
        while True:
            self.polls += 1
            poll_started = time.monotonic()
            delay = self.poll_interval
            missing_error: ImageSearchNotFoundError | None = None
            try:
                detail = await hook.get_instance(self.instance_name)
            except ImageSearchNotFoundError as error:
                detail, missing_error = None, error
            except ImageSearchError as error:
                if is_permanent(error):
                    return self._error_event(error, retryable=False)
                errors_in_row += 1
                if errors_in_row >= self.max_consecutive_errors:
                    return self._error_event(error, retryable=True)
                delay = min(
                    self.poll_interval * 2 ** (errors_in_row - 1), max(MAX_ERROR_BACKOFF, self.poll_interval)
                )
                self.log.warning(
                    "Polling %s failed (%d/%d in a row): %s; next try in %.1fs",
                    self.instance_name,
                    errors_in_row,
                    self.max_consecutive_errors,
                    error,
                    delay,
                )
            else:
                errors_in_row = 0
            if errors_in_row == 0:
                verdict = rule.judge(detail)
                status = detail.status.value if detail is not None else "gone"
                self.log.info("Instance %s is %s (poll %d)", self.instance_name, status, self.polls)
                if verdict is Verdict.DONE:
                    event = self._base(SUCCESS, f"Instance {self.instance_name} is {status}")
                    event["instance"] = detail.to_dict() if detail is not None else None
                    return event
                if verdict is Verdict.FAILED:
                    assert detail is not None
                    event = self._base(FAILURE, failure_status_message(self.instance_name, detail.status))
                    event["instance_status"] = status
                    event["instance"] = detail.to_dict()
                    return event
                if verdict is Verdict.MISSING:
                    if self.not_found_deadline is None or time.time() >= self.not_found_deadline:
                        event = self._base(NOT_FOUND, not_found_message(self.instance_name, self.project_id))
                        if missing_error is not None:
                            event.update(_error_fields(missing_error))
                        return event
                    self.log.info("Instance %s not found yet; waiting", self.instance_name)
            if self.timeout_at is not None:
                remaining = self.timeout_at - time.time()
                if remaining <= 0:
                    return self._base(
                        TIMEOUT, f"Instance {self.instance_name} did not become {rule.describe()} in time"
                    )
                delay = min(delay, remaining)
            # Polls start every ``delay`` seconds, not ``delay`` after the last answer: a slow answer
            # (or a triggerer busy with many waits) does not push every later poll back.
            await asyncio.sleep(max(0.0, delay - (time.monotonic() - poll_started)))

    def _error_event(self, error: ImageSearchError, *, retryable: bool) -> dict[str, Any]:
        event = self._base(ERROR, str(error))
        event.update(_error_fields(error))
        event["retryable"] = retryable
        return event

    async def _close(self) -> None:
        hook, self._hook = self._hook, None
        if hook is not None:
            await hook.aclose()

    async def cleanup(self) -> None:
        await self._close()


def _error_fields(error: ImageSearchError) -> dict[str, Any]:
    fields: dict[str, Any] = {"error_type": type(error).__name__}
    if isinstance(error, ImageSearchApiError):
        fields.update(
            http_status=error.status,
            error_code=error.error_code,
            error_msg=error.error_msg,
            request_id=error.request_id,
        )
    return fields
