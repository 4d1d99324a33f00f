"""The base of every ImageSearch sensor: the operators' shared behaviour on ``BaseSensorOperator``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseSensorOperator

from airflow_provider_imagesearch import DEFAULT_CONN_ID
from airflow_provider_imagesearch.links import ImageSearchConsoleLink
from airflow_provider_imagesearch.mixins import ImageSearchHookMixin, imagesearch_template_fields


class ImageSearchBaseSensor(ImageSearchHookMixin, BaseSensorOperator):
    """Base of the ImageSearch sensors: connection fields, one hook per run, outcomes, console link.

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

    ui_color = "#d4e6f9"
