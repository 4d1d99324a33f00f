"""What every ImageSearch operator and sensor shares: connection fields, one hook per run, outcomes, links.

Kept free of the hook, HTTP clients and pandas at import time: DAG files import the operators, and the
dag-processor parses them every 30 s. The hook is imported when a task runs.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator

from airflow_provider_imagesearch import DEFAULT_CONN_ID
from airflow_provider_imagesearch.errors import ImageSearchError, ImageSearchNotFoundError
from airflow_provider_imagesearch.links import ImageSearchConsoleLink
from airflow_provider_imagesearch.outcomes import failure_status_message, is_permanent, not_found_message

if TYPE_CHECKING:
    import jinja2
    from airflow.sdk import Context

    from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchHook
    from airflow_provider_imagesearch.models import InstanceDetail
    from airflow_provider_imagesearch.waits import WaitRule

#: Connection fields every ImageSearch operator and sensor templates.
BASE_TEMPLATE_FIELDS = ("imagesearch_conn_id", "project_id", "region")


def imagesearch_template_fields(*fields: str) -> tuple[str, ...]:
    """The connection fields plus an operator's own, in that order, without repeats."""
    return tuple(dict.fromkeys((*BASE_TEMPLATE_FIELDS, *fields)))


class ImageSearchHookMixin(BaseOperator):
    """Connection fields, the hook's lifetime, error translation, the console link and lineage.

    Shared by :class:`~airflow_provider_imagesearch.operators.base.ImageSearchBaseOperator` and
    :class:`~airflow_provider_imagesearch.sensors.base.ImageSearchBaseSensor`. It is a ``BaseOperator``
    so that Airflow knows its arguments (``.partial()`` checks them against ``BaseOperator`` subclasses
    only) and so that its ``__init__`` chains to ``BaseSensorOperator`` in sensors.

    Each execution makes one :class:`~airflow_provider_imagesearch.hooks.imagesearch.ImageSearchHook`
    (one HTTP session, one token) and closes it afterwards. Errors become task outcomes in one place
    (:meth:`imagesearch_outcomes`): permanent ones (bad arguments, refused credentials, a missing
    instance, any 4xx) fail the task at once with ``AirflowFailException``, transient ones (5xx, 429,
    timeouts, dropped connections) stay ordinary exceptions, which Airflow retries.
    """

    #: How OpenLineage sees the instance: ``"input"`` for reads and searches, ``"output"`` for writes.
    lineage_role: ClassVar[str] = "input"
    #: What the API calls the target in messages: a v1 ``"instance"``, a v2 ``"service"``.
    target_noun: ClassVar[str] = "instance"
    template_fields: Sequence[str] = imagesearch_template_fields()
    operator_extra_links = (ImageSearchConsoleLink(),)

    imagesearch_conn_id: str
    project_id: str | None
    region: str | None
    instance_name: str
    #: A fleet task's instances (``None`` for a single-instance task, which uses ``instance_name``).
    instance_names: list[str] | None = None
    max_concurrency: int = 16
    #: The instance's console page, known once the connection was read (for the extra link).
    console_link: str | None = None
    _hook: ImageSearchHook | None = None
    _lineage_namespace: str | None = None
    #: The project id in effect, once the connection was read (messages need it after the hook is closed).
    _project_in_effect: str | None = None

    def __init__(
        self,
        *,
        imagesearch_conn_id: str = DEFAULT_CONN_ID,
        project_id: str | None = None,
        region: str | None = None,
        map_index_template: str | None = "{{ task.instance_label }}",
        **kwargs: Any,
    ) -> None:
        super().__init__(map_index_template=map_index_template, **kwargs)
        self.imagesearch_conn_id = imagesearch_conn_id
        self.project_id = project_id
        self.region = region
        self._hook = None

    @property
    def instance_label(self) -> str:
        """The instance name, or for a fleet task its first name and how many more (the map index label)."""
        names = self.instance_names
        if not names or isinstance(names, str):
            return str(getattr(self, "instance_name", "") or "")
        names = list(names)
        return names[0] if len(names) == 1 else f"{names[0]} +{len(names) - 1} more"

    def take_instances(
        self, instance_name: str | None, instance_names: Sequence[str] | None, max_concurrency: int
    ) -> None:
        """Keep one instance or a list of them (exactly one of the two, checked at DAG parse)."""
        from airflow_provider_imagesearch.bulk import one_of_names

        one_of_names(type(self).__name__, instance_name, instance_names)
        self.instance_name = instance_name or ""
        self.instance_names = instance_names  # type: ignore[assignment]  # a list, or an XComArg until rendered
        self.max_concurrency = max_concurrency

    @property
    def hook(self) -> ImageSearchHook:
        """This execution's hook (created on first use, closed by :meth:`close_hook`)."""
        if self._hook is None:
            from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchHook

            self._hook = ImageSearchHook(
                self.imagesearch_conn_id, region=self.region, project_id=self.project_id
            )
        return self._hook

    def close_hook(self) -> None:
        hook, self._hook = self._hook, None
        if hook is not None:
            hook.close()

    def resolved_project_id(self) -> str | None:
        """The project id in effect: the override, else the connection's (None if never read).

        Remembered when the connection is read, so that a message composed after the hook was closed
        (every error of ``execute`` is turned into an outcome after that) still names the project.
        """
        if self.project_id:
            return self.project_id
        hook = self._hook
        if hook is not None and hook._settings is not None and hook._settings.project_id:
            return hook._settings.project_id
        return self._project_in_effect

    def remember_instance(self, hook: ImageSearchHook) -> None:
        """Record what the extra link and OpenLineage need, once the connection is readable."""
        settings = hook.settings
        project_id = self.project_id or settings.project_id
        self._project_in_effect = project_id
        # A fleet task links to its first instance.
        name = self.instance_name or (list(self.instance_names or ()) or [""])[0]
        self.console_link = settings.console_link(name, project_id)
        self._lineage_namespace = f"imagesearch://{settings.region or 'unknown'}/{project_id or 'unknown'}"

    def remember_connection(self) -> None:
        """:meth:`remember_instance` after a deferral (a new process): reads the connection, no request."""
        with self.imagesearch_outcomes():
            try:
                self.remember_instance(self.hook)
            finally:
                self.close_hook()

    @contextlib.contextmanager
    def imagesearch_outcomes(self) -> Iterator[None]:
        """Turn ImageSearch errors into task outcomes (see the class docstring)."""
        from airflow_provider_imagesearch.version_compat import AirflowFailException

        try:
            yield
        except ImageSearchNotFoundError as error:
            message = not_found_message(self.instance_name, self.resolved_project_id(), self.target_noun)
            raise AirflowFailException(f"{message}: {error}") from None
        except ImageSearchError as error:
            if is_permanent(error):
                raise AirflowFailException(str(error)) from None
            raise

    # --- waiting ----------------------------------------------------------------------------------

    def status_trigger(
        self,
        rule: WaitRule,
        *,
        poll_interval: float,
        not_found_deadline: float | None,
        timeout_at: float | None,
        max_consecutive_errors: int = 5,
    ) -> Any:
        """The trigger that waits for ``rule`` in the triggerer; its first poll is one interval away.

        One instance: :class:`ImageSearchInstanceStatusTrigger`; a fleet (``instance_names``): one
        :class:`ImageSearchFleetStatusTrigger` for all of them. Imported here: ``airflow.triggers.base``
        is airflow-core, not needed to parse a DAG.
        """
        from airflow_provider_imagesearch.triggers.imagesearch import (
            ImageSearchFleetStatusTrigger,
            ImageSearchInstanceStatusTrigger,
        )

        target: dict[str, Any] = {"instance_name": self.instance_name}
        trigger_class: type = ImageSearchInstanceStatusTrigger
        if self.instance_names is not None:
            target = {"instance_names": list(self.instance_names), "max_concurrency": self.max_concurrency}
            trigger_class = ImageSearchFleetStatusTrigger
        return trigger_class(
            **target,
            imagesearch_conn_id=self.imagesearch_conn_id,
            project_id=self.project_id,
            region=self.region,
            target_statuses=sorted(s.value for s in rule.targets),
            failure_statuses=sorted(s.value for s in rule.failures),
            wait_for_gone=rule.gone,
            poll_interval=poll_interval,
            # The caller just read the instance: the trigger's first poll is one interval later.
            first_poll_at=time.time() + poll_interval,
            not_found_deadline=not_found_deadline,
            timeout_at=timeout_at,
            max_consecutive_errors=max_consecutive_errors,
        )

    # --- waiting without a triggerer ------------------------------------------------------------

    def wait_in_worker(
        self,
        hook: ImageSearchHook,
        rule: WaitRule,
        *,
        poke_interval: float,
        timeout: float | None,
        missing_grace: float = 0.0,
    ) -> InstanceDetail | None:
        """Poll until ``rule`` is met (returns the details, None when gone), fails, or times out.

        For operators with ``wait_for_completion=True`` and ``deferrable=False``; the deferrable path
        hands the same rule to the trigger.
        """
        from airflow_provider_imagesearch.version_compat import AirflowFailException, AirflowSensorTimeout
        from airflow_provider_imagesearch.waits import Verdict

        started = time.monotonic()
        deadline = started + timeout if timeout is not None else None
        log = getattr(self, "log", None)
        while True:
            try:
                detail: InstanceDetail | None = hook.get_instance(self.instance_name)
            except ImageSearchNotFoundError:
                detail = None
            verdict = rule.judge(detail)
            if verdict is Verdict.DONE:
                return detail
            if verdict is Verdict.FAILED:
                assert detail is not None
                raise AirflowFailException(failure_status_message(self.instance_name, detail.status))
            if verdict is Verdict.MISSING and time.monotonic() - started >= missing_grace:
                raise AirflowFailException(
                    not_found_message(self.instance_name, self.resolved_project_id(), self.target_noun)
                )
            if log is not None and detail is not None:
                log.info(
                    "Instance %s is %s; waiting for %s",
                    self.instance_name,
                    detail.status.value,
                    rule.describe(),
                )
            if deadline is not None and time.monotonic() + poke_interval > deadline:
                raise AirflowSensorTimeout(
                    f"Instance {self.instance_name} did not become {rule.describe()} within {timeout:.0f}s"
                )
            time.sleep(poke_interval)

    # --- OpenLineage ------------------------------------------------------------------------------

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """The instance as an OpenLineage dataset: an input for reads, an output for writes.

        Called by the OpenLineage provider only, so its imports cost nothing where it is not installed.
        """
        from airflow.providers.common.compat.openlineage.facet import Dataset
        from airflow.providers.openlineage.extractors import OperatorLineage

        namespace = self._lineage_namespace
        if namespace is None:
            # A task resumed after a deferral runs on a fresh operator that never read the connection.
            try:
                self.remember_instance(self.hook)
            except ImageSearchError:
                pass  # an unreadable connection: report what the task was given
            finally:
                self.close_hook()
            namespace = self._lineage_namespace
        if namespace is None:
            namespace = f"imagesearch://{self.region or 'unknown'}/{self.project_id or 'unknown'}"
        names = list(self.instance_names) if self.instance_names else [self.instance_name]
        # A repeated name is one instance: one dataset.
        datasets = [Dataset(namespace=namespace, name=name) for name in dict.fromkeys(names)]
        if self.lineage_role == "output":
            return OperatorLineage(outputs=datasets)
        return OperatorLineage(inputs=datasets)


class PresignedUrlMaskMixin(BaseOperator):
    """Registers the secrets of a URL in :attr:`presigned_url_fields` (a manifest, a batch's queries) with
    Airflow's secrets masker as soon as the template fields are rendered: a presigned URL's signature,
    credential and token, and any URL's password.

    The Rendered Template view is serialized (and redacted) right after rendering, before ``execute``
    reads the URL and masks it there: registering later leaves the signature readable in the view until
    the URL expires. The hook is ``_do_render_template_fields``, not ``render_template_fields``: Airflow
    renders a mapped task (``.partial().expand()``, e.g. a sharded import) through
    ``MappedOperator.render_template_fields``, which calls the unmapped task's
    ``_do_render_template_fields`` and never its ``render_template_fields``; an unmapped task's
    ``BaseOperator.render_template_fields`` calls it too. No public hook runs between the rendering and
    the view's serialization for a mapped task. The method is private: its signature ``(parent,
    template_fields, context, jinja_env, seen_oids)`` is the same on Airflow 3.1.8 and 3.3
    (``airflow.sdk.definitions._internal.templater.Templater``; ``MappedOperator`` passes it by keyword,
    ``BaseOperator`` by position), and tests/review/test_review_r25d.py runs a mapped and an unmapped task
    on both.
    """

    #: The template fields that may hold a URL (a presigned one, say), text or ``ObjectStoragePath``.
    presigned_url_fields: ClassVar[tuple[str, ...]] = ()

    def _do_render_template_fields(
        self,
        parent: Any,
        template_fields: Iterable[str],
        context: Context,
        jinja_env: jinja2.Environment,
        seen_oids: set[int],
    ) -> None:
        super()._do_render_template_fields(parent, template_fields, context, jinja_env, seen_oids)
        # Also called for each nested templated object (parent is then that object): mask once, for the task.
        if parent is self:
            mask_presigned_urls(getattr(self, name, None) for name in self.presigned_url_fields)


def mask_presigned_urls(values: Iterable[Any]) -> None:
    """Register with the secrets masker the secrets of each URL (text or ``ObjectStoragePath``) among
    ``values``: the password of a ``user:password@``, and a presigned URL's signature, credential and
    token; anything else (None, a list of rows, a local path) is left."""
    for value in values:
        # Only text or a path can be a URL: str() of a list manifest of a million rows is never built.
        if isinstance(value, str) or hasattr(value, "protocol"):
            from airflow_provider_imagesearch.imports.manifest import mask_url_secrets, url_text

            # An http(s) ObjectStoragePath's text differs from its URL (Airflow 3.1 repeats the scheme
            # after the user info): both may be shown.
            for text in {url_text(value), str(value)}:
                mask_url_secrets(text)


__all__ = [
    "ImageSearchHookMixin",
    "PresignedUrlMaskMixin",
    "imagesearch_template_fields",
    "mask_presigned_urls",
]
