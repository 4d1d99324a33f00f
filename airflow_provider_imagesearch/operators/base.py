"""The base of every ImageSearch operator (Amazon's ``AwsBaseOperator`` is the model)."""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, Any

from airflow_provider_imagesearch.mixins import ImageSearchHookMixin

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchHook


class ImageSearchBaseOperator(ImageSearchHookMixin):
    """Base of the ImageSearch operators: connection fields, one hook per run, outcomes, console link.

    A subclass declares its own template fields with ``imagesearch_template_fields(...)`` and implements
    :meth:`run`, which gets this execution's hook; everything else (closing the hook, turning errors
    into task outcomes, the extra link, OpenLineage) happens here.

    :param imagesearch_conn_id: connection id of type ``imagesearch``. (templated)
    :param project_id: project id, overriding the connection's. (templated)
    :param region: region id, overriding the connection's. (templated)
    :param map_index_template: label of mapped task instances; the instance name by default.
    """

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
