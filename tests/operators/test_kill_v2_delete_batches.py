"""How a conditional v2 delete counts batches whose answer was lost or carried no count, and how far it
goes: a lost answer (the connection closed after the service deleted the batch) or an answer without
``data`` is counted by listing which items of the start are gone; more lost answers than the connection's
``max_attempts`` fail the task; and it sends at most ``ceil(matched / 100) + max_attempts`` deletes.

A rewriting proxy between the task and the emulator scripts each delete's answer: ``ok`` as the service
gave it, ``lost`` (the proxy hangs up instead of answering: the service did delete the batch), ``nocount``
(the answer without ``data``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from airflow_provider_imagesearch.errors import ImageSearchTransportError
from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchHook
from airflow_provider_imagesearch.operators.imagesearch_v2 import ImageSearchV2DeleteDataOperator
from airflow_provider_imagesearch.version_compat import AirflowException
from tests.support.connections import connection_fields, set_connection
from tests.support.rewriting_proxy import RewritingProxy

OLD = {"season": ["old"]}


class _AnswerLost(Exception):
    """Raised in the proxy: its handler hangs up without answering."""


def _old(count: int) -> dict[str, Any]:
    return {f"o{n:03d}": {"digest": f"o{n}", "custom_tags": {"season": "old"}} for n in range(count)}


def _items(emulator: Emulator, service: str) -> dict[str, Any]:
    for found in emulator.control.state()["v2_services"]:
        if found["name"] == service and found["project_id"] == DEFAULT_PROJECT_ID:
            items: dict[str, Any] = found["items"]
            return items
    return {}


def _checks(emulator: Emulator) -> int:
    return sum(1 for r in emulator.requests_log() if r["path"].endswith("/data/check"))


def _deletes(emulator: Emulator) -> int:
    return sum(1 for r in emulator.requests_log() if r["path"].endswith("/data/delete"))


class _Script:
    """Answers the n-th delete as ``answers[n]`` (``ok`` past the end); ``put_back``: the first
    ``put_back`` deletes are undone (a writer adds the same items again) before they are answered."""

    def __init__(self, emulator: Emulator, service: str, answers: list[str], put_back: int = 0) -> None:
        self.emulator, self.service, self.answers, self.put_back = emulator, service, answers, put_back
        self.seen = 0

    def __call__(self, path: str, body: dict[str, Any], status: int, answer: Any) -> Any:
        if not path.endswith("/data/delete"):
            return answer
        n, self.seen = self.seen, self.seen + 1
        if n < self.put_back:
            ids = [item["id"] for item in answer["data"]["items"]]
            self.emulator.control.add_v2_items(
                self.service,
                {i: {"digest": i, "custom_tags": {"season": "old"}} for i in ids},
                project_id=DEFAULT_PROJECT_ID,
            )
        kind = self.answers[n] if n < len(self.answers) else "ok"
        if kind == "lost":
            raise _AnswerLost(path)
        if kind == "nocount":
            return {k: v for k, v in answer.items() if k != "data"}
        return answer


def _run(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator, service: str, script: _Script, max_attempts: int
) -> dict[str, Any]:
    with RewritingProxy(emulator.url, script) as proxy:
        fields = connection_fields(emulator.url, "token", max_attempts=max_attempts)
        fields["extra"]["mms_endpoint"] = proxy.url
        op = ImageSearchV2DeleteDataOperator(
            task_id="purge",
            service_name=service,
            custom_tags=OLD,
            imagesearch_conn_id=set_connection(monkeypatch, "through_proxy", **fields),
        )
        result: dict[str, Any] = op.execute({})
        return result


def test_counted_batches_then_a_lost_one_count_every_item_once(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator, capfd: pytest.CaptureFixture[str]
) -> None:
    """250 match: two batches answered with their counts (200), the third's answer lost. The listing
    after it finds the 250 of the start gone: the 50 not counted yet are added, 250 in all."""
    emulator.upsert_v2_service("db-mix", items=_old(250))
    result = _run(monkeypatch, emulator, "db-mix", _Script(emulator, "db-mix", ["ok", "ok", "lost"]), 3)
    assert (result["total_num"], result["delete_num"]) == (250, 250)
    assert _items(emulator, "db-mix") == {}
    assert _deletes(emulator) == 3
    assert "may or may not have taken effect (" in capfd.readouterr().out


def test_lost_answers_are_counted_by_listing_up_to_max_attempts(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator
) -> None:
    emulator.upsert_v2_service("db-lost", items=_old(250))
    result = _run(monkeypatch, emulator, "db-lost", _Script(emulator, "db-lost", ["lost"] * 3), 3)
    assert (result["total_num"], result["delete_num"]) == (250, 250)
    assert _items(emulator, "db-lost") == {}
    assert _deletes(emulator) == 3
    # Listings (pages of 100): at the start (250: 3 pages), after each lost answer (150: 2, 50: 1, 0: 1);
    # the last listing found nothing left, so no count follows.
    assert _checks(emulator) == 3 + 2 + 1 + 1


def test_one_lost_answer_more_than_max_attempts_fails_the_task(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator
) -> None:
    """max_attempts=2: the third lost answer fails the task (although that batch did delete the rest)."""
    emulator.upsert_v2_service("db-toomany", items=_old(250))
    with pytest.raises(ImageSearchTransportError):
        _run(monkeypatch, emulator, "db-toomany", _Script(emulator, "db-toomany", ["lost"] * 3), 2)
    assert _deletes(emulator) == 3
    assert _items(emulator, "db-toomany") == {}


def test_answers_without_a_count_share_the_lost_answers_budget(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator, capfd: pytest.CaptureFixture[str]
) -> None:
    """max_attempts=2: one answer without a count and one lost are two of the two allowed: the task goes
    on, and the third batch's counted answer ends it."""
    emulator.upsert_v2_service("db-nocount", items=_old(250))
    result = _run(
        monkeypatch, emulator, "db-nocount", _Script(emulator, "db-nocount", ["nocount", "lost", "ok"]), 2
    )
    assert (result["total_num"], result["delete_num"]) == (250, 250)
    assert _deletes(emulator) == 3
    assert (
        "A delete of up to 100 items matching {'custom_tags': {'season': ['old']}} was answered without a "
        "count: 150 match now, 150 of the 250 that matched at the start are still there (250 before it)"
    ) in capfd.readouterr().out


def test_a_lost_answer_after_an_uncounted_one_past_max_attempts_fails_the_task(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator
) -> None:
    """max_attempts=2, 350 match: lost, lost, no count, lost: the fourth uncounted answer fails the task."""
    emulator.upsert_v2_service("db-fourth", items=_old(350))
    script = _Script(emulator, "db-fourth", ["lost", "lost", "nocount", "lost"])
    with pytest.raises(ImageSearchTransportError):
        _run(monkeypatch, emulator, "db-fourth", script, 2)
    assert _deletes(emulator) == 4


def test_a_delete_that_never_gets_ahead_stops_after_its_bound_of_batches(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator
) -> None:
    """5 match; a writer puts back what each of the first 8 deletes removed, and every answer has no
    count: ceil(5 / 100) + max_attempts = 3 deletes, then the task fails naming what still matches."""
    emulator.upsert_v2_service("db-bound", items=_old(5))
    script = _Script(emulator, "db-bound", ["nocount"] * 8, put_back=8)
    with pytest.raises(AirflowException) as failed:
        _run(monkeypatch, emulator, "db-bound", script, 2)
    assert str(failed.value) == (
        "5 of the 5 item(s) of db-bound that matched {'custom_tags': {'season': ['old']}} when the task "
        "started still match after 3 delete request(s) (0 item(s) deleted)"
    )
    assert _deletes(emulator) == 3


def test_a_batch_that_deleted_nothing_ends_the_deletes_even_without_a_total(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    """5 match at the start; another writer deletes them all right after the task's listing. The task's
    delete deletes nothing, answered with ``delete_num`` 0 but no ``total_num``: no further delete is sent,
    and the count at the end finds nothing left."""
    emulator.upsert_v2_service("db-empty", items=_old(5))
    writer = ImageSearchHook(imagesearch_conn_id=imagesearch_conn("token", conn_id="other_writer"))

    def rewrite(path: str, body: dict[str, Any], status: int, answer: Any) -> Any:
        if path.endswith("/data/check") and body.get("limit") == 100 and _items(emulator, "db-empty"):
            writer.delete_data("db-empty", custom_tags=OLD)
        if path.endswith("/data/delete"):
            answer["data"]["delete_info"].pop("total_num", None)
        return answer

    with RewritingProxy(emulator.url, rewrite) as proxy:
        fields = connection_fields(emulator.url, "token", max_attempts=3)
        fields["extra"]["mms_endpoint"] = proxy.url
        op = ImageSearchV2DeleteDataOperator(
            task_id="purge",
            service_name="db-empty",
            custom_tags=OLD,
            imagesearch_conn_id=set_connection(monkeypatch, "through_proxy", **fields),
        )
        result = op.execute({})
    assert (result["total_num"], result["delete_num"]) == (5, 0)
    assert _deletes(emulator) == 2  # the writer's and the task's


def test_items_added_while_a_lost_batch_ran_are_named_after_the_listing(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator, capfd: pytest.CaptureFixture[str]
) -> None:
    """5 match; the one batch deletes them, a writer adds a matching item, and the answer is lost. The
    listing finds every item of the start gone: the task succeeds and says one item matches now."""
    emulator.upsert_v2_service("db-added", items=_old(5))

    def rewrite(path: str, body: dict[str, Any], status: int, answer: Any) -> Any:
        if path.endswith("/data/delete"):
            emulator.control.add_v2_items(
                "db-added",
                {"new": {"digest": "n", "custom_tags": {"season": "old"}}},
                project_id=DEFAULT_PROJECT_ID,
            )
            raise _AnswerLost(path)
        return answer

    with RewritingProxy(emulator.url, rewrite) as proxy:
        fields = connection_fields(emulator.url, "token", max_attempts=2)
        fields["extra"]["mms_endpoint"] = proxy.url
        op = ImageSearchV2DeleteDataOperator(
            task_id="purge",
            service_name="db-added",
            custom_tags=OLD,
            imagesearch_conn_id=set_connection(monkeypatch, "through_proxy", **fields),
        )
        result = op.execute({})
    assert (result["total_num"], result["delete_num"]) == (5, 5)
    assert sorted(_items(emulator, "db-added")) == ["new"]
    assert (
        "1 item(s) of db-added match {'custom_tags': {'season': ['old']}} now, added while the task ran: every "
        "item that matched when it started (5) is gone (it deleted 5)"
    ) in capfd.readouterr().out


def test_one_answer_without_a_count_and_one_lost_fit_a_budget_of_two(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator, capfd: pytest.CaptureFixture[str]
) -> None:
    """150 match, max_attempts=2: the first answer has no count, the second is lost. Each is one of the
    two uncounted answers allowed, so the task ends with all 150 deleted, saying why it listed."""
    emulator.upsert_v2_service("db-two", items=_old(150))
    result = _run(monkeypatch, emulator, "db-two", _Script(emulator, "db-two", ["nocount", "lost"]), 2)
    assert (result["total_num"], result["delete_num"]) == (150, 150)
    assert _deletes(emulator) == 2
    assert (
        "A delete of up to 100 items matching {'custom_tags': {'season': ['old']}} was answered without a "
        "count: 50 match now"
    ) in capfd.readouterr().out
