"""The extra link every ImageSearch operator and sensor shows: the instance's page in the console."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator


class ImageSearchConsoleLink(BaseOperatorLink):
    """Opens the Huawei Cloud console page of the task's instance.

    Airflow 3 resolves the link on the worker when the task ends and keeps it in XCom, so it survives
    dynamic task mapping. The URL comes from the connection's ``console_url`` extra (with a documented
    default), filled in by the operator while it runs; a task that never reached its connection has no
    link.
    """

    name = "ImageSearch console"

    # ti_key is a TaskInstanceKey, whose import path differs between Airflow 3.1 and 3.3.
    def get_link(self, operator: BaseOperator, *, ti_key: Any) -> str:
        return str(getattr(operator, "console_link", None) or "")
