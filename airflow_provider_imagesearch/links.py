"""The extra link every ImageSearch operator and sensor shows: the instance's page in the console."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator

    from airflow_provider_imagesearch.settings import ImageSearchSettings

#: Where the v2 operators' link goes by default: the region's ImageSearch console. The console's URL
#: scheme is not documented, and v2 services have no known page of their own there; v1's default opens
#: the instance page (``#/imagesearch/instance``), which knows nothing of v2 services.
DEFAULT_V2_CONSOLE_URL = "https://console.huaweicloud.com/imagesearch/?region={region}&locale=en-us"


def v2_console_link(settings: ImageSearchSettings, service_name: str, project_id: str | None) -> str:
    """The console link of a v2 service: the connection's own ``console_url`` if it has one (with the
    service as ``{instance_name}``), else the region's ImageSearch console."""
    from urllib.parse import quote

    from airflow_provider_imagesearch.settings import DEFAULT_CONSOLE_URL

    if settings.console_url != DEFAULT_CONSOLE_URL:
        return settings.console_link(service_name, project_id)
    return DEFAULT_V2_CONSOLE_URL.format(region=quote(settings.region or "", safe=""))


class ImageSearchConsoleLink(BaseOperatorLink):
    """Opens the Huawei Cloud console page of the task's instance (v1), or the region's console (v2).

    Airflow 3 resolves the link on the worker when the task ends and keeps it in XCom, so it survives
    dynamic task mapping. The URL comes from the connection's ``console_url`` extra (with a documented
    default), filled in by the operator while it runs; a task that never reached its connection has no
    link.
    """

    name = "ImageSearch console"

    # ti_key is a TaskInstanceKey, whose import path differs between Airflow 3.1 and 3.3.
    def get_link(self, operator: BaseOperator, *, ti_key: Any) -> str:
        return str(getattr(operator, "console_link", None) or "")
