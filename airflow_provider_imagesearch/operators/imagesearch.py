"""Operators for Huawei Cloud ImageSearch: one per v1 call, all on :class:`ImageSearchBaseOperator`.

Each is a thin shell over one hook call (Google's Vision operators are the model) and returns its
result to XCom. The instance lifecycle operators can wait for the instance, in the worker or deferred
to the triggerer, with the status sensor's rules.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_imagesearch.errors import (
    ImageSearchApiError,
    ImageSearchNotFoundError,
    ImageSearchValidationError,
)
from airflow_provider_imagesearch.mixins import PresignedUrlMaskMixin, imagesearch_template_fields
from airflow_provider_imagesearch.operators.base import (
    ABSENT,
    AS_ASKED,
    ImageSearchBaseOperator,
    ReadBack,
    other,
)
from airflow_provider_imagesearch.version_compat import conf

#: Where a batch of searches writes its hits unless told otherwise.
DEFAULT_RESULTS_TABLE = "imagesearch_search_results"

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchHook
    from airflow_provider_imagesearch.models import InstanceDetail
    from airflow_provider_imagesearch.waits import WaitRule

IF_EXISTS_CHOICES = ("fail", "reuse")
#: Where a batch search writes its hits by default (the same database as the archive and the ledger).
DEFAULT_RESULTS_CONN_ID = "imagesearch_archive_db"


def _default_deferrable() -> bool:
    return conf.getboolean("operators", "default_deferrable", fallback=False)


class InstanceDetailOperator(ImageSearchBaseOperator):
    """Read one or many ImageSearch instances' details and push them to XCom.

    ``GET /v1/{project_id}/service/{instance_name}``. The XCom value is
    :meth:`~airflow_provider_imagesearch.models.InstanceDetail.to_dict`: snake_case keys, ISO-8601 UTC
    times, ``expires_at`` null when the instance never expires, the raw status string.

    A missing instance, refused credentials and invalid arguments fail at once without task retries
    (``AirflowFailException``); transient errors go through the hook's retry policy, then task retries.
    Works with dynamic task mapping: ``InstanceDetailOperator.partial(...).expand(instance_name=[...])``
    shows each instance's name as the map index.

    **Bulk read**: with ``instance_names`` the operator reads them all with one hook (one connection
    pool, one token), ``max_concurrency`` requests at a time, and returns the list of detail dicts in
    input order. Missing instances are collected: ``missing="fail"`` (default) fails the task after
    reading all the others, naming every missing one; ``missing="skip"`` logs them and leaves them out
    of the list. Any other permanent error fails the task at once; a transient one that outlasts the
    hook's retries fails the try.

    :param instance_name: the instance to read. (templated)
    :param instance_names: the instances to read instead (exactly one of the two). (templated)
    :param max_concurrency: reads in flight at once with ``instance_names`` (default 16).
    :param missing: ``"fail"`` or ``"skip"``: what a missing instance in ``instance_names`` does (only
        with ``instance_names``: a single missing instance always fails).
    """

    template_fields: Sequence[str] = imagesearch_template_fields("instance_name", "instance_names")

    def __init__(
        self,
        *,
        instance_name: str | None = None,
        instance_names: Sequence[str] | None = None,
        max_concurrency: int = 16,
        missing: str = "fail",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.take_instances(instance_name, instance_names, max_concurrency)
        self.missing: str = missing

    def check_arguments(self) -> None:
        from airflow_provider_imagesearch.bulk import MISSING_CHOICES

        if self.missing not in MISSING_CHOICES:
            raise ImageSearchValidationError("missing", " or ".join(map(repr, MISSING_CHOICES)), self.missing)
        if self.instance_names is None and self.missing != "fail":
            raise ImageSearchValidationError(
                "missing", "left out with instance_name: a single missing instance always fails", self.missing
            )

    def run(self, hook: ImageSearchHook, context: Context) -> Any:
        if self.instance_names is None:
            detail = hook.get_instance(self.instance_name)
            self.log.info("Instance %s is %s", detail.instance_name, detail.status.value)
            return detail.to_dict()
        return self._read_many(hook)

    def _read_many(self, hook: ImageSearchHook) -> list[dict[str, Any]]:
        from airflow_provider_imagesearch.bulk import checked_concurrency, checked_names, read_instances
        from airflow_provider_imagesearch.outcomes import missing_message
        from airflow_provider_imagesearch.version_compat import AirflowFailException

        names = checked_names(self.instance_names)
        details = read_instances(hook, names, max_concurrency=checked_concurrency(self.max_concurrency))
        for name, detail in details.items():
            self.log.info("Instance %s is %s", name, detail.status.value if detail else "missing")
        absent = [name for name, detail in details.items() if detail is None]
        if absent and self.missing == "fail":
            raise AirflowFailException(missing_message(absent, self.resolved_project_id()))
        if absent:
            self.log.warning("Skipping %d missing instance(s): %s", len(absent), ", ".join(absent))
        self.log.info("Read %d of %d instances", len(details) - len(absent), len(details))
        # One entry per position of instance_names (a repeated name repeats its details).
        return [detail.to_dict() for name in names if (detail := details[name]) is not None]


class _InstanceLifecycleOperator(ImageSearchBaseOperator):
    """Create/delete an instance, then wait for it: in the worker, or deferred to the triggerer.

    :param wait_for_completion: wait for the instance after the call (default True).
    :param deferrable: wait in the triggerer instead of a worker slot.
    :param poke_interval: seconds between status reads while waiting.
    :param timeout: seconds to wait before failing (default one hour).
    """

    lineage_role = "output"

    def __init__(
        self,
        *,
        wait_for_completion: bool = True,
        deferrable: bool = _default_deferrable(),
        poke_interval: float = 30.0,
        timeout: float | None = 3600.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.wait_for_completion = wait_for_completion
        self.deferrable: bool = deferrable
        self.poke_interval = poke_interval
        self.wait_timeout = timeout

    def check_wait_settings(self) -> None:
        """Refuse wait settings that would loop or crash, before the first request."""
        if not self.wait_for_completion:
            return
        interval = self.poke_interval
        if isinstance(interval, bool) or not isinstance(interval, int | float) or not interval > 0:
            raise ImageSearchValidationError("poke_interval", "a number of seconds > 0", interval)
        timeout = self.wait_timeout
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
        ):
            raise ImageSearchValidationError(
                "timeout", "a number of seconds > 0, or None for no limit", timeout
            )

    def _defer_wait(self, rule: WaitRule, *, not_found_grace: float = 0.0) -> None:
        import time

        now = time.time()
        self.defer(
            trigger=self.status_trigger(
                rule,
                poll_interval=self.poke_interval,
                not_found_deadline=now + not_found_grace,
                timeout_at=now + self.wait_timeout if self.wait_timeout is not None else None,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.wait_timeout) if self.wait_timeout is not None else None,
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Turn the trigger's event into the task's outcome (the details, or None once gone)."""
        from airflow_provider_imagesearch.outcomes import result_of_wait_event

        self.remember_connection()
        return result_of_wait_event(event, self.instance_name)


class ImageSearchCreateInstanceOperator(_InstanceLifecycleOperator):
    """Create an ImageSearch instance and, by default, wait until it is ``NORMAL``.

    ``POST /v1/{project_id}/service``. The wait follows the status sensor's rules: ``CREATION_FAILD``
    (and the other dead-end statuses) fail at once, without task retries; ``deferrable=True`` waits in
    the triggerer. Returns the instance's details (``InstanceDetail.to_dict()``).

    Never creates twice: creation is not blindly retried, and after an ambiguous failure (5xx, a
    timeout after sending, a dropped connection) the instance is read back before deciding (the write
    rule of :class:`~airflow_provider_imagesearch.operators.base.ImageSearchBaseOperator`).

    With ``if_exists="fail"`` the operator proves that an instance is its own, not by a clock but by a
    marker: it appends ``[airflow:<12 hex digits>]``, a digest of the DAG id, run id, task id and map
    index, to the description it creates the instance with. A retry of the task, or a rerun after the task
    was cleared, in the same DAG run adopts the instance that carries its marker (its tags and description
    checked); any other instance of that name fails the task, however recent.

    :param instance_name: the instance to create. (templated)
    :param model: ``common-search`` (default), ``image-recommend`` or ``image-copyright``. (templated)
    :param description: free text. (templated)
    :param tags: the custom tag names images may use (at most 10, lowercase). (templated)
    :param level: capacity; only 30000000 (the default) is supported. (templated)
    :param if_exists: ``"fail"`` (default) fails when the instance exists, unless this task instance
        created it in this DAG run (its marker, see above); ``"reuse"`` adopts it when its tags (and the
        description, if given) match, and fails naming the difference otherwise. Either way an instance in
        a status that never becomes ``NORMAL`` (``CREATION_FAILD``, ``DELETING``, ...) fails the task,
        waiting or not. The model cannot be compared: the API answers it only as a display name
        (``domain``).
    :param wait_for_completion: wait until the instance is ``NORMAL`` (default True).
    :param deferrable: wait in the triggerer instead of a worker slot.
    :param poke_interval: seconds between status reads while waiting.
    :param timeout: seconds to wait for ``NORMAL`` before failing (default one hour).
    """

    template_fields: Sequence[str] = imagesearch_template_fields(
        "instance_name", "model", "description", "tags", "level"
    )
    template_fields_renderers = {"tags": "json"}

    def __init__(
        self,
        *,
        instance_name: str,
        model: str = "common-search",
        description: str | None = None,
        tags: list[str] | None = None,
        level: int | None = None,
        if_exists: str = "fail",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.instance_name = instance_name
        self.model = model
        self.description = description
        self.tags = tags
        self.level = level
        self.if_exists = if_exists

    def check_arguments(self) -> None:
        self.check_wait_settings()
        if self.if_exists not in IF_EXISTS_CHOICES:
            raise ImageSearchValidationError(
                "if_exists", " or ".join(map(repr, IF_EXISTS_CHOICES)), self.if_exists
            )

    def run(self, hook: ImageSearchHook, context: Context) -> dict[str, Any] | None:
        from airflow_provider_imagesearch import api
        from airflow_provider_imagesearch.outcomes import failure_status_message
        from airflow_provider_imagesearch.version_compat import AirflowFailException
        from airflow_provider_imagesearch.waits import Verdict, WaitRule

        marker = creation_marker(context) if self.if_exists == "fail" else None
        # Every argument is checked before the first request (the existence check) is sent.
        api.create_instance(
            self.resolved_project_id() or hook.settings.require_project_id(),
            self.instance_name,
            model=self.model,
            description=_with_marker(self.description, marker),
            level=self.level,
            tags=self.tags,
        )
        existing = self._existing(hook)
        if existing is None:
            detail = self._create(hook, marker)
        elif marker is not None and _has_marker(existing.description, marker):
            # A retry, or a rerun after a clear, of this task in this run: the instance is its own.
            differences = self._differences(existing, marker)
            if differences:
                raise AirflowFailException(
                    f"ImageSearch instance {self.instance_name!r} was created by an earlier try of this task "
                    f"but differs from what this task creates now: {'; '.join(differences)}"
                )
            self.log.info(
                "Instance %s carries this task's marker %s: an earlier try of this task created it; adopting it",
                self.instance_name,
                marker,
            )
            detail = existing
        else:
            detail = self._adopt(existing)
        rule = WaitRule.ready()
        verdict = rule.judge(detail)
        if verdict is Verdict.FAILED:
            # Waiting or not: an instance in a dead-end status is not what was asked for.
            raise AirflowFailException(failure_status_message(self.instance_name, detail.status))
        if not self.wait_for_completion or verdict is Verdict.DONE:
            return detail.to_dict()
        if self.deferrable:
            self._defer_wait(rule, not_found_grace=max(self.poke_interval * 2, 60.0))
        waited = self.wait_in_worker(
            hook, rule, poke_interval=self.poke_interval, timeout=self.wait_timeout, missing_grace=60.0
        )
        assert waited is not None
        return waited.to_dict()

    def _existing(self, hook: ImageSearchHook) -> InstanceDetail | None:
        try:
            return hook.get_instance(self.instance_name)
        except ImageSearchNotFoundError:
            return None

    def _adopt(self, existing: InstanceDetail) -> InstanceDetail:
        from airflow_provider_imagesearch.version_compat import AirflowFailException

        if self.if_exists == "fail":
            raise AirflowFailException(
                f"ImageSearch instance {self.instance_name!r} already exists ({existing.status.value}) and was "
                "not created by this task in this DAG run; set if_exists='reuse' to adopt it"
            )
        differences = self._differences(existing, None)
        if differences:
            raise AirflowFailException(
                f"ImageSearch instance {self.instance_name!r} exists but differs from what this task "
                f"would create: {'; '.join(differences)}"
            )
        self.log.info("Reusing the existing instance %s (%s)", self.instance_name, existing.status.value)
        return existing

    def _differences(self, existing: InstanceDetail, marker: str | None) -> list[str]:
        """What differs between ``existing`` and what this task would create.

        Tags and description only: the API answers the model as ``domain``, the model's display name,
        whose values the reference does not list, so the model cannot be compared reliably. Descriptions
        are compared like with like: with this task's ``marker`` (``if_exists="fail"``), the held one must
        be exactly what the create sends; without (``"reuse"``), the held one must be the asked one, as it
        is or once a marker a ``fail`` run appended is taken off it (an asked description may itself end
        with a marker, copied from the console or an XCom).
        """
        differences = []
        wanted_tags = sorted(self.tags or [])
        if sorted(existing.tags) != wanted_tags:
            differences.append(f"tags are {sorted(existing.tags)}, wanted {wanted_tags}")
        if self.description is not None:
            held = existing.description or ""
            if marker is not None:
                wanted = _with_marker(self.description, marker)
                if held != wanted:
                    differences.append(f"description is {held!r}, wanted {wanted!r}")
            elif self.description not in (held, _without_marker(held)):
                differences.append(f"description is {_without_marker(held)!r}, wanted {self.description!r}")
        return differences

    def _create(self, hook: ImageSearchHook, marker: str | None) -> InstanceDetail:
        """Create once; after an ambiguous failure read back, and only send again if nothing is there."""
        found: list[InstanceDetail] = []

        def send() -> InstanceDetail:
            return hook.create_instance(
                self.instance_name,
                model=self.model,
                description=_with_marker(self.description, marker),
                level=self.level,
                tags=self.tags,
            )

        def read_back() -> ReadBack:
            existing = self._existing(hook)
            if existing is None:
                return ABSENT
            if marker is not None and not _has_marker(existing.description, marker):
                return other(
                    f"instance {self.instance_name!r} ({existing.status.value}) was not created by this task; "
                    "set if_exists='reuse' to adopt it"
                )
            differences = self._differences(existing, marker)
            if differences:
                return other("; ".join(differences))
            found[:] = [existing]
            return AS_ASKED

        # A refusal ("already exists") is always read back: only this task's own instance is adopted.
        return self.write(
            hook,
            f"creating instance {self.instance_name}",
            send,
            read_back,
            adopted=lambda: found[0],
            refusal_is_ours=lambda: True,
        )


#: The creation marker: `` [airflow:<12 hex digits>]`` at the end of the description.
_MARKER_RE = re.compile(r"(?:^| )\[airflow:[0-9a-f]{12}\]$")


def creation_marker(context: Context) -> str | None:
    """``[airflow:<digest>]`` of this task instance in this DAG run (None without a task instance).

    The same for every try and every rerun after a clear of the task instance, different for another task,
    map index or run. Only a digest: it shows no name, and cannot be forged by accident.
    """
    import hashlib

    ti = context.get("ti")
    if ti is None:
        return None
    key = "\x1f".join(str(getattr(ti, field, "")) for field in ("dag_id", "run_id", "task_id", "map_index"))
    return f"[airflow:{hashlib.sha256(key.encode()).hexdigest()[:12]}]"


def _with_marker(description: str | None, marker: str | None) -> str | None:
    # Anything but text is left as it is, for the request builder to refuse: formatted with the marker,
    # a description=123 would pass in a task run (which has a marker) and fail everywhere else.
    if marker is None or not isinstance(description, str | None):
        return description
    return f"{description} {marker}" if description else marker


def _has_marker(description: str | None, marker: str) -> bool:
    return (description or "").endswith(marker)


def _without_marker(description: str | None) -> str:
    return _MARKER_RE.sub("", description or "")


class ImageSearchDeleteInstanceOperator(_InstanceLifecycleOperator):
    """Delete an ImageSearch instance and, by default, wait until it is gone.

    ``DELETE /v1/{project_id}/service/{instance_name}``. ``DELETING_FAILED`` fails at once, without
    task retries. A delete whose answer was lost is read back: gone (or ``DELETING``) is success. On a
    retry of the task, or a rerun after it was cleared, a missing instance is taken to be the effect of an
    earlier try of this task, and is success even with ``missing_ok=False``. Returns None.

    :param instance_name: the instance to delete. (templated)
    :param missing_ok: a missing instance is success (default) rather than a failure (on the task's first
        try; see above).
    :param wait_for_completion: wait until the instance is gone (default True).
    :param deferrable: wait in the triggerer instead of a worker slot.
    :param poke_interval: seconds between status reads while waiting.
    :param timeout: seconds to wait for the instance to be gone (default one hour).
    """

    template_fields: Sequence[str] = imagesearch_template_fields("instance_name")

    def __init__(
        self,
        *,
        instance_name: str,
        missing_ok: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.instance_name = instance_name
        self.missing_ok = missing_ok

    def check_arguments(self) -> None:
        self.check_wait_settings()

    def run(self, hook: ImageSearchHook, context: Context) -> None:
        from airflow_provider_imagesearch.waits import Verdict, WaitRule

        rule = WaitRule.deleted()
        try:
            current = hook.get_instance(self.instance_name)
        except ImageSearchNotFoundError:
            if self.earlier_try:
                # An inference: Airflow clears XCom between tries, so this try cannot know whether an
                # earlier one sent the delete, or whether the instance ever existed.
                self.log.info(
                    "Instance %s does not exist: taken to be the effect of an earlier try of this task (this "
                    "try cannot tell whether that try deleted it or it never existed)",
                    self.instance_name,
                )
                return None
            if not self.missing_ok:
                raise
            self.log.info("Instance %s does not exist: nothing to delete", self.instance_name)
            return None
        if rule.judge(current) is Verdict.FAILED:
            from airflow_provider_imagesearch.outcomes import failure_status_message
            from airflow_provider_imagesearch.version_compat import AirflowFailException

            raise AirflowFailException(failure_status_message(self.instance_name, current.status))
        if current.status.value != "DELETING":

            def gone() -> ReadBack:
                try:
                    detail = hook.get_instance(self.instance_name)
                except ImageSearchNotFoundError:
                    return AS_ASKED
                return AS_ASKED if detail.status.value == "DELETING" else ABSENT

            self.write(
                hook,
                f"deleting instance {self.instance_name}",
                lambda: hook.delete_instance(self.instance_name),
                gone,
                adopted=lambda: "success",
            )
            self.log.info("Deleting instance %s", self.instance_name)
        if not self.wait_for_completion:
            return None
        if self.deferrable:
            self._defer_wait(rule)
        self.wait_in_worker(hook, rule, poke_interval=self.poke_interval, timeout=self.wait_timeout)
        self.log.info("Instance %s is gone", self.instance_name)
        return None


def _tags_as_asked(tags: Mapping[str, Any] | None) -> dict[str, Any]:
    return {
        key: list(value) if isinstance(value, list | tuple) else value for key, value in (tags or {}).items()
    }


def _read_back_image(
    hook: ImageSearchHook, instance_name: str, path: str, tags: Mapping[str, Any] | None
) -> ReadBack:
    """Whether the image at ``path`` is in the library with ``tags``.

    v1 has no "get image": the image is searched for by itself (``path`` as the query), and its own hit
    carries its tags. The image's bytes cannot be read back.
    """
    if not hook.check_image(instance_name, path=path):
        return ABSENT
    wanted = _tags_as_asked(tags)
    for hit in hook.search_images(instance_name, path=path, limit=100).hits:
        if hit.path == path:
            held = _tags_as_asked(hit.tags)
            return AS_ASKED if held == wanted else other(f"image {path} has tags {held}, wanted {wanted}")
    return other(f"the tags of image {path} could not be read back (it is not among its 100 best hits)")


class ImageSearchAddImageOperator(ImageSearchBaseOperator):
    """Add one image to an instance's library.

    ``POST /v1/{project_id}/{instance_name}/image``. Without ``file_base64`` the service downloads the
    image from ``path`` (an OBS HTTPS URL in the instance's region); with it, ``path`` is only the
    image's id. Not blindly retried by the hook; after an ambiguous failure the image is read back (its
    presence and tags; v1 cannot return the image itself) and, if it is not there as asked, added again,
    which overwrites rather than duplicates. A task retry or a rerun adds it again the same way. Returns
    ``{"instance_name", "path", "result"}``.

    :param instance_name: the instance. (templated)
    :param path: the image's id in the library: its OBS URL. (templated)
    :param tags: tag name -> string (or list of strings); names must be defined on the instance.
        (templated)
    :param file_base64: the image's bytes, base64 (JPEG, PNG or BMP). (templated)
    """

    template_fields: Sequence[str] = imagesearch_template_fields(
        "instance_name", "path", "tags", "file_base64"
    )
    template_fields_renderers = {"tags": "json"}
    lineage_role = "output"

    def __init__(
        self,
        *,
        instance_name: str,
        path: str,
        tags: Mapping[str, Any] | None = None,
        file_base64: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.instance_name = instance_name
        self.path = path
        self.tags = tags
        self.file_base64 = file_base64

    def run(self, hook: ImageSearchHook, context: Context) -> dict[str, Any]:
        result = self.write(
            hook,
            f"adding image {self.path} to {self.instance_name}",
            lambda: hook.add_image(
                self.instance_name, path=self.path, tags=self.tags, file_base64=self.file_base64
            ),
            lambda: _read_back_image(hook, self.instance_name, self.path, self.tags),
            adopted=lambda: "Success",
            overwrite=True,
        )
        self.log.info("Added %s to %s", self.path, self.instance_name)
        return {"instance_name": self.instance_name, "path": self.path, "result": result}


class ImageSearchUpdateImageTagsOperator(ImageSearchBaseOperator):
    """Replace an image's tags.

    ``PUT /v1/{project_id}/{instance_name}/image``. Idempotent, so retried like a read; an update whose
    outcome stayed unknown after the hook's retries is read back (the image's tags). Returns
    ``{"instance_name", "path", "tags", "result"}``.

    :param instance_name: the instance. (templated)
    :param path: the image's id in the library. (templated)
    :param tags: the image's new tags, tag name -> string or list of strings. (templated)
    """

    template_fields: Sequence[str] = imagesearch_template_fields("instance_name", "path", "tags")
    template_fields_renderers = {"tags": "json"}
    lineage_role = "output"

    def __init__(self, *, instance_name: str, path: str, tags: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.instance_name = instance_name
        self.path = path
        self.tags = tags

    def run(self, hook: ImageSearchHook, context: Context) -> dict[str, Any]:
        result = self.write(
            hook,
            f"updating the tags of image {self.path} in {self.instance_name}",
            lambda: hook.modify_image(self.instance_name, path=self.path, tags=self.tags),
            lambda: _read_back_image(hook, self.instance_name, self.path, self.tags),
            adopted=lambda: "Success",
            overwrite=True,
        )
        return {
            "instance_name": self.instance_name,
            "path": self.path,
            "tags": dict(self.tags),
            "result": result,
        }


class ImageSearchDeleteImageOperator(ImageSearchBaseOperator):
    """Delete an image from an instance's library.

    ``DELETE /v1/{project_id}/{instance_name}/image``. Returns True when the image was deleted by this
    task, False when it was not there (``missing_ok``). A delete whose answer was lost is read back; on a
    retry of the task, or a rerun after it was cleared, an image no longer there is taken to be the effect
    of an earlier try (True, also with ``missing_ok=False``).

    :param instance_name: the instance. (templated)
    :param path: the image's id in the library. (templated)
    :param missing_ok: an image that is not in the library is success (default) rather than a failure.
    """

    template_fields: Sequence[str] = imagesearch_template_fields("instance_name", "path")
    lineage_role = "output"

    def __init__(self, *, instance_name: str, path: str, missing_ok: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.instance_name = instance_name
        self.path = path
        self.missing_ok = missing_ok

    def run(self, hook: ImageSearchHook, context: Context) -> bool:
        from airflow_provider_imagesearch.retry import is_request_error

        def gone() -> ReadBack:
            return ABSENT if hook.check_image(self.instance_name, path=self.path) else AS_ASKED

        try:
            self.write(
                hook,
                f"deleting image {self.path} from {self.instance_name}",
                lambda: hook.delete_image(self.instance_name, path=self.path),
                gone,
                adopted=lambda: "Success",
            )
        except ImageSearchApiError as error:
            # The service's code for "no such image" is not documented: a refused delete of an image
            # that check_image does not find is "not there". A missing instance is not missing_ok.
            if (
                not self.missing_ok
                or isinstance(error, ImageSearchNotFoundError)
                or not is_request_error(error)
                or hook.check_image(self.instance_name, path=self.path)
            ):
                raise
            self.log.info("%s is not in %s: nothing to delete", self.path, self.instance_name)
            return False
        return True


class ImageSearchCheckImageOperator(ImageSearchBaseOperator):
    """Whether an image is in an instance's library: pushes ``True`` or ``False``.

    ``POST /v1/{project_id}/{instance_name}/image/check``. Use it with a ``@task.short_circuit`` or a
    branch to act on the answer.

    :param instance_name: the instance. (templated)
    :param path: the image's id in the library. (templated)
    """

    template_fields: Sequence[str] = imagesearch_template_fields("instance_name", "path")

    def __init__(self, *, instance_name: str, path: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.instance_name = instance_name
        self.path = path

    def run(self, hook: ImageSearchHook, context: Context) -> bool:
        exists = hook.check_image(self.instance_name, path=self.path)
        self.log.info("%s is %sin %s", self.path, "" if exists else "not ", self.instance_name)
        return exists


class ImageSearchSearchImagesOperator(PresignedUrlMaskMixin, ImageSearchBaseOperator):
    """Search an instance's library for images like a query image, or run a batch of queries into a table.

    ``POST /v1/{project_id}/{instance_name}/image/search``.

    **One query** (``path`` or ``file_base64``): pushes the hits as a list of dicts, each ``{"path",
    "similarity", "tags"}``, most similar first. With ``fetch_all`` it pages (``limit`` per page, at most
    100) through all ``count`` matches from ``offset`` on.

    **A batch** (``queries`` or ``queries_sql``): many queries, each with a ``query_id`` and a ``path`` or
    a ``file`` (optional ``tags`` filter and ``limit``), read like the import manifest: a list of dicts, a
    CSV / JSON-lines / Parquet file (local path or URL), or a query on any SQL connection. Every row is
    checked before the first search: a row without ``query_id``, with neither ``path`` nor ``file``, or
    repeating a ``query_id`` fails the task naming the row and the field. ``max_concurrency`` searches run
    at once on the task's one hook (one session, one token). The hits go to ``results_table`` on
    ``results_conn_id`` (created when missing): ``run_id``, ``instance_name``, ``query_id``, ``rank``
    (1 = most similar), ``path``, ``similarity``, ``tags`` (JSON text), ``searched_at``. A retry or rerun
    of the same DAG run replaces that run's rows of its queries (delete and insert in one transaction),
    never duplicates them; a failed query writes no row. The operator's ``limit``, ``offset``, ``tags``,
    ``min_similarity`` and ``fetch_all`` apply to every query (a query's own ``tags``/``limit`` win). The
    task runs every query, then fails when more than ``max_failed`` failed (retryable when one of them
    failed on a transient error), naming the first ten. XCom: ``{"queries", "succeeded", "failed",
    "hits", "seconds", "table", "run_id"}``, not the hits. A progress line every 5% or 30 s.

    :param instance_name: the instance. (templated)
    :param path: query by an image already in the library (its id). (templated)
    :param file_base64: query by an image's bytes, base64 (wins over ``path``). (templated)
    :param limit: hits per request, 1-100. (templated)
    :param offset: position of the first hit, >= 0. (templated)
    :param tags: only images with these tags, tag name -> string or list of strings. (templated)
    :param box: search only this region of the query image: ``{"x", "y", "width", "height"}`` in
        pixels; one query only. (templated)
    :param min_similarity: drop hits less similar than this (0-1); the API has no such filter. (templated)
    :param fetch_all: page through every match instead of returning one page.
    :param queries: a batch: a list of dicts, or a CSV / JSON-lines / Parquet path or URL. (templated)
    :param queries_sql: a batch from this SQL query instead. (templated)
    :param queries_conn_id: the SQL connection ``queries_sql`` runs on. (templated)
    :param results_conn_id: the SQL connection of the results table (SQLite, PostgreSQL, any
        ``DbApiHook``). (templated)
    :param results_table: the results' ``[schema.]table``; created when missing. (templated)
    :param max_concurrency: searches in flight at most in a batch (default 8).
    :param max_failed: failed queries tolerated before the task fails (default 0).
    """

    template_fields: Sequence[str] = imagesearch_template_fields(
        "instance_name",
        "path",
        "file_base64",
        "limit",
        "offset",
        "tags",
        "box",
        "min_similarity",
        "queries",
        "queries_sql",
        "queries_conn_id",
        "results_conn_id",
        "results_table",
    )
    template_fields_renderers = {"tags": "json", "box": "json", "queries_sql": "sql"}
    #: A presigned ``queries`` URL's signature and credential masked in the Rendered Template view.
    presigned_url_fields = ("queries",)

    def __init__(
        self,
        *,
        instance_name: str,
        path: str | None = None,
        file_base64: str | None = None,
        limit: int = 10,
        offset: int = 0,
        tags: Mapping[str, Any] | None = None,
        box: Mapping[str, int] | None = None,
        min_similarity: float | None = None,
        fetch_all: bool = False,
        queries: Any = None,
        queries_sql: str | None = None,
        queries_conn_id: str | None = None,
        results_conn_id: str = DEFAULT_RESULTS_CONN_ID,
        results_table: str = DEFAULT_RESULTS_TABLE,
        max_concurrency: int = 8,
        max_failed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.instance_name = instance_name
        self.path = path
        self.file_base64 = file_base64
        self.limit = limit
        self.offset = offset
        self.tags = tags
        self.box = box
        self.min_similarity = min_similarity
        self.fetch_all = fetch_all
        self.queries = queries
        self.queries_sql = queries_sql
        self.queries_conn_id = queries_conn_id
        self.results_conn_id = results_conn_id
        self.results_table = results_table
        self.max_concurrency = max_concurrency
        self.max_failed = max_failed

    def run(self, hook: ImageSearchHook, context: Context) -> Any:
        from airflow_provider_imagesearch.searches import search_hits

        if self.queries is not None or self.queries_sql is not None:
            return self._run_batch(hook, context)
        hits = search_hits(
            hook,
            self.instance_name,
            path=self.path,
            file_base64=self.file_base64,
            tags=self.tags,
            box=self.box,
            limit=self.limit,
            offset=self.offset,
            min_similarity=self._min_similarity(),
            fetch_all=self.fetch_all,
        )
        self.log.info("%d hits in %s", len(hits), self.instance_name)
        return hits

    def _check_batch_arguments(self) -> None:
        from airflow_provider_imagesearch import validation
        from airflow_provider_imagesearch.archive import TABLE_NAME_FORM, TABLE_NAME_RE
        from airflow_provider_imagesearch.searches import validate_queries_source

        validation.instance_name(self.instance_name)
        for name in ("path", "file_base64", "box"):
            if getattr(self, name) is not None:
                raise ImageSearchValidationError(
                    name, "None with queries/queries_sql: each query names its own image", getattr(self, name)
                )
        validate_queries_source(self.queries, self.queries_sql, self.queries_conn_id)
        if not isinstance(self.results_table, str) or not TABLE_NAME_RE.fullmatch(self.results_table):
            raise ImageSearchValidationError("results_table", TABLE_NAME_FORM, self.results_table)
        if not isinstance(self.results_conn_id, str) or not self.results_conn_id:
            raise ImageSearchValidationError(
                "results_conn_id", "the id of a SQL connection", self.results_conn_id
            )
        for name, low in (("max_concurrency", 1), ("max_failed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low or value > 1024:
                raise ImageSearchValidationError(name, f"an integer from {low} to 1024", value)
        validation.search_limit(self.limit)
        validation.offset(self.offset)
        if self.tags is not None:
            validation.image_tags(self.tags)

    def _run_batch(self, hook: ImageSearchHook, context: Context) -> dict[str, Any]:
        from airflow_provider_imagesearch.archive import sql_engine
        from airflow_provider_imagesearch.searches import BatchSearch, ResultStore, read_queries
        from airflow_provider_imagesearch.version_compat import AirflowException, AirflowFailException

        self._check_batch_arguments()
        minimum = self._min_similarity()
        queries = read_queries(
            self.queries, queries_sql=self.queries_sql, queries_conn_id=self.queries_conn_id
        )
        run_id = str(context.get("run_id") or "manual")
        engine = sql_engine(self.results_conn_id)
        try:
            store = ResultStore(engine, self.results_table, self.instance_name, run_id)
            store.create_if_missing()
            batch = BatchSearch(
                hook,
                self.instance_name,
                store,
                max_concurrency=self.max_concurrency,
                limit=self.limit,
                offset=self.offset,
                tags=self.tags,
                min_similarity=minimum,
                fetch_all=self.fetch_all,
                logger=self.log,
            )
            result = batch.run(queries)
        finally:
            engine.dispose()
        summary = {**result.to_dict(), "table": self.results_table, "run_id": run_id}
        self.log.info("Batch search of %s done: %s", self.instance_name, summary)
        if result.failed > self.max_failed:
            reasons = ", ".join(f"{code} x{count}" for code, count in result.reasons.most_common())
            message = (
                f"Batch search of {self.instance_name}: {result.failed} queries failed (max_failed="
                f"{self.max_failed}; the others were stored: {summary}). By reason: {reasons}. "
                f"First {len(result.problems)}: " + "; ".join(result.problems)
            )
            # A transient failure (5xx, timeout) may pass on a retry; only permanent ones skip retries.
            raise (AirflowException if result.transient_failures else AirflowFailException)(message)
        return summary

    def _min_similarity(self) -> float | None:
        value = self.min_similarity
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ImageSearchValidationError("min_similarity", "a number from 0 to 1", value)
        return float(value)
