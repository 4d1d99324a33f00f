"""A forced v2 delete by id racing another writer: the item is there when the task checks it, another
writer deletes it before the task's delete arrives, so the service refuses the task's delete (a missing id).
With ``force=True`` the task reads the item back, finds it gone and reports it in ``gone_ids``: it succeeds,
never counting the deletion as its own. A rewriting proxy between the task and the emulator plays the other
writer: right after the task's check is answered, it deletes the item through a connection of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchHook
from airflow_provider_imagesearch.operators.imagesearch_v2 import ImageSearchV2DeleteDataOperator
from tests.support.connections import connection_fields, set_connection
from tests.support.rewriting_proxy import RewritingProxy

SERVICE = "race-del"


def _items(emulator: Emulator) -> dict[str, Any]:
    for found in emulator.control.state()["v2_services"]:
        if found["name"] == SERVICE and found["project_id"] == DEFAULT_PROJECT_ID:
            items: dict[str, Any] = found["items"]
            return items
    return {}


def _deletes(emulator: Emulator) -> list[int]:
    return [r["status"] for r in emulator.requests_log() if r["path"].endswith("/data/delete")]


def test_a_forced_delete_of_an_item_another_writer_deleted_first_reports_it_gone(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    emulator.upsert_v2_service(SERVICE, items={"it-1": {"digest": "x"}, "it-2": {"digest": "y"}})
    writer = ImageSearchHook(imagesearch_conn_id=imagesearch_conn("token", conn_id="other_writer"))
    raced = {"done": False}

    def other_writer(path: str, body: dict[str, Any], status: int, answer: Any) -> Any:
        if path.endswith("/data/check") and body.get("item_id") == "it-1" and not raced["done"]:
            raced["done"] = True
            writer.delete_data(SERVICE, item_id="it-1")
        return answer

    with RewritingProxy(emulator.url, other_writer) as proxy:
        fields = connection_fields(emulator.url, "token")
        fields["extra"]["mms_endpoint"] = proxy.url
        conn_id = set_connection(monkeypatch, "through_proxy", **fields)
        op = ImageSearchV2DeleteDataOperator(
            task_id="delete", service_name=SERVICE, item_id="it-1", force=True, imagesearch_conn_id=conn_id
        )
        result = op.execute({})

    assert raced["done"], "the other writer deleted the item after the task's check"
    assert result == {"deleted_ids": [], "total_num": 0, "delete_num": 0, "gone_ids": ["it-1"]}
    # The other writer's delete, then the task's, refused: the id was missing.
    assert _deletes(emulator) == [200, 400]
    assert sorted(_items(emulator)) == ["it-2"]
