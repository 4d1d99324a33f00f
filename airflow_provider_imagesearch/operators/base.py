"""The base of every ImageSearch operator (Amazon's ``AwsBaseOperator`` is the model)."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_imagesearch import DEFAULT_CONN_ID
from airflow_provider_imagesearch.links import ImageSearchConsoleLink
from airflow_provider_imagesearch.mixins import ImageSearchHookMixin, imagesearch_template_fields

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchHook


class ImageSearchBaseOperator(ImageSearchHookMixin, BaseOperator):
    """Base of the ImageSearch operators: connection fields, one hook per run, outcomes, console link.

    A subclass declares its own template fields with ``imagesearch_template_fields(...)`` and implements
    :meth:`run`, which gets this execution's hook; everything else (closing the hook, turning errors
    into task outcomes, the extra link, OpenLineage) happens here.

    :param imagesearch_conn_id: connection id of type ``imagesearch``. (templated)
    :param project_id: project id, overriding the connection's. (templated)
    :param region: region id, overriding the connection's. (templated)
    :param map_index_template: label of mapped task instances; the instance name by default.
    """

    template_fields: Sequence[str] = imagesearch_template_fields()
    operator_extra_links = (ImageSearchConsoleLink(),)

    # Declared here, not only on the mixin: Airflow checks .partial()/.expand() arguments against the
    # __init__ signatures of BaseOperator subclasses alone.
    def __init__(
        self,
        *,
        imagesearch_conn_id: str = DEFAULT_CONN_ID,
        project_id: str | None = None,
        region: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            imagesearch_conn_id=imagesearch_conn_id, project_id=project_id, region=region, **kwargs
        )

    ui_color = "#e8f1fb"

    def execute(self, context: Context) -> Any:
        with self.imagesearch_outcomes():
            try:
                hook = self.hook
                self.remember_instance(hook)
                return self.run(hook, context)
            finally:
                self.close_hook()

    @abstractmethod
    def run(self, hook: ImageSearchHook, context: Context) -> Any:
        """The operator's own work, with this execution's hook; the return value goes to XCom."""
