"""A conditional v2 delete is bounded and checks what is left (review of issues 20/21, items 1 and 2).

``ImageSearchV2DeleteDataOperator(custom_tags=...)`` deletes batch by batch (the service deletes up to 100 per
call). It used to loop "until none matches" with no bound (a writer adding matching items kept it going), and
to read a batch answered without ``data`` as "0 deleted" and stop, succeeding with items still matching. A
rewriting proxy between the provider and the emulator plays the racing writer and the answer without data.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from airflow.sdk import DAG

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from airflow_provider_imagesearch.operators.imagesearch_v2 import ImageSearchV2DeleteDataOperator
from tests.support.connections import connection_fields, set_connection
from tests.support.dagrun import run_dag, states, xcom
from tests.support.rewriting_proxy import RewritingProxy

pytestmark = pytest.mark.usefixtures("airflow_db")

ATTEMPTS = 3
OLD = {"custom_tags": {"season": "old"}}


def _old_items(prefix: str, count: int) -> dict[str, Any]:
    return {f"{prefix}{n:04d}": {"digest": f"{prefix}{n}", **OLD} for n in range(count)}


def _items(emulator: Emulator, service: str) -> dict[str, Any]:
    for found in emulator.control.state()["v2_services"]:
        if found["name"] == service and found["project_id"] == DEFAULT_PROJECT_ID:
            items: dict[str, Any] = found["items"]
            return items
    return {}


def _sent(emulator: Emulator, suffix: str) -> int:
    return sum(1 for r in emulator.requests_log() if r["path"].endswith(suffix))


def _purge(dag_id: str, service: str, conn_id: str) -> Any:
    with DAG(dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
        ImageSearchV2DeleteDataOperator(
            task_id="op",
            service_name=service,
            custom_tags={"season": ["old"]},
            retries=0,
            retry_delay=timedelta(seconds=0),
            imagesearch_conn_id=conn_id,
        )
    return run_dag(dag)


def _through(monkeypatch: pytest.MonkeyPatch, emulator: Emulator, proxy: RewritingProxy) -> str:
    fields = connection_fields(emulator.url, "token", max_attempts=ATTEMPTS)
    fields["extra"]["mms_endpoint"] = proxy.url
    return set_connection(monkeypatch, "imagesearch_default", **fields)


def _writer(emulator: Emulator, service: str, rounds: int) -> Callable[..., Any]:
    """After each of the first ``rounds`` conditional deletes, 100 more matching items arrive."""
    added = {"rounds": 0}

    def rewrite(path: str, body: dict[str, Any], status: int, answer: Any) -> Any:
        if path.endswith("/data/delete") and added["rounds"] < rounds:
            added["rounds"] += 1
            emulator.control.add_v2_items(
                service, _old_items(f"w{added['rounds']:02d}-", 100), project_id=DEFAULT_PROJECT_ID
            )
        return answer

    return rewrite


def _without_data(path: str, body: dict[str, Any], status: int, answer: Any) -> Any:
    if path.endswith("/data/delete") and status == 200 and isinstance(answer, dict):
        return {k: v for k, v in answer.items() if k != "data"}
    return answer


def test_a_writer_racing_the_delete_cannot_keep_it_going(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator, capfd: pytest.CaptureFixture[str]
) -> None:
    """250 match at the start; 100 more arrive after every batch. The operator stops once it has deleted as
    many as matched at the start (3 batches, 300 deleted: a batch takes whichever 100 match), checks what is
    left, and succeeds, saying that what matches now was added while it ran."""
    emulator.upsert_v2_service("race", items=_old_items("o", 250))
    with RewritingProxy(emulator.url, _writer(emulator, "race", rounds=20)) as proxy:
        dr = _purge("bounds_race", "race", _through(monkeypatch, emulator, proxy))
    assert states(dr) == {("op", -1): ("success", 1)}
    result = xcom(dr, "op")
    assert (result["total_num"], result["delete_num"]) == (250, 300)
    assert _sent(emulator, "/data/delete") == 3
    assert len(_items(emulator, "race")) == 250  # 250 + 3 x 100 added - 300 deleted
    assert (
        "match {'custom_tags': {'season': ['old']}} now, added while the task ran" in capfd.readouterr().out
    )


def test_batches_answered_without_data_are_counted_by_reading_back(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator
) -> None:
    """A batch answered without ``data`` (the SDK models it optional) is counted by listing which of the
    items that matched at the start are gone."""
    emulator.upsert_v2_service("nodata", items={**_old_items("o", 250), "keep": {"digest": "k"}})
    with RewritingProxy(emulator.url, _without_data) as proxy:
        dr = _purge("bounds_nodata", "nodata", _through(monkeypatch, emulator, proxy))
    assert states(dr) == {("op", -1): ("success", 1)}
    assert sorted(_items(emulator, "nodata")) == ["keep"]
    result = xcom(dr, "op")
    assert (result["total_num"], result["delete_num"], result["deleted_ids"]) == (250, 250, [])
    assert _sent(emulator, "/data/delete") == 3
    # The listing at the start (3 pages), then one of what matches after each batch (150, 50, 0 left).
    assert _sent(emulator, "/data/check") == 3 + 2 + 1 + 1


def test_a_delete_that_cannot_tell_its_progress_stops_and_fails_naming_what_still_matches(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator, capfd: pytest.CaptureFixture[str]
) -> None:
    """Answers without data while a writer puts back every item a batch deletes (same ids): every listing
    finds all the items that matched at the start, so no progress can be counted. The operator stops after
    the bounded number of batches (ceil(250/100) + max_attempts) and fails, naming how many still match."""
    emulator.upsert_v2_service("blind", items=_old_items("o", 250))

    def rewrite(path: str, body: dict[str, Any], status: int, answer: Any) -> Any:
        if path.endswith("/data/delete") and status == 200 and isinstance(answer, dict):
            put_back = [item["id"] for item in answer.get("data", {}).get("items", [])]
            emulator.control.add_v2_items(
                "blind", {i: {"digest": i, **OLD} for i in put_back}, project_id=DEFAULT_PROJECT_ID
            )
        return _without_data(path, body, status, answer)

    with RewritingProxy(emulator.url, rewrite) as proxy:
        dr = _purge("bounds_blind", "blind", _through(monkeypatch, emulator, proxy))
    assert states(dr) == {("op", -1): ("failed", 1)}
    assert _sent(emulator, "/data/delete") == 3 + ATTEMPTS
    assert "250 of the 250 item(s) of blind that matched" in capfd.readouterr().out


def test_a_writer_cannot_cancel_the_count_of_batches_answered_without_data(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator, capfd: pytest.CaptureFixture[str]
) -> None:
    """Answers without data while a writer adds 100 new matching items after every batch: "matched before
    minus matched after" would count nothing. The batches are counted by the items that matched at the start
    and are gone, so after 3 batches every one of them is gone and the task succeeds, warning about the
    items added while it ran (review round 2, item 1)."""
    emulator.upsert_v2_service("unblind", items=_old_items("o", 250))
    writer = _writer(emulator, "unblind", rounds=1000)

    def rewrite(path: str, body: dict[str, Any], status: int, answer: Any) -> Any:
        return _without_data(path, body, status, writer(path, body, status, answer))

    with RewritingProxy(emulator.url, rewrite) as proxy:
        dr = _purge("bounds_unblind", "unblind", _through(monkeypatch, emulator, proxy))
    assert states(dr) == {("op", -1): ("success", 1)}
    assert not [i for i in _items(emulator, "unblind") if i.startswith("o")]
    assert (xcom(dr, "op")["total_num"], xcom(dr, "op")["delete_num"]) == (250, 250)
    assert _sent(emulator, "/data/delete") == 3
    assert "added while the task ran" in capfd.readouterr().out


def test_nothing_matching_sends_no_delete(imagesearch_conn: Callable[..., str], emulator: Emulator) -> None:
    emulator.upsert_v2_service("none-old", items={"new": {"digest": "n", "custom_tags": {"season": "new"}}})
    dr = _purge("bounds_none", "none-old", imagesearch_conn("token"))
    assert states(dr) == {("op", -1): ("success", 1)}
    assert xcom(dr, "op") == {"deleted_ids": [], "total_num": 0, "delete_num": 0, "gone_ids": []}
    assert _sent(emulator, "/data/delete") == 0
    assert sorted(_items(emulator, "none-old")) == ["new"]
