"""Operators for the ImageSearch v2 (MMS) data API: one per call, on the shared operator base.

v2 has services (created in the console) where v1 has instances: ``service_name`` is what the base
calls the instance (``instance_name`` is an alias of it), so the console link, OpenLineage (namespace
``mms://{region}/{project_id}``, name = the service), the mapped-task label and the error outcomes work
as for v1. Each operator is a thin shell over one hook call and pushes a JSON-safe result to XCom.
Every argument is checked before any request, naming the field (see :mod:`~.api_v2`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_imagesearch.errors import ImageSearchApiError, ImageSearchValidationError
from airflow_provider_imagesearch.mixins import imagesearch_template_fields
from airflow_provider_imagesearch.models_v2 import V2AddResult, V2DeleteResult, V2Item
from airflow_provider_imagesearch.operators.base import (
    ABSENT,
    AS_ASKED,
    ImageSearchBaseOperator,
    ReadBack,
    other,
    outcome_unknown,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchHook


#: A field an update leaves alone (it is not compared on reading the item back).
NOT_ASKED: Any = object()


def item_differences(
    item: V2Item,
    *,
    desc: Any = NOT_ASKED,
    custom_tags: Any = NOT_ASKED,
    custom_num_tags: Any = NOT_ASKED,
    keywords: Any = NOT_ASKED,
) -> list[str]:
    """What differs between ``item`` as the service holds it and the fields asked for.

    An add asks for every field (an add without ``desc`` asks for an item without one: pass None); an
    update asks only for the fields it changes (the others are ``NOT_ASKED``).
    """
    differences = []
    if desc is not NOT_ASKED and item.desc != desc:
        differences.append(f"desc is {item.desc!r}, wanted {desc!r}")
    if custom_tags is not NOT_ASKED and dict(item.custom_tags) != dict(custom_tags or {}):
        differences.append(f"custom_tags are {dict(item.custom_tags)}, wanted {dict(custom_tags or {})}")
    if custom_num_tags is not NOT_ASKED:
        wanted = {key: float(value) for key, value in (custom_num_tags or {}).items()}
        if dict(item.custom_num_tags) != wanted:
            differences.append(f"custom_num_tags are {dict(item.custom_num_tags)}, wanted {wanted}")
    if keywords is not NOT_ASKED and list(item.keywords) != list(keywords or []):
        differences.append(f"keywords are {list(item.keywords)}, wanted {list(keywords or [])}")
    return differences


class ImageSearchV2BaseOperator(ImageSearchBaseOperator):
    """Base of the v2 operators: the service stands where v1 operators have the instance.

    :param service_name: the v2 service (created in the console). (templated)
    :param instance_name: an alias of ``service_name`` (give one of the two), for code shared with the
        v1 operators; the templated field is ``service_name``.
    """

    target_noun: ClassVar[str] = "service"

    def __init__(
        self, *, service_name: str | None = None, instance_name: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if (service_name is None) == (instance_name is None):
            raise ValueError(
                f"{type(self).__name__}: give the service as service_name (or its alias instance_name), "
                f"exactly one of the two; got {'both' if service_name is not None else 'neither'}"
            )
        name = service_name if service_name is not None else instance_name
        assert name is not None
        self.service_name: str = name

    @property
    def instance_name(self) -> str:  # type: ignore[override]
        """Alias of ``service_name``: what the shared base (link, lineage, labels, messages) reads."""
        return self.service_name

    def remember_instance(self, hook: ImageSearchHook) -> None:
        from airflow_provider_imagesearch.links import v2_console_link

        super().remember_instance(hook)
        settings = hook.settings
        project_id = self.project_id or settings.project_id
        self.console_link = v2_console_link(settings, self.service_name, project_id)
        # Not v1's namespace: a v1 instance and a v2 service of the same name are different datasets.
        self._lineage_namespace = f"mms://{settings.region or 'unknown'}/{project_id or 'unknown'}"

    def _read_item(self, hook: ImageSearchHook, item_id: str) -> V2Item | None:
        """The item as the service holds it (None if it is not there)."""
        check = hook.check_data(self.service_name, item_id=item_id)
        if not check.existed:
            return None
        return check.item or V2Item(id=item_id)


class ImageSearchV2AddDataOperator(ImageSearchV2BaseOperator):
    """Add one item to a v2 service: ``POST /v2/{project_id}/mms/{service_name}/data/add``.

    Not blindly retried: an add whose answer was lost is not repeated by the hook (a repeat of an add
    that took effect is refused) unless ``force=True`` (overwrite), which makes a repeat harmless. After
    an unknown outcome, and when the add of a retry of the task (or a rerun after a clear) is refused, the
    item is read back: success when it holds what was asked (``desc``, tags, keywords; the image itself
    cannot be read back), a new add when it is not there, a failure naming the difference otherwise
    (``force=True`` overwrites instead). Returns ``{"item_id", "result", "objects"}`` (``objects`` empty
    when the answer was lost and the item was read back).

    :param item_id: the item's id in the service, 1-256 characters. (templated)
    :param image_url: a URL the service can fetch, 1-4096 characters (or ``image_base64``). (templated)
    :param image_base64: the image's bytes, base64 (or ``image_url``). (templated)
    :param desc: description, 1-2048 characters. (templated)
    :param custom_tags: string tags, name -> value of 1-64 characters. (templated)
    :param custom_num_tags: numeric tags, name -> number. (templated)
    :param keywords: 1-100 keywords of 1-64 characters. (templated)
    :param optional_params: the service type's options (``do_det``, ``box``, ...). (templated)
    :param force: overwrite an item with the same id.
    """

    template_fields: Sequence[str] = imagesearch_template_fields(
        "service_name",
        "item_id",
        "image_url",
        "image_base64",
        "desc",
        "custom_tags",
        "custom_num_tags",
        "keywords",
        "optional_params",
    )
    template_fields_renderers = {"custom_tags": "json", "custom_num_tags": "json", "optional_params": "json"}
    lineage_role = "output"

    def __init__(
        self,
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
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.item_id = item_id
        self.image_url = image_url
        self.image_base64 = image_base64
        self.desc = desc
        self.custom_tags = custom_tags
        self.custom_num_tags = custom_num_tags
        self.keywords = keywords
        self.optional_params = optional_params
        self.force = force

    def run(self, hook: ImageSearchHook, context: Context) -> dict[str, Any]:
        def send() -> V2AddResult:
            return hook.add_data(
                self.service_name,
                item_id=self.item_id,
                image_url=self.image_url,
                image_base64=self.image_base64,
                desc=self.desc,
                custom_tags=self.custom_tags,
                custom_num_tags=self.custom_num_tags,
                keywords=self.keywords,
                optional_params=self.optional_params,
                force=self.force,
            )

        def read_back() -> ReadBack:
            item = self._read_item(hook, self.item_id)
            if item is None:
                return ABSENT
            differences = item_differences(
                item,
                desc=self.desc,
                custom_tags=self.custom_tags,
                custom_num_tags=self.custom_num_tags,
                keywords=self.keywords,
            )
            return other(f"item {self.item_id}: {'; '.join(differences)}") if differences else AS_ASKED

        result = self.write(
            hook,
            f"adding item {self.item_id} to {self.service_name}",
            send,
            read_back,
            # The service's answer (the subjects it detected) was lost: only the item is known.
            adopted=lambda: V2AddResult(self.item_id, "success"),
            overwrite=self.force,
        )
        self.log.info("Added %s to %s", self.item_id, self.service_name)
        return result.to_dict()


class ImageSearchV2UpdateDataOperator(ImageSearchV2BaseOperator):
    """Replace an item's description and tags: ``POST .../data/update``. Returns ``{"item_id", "result"}``.

    :param item_id: the item. (templated)
    :param desc: new description, 1-2048 characters. (templated)
    :param custom_tags: new string tags. (templated)
    :param custom_num_tags: new numeric tags. (templated)
    """

    template_fields: Sequence[str] = imagesearch_template_fields(
        "service_name", "item_id", "desc", "custom_tags", "custom_num_tags"
    )
    template_fields_renderers = {"custom_tags": "json", "custom_num_tags": "json"}
    lineage_role = "output"

    def __init__(
        self,
        *,
        item_id: str,
        desc: str | None = None,
        custom_tags: Mapping[str, str] | None = None,
        custom_num_tags: Mapping[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.item_id = item_id
        self.desc = desc
        self.custom_tags = custom_tags
        self.custom_num_tags = custom_num_tags

    def run(self, hook: ImageSearchHook, context: Context) -> dict[str, Any]:
        def read_back() -> ReadBack:
            item = self._read_item(hook, self.item_id)
            if item is None:
                return ABSENT
            asked = {
                "desc": self.desc,
                "custom_tags": self.custom_tags,
                "custom_num_tags": self.custom_num_tags,
            }
            differences = item_differences(item, **{k: v for k, v in asked.items() if v is not None})
            return other(f"item {self.item_id}: {'; '.join(differences)}") if differences else AS_ASKED

        result = self.write(
            hook,
            f"updating item {self.item_id} of {self.service_name}",
            lambda: hook.update_data(
                self.service_name,
                item_id=self.item_id,
                desc=self.desc,
                custom_tags=self.custom_tags,
                custom_num_tags=self.custom_num_tags,
            ),
            read_back,
            adopted=lambda: "success",
            overwrite=True,
        )
        return {"item_id": self.item_id, "result": result}


class ImageSearchV2DeleteDataOperator(ImageSearchV2BaseOperator):
    """Delete an item by id, or every item matching tag conditions: ``POST .../data/delete``.

    Returns ``{"deleted_ids", "total_num", "delete_num", "gone_ids"}``.

    **By id**: a missing item fails the task unless ``force=True`` (idempotent delete). The delete is
    counted only when the service's answer says this task's delete removed the item: ``{"deleted_ids":
    [id], "total_num": 1, "delete_num": 1, "gone_ids": []}``. An item the task finds not there is reported
    as ``{"deleted_ids": [], "total_num": 0, "delete_num": 0, "gone_ids": [id]}``: with ``force`` when it
    was not there (no delete is sent) or another writer deleted it first; without ``force`` when a delete
    whose answer was lost is read back (``check``) as gone, or when, on a retry of the task or a rerun
    after it was cleared, the delete is refused and the item is gone (it may be an earlier try's effect,
    or the item may never have existed: the task cannot tell, so it neither fails nor claims it).

    **By conditions**: the service deletes at most 100 matching items per call, so the operator calls it
    batch by batch until nothing matches or it has deleted as many items as matched when it started, in at
    most ``ceil(matched / 100)`` calls plus ``max_attempts`` for batches whose answer was lost or carried no
    count (``total_num``: the items that matched at the start; ``delete_num``: the items it deleted;
    ``deleted_ids``: the ids the service's answers named). A batch whose answer was lost is not repeated
    blindly (its repeat would delete the next batch): the operator lists what matches and goes on, so a
    retry, a task retry or a rerun only finishes the job, and items that do not match are never touched. A
    lost batch is counted in ``delete_num`` by the items that matched at the start and are gone (items added
    meanwhile cannot cancel it), but its ids are not known. At the end it checks what still matches: the
    task fails, naming the count, if any item that matched at the start still matches; items that match
    and did not were added while it ran (logged, left).

    :param item_id: the item to delete. (templated)
    :param custom_tags: or delete items whose tag has one of these values, name -> list. (templated)
    :param custom_num_tags: or items whose numeric tag is in range, name -> ``{"from", "to"}``. (templated)
    :param force: succeed when the item id is not there (by id only).
    """

    template_fields: Sequence[str] = imagesearch_template_fields(
        "service_name", "item_id", "custom_tags", "custom_num_tags"
    )
    template_fields_renderers = {"custom_tags": "json", "custom_num_tags": "json"}
    lineage_role = "output"

    def __init__(
        self,
        *,
        item_id: str | None = None,
        custom_tags: Mapping[str, Any] | None = None,
        custom_num_tags: Mapping[str, Any] | None = None,
        force: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.item_id = item_id
        self.custom_tags = custom_tags
        self.custom_num_tags = custom_num_tags
        self.force = force

    def check_arguments(self) -> None:
        conditions = self.custom_tags is not None or self.custom_num_tags is not None
        if self.item_id is not None and conditions:
            raise ImageSearchValidationError(
                "custom_tags/custom_num_tags",
                "left out with item_id (the service deletes by id and ignores the conditions)",
                self.custom_tags if self.custom_tags is not None else self.custom_num_tags,
            )
        if self.item_id is None and self.force is not False:
            raise ImageSearchValidationError(
                "force",
                "left out with custom_tags/custom_num_tags (it applies to a delete by id)",
                self.force,
            )

    def run(self, hook: ImageSearchHook, context: Context) -> dict[str, Any]:
        if self.item_id is None:
            result = self._delete_matching(hook)
        else:
            result = self._delete_item(hook, self.item_id)
        self.log.info("Deleted %d item(s) from %s", result.delete_num or 0, self.service_name)
        if result.gone_ids:
            self.log.info(
                "Not there, and not counted as deleted by this task (never there, deleted by another writer, "
                "or by an earlier attempt or try whose answer was lost): %s",
                ", ".join(result.gone_ids),
            )
        return result.to_dict()

    def _delete_item(self, hook: ImageSearchHook, item_id: str) -> V2DeleteResult:
        """Delete one item; the result says what this task's delete did.

        The service answers a delete by id without counts, and a forced one the same whether or not the
        item was there. So the delete is always sent without ``force``: its success means this request
        deleted the item (a missing one is refused). ``force`` is applied here: the item is checked first
        (not there: nothing is sent), and a refusal read back as gone is success. An item found gone in
        any other way (a refusal on a later try, a repeat after a lost answer, another writer's delete
        between the check and the delete) is reported in ``gone_ids``, never as deleted: the task cannot
        know the deletion was its own.
        """
        if self.force and self._read_item(hook, item_id) is None:
            self.log.info(
                "Item %s is not in %s: nothing to delete%s",
                item_id,
                self.service_name,
                " (an earlier try of this task may have deleted it)" if self.earlier_try else "",
            )
            return V2DeleteResult.gone_item(item_id)

        def gone() -> ReadBack:
            return ABSENT if self._read_item(hook, item_id) is not None else AS_ASKED

        return self.write(
            hook,
            f"deleting item {item_id} from {self.service_name}",
            lambda: hook.delete_data(self.service_name, item_id=item_id),
            gone,
            adopted=lambda: V2DeleteResult.gone_item(item_id),
            refusal_is_ours=lambda: self.force or self.earlier_try,
        )

    def _delete_matching(self, hook: ImageSearchHook) -> V2DeleteResult:
        """Delete, batch by batch, the items that match when the task starts; then check what is left.

        The ids that match at the start are listed first. A batch answered with a count is counted by it;
        one whose answer was lost or carried no count is counted by listing what matches now: the items
        among those that matched at the start which are gone (items a writer adds while the task runs
        cannot cancel that count). Bounded: at most ``ceil(matched / 100)`` batches, plus ``max_attempts``
        for batches whose answer was lost or did not count what it deleted, and it stops once it has deleted
        as many items as matched at the start, so a writer adding matching items cannot keep it going. It
        fails when any item that matched at the start still matches at the end.
        """
        from airflow_provider_imagesearch.api_v2 import CHECK_LIMIT_RANGE, DELETE_BATCH
        from airflow_provider_imagesearch.version_compat import AirflowException

        page_size = CHECK_LIMIT_RANGE[1]
        conditions = {
            name: value
            for name, value in (("custom_tags", self.custom_tags), ("custom_num_tags", self.custom_num_tags))
            if value is not None
        }
        retry_budget = hook.settings.retry.max_attempts

        def matching() -> int:
            check = hook.check_data(
                self.service_name, custom_tags=self.custom_tags, custom_num_tags=self.custom_num_tags, limit=1
            )
            if check.total_num is not None:
                return check.total_num
            if not check.items:
                return 0  # answered without data (the SDK's optional data): nothing matches
            raise AirflowException(
                f"Cannot count the items of {self.service_name} matching {conditions}: the service's check "
                "named a matching item but no total_num"
            )

        def matching_ids() -> set[str]:
            """Every id matching now, paged with the check's cursor (the check's largest page)."""
            ids: set[str] = set()
            cursor = None
            while True:
                page = hook.check_data(
                    self.service_name,
                    custom_tags=self.custom_tags,
                    custom_num_tags=self.custom_num_tags,
                    limit=page_size,
                    last_item=cursor,
                )
                new = {item.id for item in page.items} - ids
                ids |= new
                if len(page.items) < page_size or page.last_item is None or not new:
                    return ids
                cursor = page.last_item

        start_ids = matching_ids()
        total = remaining = len(start_ids)
        # Of the items that matched at the start, those still there when the service was last listed.
        start_left = set(start_ids)
        listed = True  # whether `remaining` and `start_left` were just listed from the service
        counted_since_listing = 0  # items counted by answers since then (some may be of `start_left`)
        batches_allowed = -(-total // DELETE_BATCH) + retry_budget
        deleted_ids: list[str] = []
        deleted = batches = uncounted = 0
        while start_left and remaining > 0 and deleted < total and batches < batches_allowed:
            batches += 1
            try:
                batch = hook.delete_data(
                    self.service_name, custom_tags=self.custom_tags, custom_num_tags=self.custom_num_tags
                )
            except ImageSearchApiError as error:
                if not outcome_unknown(error):
                    raise
                uncounted += 1
                if uncounted > retry_budget:
                    raise
                why = f"may or may not have taken effect ({error.error_code})"
            else:
                deleted_ids.extend(batch.deleted_ids)
                if batch.delete_num is not None:
                    deleted += batch.delete_num
                    counted_since_listing += batch.delete_num
                    listed = False
                    if batch.delete_num == 0:
                        break  # nothing deleted: the check below says what is left
                    matched = batch.total_num if batch.total_num is not None else remaining
                    remaining = max(matched - batch.delete_num, 0)
                    continue
                uncounted += 1
                why = "was answered without a count"
            now = matching_ids()
            still = start_left & now
            self.log.warning(
                "A delete of up to %d items matching %s %s: %d match now, %d of the %d that matched at the "
                "start are still there (%d before it)",
                DELETE_BATCH,
                conditions,
                why,
                len(now),
                len(still),
                total,
                len(start_left),
            )
            # The items of the start gone since the last listing, less those the answers counted already.
            deleted += max(len(start_left) - len(still) - counted_since_listing, 0)
            start_left, remaining, listed, counted_since_listing = still, len(now), True, 0
        if listed:
            left = remaining
        else:
            left = matching()
            if left:
                now = matching_ids()
                start_left, left = start_left & now, len(now)
            else:
                start_left = set()
        if start_left:
            raise AirflowException(
                f"{len(start_left)} of the {total} item(s) of {self.service_name} that matched {conditions} "
                f"when the task started still match after {batches} delete request(s) ({deleted} item(s) "
                "deleted)"
            )
        if left:
            self.log.warning(
                "%d item(s) of %s match %s now, added while the task ran: every item that matched when it "
                "started (%d) is gone (it deleted %d); run it again to delete the rest",
                left,
                self.service_name,
                conditions,
                total,
                deleted,
            )
        return V2DeleteResult(deleted_ids=tuple(deleted_ids), total_num=total, delete_num=deleted)


class ImageSearchV2CheckDataOperator(ImageSearchV2BaseOperator):
    """Whether an item exists, or which items match tag conditions: ``POST .../data/check``.

    Returns ``{"existed", "item", "items", "total_num", "return_num", "last_item"}``.

    :param item_id: the item to look for. (templated)
    :param custom_tags: or match items by string tags, name -> list of values. (templated)
    :param custom_num_tags: or by numeric ranges, name -> ``{"from", "to"}``. (templated)
    :param limit: results of a conditional check, 1-100 (not with ``item_id``). (templated)
    """

    template_fields: Sequence[str] = imagesearch_template_fields(
        "service_name", "item_id", "custom_tags", "custom_num_tags", "limit"
    )
    template_fields_renderers = {"custom_tags": "json", "custom_num_tags": "json"}

    def __init__(
        self,
        *,
        item_id: str | None = None,
        custom_tags: Mapping[str, Any] | None = None,
        custom_num_tags: Mapping[str, Any] | None = None,
        limit: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.item_id = item_id
        self.custom_tags = custom_tags
        self.custom_num_tags = custom_num_tags
        self.limit = limit

    def check_arguments(self) -> None:
        if self.item_id is None:
            return
        for name in ("custom_tags", "custom_num_tags", "limit"):
            if getattr(self, name) is not None:
                raise ImageSearchValidationError(
                    name,
                    "left out with item_id (a check by id returns that item; conditions and limit apply to "
                    "a check by conditions)",
                    getattr(self, name),
                )

    def run(self, hook: ImageSearchHook, context: Context) -> dict[str, Any]:
        result = hook.check_data(
            self.service_name,
            item_id=self.item_id,
            custom_tags=self.custom_tags,
            custom_num_tags=self.custom_num_tags,
            limit=self.limit,
        )
        return result.to_dict()


class ImageSearchV2SearchOperator(ImageSearchV2BaseOperator):
    """Search a v2 service: ``POST .../search``; pushes the results as a list of item dicts, best first.

    Each result is ``{"id", "score", "desc", "custom_tags", "custom_num_tags", "keywords"}``. With
    ``fetch_all`` it pages with search-after (``last_item``) past the service's 1,000-result window, up
    to ``max_items``.

    :param search_type: ``IMAGE`` (default), ``CATEGORY``, ``KEYWORD`` or ``TEXT``, or the enum's documented
        value ``"0"`` (``IMAGE``), sent as given. (templated)
    :param image_url: query image URL (IMAGE/CATEGORY). (templated)
    :param image_base64: query image bytes, base64 (IMAGE/CATEGORY). (templated)
    :param keywords: 1-10 keywords (KEYWORD). (templated)
    :param text: 1-512 characters (TEXT). (templated)
    :param limit: results per request, 1-1000 (offset + limit <= 1000). (templated)
    :param offset: position of the first result. (templated)
    :param min_score: drop results scoring less (0-1; IMAGE/CATEGORY). (templated)
    :param custom_tags: only items whose tag has one of these values, name -> list. (templated)
    :param custom_num_tags: only items whose numeric tag is in range, name -> ``{"from", "to"}``. (templated)
    :param optional_params: the service type's options. (templated)
    :param fetch_all: page through every result with search-after (``limit`` per page); ``offset`` must
        then be 0.
    :param max_items: with ``fetch_all`` (only), stop after this many.
    """

    template_fields: Sequence[str] = imagesearch_template_fields(
        "service_name",
        "search_type",
        "image_url",
        "image_base64",
        "keywords",
        "text",
        "limit",
        "offset",
        "min_score",
        "custom_tags",
        "custom_num_tags",
        "optional_params",
    )
    template_fields_renderers = {"custom_tags": "json", "custom_num_tags": "json", "optional_params": "json"}

    def __init__(
        self,
        *,
        search_type: str = "IMAGE",
        image_url: str | None = None,
        image_base64: str | None = None,
        keywords: Sequence[str] | None = None,
        text: str | None = None,
        limit: int = 10,
        offset: int = 0,
        min_score: float | None = None,
        custom_tags: Mapping[str, Any] | None = None,
        custom_num_tags: Mapping[str, Any] | None = None,
        optional_params: Mapping[str, Any] | None = None,
        fetch_all: bool = False,
        max_items: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.search_type = search_type
        self.image_url = image_url
        self.image_base64 = image_base64
        self.keywords = keywords
        self.text = text
        self.limit = limit
        self.offset = offset
        self.min_score = min_score
        self.custom_tags = custom_tags
        self.custom_num_tags = custom_num_tags
        self.optional_params = optional_params
        self.fetch_all = fetch_all
        self.max_items = max_items

    def check_arguments(self) -> None:
        if self.fetch_all and self.offset != 0:
            raise ImageSearchValidationError(
                "offset", "0 with fetch_all (it pages from the first result with search-after)", self.offset
            )
        if not self.fetch_all and self.max_items is not None:
            raise ImageSearchValidationError(
                "max_items", "left out without fetch_all (use limit for one page)", self.max_items
            )

    def run(self, hook: ImageSearchHook, context: Context) -> list[dict[str, Any]]:
        query: dict[str, Any] = {
            "search_type": self.search_type,
            "image_url": self.image_url,
            "image_base64": self.image_base64,
            "keywords": self.keywords,
            "text": self.text,
            "min_score": self.min_score,
            "custom_tags": self.custom_tags,
            "custom_num_tags": self.custom_num_tags,
            "optional_params": self.optional_params,
        }
        if self.fetch_all:
            items = hook.search_all(
                self.service_name, page_size=self.limit, max_items=self.max_items, **query
            )
        else:
            items = list(
                hook.search_data(self.service_name, limit=self.limit, offset=self.offset, **query).items
            )
        self.log.info("%d results in %s", len(items), self.service_name)
        return [item.to_dict() for item in items]


__all__ = [
    "ImageSearchV2AddDataOperator",
    "ImageSearchV2BaseOperator",
    "ImageSearchV2CheckDataOperator",
    "ImageSearchV2DeleteDataOperator",
    "ImageSearchV2SearchOperator",
    "ImageSearchV2UpdateDataOperator",
]
