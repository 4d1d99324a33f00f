"""Triggers for Huawei Cloud ImageSearch."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
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
    missing_message,
    not_found_message,
)

MAX_ERROR_BACKOFF = 300.0


class ImageSearchWaitEvent(TriggerEvent):
    """A :class:`TriggerEvent` whose ``repr`` is a summary, not the whole payload.

    The triggerer logs every event it fires as ``repr(event)`` in one log line. A fleet's event carries
    every instance's details (about 200 bytes each): at 1,000 instances that line is ~200 KB, which the
    triggerer's log forwarding can split and then reject as "Malformed json log" (apache/airflow#66158).
    The payload itself is sent and stored as for any event; only the log line is shortened.
    """

    def __repr__(self) -> str:
        payload = self.payload if isinstance(self.payload, dict) else {}
        instances = payload.get("instances")
        shown = {key: value for key, value in payload.items() if key != "instances"}
        if isinstance(instances, list):
            shown["instances"] = f"<details of {len(instances)} instances>"
        return f"TriggerEvent<{shown!r}>"


#: Instances a fleet trigger reads at once, by default.
DEFAULT_MAX_CONCURRENCY = 16

_HOOK_CLASS: list[Any] = []


def _load_hook_class() -> Any:
    """Import the async hook (httpx, requests, the settings machinery): ~0.3 s cold, so never on the loop.

    Also anyio's asyncio backend and TLS streams, which httpcore otherwise imports (~50 ms) inside the
    first request, on the loop.
    """
    import contextlib
    import importlib

    import airflow_provider_imagesearch.models
    import airflow_provider_imagesearch.waits  # noqa: F401
    from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchAsyncHook

    for module in ("anyio._backends._asyncio", "anyio.streams.tls", "anyio.to_thread"):
        with contextlib.suppress(ImportError):  # another httpcore backend: nothing to load early
            importlib.import_module(module)

    return ImageSearchAsyncHook


async def _async_hook_class() -> Any:
    """The async hook class, imported in a worker thread the first time.

    The triggerer imports this module on its event loop, so the module itself stays light (it is
    imported by the sensor only when it defers, never when a DAG file is parsed).
    """
    if not _HOOK_CLASS:
        hook_class = await asyncio.to_thread(_load_hook_class)
        if not _HOOK_CLASS:
            _HOOK_CLASS.append(hook_class)
    return _HOOK_CLASS[0]


def _rule(targets: Sequence[str], failures: Sequence[str], gone: bool) -> Any:
    from airflow_provider_imagesearch.models import InstanceStatus
    from airflow_provider_imagesearch.waits import WaitRule

    return WaitRule(
        frozenset(InstanceStatus(s) for s in targets),
        frozenset(InstanceStatus(s) for s in failures),
        gone=gone,
    )


async def _until_first_poll(first_poll_at: float | None, timeout_at: float | None) -> None:
    if first_poll_at is None:
        return
    wait = first_poll_at - time.time()
    if timeout_at is not None:
        wait = min(wait, timeout_at - time.time())
    if wait > 0:
        await asyncio.sleep(wait)


class _StatusWaitTrigger(BaseTrigger):
    """What the single and the fleet wait share: connection, rule, timing, the hook's lifetime.

    A subclass adds what it watches (its ``serialize`` puts it beside :meth:`_wait_kwargs`) and
    implements ``_wait(hook)``, which returns the one event's payload.
    """

    def __init__(
        self,
        *,
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
        self.imagesearch_conn_id: str = imagesearch_conn_id
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
        #: Polls (for the fleet: rounds of reads) made, for logs and tests.
        self.polls = 0

    def _wait_kwargs(self) -> dict[str, Any]:
        return {
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
        }

    def _classpath(self) -> str:
        return f"{type(self).__module__}.{type(self).__qualname__}"

    def _project_id(self) -> str | None:
        """The project in effect: the override, else the connection's once the hook has read it."""
        settings = getattr(self._hook, "_settings", None)
        return self.project_id or getattr(settings, "project_id", None)

    def _until_timeout(self) -> float | None:
        """Seconds left before ``timeout_at`` (None: no timeout); reads in flight are cut off then."""
        if self.timeout_at is None:
            return None
        return max(self.timeout_at - time.time(), 0.0)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook_class = await _async_hook_class()
        self._hook = hook = hook_class(
            self.imagesearch_conn_id,
            region=self.region,
            project_id=self.project_id,
            shared_client=True,
            **self._hook_kwargs(),
        )
        try:
            yield ImageSearchWaitEvent(payload=await self._wait(hook))
        finally:
            await self._close()

    async def _wait(self, hook: Any) -> dict[str, Any]:
        raise NotImplementedError

    def _hook_kwargs(self) -> dict[str, Any]:
        return {}

    async def _close(self) -> None:
        hook, self._hook = self._hook, None
        if hook is not None:
            await hook.aclose()

    async def cleanup(self) -> None:
        await self._close()


class ImageSearchInstanceStatusTrigger(_StatusWaitTrigger):
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

    def __init__(self, *, instance_name: str, **wait: Any) -> None:
        super().__init__(**wait)
        self.instance_name = instance_name

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return self._classpath(), {"instance_name": self.instance_name, **self._wait_kwargs()}

    def _base(self, status: str, message: str) -> dict[str, Any]:
        return {
            "status": status,
            "message": message,
            "instance_name": self.instance_name,
            "project_id": self._project_id(),
            "polls": self.polls,
        }

    def _timeout_event(self, rule: Any) -> dict[str, Any]:
        return self._base(TIMEOUT, f"Instance {self.instance_name} did not become {rule.describe()} in time")

    async def _wait(self, hook: Any) -> dict[str, Any]:
        from airflow_provider_imagesearch.waits import Verdict

        rule = _rule(self.target_statuses, self.failure_statuses, self.wait_for_gone)
        errors_in_row = 0
        await _until_first_poll(self.first_poll_at, self.timeout_at)
        while True:
            self.polls += 1
            poll_started = time.monotonic()
            delay = self.poll_interval
            missing_error: ImageSearchNotFoundError | None = None
            try:
                # A read of a hung endpoint (each attempt up to the read timeout, then the hook's retries)
                # does not hold the wait past its timeout.
                async with asyncio.timeout(self._until_timeout()):
                    detail = await hook.get_instance(self.instance_name)
            except TimeoutError:
                return self._timeout_event(rule)
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
                        event = self._base(
                            NOT_FOUND, not_found_message(self.instance_name, self._project_id())
                        )
                        if missing_error is not None:
                            event.update(_error_fields(missing_error))
                        return event
                    self.log.info("Instance %s not found yet; waiting", self.instance_name)
            if self.timeout_at is not None:
                remaining = self.timeout_at - time.time()
                if remaining <= 0:
                    return self._timeout_event(rule)
                delay = min(delay, remaining)
            # Polls start every ``delay`` seconds, not ``delay`` after the last answer: a slow answer
            # (or a triggerer busy with many waits) does not push every later poll back.
            await asyncio.sleep(max(0.0, delay - (time.monotonic() - poll_started)))

    def _error_event(self, error: ImageSearchError, *, retryable: bool) -> dict[str, Any]:
        event = self._base(ERROR, str(error))
        event.update(_error_fields(error))
        event["retryable"] = retryable
        return event


class ImageSearchFleetStatusTrigger(_StatusWaitTrigger):
    """Poll many instances until every one is in a target status (or gone), then yield one event.

    The fleet form of :class:`ImageSearchInstanceStatusTrigger`, on the same
    :class:`~airflow_provider_imagesearch.waits.WaitRule`: one trigger (one hook, the triggerer's shared
    client, one token) reads the instances still pending each round, ``max_concurrency`` at a time.
    An instance that reached its goal is not read again. The wait ends:

    * ``{"status": "success", "instances": [...]}`` when all are done: each instance's details in the
      order of ``instance_names`` (``None`` for a gone instance);
    * ``{"status": "failure", "instance_name": ..., "instance_status": ...}`` at once when any is in a
      failure status (the first in input order is named; ``failed`` lists all seen in that round);
    * ``{"status": "not_found", "missing": [...]}`` when instances are still missing at
      ``not_found_deadline``;
    * ``{"status": "timeout", "pending": [...]}`` at ``timeout_at``;
    * ``{"status": "error", ...}`` after a permanent error, or ``max_consecutive_errors`` rounds in a
      row in which a read failed after the hook's retries (backing off between them).

    Every event has ``instance_names``, ``polls`` (rounds) and ``statuses`` (each instance's last seen
    status, ``None`` if never read).

    :param instance_names: the instances to watch.
    :param max_concurrency: reads in flight at once.

    The other parameters are :class:`ImageSearchInstanceStatusTrigger`'s.
    """

    def __init__(
        self, *, instance_names: Sequence[str], max_concurrency: int = DEFAULT_MAX_CONCURRENCY, **wait: Any
    ) -> None:
        super().__init__(**wait)
        self.instance_names = list(instance_names)
        self.max_concurrency = max(1, int(max_concurrency))
        self._statuses: dict[str, str | None] = dict.fromkeys(self.instance_names)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        kwargs = {"instance_names": list(self.instance_names), **self._wait_kwargs()}
        kwargs["max_concurrency"] = self.max_concurrency
        return self._classpath(), kwargs

    def _base(self, status: str, message: str) -> dict[str, Any]:
        return {
            "status": status,
            "message": message,
            "instance_names": list(self.instance_names),
            "project_id": self._project_id(),
            "polls": self.polls,
            "statuses": dict(self._statuses),
        }

    def _hook_kwargs(self) -> dict[str, Any]:
        # The shared client's gate must let max_concurrency reads through (it lets 4 by default).
        return {"max_connections": self.max_concurrency}

    async def _read_round(self, hook: Any, names: list[str]) -> _Round:
        """Read ``names``, ``max_concurrency`` at a time, until done or cut short (see :class:`_Round`).

        ``max_concurrency`` workers take the next name in turn (not one task per name: a round of 1,000
        would create and schedule 1,000 tasks). A hung or failing endpoint does not hold the round for
        every pending instance: no read starts after a permanent error or after
        ``max_consecutive_errors`` failed reads in a row, and reads in flight are cancelled at
        ``timeout_at``.
        """
        round_ = _Round()
        indexes = iter(range(len(names)))
        failed_in_row = 0

        async def worker() -> None:
            nonlocal failed_in_row
            for index in indexes:
                if round_.stopped:
                    return
                name = names[index]
                error: ImageSearchError | None = None
                try:
                    detail = await hook.get_instance(name)
                except ImageSearchError as failure:  # not found included: the caller tells them apart
                    detail, error = None, failure
                round_.results[name] = (detail, error)
                if error is None or isinstance(error, ImageSearchNotFoundError):
                    failed_in_row = 0
                    continue
                failed_in_row += 1
                if is_permanent(error) or failed_in_row >= self.max_consecutive_errors:
                    round_.stopped = True

        try:
            async with asyncio.timeout(self._until_timeout()):
                await asyncio.gather(*(worker() for _ in range(min(self.max_concurrency, len(names)) or 1)))
        except TimeoutError:
            round_.timed_out = True
        return round_

    async def _wait(self, hook: Any) -> dict[str, Any]:
        from airflow_provider_imagesearch.waits import Verdict

        rule = _rule(self.target_statuses, self.failure_statuses, self.wait_for_gone)
        done: dict[str, Any] = {}
        pending = list(dict.fromkeys(self.instance_names))
        errors_in_row = 0
        await _until_first_poll(self.first_poll_at, self.timeout_at)
        while True:
            self.polls += 1
            poll_started = time.monotonic()
            delay = self.poll_interval
            failed: list[tuple[str, Any]] = []
            missing: list[str] = []
            errors: list[tuple[str, ImageSearchError]] = []
            still: list[str] = []
            round_ = await self._read_round(hook, pending)
            for name in pending:
                if name not in round_.results:  # not read: the round was cut short
                    still.append(name)
                    continue
                detail, error = round_.results[name]
                if isinstance(error, ImageSearchError) and not isinstance(error, ImageSearchNotFoundError):
                    if is_permanent(error):
                        return self._error_event(name, error, retryable=False)
                    errors.append((name, error))
                    still.append(name)
                    continue
                self._statuses[name] = detail.status.value if detail is not None else None
                verdict = rule.judge(detail)
                if verdict is Verdict.DONE:
                    done[name] = detail.to_dict() if detail is not None else None
                    self.log.info("Instance %s is %s", name, detail.status.value if detail else "gone")
                elif verdict is Verdict.FAILED:
                    failed.append((name, detail))
                else:
                    if verdict is Verdict.MISSING:
                        missing.append(name)
                    still.append(name)
            if failed:
                name, detail = failed[0]
                message = failure_status_message(name, detail.status)
                if len(failed) > 1:
                    message += " Also in a failure status: " + ", ".join(
                        f"{other} ({d.status.value})" for other, d in failed[1:]
                    )
                event = self._base(FAILURE, message)
                event.update(
                    instance_name=name,
                    instance_status=detail.status.value,
                    instance=detail.to_dict(),
                    failed={other: d.status.value for other, d in failed},
                )
                return event
            pending = still
            if not pending:
                event = self._base(SUCCESS, f"All {len(done)} instances are {rule.describe()}")
                event["instances"] = [done.get(name) for name in self.instance_names]
                return event
            if round_.timed_out:
                return self._timeout_event(rule, pending)
            if missing and (self.not_found_deadline is None or time.time() >= self.not_found_deadline):
                event = self._base(NOT_FOUND, missing_message(missing, self._project_id()))
                event["missing"] = missing
                return event
            if errors:
                errors_in_row += 1
                name, error = errors[0]
                if errors_in_row >= self.max_consecutive_errors:
                    return self._error_event(name, error, retryable=True)
                delay = min(
                    self.poll_interval * 2 ** (errors_in_row - 1), max(MAX_ERROR_BACKOFF, self.poll_interval)
                )
                self.log.warning(
                    "Reading %d instance(s) failed (%d/%d rounds in a row), e.g. %s: %s; next round in %.1fs",
                    len(errors),
                    errors_in_row,
                    self.max_consecutive_errors,
                    name,
                    error,
                    delay,
                )
            else:
                errors_in_row = 0
            self.log.info(
                "%d/%d instances %s (round %d); waiting for %s",
                len(done),
                len(done) + len(pending),
                rule.describe(),
                self.polls,
                _summary(pending, self._statuses),
            )
            if self.timeout_at is not None:
                remaining = self.timeout_at - time.time()
                if remaining <= 0:
                    return self._timeout_event(rule, pending)
                delay = min(delay, remaining)
            await asyncio.sleep(max(0.0, delay - (time.monotonic() - poll_started)))

    def _timeout_event(self, rule: Any, pending: list[str]) -> dict[str, Any]:
        total = len(dict.fromkeys(self.instance_names))
        event = self._base(
            TIMEOUT,
            f"{len(pending)} of {total} instances did not become {rule.describe()} in time: "
            f"{_summary(pending, self._statuses)}",
        )
        event["pending"] = pending
        return event

    def _error_event(self, name: str, error: ImageSearchError, *, retryable: bool) -> dict[str, Any]:
        event = self._base(ERROR, f"Reading instance {name!r} failed: {error}")
        event.update(_error_fields(error))
        event["instance_name"] = name
        event["retryable"] = retryable
        return event


@dataclass
class _Round:
    """One round of a fleet trigger's reads.

    :param results: each instance read: its details (None if missing or failed) and its error (the
        not-found error for a missing one, None if read).
    :param stopped: no read started after a permanent error or too many failed reads in a row.
    :param timed_out: the round was cut off at the trigger's ``timeout_at`` (its reads in flight cancelled).
    """

    results: dict[str, tuple[Any, BaseException | None]] = field(default_factory=dict)
    stopped: bool = False
    timed_out: bool = False


def _summary(names: Sequence[str], statuses: dict[str, str | None], limit: int = 5) -> str:
    """``a (CREATION), b (not found)`` for the first ``limit`` names, then ``+N more``."""
    shown = ", ".join(f"{name} ({statuses.get(name) or 'not found yet'})" for name in names[:limit])
    return shown + (f" +{len(names) - limit} more" if len(names) > limit else "")


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
