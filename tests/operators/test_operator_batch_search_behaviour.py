"""What a batch of searches (``ImageSearchSearchImagesOperator`` with ``queries``) does with its arguments.

Run with ``execute`` against the emulator, the results table on SQLite: the arguments the operator refuses
before any search (each error names the argument and the allowed form), the arguments it passes on to every
query (``tags``, ``offset``, ``min_similarity``: what lands in the table), the run id the rows carry without
a DAG run, and the failure message a user reads when queries fail (the count of each reason, then the first
problems, each readable on its own).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, DEFAULT_REGION, Emulator
from airflow_provider_imagesearch.emulator.routes import R_SEARCH
from airflow_provider_imagesearch.operators.imagesearch import ImageSearchSearchImagesOperator
from airflow_provider_imagesearch.version_compat import AirflowException, AirflowFailException
from tests.support.sqlite_connection import sqlite_connection

INSTANCE = "batch-lib"
RESULTS_CONN = "batch_results_db"
TABLE = "imagesearch_search_results"
BUCKET = f"https://shop.obs.{DEFAULT_REGION}.myhuaweicloud.com"
LIBRARY = {f"{BUCKET}/lib/{i:03d}.jpg": {"color": "red" if i % 2 else "blue"} for i in range(12)}


def obs(key: str) -> str:
    return f"{BUCKET}/{key}"


@pytest.fixture
def results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The results connection on a fresh SQLite file, and an engine to read the table."""
    engine = sqlite_connection(monkeypatch, RESULTS_CONN, tmp_path / "results.db")
    yield engine
    engine.dispose()


@pytest.fixture
def search(emulator: Emulator, imagesearch_conn: Callable[..., str]) -> Callable[..., dict[str, Any]]:
    """``search(queries, context={"run_id": ...}, **kwargs)``: one batch task's XCom (raises like the task)."""
    images = {path: {"tags": tags} for path, tags in LIBRARY.items()}
    emulator.upsert_instance(INSTANCE, project_id=DEFAULT_PROJECT_ID, tags=["color"], images=images)
    conn_id = imagesearch_conn("aksk", max_attempts=1)

    def run(queries: Any, *, context: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
        op = ImageSearchSearchImagesOperator(
            task_id="batch",
            instance_name=INSTANCE,
            queries=queries,
            imagesearch_conn_id=conn_id,
            results_conn_id=kwargs.pop("results_conn_id", RESULTS_CONN),
            **kwargs,
        )
        result: dict[str, Any] = op.execute({"run_id": "run-1"} if context is None else context)  # type: ignore[arg-type]
        return result

    return run


def rows(engine: Any, run_id: str = "run-1") -> list[dict[str, Any]]:
    import sqlalchemy as sa

    with engine.connect() as connection:
        found = connection.execute(
            sa.text(f"SELECT * FROM {TABLE} WHERE run_id = :r ORDER BY query_id, rank"), {"r": run_id}
        )
        return [dict(row._mapping) for row in found]


def searches(emulator: Emulator) -> int:
    return sum(1 for r in emulator.requests_log() if r["route"] == R_SEARCH)


QUERIES = [{"query_id": "q0", "path": obs("lib/000.jpg")}, {"query_id": "q1", "path": obs("lib/001.jpg")}]


# --- arguments refused before the first search ------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field", "allowed"),
    [
        ({"results_conn_id": ""}, "results_conn_id", "the id of a SQL connection"),
        ({"results_conn_id": 7}, "results_conn_id", "the id of a SQL connection"),
        ({"max_concurrency": 0}, "max_concurrency", "an integer from 1 to 1024"),
        ({"max_concurrency": "8"}, "max_concurrency", "an integer from 1 to 1024"),
        ({"max_concurrency": True}, "max_concurrency", "an integer from 1 to 1024"),
        ({"max_failed": 1025}, "max_failed", "an integer from 0 to 1024"),
        ({"max_failed": -1}, "max_failed", "an integer from 0 to 1024"),
        ({"max_failed": True}, "max_failed", "an integer from 0 to 1024"),
        ({"tags": {"color": 5}}, "tags['color']", "a string or a list of strings"),
        ({"min_similarity": 1.5}, "min_similarity", "a number from 0 to 1"),
    ],
    ids=lambda value: repr(value) if isinstance(value, dict) else None,
)
def test_a_bad_batch_argument_fails_the_task_naming_it_before_any_search(
    search: Callable[..., dict[str, Any]],
    results: Any,
    emulator: Emulator,
    kwargs: dict[str, Any],
    field: str,
    allowed: str,
) -> None:
    emulator.reset_stats()
    with pytest.raises(AirflowFailException) as refused:
        search(QUERIES, **kwargs)
    assert f"Invalid {field} " in str(refused.value)
    assert allowed in str(refused.value)
    assert searches(emulator) == 0


def test_the_bounds_of_max_failed_are_inclusive(search: Callable[..., dict[str, Any]], results: Any) -> None:
    # 1024 is the largest max_failed allowed, 0 the smallest max_failed and 1 the smallest max_concurrency.
    assert search(QUERIES, max_failed=1024, max_concurrency=1, limit=2)["succeeded"] == 2
    assert search(QUERIES, max_failed=0, max_concurrency=1, limit=2)["succeeded"] == 2


# --- what every query of the batch is searched with -------------------------------------------------------


def test_the_operators_tags_filter_every_query(search: Callable[..., dict[str, Any]], results: Any) -> None:
    summary = search(QUERIES, tags={"color": "red"}, limit=4)
    stored = rows(results)
    assert summary["hits"] == len(stored) == 8
    assert {json.loads(row["tags"])["color"] for row in stored} == {"red"}


def test_the_operators_offset_skips_the_best_hits_of_every_query(
    search: Callable[..., dict[str, Any]], results: Any
) -> None:
    search(QUERIES, limit=4, context={"run_id": "from-0"})
    search(QUERIES, limit=3, offset=1, context={"run_id": "from-1"})
    first = [(r["query_id"], r["path"]) for r in rows(results, "from-0")]
    skipped = [(r["query_id"], r["path"]) for r in rows(results, "from-1")]
    assert skipped == first[1:4] + first[5:8]  # each query's hits from its second best on
    assert [r["rank"] for r in rows(results, "from-1")] == [1, 2, 3, 1, 2, 3]


def test_min_similarity_drops_the_less_similar_hits_of_every_query(
    search: Callable[..., dict[str, Any]], results: Any
) -> None:
    search(QUERIES, limit=6, context={"run_id": "all"})
    similarities = sorted(row["similarity"] for row in rows(results, "all"))
    threshold = similarities[len(similarities) // 2]
    assert similarities[0] < threshold  # the control: some hits are less similar

    summary = search(QUERIES, limit=6, min_similarity=threshold, context={"run_id": "kept"})
    kept = rows(results, "kept")
    assert kept, "the most similar hits are kept"
    assert all(row["similarity"] >= threshold for row in kept)
    assert summary["hits"] == len(kept) == sum(1 for s in similarities if s >= threshold)


def test_without_a_dag_run_the_rows_and_the_xcom_say_manual(
    search: Callable[..., dict[str, Any]], results: Any
) -> None:
    summary = search(QUERIES, limit=2, context={})
    assert summary["run_id"] == "manual"
    assert len(rows(results, "manual")) == 4


# --- the failure message ----------------------------------------------------------------------------------


def _segment(message: str, start: str, end: str) -> str:
    return message[message.index(start) + len(start) : message.index(end, message.index(start))]


def test_the_failure_counts_each_reason_and_lists_the_first_problems_apart(
    search: Callable[..., dict[str, Any]], results: Any, emulator: Emulator
) -> None:
    queries = [
        {"query_id": "gateway", "path": obs("lib/000.jpg")},
        {"query_id": "gone-1", "path": obs("not/here-1.jpg")},
        {"query_id": "fine", "path": obs("lib/001.jpg")},
        {"query_id": "gone-2", "path": obs("not/here-2.jpg")},
    ]
    # One query at a time, one attempt each: the first search meets the gateway's 503.
    emulator.set_faults(sequence=["503_json"])
    with pytest.raises(AirflowException) as failed:
        search(queries, limit=2, max_concurrency=1)
    message = str(failed.value)
    assert "3 queries failed" in message
    reasons = _segment(message, "By reason: ", ". First")
    assert sorted(reasons.split(", ")) == ["APIGW.0613 x1", "IS.9002 x2"]
    problems = message[message.index("First 3: ") + len("First 3: ") :].split("; ")
    assert [p.split(" (row")[0] for p in problems] == ["query 'gateway'", "query 'gone-1'", "query 'gone-2'"]
    assert [r["query_id"] for r in rows(results)] == ["fine", "fine"]
