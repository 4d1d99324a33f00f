"""What the import engine asks of an API: one adapter for v1 images, one for v2 (MMS) data items.

:class:`~airflow_provider_imagesearch.imports.engine.ImportEngine` is one class for both APIs: it plans,
paces, throttles, records and reports; the adapter only checks manifest rows, builds the requests (add,
update, check, delete) and reads a check's answer. Nothing here sends a request. Every add overwrites
what the library may hold at its key (v1: an add replaces the path; v2: ``force``), so an add sent
again after an ambiguous answer, or meeting content the ledger does not know, leaves the row's content.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_imagesearch.imports.manifest import ManifestRow, file_base64

if TYPE_CHECKING:
    from airflow_provider_imagesearch.api import ApiRequest


class ImportApi(Protocol):
    """The API-specific part of an import (see the module doc)."""

    #: ``v1`` or ``v2``: the ledger's ``api`` column, which keeps the two apart.
    name: str
    #: The manifest column that keys a row (and the ledger).
    key_column: str
    #: Documented error codes that refuse a row (recorded ``invalid``, not sent again until it changes).
    refused_codes: frozenset[str]
    #: Documented error codes that doom every row (no such instance or service, an instance that cannot
    #: take images): the import stops. Any code not listed here or above is a row ``failed`` (retried).
    fatal_codes: frozenset[str]
    #: ``check(raw, number, region=...)`` -> a checked :class:`ManifestRow`.
    check_row: Callable[..., ManifestRow]

    def validate_target(self, name: object) -> str: ...

    def add_request(self, project_id: str, target: str, row: ManifestRow) -> ApiRequest: ...

    def update_request(
        self, project_id: str, target: str, row: ManifestRow, held_fingerprint: str | None
    ) -> ApiRequest:
        """What overwrites an entry that may hold other content (``held_fingerprint``: the ledger's
        fingerprint of it, ``?`` when unknown); sent again after an ambiguous failure."""

    def check_request(self, project_id: str, target: str, key: str) -> ApiRequest:
        """Whether the key is in the library (a prune whose delete was refused with a 4xx asks it)."""

    def is_present(self, answer: Any) -> bool: ...

    def delete_request(self, project_id: str, target: str, key: str) -> ApiRequest: ...


class V1ImagesApi:
    """v1: images of an instance, keyed by ``path``; adding a path again overwrites it."""

    name = "v1"
    key_column = "path"
    #: IS.0002 a value of a form the service does not take, IS.0003 no path, IS.0006 the body is too
    #: big, IS.0016 "The path is invalid." (a path the service cannot fetch the image from).
    refused_codes = frozenset({"IS.0002", "IS.0003", "IS.0006", "IS.0016"})
    #: IS.0007 no such instance, IS.0014 "Instance status is abnormal." (not NORMAL: no image operation
    #: succeeds), IS.0015 "The model file does not exist." (the instance's model is gone).
    fatal_codes = frozenset({"IS.0007", "IS.0014", "IS.0015"})

    def __init__(self) -> None:
        from airflow_provider_imagesearch.imports.manifest import check_row

        self.check_row = check_row

    def validate_target(self, name: object) -> str:
        from airflow_provider_imagesearch import validation

        return validation.instance_name(name)

    def add_request(self, project_id: str, target: str, row: ManifestRow) -> ApiRequest:
        from airflow_provider_imagesearch import api

        assert row.path is not None
        encoded = file_base64(row.file) if row.file else None
        return api.add_image(project_id, target, path=row.path, file_base64=encoded, tags=row.tags or None)

    def update_request(
        self, project_id: str, target: str, row: ManifestRow, held_fingerprint: str | None
    ) -> ApiRequest:
        # v1 has no partial update of an image: adding the path again replaces it whole.
        return self.add_request(project_id, target, row)

    def check_request(self, project_id: str, target: str, key: str) -> ApiRequest:
        from airflow_provider_imagesearch import api

        return api.check_image(project_id, target, path=key)

    def is_present(self, answer: Any) -> bool:
        return bool(answer)

    def delete_request(self, project_id: str, target: str, key: str) -> ApiRequest:
        from airflow_provider_imagesearch import api

        return api.delete_image(project_id, target, path=key)


class V2DataApi:
    """v2 (MMS): data items of a service, keyed by ``item_id``.

    Every add is sent with ``force``: the import's rule is that the service holds the row's content, so
    an item already there (a run killed before its ledger write, a dropped ledger) is overwritten, and
    an add sent again after an ambiguous answer is harmless. A row whose item the
    service may hold with other content (the ledger's ``held_fingerprint``, whatever the latest outcome)
    is sent as ``data/update`` when only what update can change differs from it (desc, tag values): update changes
    no image and no keywords, and costs the service no new image analysis. Otherwise (image, keywords,
    or which fields or tag keys are present: update cannot remove a field, and whether it merges or
    replaces tag maps is not documented) it is an add with ``force`` (overwrite). ``prune`` deletes
    with ``force``: an item already gone counts as deleted.
    """

    name = "v2"
    key_column = "item_id"
    #: MMS.0003 "Invalid parameter." / "Required parameter is empty." (the v2 table, imagesearch_02_0043).
    refused_codes = frozenset({"MMS.0003"})
    #: MMS.1001 "Service instance not found.".
    fatal_codes = frozenset({"MMS.1001"})

    def __init__(self) -> None:
        from airflow_provider_imagesearch.imports.manifest_v2 import check_row

        self.check_row = check_row

    def validate_target(self, name: object) -> str:
        from airflow_provider_imagesearch import api_v2

        return api_v2.service_name(name)

    def add_request(
        self, project_id: str, target: str, row: ManifestRow, *, force: bool = True
    ) -> ApiRequest:
        from airflow_provider_imagesearch import api_v2

        assert row.path is not None
        fields = row.tags
        image_base64 = fields.get("image_base64")
        if row.file:
            image_base64 = file_base64(row.file)
        return api_v2.add_data(
            project_id,
            target,
            item_id=row.path,
            image_url=fields.get("image_url"),
            image_base64=image_base64,
            desc=fields.get("desc"),
            custom_tags=fields.get("custom_tags"),
            custom_num_tags=fields.get("custom_num_tags"),
            keywords=fields.get("keywords"),
            force=force,
        )

    def update_request(
        self, project_id: str, target: str, row: ManifestRow, held_fingerprint: str | None
    ) -> ApiRequest:
        from airflow_provider_imagesearch import api_v2
        from airflow_provider_imagesearch.imports.manifest_v2 import split_fingerprint

        assert row.path is not None
        fields = row.tags
        # Unknown content (``?``: a failed overwrite, a prune) splits to None: overwritten whole.
        before, _ = split_fingerprint(held_fingerprint)
        now, _ = split_fingerprint(row.fingerprint)
        updatable = [fields.get(k) for k in ("desc", "custom_tags", "custom_num_tags")]
        if before is None or before != now or all(v is None for v in updatable):
            return self.add_request(project_id, target, row, force=True)
        return api_v2.update_data(
            project_id,
            target,
            item_id=row.path,
            desc=fields.get("desc"),
            custom_tags=fields.get("custom_tags"),
            custom_num_tags=fields.get("custom_num_tags"),
        )

    def check_request(self, project_id: str, target: str, key: str) -> ApiRequest:
        from airflow_provider_imagesearch import api_v2

        return api_v2.check_data(project_id, target, item_id=key)

    def is_present(self, answer: Any) -> bool:
        return getattr(answer, "existed", None) is True

    def delete_request(self, project_id: str, target: str, key: str) -> ApiRequest:
        from airflow_provider_imagesearch import api_v2

        return api_v2.delete_data(project_id, target, item_id=key, force=True)


V1_IMAGES: ImportApi = V1ImagesApi()
V2_DATA: ImportApi = V2DataApi()
