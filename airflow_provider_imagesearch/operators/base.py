"""The base of every ImageSearch operator (Amazon's ``AwsBaseOperator`` is the model), and the rule every
write operator follows when an earlier attempt's outcome is unknown.

**The rule.** A write whose answer was lost (a 5xx, a timeout after sending, a dropped connection, a 2xx
that could not be read) may or may not have taken effect. Its repeat, by the hook, by the next task try, or
by a rerun after the task was cleared, may then be refused because the effect is already there ("item
exists", "no such image"). Whenever the outcome is unknown, or a refusal may be the effect of an earlier
attempt or try of this task instance, the target is read back: the operator succeeds when it is what was
asked, sends again when nothing is there (or overwrites, where the API allows it and the write asked for
it), and fails only when something else is there, naming the difference. See
``docs/operators-reliability.rst``.
"""

from __future__ import annotations

import enum
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_provider_imagesearch.errors import (
    ImageSearchApiError,
    ImageSearchResponseError,
    ImageSearchServerError,
    ImageSearchTransportError,
)
from airflow_provider_imagesearch.mixins import ImageSearchHookMixin

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchHook

T = TypeVar("T")


class Found(enum.Enum):
    """What a read-back of a write's target found."""

    AS_ASKED = "as asked"  # the effect the write asked for is there: the write succeeded
    ABSENT = "absent"  # nothing of it is there: the write did not take effect, sending it again is safe
    OTHER = "other"  # something else is there: succeeding would be a lie, overwriting may be wrong


@dataclass(frozen=True)
class ReadBack:
    """The result of reading a write's target back.

    :param found: what was found.
    :param difference: for ``OTHER``, what differs from what was asked (it goes into the failure message).
    """

    found: Found
    difference: str = ""


AS_ASKED = ReadBack(Found.AS_ASKED)
ABSENT = ReadBack(Found.ABSENT)


def other(difference: str) -> ReadBack:
    return ReadBack(Found.OTHER, difference)


def outcome_unknown(error: BaseException) -> bool:
    """Whether a failed write may have taken effect all the same (the request reached the service).

    5xx (and the service's own "internal error" / "timed out" codes), a timeout or a dropped connection
    after sending, and a 2xx answer that could not be read. A refusal (4xx), a throttled request (429)
    and a request that never left (connection refused, connect timeout) had no effect.
    """
    if isinstance(error, ImageSearchServerError | ImageSearchResponseError):
        return True
    if isinstance(error, ImageSearchTransportError):
        return error.error_code != "TLS_ERROR" and bool(getattr(error, "request_sent", True))
    return False


def is_refusal(error: BaseException) -> bool:
    """A definite refusal of the request (a 4xx other than 429 and auth): the write did not happen."""
    from airflow_provider_imagesearch.retry import is_request_error

    return is_request_error(error)


def _ambiguous_retries(hook: ImageSearchHook) -> int:
    """Retries of the hook so far after attempts whose outcome was unknown (see the hook's retry stats)."""
    from airflow_provider_imagesearch.retry import AMBIGUOUS_RETRY_CAUSES

    return sum(hook.retry_stats[cause] for cause in AMBIGUOUS_RETRY_CAUSES)


def _retries(hook: ImageSearchHook) -> int:
    """Every retry of the hook so far (a renewed token's repeat included): a send's attempts are one more
    than the retries it made. (An IAM token request's retries count too: the budget errs on the safe side.)
    """
    return sum(hook.retry_stats.values())


class ImageSearchBaseOperator(ImageSearchHookMixin):
    """Base of the ImageSearch operators: connection fields, one hook per run, outcomes, console link.

    A subclass declares its own template fields with ``imagesearch_template_fields(...)`` and implements
    :meth:`run`, which gets this execution's hook; everything else (closing the hook, turning errors
    into task outcomes, the extra link, OpenLineage) happens here. Write operators send their write with
    :meth:`write`, which applies the rule of the module docstring.

    :param imagesearch_conn_id: connection id of type ``imagesearch``. (templated)
    :param project_id: project id, overriding the connection's. (templated)
    :param region: region id, overriding the connection's. (templated)
    :param map_index_template: label of mapped task instances; the instance name by default.
    """

    ui_color = "#e8f1fb"
    #: The try of this task instance being run (1 for the first; a retry or a clear makes it more).
    #: Private: ``try_number`` is the task instance's, and an operator attribute must not shadow it.
    _this_try: int = 1

    def execute(self, context: Context) -> Any:
        self._this_try = int(getattr(context.get("ti"), "try_number", None) or 1)
        with self.imagesearch_outcomes():
            try:
                self.check_arguments()
                hook = self.hook
                self.remember_instance(hook)
                return self.run(hook, context)
            finally:
                self.close_hook()

    def check_arguments(self) -> None:
        """Refuse arguments that contradict each other or would be ignored, before any request.

        Runs after templates are rendered; raises ``ImageSearchValidationError`` naming the field.
        """

    @abstractmethod
    def run(self, hook: ImageSearchHook, context: Context) -> Any:
        """The operator's own work, with this execution's hook; the return value goes to XCom."""

    # --- the write rule ---------------------------------------------------------------------------

    @property
    def earlier_try(self) -> bool:
        """Whether an earlier try of this task instance ran (this is a retry, or a rerun after a clear)."""
        return self._this_try > 1

    def write(
        self,
        hook: ImageSearchHook,
        what: str,
        send: Callable[[], T],
        read_back: Callable[[], ReadBack],
        *,
        adopted: Callable[[], T],
        overwrite: bool = False,
        refusal_is_ours: Callable[[], bool] | None = None,
    ) -> T:
        """Send a write; when its outcome is unknown, or a refusal may be its own earlier effect, read back.

        The write's requests in this try share one budget, the connection's ``max_attempts``: the hook's
        own retries of a send count against it, so a send again after a read-back only happens while the
        hook left attempts unused (a write the hook does not repeat, or one it gave up on early). The
        read-backs come on top, each with the hook's retries of a read.

        :param hook: this execution's hook (its retries of the write count as earlier attempts).
        :param what: the write, for logs and messages ("adding item x to y").
        :param send: sends the write once (the hook may retry it inside, as its retry policy allows).
        :param read_back: reads the target: ``AS_ASKED``, ``ABSENT`` or ``other(difference)``.
        :param adopted: the result to return when the read-back finds the write's effect.
        :param overwrite: on ``OTHER`` after an unknown outcome, send again (the write overwrites, and
            overwriting is what it asked for) rather than fail.
        :param refusal_is_ours: whether a refusal may be this task's own earlier effect even without an
            unknown outcome in this call; by default, when an earlier try of this task instance ran.
        :returns: ``send()``'s result, or ``adopted()``.
        """
        from airflow_provider_imagesearch.version_compat import AirflowFailException

        budget = max(1, hook.settings.retry.max_attempts)
        used = 0
        unknown: ImageSearchApiError | None = None
        while True:
            before = _ambiguous_retries(hook)
            retried_before = _retries(hook)
            try:
                return send()
            except ImageSearchApiError as error:
                # This send's attempts: the first, and every retry the hook made of it.
                used += 1 + _retries(hook) - retried_before
                lost_inside = _ambiguous_retries(hook) > before
                if outcome_unknown(error):
                    unknown = error
                    self.log.warning(
                        "%s may or may not have taken effect (%s); reading it back (%d of %d attempts used)",
                        what.capitalize(),
                        error.error_code,
                        min(used, budget),
                        budget,
                    )
                    found = read_back()
                elif is_refusal(error) and (
                    unknown is not None
                    or lost_inside
                    or (refusal_is_ours() if refusal_is_ours is not None else self.earlier_try)
                ):
                    # Refused, perhaps because an earlier attempt or try (whose answer was lost) did it.
                    found = read_back()
                    if found.found is Found.AS_ASKED:
                        self.log.info(
                            "%s was refused (%s), but what it asks for is there: taken to be the effect of "
                            "an earlier attempt or try of this task whose answer was lost",
                            what.capitalize(),
                            error.error_code,
                        )
                        return adopted()
                    if found.found is Found.OTHER and not overwrite:
                        # Something else holds the target: that is why it was refused. (A write that
                        # overwrites is not refused for that: its refusal is about something else.)
                        raise AirflowFailException(
                            f"{what.capitalize()} was refused ({error}), and what is there is not what "
                            f"was asked: {found.difference}"
                        ) from None
                    raise
                else:
                    raise
            if found.found is Found.AS_ASKED:
                self.log.info("%s took effect: reading it back found what was asked", what.capitalize())
                return adopted()
            if found.found is Found.OTHER and not overwrite:
                raise AirflowFailException(
                    f"{what.capitalize()} may not have taken effect ({unknown}), and what is there is not "
                    f"what was asked: {found.difference}"
                )
            # Not there (or another version there, which this write overwrites): sending again is safe,
            # within the budget; past it the try fails, and a task retry starts a new one.
            if used >= budget:
                self.log.warning(
                    "%s did not take effect as asked after %d attempts (the connection's max_attempts)",
                    what.capitalize(),
                    used,
                )
                raise unknown
