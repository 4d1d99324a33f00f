"""The five ImageSearch v2 (MMS) data operations, mixed into both hooks.

:class:`~airflow_provider_imagesearch.hooks.imagesearch.ImageSearchHook` and its async twin inherit these,
so v2 shares everything with v1: the connection (``mms_endpoint`` extra, else
``https://mms.{region}.myhuaweicloud.com``), the three auth types, the token cache, the retry policy, the
error types and the request/response core (:mod:`airflow_provider_imagesearch.api_v2`). Only the
builders and parsers are v2's own.

Retries follow :class:`~.api.ApiRequest.idempotent`: check, search, update and delete are retried;
add is not (a repeat of an add that took effect is refused), unless ``force=True`` (overwrite), which
makes a repeat harmless.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_imagesearch import api_v2
from airflow_provider_imagesearch.errors import ImageSearchApiError, ImageSearchResponseError
from airflow_provider_imagesearch.models_v2 import (
    LastItem,
    V2AddResult,
    V2CheckResult,
    V2DeleteResult,
    V2Item,
    V2SearchResult,
)
from airflow_provider_imagesearch.retry import AMBIGUOUS_RETRY_CAUSES, is_request_error

if TYPE_CHECKING:
    from airflow_provider_imagesearch.api import ApiRequest

log = logging.getLogger(__name__)

#: Page size of :meth:`search_all` by default.
SEARCH_ALL_PAGE_SIZE = 100


class _Pager:
    """The search-after loop of ``search_all``, shared by the sync and async hooks."""

    def __init__(self, page_size: int, max_items: int | None) -> None:
        low, high = api_v2.SEARCH_LIMIT_RANGE
        self.page_size = api_v2._int_in(page_size, "page_size", low, high)
        self.max_items = None if max_items is None else api_v2._int_in(max_items, "max_items", 1)
        self.items: list[V2Item] = []
        self.cursor: LastItem | None = None
        self._seen: set[LastItem] = set()

    def limit(self) -> int:
        if self.max_items is None:
            return self.page_size
        return min(self.page_size, self.max_items - len(self.items))

    def take(self, page: V2SearchResult, asked: int, request: ApiRequest) -> bool:
        """Add a page fetched with limit ``asked``; True while there may be more to fetch.

        A short page is the last one only when ``total_num`` (the service's count of all results) says
        nothing is left: a service may answer fewer than asked with more to come (after ``collapse_key``
        or ``max_scan_num``, say). An empty page always ends paging: it gives no cursor to go on from.
        """
        self.items.extend(page.items)
        if self.max_items is not None and len(self.items) >= self.max_items:
            del self.items[self.max_items :]
            return False
        if not page.items:
            return False
        if len(page.items) < asked and len(self.items) >= page.total_num:
            return False
        cursor = page.next_cursor()
        if cursor is None or cursor in self._seen:
            # A full page without a cursor, or the same cursor twice: paging would never end.
            raise ImageSearchResponseError(
                status=200,
                error_code="MALFORMED_RESPONSE",
                error_msg="search-after paging did not advance (no new last_item after a full page)",
                method=request.method,
                path=request.path,
            )
        self._seen.add(cursor)
        self.cursor = cursor
        return True


class ImageSearchV2Operations:
    """The v2 operations of the sync hook (see the module docstring)."""

    if TYPE_CHECKING:
        call: Callable[..., Any]
        _delete: Callable[..., Any]
        retry_stats: Counter[str]

        def _project_after_settings(self, project_id: str | None) -> str: ...

    def add_data(
        self,
        service_name: str,
        *,
        item_id: str,
        image_url: str | None = None,
        image_base64: str | None = None,
        desc: str | None = None,
        custom_tags: Mapping[str, str] | None = None,
        custom_num_tags: Mapping[str, float] | None = None,
        keywords: Sequence[str] | None = None,
        optional_params: Mapping[str, Any] | None = None,
        force: bool = False,
        project_id: str | None = None,
    ) -> V2AddResult:
        """``POST /v2/{project_id}/mms/{service_name}/data/add`` (not blindly retried unless ``force``)."""
        request = api_v2.add_data(
            self._project_after_settings(project_id),
            service_name,
            item_id=item_id,
            image_url=image_url,
            image_base64=image_base64,
            desc=desc,
            custom_tags=custom_tags,
            custom_num_tags=custom_num_tags,
            keywords=keywords,
            optional_params=optional_params,
            force=force,
        )
        result: V2AddResult = self.call(request)
        return result

    def update_data(
        self,
        service_name: str,
        *,
        item_id: str,
        desc: str | None = None,
        custom_tags: Mapping[str, str] | None = None,
        custom_num_tags: Mapping[str, float] | None = None,
        project_id: str | None = None,
    ) -> str:
        """``POST /v2/{project_id}/mms/{service_name}/data/update``: the item's new description and tags."""
        request = api_v2.update_data(
            self._project_after_settings(project_id),
            service_name,
            item_id=item_id,
            desc=desc,
            custom_tags=custom_tags,
            custom_num_tags=custom_num_tags,
        )
        return str(self.call(request))

    def check_data(
        self,
        service_name: str,
        *,
        item_id: str | None = None,
        custom_tags: Mapping[str, Any] | None = None,
        custom_num_tags: Mapping[str, Any] | None = None,
        limit: int | None = None,
        last_item: Mapping[str, Any] | LastItem | None = None,
        project_id: str | None = None,
    ) -> V2CheckResult:
        """``POST /v2/{project_id}/mms/{service_name}/data/check``: by id (``existed``) or by tags."""
        request = api_v2.check_data(
            self._project_after_settings(project_id),
            service_name,
            item_id=item_id,
            custom_tags=custom_tags,
            custom_num_tags=custom_num_tags,
            limit=limit,
            last_item=last_item,
        )
        result: V2CheckResult = self.call(request)
        return result

    def delete_data(
        self,
        service_name: str,
        *,
        item_id: str | None = None,
        custom_tags: Mapping[str, Any] | None = None,
        custom_num_tags: Mapping[str, Any] | None = None,
        force: bool = False,
        project_id: str | None = None,
    ) -> V2DeleteResult:
        """``POST /v2/{project_id}/mms/{service_name}/data/delete``: by id, or up to 100 by tags.

        Retried as idempotent; a retry of an id delete refused because an earlier attempt (whose
        answer was lost) already deleted the item counts as success: the item is checked to make sure,
        and reported in ``gone_ids``, not as deleted (another writer may have deleted it as well).
        A delete by id is answered without counts: without ``force`` success means one item deleted;
        with ``force`` the answer cannot say whether the item was there, so the result names no id and
        has no counts, whether or not an answer was lost (``ImageSearchV2DeleteDataOperator`` sends a
        forced delete without ``force`` and takes "not there" for success, to report a count).
        """
        project = self._project_after_settings(project_id)
        request = api_v2.delete_data(
            project,
            service_name,
            item_id=item_id,
            custom_tags=custom_tags,
            custom_num_tags=custom_num_tags,
            force=force,
        )
        if item_id is None:
            result: V2DeleteResult = self.call(request)
            return result

        def gone() -> bool:
            return not self.check_data(service_name, item_id=item_id, project_id=project).existed

        # Gone after a lost answer: this call's delete or another writer's, the answer cannot say which.
        deleted: V2DeleteResult = self._delete(request, gone, V2DeleteResult.gone_item(item_id))
        return deleted

    def search_data(
        self,
        service_name: str,
        *,
        search_type: str = "IMAGE",
        image_url: str | None = None,
        image_base64: str | None = None,
        keywords: Sequence[str] | None = None,
        text: str | None = None,
        limit: int = 10,
        offset: int = 0,
        last_item: Mapping[str, Any] | LastItem | None = None,
        min_score: float | None = None,
        custom_tags: Mapping[str, Any] | None = None,
        custom_num_tags: Mapping[str, Any] | None = None,
        optional_params: Mapping[str, Any] | None = None,
        project_id: str | None = None,
    ) -> V2SearchResult:
        """``POST /v2/{project_id}/mms/{service_name}/search``: one page (``offset + limit`` <= 1000)."""
        request = api_v2.search(
            self._project_after_settings(project_id),
            service_name,
            search_type=search_type,
            image_url=image_url,
            image_base64=image_base64,
            keywords=keywords,
            text=text,
            limit=limit,
            offset=offset,
            last_item=last_item,
            min_score=min_score,
            custom_tags=custom_tags,
            custom_num_tags=custom_num_tags,
            optional_params=optional_params,
        )
        result: V2SearchResult = self.call(request)
        return result

    def search_all(
        self,
        service_name: str,
        *,
        page_size: int = SEARCH_ALL_PAGE_SIZE,
        max_items: int | None = None,
        **query: Any,
    ) -> list[V2Item]:
        """Every result of a search, paged with search-after (``last_item``), beyond the 1,000 offset limit.

        :param page_size: results per request (1-1000).
        :param max_items: stop after this many results (None: until the results are exhausted).
        :param query: :meth:`search_data`'s arguments, except ``limit``, ``offset`` and ``last_item``.
        """
        _refuse_paging_args(query)
        pager = _Pager(page_size, max_items)
        while True:
            asked = pager.limit()
            page = self.search_data(service_name, **query, limit=asked, last_item=pager.cursor)
            if not pager.take(page, asked, _paging_request(service_name)):
                return pager.items


class ImageSearchV2AsyncOperations:
    """The v2 operations of the async hook: the same arguments and results, awaited."""

    if TYPE_CHECKING:
        call: Callable[..., Awaitable[Any]]

        async def asettings(self) -> Any: ...

        def _project(self, project_id: str | None) -> str: ...

    async def _v2_project(self, project_id: str | None) -> str:
        await self.asettings()
        return self._project(project_id)

    async def add_data(
        self, service_name: str, *, project_id: str | None = None, **fields: Any
    ) -> V2AddResult:
        """Async :meth:`ImageSearchV2Operations.add_data`."""
        request = api_v2.add_data(await self._v2_project(project_id), service_name, **fields)
        result: V2AddResult = await self.call(request)
        return result

    async def update_data(self, service_name: str, *, project_id: str | None = None, **fields: Any) -> str:
        """Async :meth:`ImageSearchV2Operations.update_data`."""
        request = api_v2.update_data(await self._v2_project(project_id), service_name, **fields)
        return str(await self.call(request))

    async def check_data(
        self, service_name: str, *, project_id: str | None = None, **fields: Any
    ) -> V2CheckResult:
        """Async :meth:`ImageSearchV2Operations.check_data`."""
        request = api_v2.check_data(await self._v2_project(project_id), service_name, **fields)
        result: V2CheckResult = await self.call(request)
        return result

    async def delete_data(
        self, service_name: str, *, project_id: str | None = None, **fields: Any
    ) -> V2DeleteResult:
        """Async :meth:`ImageSearchV2Operations.delete_data` (a lost answer is read back the same way)."""
        project = await self._v2_project(project_id)
        request = api_v2.delete_data(project, service_name, **fields)
        item_id = fields.get("item_id")
        causes: Counter[str] = Counter()
        try:
            result: V2DeleteResult = await self.call(request, causes=causes)
        except ImageSearchApiError as error:
            if (
                item_id is None
                or not any(causes[c] for c in AMBIGUOUS_RETRY_CAUSES)
                or not is_request_error(error)
            ):
                raise
            check = await self.check_data(service_name, item_id=item_id, project_id=project)
            if check.existed:
                raise
            log.info("ImageSearch v2 delete: an earlier attempt's answer was lost, but the item is gone")
            return V2DeleteResult.gone_item(item_id)
        return result

    async def search_data(
        self, service_name: str, *, project_id: str | None = None, **fields: Any
    ) -> V2SearchResult:
        """Async :meth:`ImageSearchV2Operations.search_data`."""
        request = api_v2.search(await self._v2_project(project_id), service_name, **fields)
        result: V2SearchResult = await self.call(request)
        return result

    async def search_all(
        self,
        service_name: str,
        *,
        page_size: int = SEARCH_ALL_PAGE_SIZE,
        max_items: int | None = None,
        **query: Any,
    ) -> list[V2Item]:
        """Async :meth:`ImageSearchV2Operations.search_all`."""
        _refuse_paging_args(query)
        pager = _Pager(page_size, max_items)
        while True:
            asked = pager.limit()
            page = await self.search_data(service_name, **query, limit=asked, last_item=pager.cursor)
            if not pager.take(page, asked, _paging_request(service_name)):
                return pager.items


def _refuse_paging_args(query: Mapping[str, Any]) -> None:
    from airflow_provider_imagesearch.errors import ImageSearchValidationError

    for name in ("limit", "offset", "last_item"):
        if name in query:
            raise ImageSearchValidationError(
                name, "not an argument of search_all (use page_size/max_items)", query[name]
            )


def _paging_request(service_name: str) -> ApiRequest:
    """A request to name in a paging error (its path: no body, no secrets)."""
    from airflow_provider_imagesearch.api import ApiRequest

    return ApiRequest("v2_search", "POST", f"/v2/.../mms/{service_name}/search", None, True, "", api_v2.MMS)
