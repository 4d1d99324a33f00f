"""A conditional v2 delete (``ImageSearchV2DeleteDataOperator(custom_tags=..., custom_num_tags=...)``), run
directly against the emulator: what it sends (both kinds of condition, on every request), how many requests
it makes (a listing at the start, one delete per batch of up to 100, one count at the end), and how it
copes with answers the SDK models as optional (no ``total_num``, no ``last_item``: a rewriting proxy drops
them) and with another writer deleting matching items after its listing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchHook
from airflow_provider_imagesearch.operators.imagesearch_v2 import ImageSearchV2DeleteDataOperator
from airflow_provider_imagesearch.version_compat import AirflowException
from tests.support.connections import connection_fields, set_connection
from tests.support.rewriting_proxy import Rewrite, RewritingProxy

OLD = {"season": ["old"]}
CHEAP = {"price": {"to": 10}}


def _old(prefix: str, count: int, **fields: Any) -> dict[str, Any]:
    return {
        f"{prefix}{n:03d}": {"digest": f"{prefix}{n}", "custom_tags": {"season": "old"}, **fields}
        for n in range(count)
    }


def _items(emulator: Emulator, service: str) -> dict[str, Any]:
    for found in emulator.control.state()["v2_services"]:
        if found["name"] == service and found["project_id"] == DEFAULT_PROJECT_ID:
            items: dict[str, Any] = found["items"]
            return items
    return {}


def _sent(emulator: Emulator, verb: str) -> int:
    return sum(1 for r in emulator.requests_log() if r["path"].endswith(f"/data/{verb}"))


def _delete(service: str, conn_id: str, **conditions: Any) -> dict[str, Any]:
    op = ImageSearchV2DeleteDataOperator(
        task_id="purge", service_name=service, imagesearch_conn_id=conn_id, **conditions
    )
    result: dict[str, Any] = op.execute({})
    return result


def _through(monkeypatch: pytest.MonkeyPatch, emulator: Emulator, proxy: RewritingProxy) -> str:
    fields = connection_fields(emulator.url, "token")
    fields["extra"]["mms_endpoint"] = proxy.url
    return set_connection(monkeypatch, "through_proxy", **fields)


def test_nothing_matching_is_listed_once_and_nothing_more_is_sent(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    emulator.upsert_v2_service("dm-none", items={"new": {"digest": "n", "custom_tags": {"season": "new"}}})
    result = _delete("dm-none", imagesearch_conn("token"), custom_tags=OLD)
    assert result == {"deleted_ids": [], "total_num": 0, "delete_num": 0, "gone_ids": []}
    assert (_sent(emulator, "check"), _sent(emulator, "delete")) == (1, 0)


def test_one_matching_item_takes_one_delete_then_one_count(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    emulator.upsert_v2_service(
        "dm-one", items={**_old("o", 1), "new": {"digest": "n", "custom_tags": {"season": "new"}}}
    )
    result = _delete("dm-one", imagesearch_conn("token"), custom_tags=OLD)
    assert result == {"deleted_ids": ["o000"], "total_num": 1, "delete_num": 1, "gone_ids": []}
    assert sorted(_items(emulator, "dm-one")) == ["new"]
    assert (_sent(emulator, "check"), _sent(emulator, "delete")) == (2, 1)


def test_a_delete_by_numeric_tags_alone_deletes_only_the_items_in_range(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    emulator.upsert_v2_service(
        "dm-num",
        custom_num_tags=["price"],
        items={
            "cheap": {"digest": "c", "custom_num_tags": {"price": 5}},
            "dear": {"digest": "d", "custom_num_tags": {"price": 50}},
        },
    )
    result = _delete("dm-num", imagesearch_conn("token"), custom_num_tags=CHEAP)
    assert (result["total_num"], result["delete_num"]) == (1, 1)
    assert sorted(_items(emulator, "dm-num")) == ["dear"]


def test_both_conditions_apply_to_the_listing_the_deletes_and_the_count(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator
) -> None:
    """Old items, cheap or dear: only the old cheap ones go. Every request carries both conditions."""
    emulator.upsert_v2_service(
        "dm-both",
        custom_num_tags=["price"],
        items={**_old("c", 3, custom_num_tags={"price": 5}), **_old("d", 2, custom_num_tags={"price": 50})},
    )
    bodies: list[dict[str, Any]] = []

    def record(path: str, body: dict[str, Any], status: int, answer: Any) -> Any:
        if "/data/" in path:
            bodies.append(body)
        return answer

    with RewritingProxy(emulator.url, record) as proxy:
        result = _delete(
            "dm-both", _through(monkeypatch, emulator, proxy), custom_tags=OLD, custom_num_tags=CHEAP
        )
    assert (result["total_num"], result["delete_num"]) == (3, 3)
    assert sorted(_items(emulator, "dm-both")) == ["d000", "d001"]
    assert all((b["custom_tags"], b["custom_num_tags"]) == (OLD, CHEAP) for b in bodies)
    # The listing's largest page, the delete, and a count that asks for one item (it reads total_num).
    assert [b.get("limit") for b in bodies] == [100, None, 1]


def _without_total(limit: int) -> Rewrite:
    """Checks of ``limit`` answered without ``total_num``."""

    def rewrite(path: str, body: dict[str, Any], status: int, answer: Any) -> Any:
        if path.endswith("/data/check") and body.get("limit") == limit and status == 200:
            answer["data"]["check_info"].pop("total_num", None)
        return answer

    return rewrite


def test_a_count_answered_without_total_and_without_items_means_nothing_is_left(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator
) -> None:
    emulator.upsert_v2_service("dm-nototal", items=_old("o", 3))
    with RewritingProxy(emulator.url, _without_total(1)) as proxy:
        result = _delete("dm-nototal", _through(monkeypatch, emulator, proxy), custom_tags=OLD)
    assert (result["total_num"], result["delete_num"]) == (3, 3)
    assert _items(emulator, "dm-nototal") == {}
    assert (_sent(emulator, "check"), _sent(emulator, "delete")) == (2, 1)


def test_a_count_answered_without_total_but_naming_an_item_fails_naming_the_conditions(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator
) -> None:
    """A writer adds a matching item after the batch: the count names it but gives no total_num."""
    emulator.upsert_v2_service(
        "dm-uncounted", custom_num_tags=["price"], items=_old("o", 2, custom_num_tags={"price": 1})
    )
    rewrite_total = _without_total(1)

    def writer(path: str, body: dict[str, Any], status: int, answer: Any) -> Any:
        if path.endswith("/data/delete"):
            emulator.control.add_v2_items(
                "dm-uncounted", _old("w", 1, custom_num_tags={"price": 2}), project_id=DEFAULT_PROJECT_ID
            )
        return rewrite_total(path, body, status, answer)

    with RewritingProxy(emulator.url, writer) as proxy, pytest.raises(AirflowException) as failed:
        _delete(
            "dm-uncounted", _through(monkeypatch, emulator, proxy), custom_tags=OLD, custom_num_tags=CHEAP
        )
    assert str(failed.value) == (
        "Cannot count the items of dm-uncounted matching {'custom_tags': {'season': ['old']}, "
        "'custom_num_tags': {'price': {'to': 10}}}: the service's check named a matching item but no total_num"
    )
    assert sorted(_items(emulator, "dm-uncounted")) == ["w000"]


def test_a_full_page_without_a_cursor_ends_the_listing(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator
) -> None:
    """A listing page of 100 answered without ``last_item`` cannot be continued: the listing stops there."""
    emulator.upsert_v2_service("dm-nocursor", items=_old("o", 100))

    def without_cursor(path: str, body: dict[str, Any], status: int, answer: Any) -> Any:
        if path.endswith("/data/check") and body.get("limit") == 100 and status == 200:
            answer["data"]["check_info"].pop("last_item", None)
        return answer

    with RewritingProxy(emulator.url, without_cursor) as proxy:
        result = _delete("dm-nocursor", _through(monkeypatch, emulator, proxy), custom_tags=OLD)
    assert (result["total_num"], result["delete_num"]) == (100, 100)
    assert (_sent(emulator, "check"), _sent(emulator, "delete")) == (2, 1)


def test_items_another_writer_deleted_after_the_listing_are_not_deleted_again(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    """50 match at the start; another writer deletes 30 of them right after the task's listing. The
    task's one delete removes the other 20 and says nothing more matches: it stops there, counting 20."""
    items = _old("a", 30)
    for item in items.values():
        item["custom_tags"]["part"] = "a"
    emulator.upsert_v2_service("dm-writer", items={**items, **_old("b", 20)})
    writer = ImageSearchHook(imagesearch_conn_id=imagesearch_conn("token", conn_id="other_writer"))
    raced = {"done": False}

    def other_writer(path: str, body: dict[str, Any], status: int, answer: Any) -> Any:
        if path.endswith("/data/check") and body.get("limit") == 100 and not raced["done"]:
            raced["done"] = True
            writer.delete_data("dm-writer", custom_tags={"part": ["a"]})
        return answer

    with RewritingProxy(emulator.url, other_writer) as proxy:
        result = _delete("dm-writer", _through(monkeypatch, emulator, proxy), custom_tags=OLD)
    assert raced["done"]
    assert (result["total_num"], result["delete_num"]) == (50, 20)
    assert _items(emulator, "dm-writer") == {}
    assert _sent(emulator, "delete") == 2  # the writer's and the task's


def test_once_it_deleted_as_many_as_matched_it_stops_leaving_what_a_writer_added(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator, capfd: pytest.CaptureFixture[str]
) -> None:
    """100 match at the start; a writer adds one more right after the listing. The one batch deletes
    100 of the 101: as many as matched at the start, so the task stops there, and says one matches now."""
    emulator.upsert_v2_service("dm-added", items=_old("o", 100))
    added = {"done": False}

    def writer(path: str, body: dict[str, Any], status: int, answer: Any) -> Any:
        # The listing's last page (after its cursor): the listing is over.
        if path.endswith("/data/check") and "last_item" in body and not added["done"]:
            added["done"] = True
            emulator.control.add_v2_items("dm-added", _old("z", 1), project_id=DEFAULT_PROJECT_ID)
        return answer

    with RewritingProxy(emulator.url, writer) as proxy:
        result = _delete("dm-added", _through(monkeypatch, emulator, proxy), custom_tags=OLD)
    assert (result["total_num"], result["delete_num"]) == (100, 100)
    assert sorted(_items(emulator, "dm-added")) == ["z000"]
    assert _sent(emulator, "delete") == 1
    assert (
        "1 item(s) of dm-added match {'custom_tags': {'season': ['old']}} now, added while the task ran"
        in (capfd.readouterr().out)
    )
