"""The base of every ImageSearch sensor: the operators' shared behaviour on ``BaseSensorOperator``."""

from __future__ import annotations

from airflow.sdk import BaseSensorOperator

from airflow_provider_imagesearch.mixins import ImageSearchHookMixin


class ImageSearchBaseSensor(ImageSearchHookMixin, BaseSensorOperator):
    """Base of the ImageSearch sensors: connection fields, one hook per run, outcomes, console link.

    :param imagesearch_conn_id: connection id of type ``imagesearch``. (templated)
    :param project_id: project id, overriding the connection's. (templated)
    :param region: region id, overriding the connection's. (templated)
    :param map_index_template: label of mapped task instances; the instance name by default.
    """

    ui_color = "#d4e6f9"
