"""Operators for Huawei Cloud ImageSearch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_imagesearch import DEFAULT_CONN_ID
from airflow_provider_imagesearch.errors import ImageSearchError, ImageSearchNotFoundError
from airflow_provider_imagesearch.outcomes import is_permanent, not_found_message
from airflow_provider_imagesearch.version_compat import AirflowFailException

if TYPE_CHECKING:
    from airflow.sdk import Context


class InstanceDetailOperator(BaseOperator):
    """Read an ImageSearch instance's details and push them to XCom.

    ``GET /v1/{project_id}/service/{instance_name}``. The XCom value is
    :meth:`~airflow_provider_imagesearch.models.InstanceDetail.to_dict`: snake_case keys, ISO-8601 UTC
    times, ``expires_at`` null when the instance never expires, the raw status string.

    A missing instance, refused credentials and invalid arguments fail at once without task retries
    (``AirflowFailException``); transient errors go through the hook's retry policy, then task retries.
    Works with dynamic task mapping: ``InstanceDetailOperator.partial(...).expand(instance_name=[...])``
    shows each instance's name as the map index.

    :param instance_name: the instance to read. (templated)
    :param imagesearch_conn_id: connection id of type ``imagesearch``. (templated)
    :param project_id: project id, overriding the connection's. (templated)
    :param region: region id, overriding the connection's. (templated)
    :param map_index_template: label of mapped task instances; the instance name by default.
    """

    template_fields: Sequence[str] = ("instance_name", "project_id", "imagesearch_conn_id", "region")
    ui_color = "#e8f1fb"

    def __init__(
        self,
        *,
        instance_name: str,
        imagesearch_conn_id: str = DEFAULT_CONN_ID,
        project_id: str | None = None,
        region: str | None = None,
        map_index_template: str | None = "{{ task.instance_name }}",
        **kwargs: Any,
    ) -> None:
        super().__init__(map_index_template=map_index_template, **kwargs)
        self.instance_name = instance_name
        self.imagesearch_conn_id = imagesearch_conn_id
        self.project_id = project_id
        self.region = region

    def execute(self, context: Context) -> dict[str, Any]:
        # Imported here: the hook pulls in requests, which DAG files should not pay for at parse time.
        from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchHook

        hook = ImageSearchHook(self.imagesearch_conn_id, region=self.region, project_id=self.project_id)
        try:
            detail = hook.get_instance(self.instance_name)
        except ImageSearchNotFoundError as error:
            project = self.project_id or hook.settings.project_id
            raise AirflowFailException(f"{not_found_message(self.instance_name, project)}: {error}") from None
        except ImageSearchError as error:
            if is_permanent(error):
                raise AirflowFailException(str(error)) from None
            raise
        finally:
            hook.close()
        self.log.info("Instance %s is %s", detail.instance_name, detail.status.value)
        return detail.to_dict()
