"""Batch search against the emulator over loopback, its results table on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from airflow_provider_imagesearch.emulator.routes import R_SEARCH
from airflow_provider_imagesearch.errors import ImageSearchValidationError
from airflow_provider_imagesearch.searches import check_queries
from airflow_provider_imagesearch.version_compat import AirflowException, AirflowFailException
from tests.imports.conftest import INSTANCE, obs
from tests.support.connections import set_connection
from tests.support.sqlite_connection import sqlite_connection

RESULTS_CONN = "search_results_db"
TABLE = "imagesearch_search_results"
LIBRARY = {obs(f"lib/{i:03d}.jpg"): {"color": "red" if i % 2 else "blue"} for i in range(30)}

RunSearch = Callable[..., dict[str, Any]]


@pytest.fixture(params=["sqlite", "postgres"])
def results_conn(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    """The results connection (``search_results_db``) and a SQLAlchemy engine on it."""
    import sqlalchemy as sa

    if request.param == "sqlite":
        engine = sqlite_connection(monkeypatch, RESULTS_CONN, tmp_path / "results.db")
    else:
        uri = request.getfixturevalue("postgres_uri")
        monkeypatch.setenv("AIRFLOW_CONN_" + RESULTS_CONN.upper(), uri)
        engine = sa.create_engine(uri.replace("postgres://", "postgresql+psycopg2://"))
        with engine.begin() as connection:
            connection.execute(sa.text(f"DROP TABLE IF EXISTS {TABLE}"))
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    engine = sqlite_connection(monkeypatch, RESULTS_CONN, tmp_path / "results.db")
    yield engine
    engine.dispose()


@pytest.fixture
def library(emulator: Emulator) -> dict[str, dict[str, str]]:
    images = {path: {"tags": tags} for path, tags in LIBRARY.items()}
    emulator.upsert_instance(INSTANCE, project_id=DEFAULT_PROJECT_ID, tags=["color"], images=images)
    return LIBRARY


@pytest.fixture
def run_search(imagesearch_conn: Callable[..., str], library: dict[str, Any]) -> RunSearch:
    """``run_search(queries, run_id=..., **operator kwargs)`` -> the XCom value (raises like the task)."""
    from airflow_provider_imagesearch.operators.imagesearch import ImageSearchSearchImagesOperator

    conn_id = imagesearch_conn("aksk", max_attempts=1)
    counter = {"n": 0}

    def run(queries: Any = None, *, run_id: str = "run-1", **kwargs: Any) -> dict[str, Any]:
        counter["n"] += 1
        op = ImageSearchSearchImagesOperator(
            task_id=f"search_{counter['n']}",
            instance_name=INSTANCE,
            queries=queries,
            imagesearch_conn_id=conn_id,
            results_conn_id=RESULTS_CONN,
            **kwargs,
        )
        result: dict[str, Any] = op.execute({"run_id": run_id})  # type: ignore[arg-type]
        json.dumps(result)  # XCom-serialisable
        return result

    return run


def table_rows(engine: Any, run_id: str | None = None) -> list[dict[str, Any]]:
    import sqlalchemy as sa

    where = " WHERE run_id = :r" if run_id else ""
    with engine.connect() as connection:
        result = connection.execute(
            sa.text(f"SELECT * FROM {TABLE}{where} ORDER BY run_id, query_id, rank"), {"r": run_id}
        )
        return [dict(row._mapping) for row in result]


def by_query(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row["query_id"], []).append(row)
    return grouped


def _queries(count: int = 30) -> list[dict[str, Any]]:
    return [{"query_id": f"q{i:03d}", "path": obs(f"lib/{i:03d}.jpg")} for i in range(count)]


def search_requests(emulator: Emulator) -> list[dict[str, Any]]:
    return [r for r in emulator.requests_log() if r["route"] == R_SEARCH]


def test_many_queries_into_a_table_and_a_rerun_replaces(
    run_search: RunSearch, results_conn: Any, emulator: Emulator
) -> None:
    result = run_search(_queries(), limit=5, max_concurrency=4)
    assert result == {
        "queries": 30,
        "succeeded": 30,
        "failed": 0,
        "hits": 150,
        "seconds": result["seconds"],
        "table": TABLE,
        "run_id": "run-1",
    }
    assert len(search_requests(emulator)) == 30
    rows = table_rows(results_conn)
    grouped = by_query(rows)
    assert sorted(grouped) == [f"q{i:03d}" for i in range(30)]
    for index, (query_id, hits) in enumerate(sorted(grouped.items())):
        assert [h["rank"] for h in hits] == [1, 2, 3, 4, 5], query_id
        assert hits[0]["path"] == obs(f"lib/{index:03d}.jpg")  # the query image itself ranks first
        assert hits[0]["similarity"] == 1.0
        assert [h["similarity"] for h in hits] == sorted((h["similarity"] for h in hits), reverse=True)
        assert all(json.loads(h["tags"]) == LIBRARY[h["path"]] for h in hits)
        assert {h["instance_name"] for h in hits} == {INSTANCE}

    # A retry of the same run replaces its rows: same content, no duplicate.
    again = run_search(_queries(), limit=5, max_concurrency=4)
    assert (again["hits"], again["failed"]) == (150, 0)
    rerun = table_rows(results_conn)
    assert [(r["query_id"], r["rank"], r["path"]) for r in rerun] == [
        (r["query_id"], r["rank"], r["path"]) for r in rows
    ]
    # Another run keeps its own rows beside them.
    run_search(_queries()[:3], run_id="run-2", limit=2)
    assert len(table_rows(results_conn, "run-1")) == 150
    assert len(table_rows(results_conn, "run-2")) == 6


def test_the_batch_finds_what_a_single_search_finds(
    run_search: RunSearch, sqlite_results: Any, imagesearch_conn: Callable[..., str]
) -> None:
    from airflow_provider_imagesearch.operators.imagesearch import ImageSearchSearchImagesOperator

    single = ImageSearchSearchImagesOperator(
        task_id="single",
        instance_name=INSTANCE,
        path=obs("lib/007.jpg"),
        tags={"color": "red"},
        limit=4,
        fetch_all=True,
        imagesearch_conn_id=imagesearch_conn("aksk"),
    ).execute({"run_id": "single"})  # type: ignore[arg-type]
    queries = [{"query_id": "seven", "path": obs("lib/007.jpg"), "tags": '{"color": "red"}'}]
    result = run_search(queries, limit=4, fetch_all=True)
    assert result["hits"] == len(single) == 15  # every red image, in pages of 4
    stored = table_rows(sqlite_results)
    assert [(r["path"], r["similarity"], json.loads(r["tags"])) for r in stored] == [
        (h["path"], h["similarity"], h["tags"]) for h in single
    ]


def test_a_failed_query_writes_no_row_and_the_others_are_written(
    run_search: RunSearch, results_conn: Any
) -> None:
    queries = _queries(6)
    queries.insert(2, {"query_id": "unknown", "path": obs("not/in/the/library.jpg")})
    with pytest.raises(AirflowFailException) as failure:
        run_search(queries, limit=3, max_concurrency=3)
    message = str(failure.value)
    assert "1 queries failed" in message
    assert "query 'unknown' (row 3): IS.9002" in message  # the emulator's own "image not found"
    grouped = by_query(table_rows(results_conn))
    assert sorted(grouped) == [f"q{i:03d}" for i in range(6)]
    assert all(len(hits) == 3 for hits in grouped.values())

    tolerated = run_search(queries, limit=3, max_failed=1)
    assert (tolerated["succeeded"], tolerated["failed"], tolerated["hits"]) == (6, 1, 18)
    assert len(table_rows(results_conn)) == 18  # replaced, not duplicated


def test_a_transient_failure_is_retryable_and_keeps_the_earlier_complete_rows(
    run_search: RunSearch, sqlite_results: Any, emulator: Emulator
) -> None:
    first = run_search(_queries(4), limit=3, max_concurrency=1)
    assert first["hits"] == 12
    before = table_rows(sqlite_results)
    # The connection allows one attempt: the first query's 503 outlasts the hook's retries.
    emulator.set_faults(sequence=["503_json"])
    with pytest.raises(AirflowException) as failure:
        run_search(_queries(4), limit=3, max_concurrency=1)
    assert not isinstance(failure.value, AirflowFailException)  # Airflow may retry it
    assert "query 'q000' (row 1)" in str(failure.value)
    after = table_rows(sqlite_results)
    assert [(r["query_id"], r["rank"], r["path"]) for r in after] == [
        (r["query_id"], r["rank"], r["path"]) for r in before
    ]


def test_a_query_failing_on_a_later_page_writes_none_of_its_pages(
    run_search: RunSearch, sqlite_results: Any, emulator: Emulator
) -> None:
    queries = [
        {"query_id": "paged", "path": obs("lib/001.jpg"), "tags": {"color": "red"}},
        {"query_id": "whole", "path": obs("lib/002.jpg"), "tags": {"color": "blue"}},
    ]
    # One query at a time: "paged" gets its first page, then a 503 (one attempt allowed) on its second.
    emulator.set_faults(sequence=["ok", "503_json"])
    with pytest.raises(AirflowException) as failure:
        run_search(queries, limit=4, fetch_all=True, max_concurrency=1)
    assert "query 'paged' (row 1): APIGW.0613" in str(failure.value)  # the gateway's 503
    grouped = by_query(table_rows(sqlite_results))
    assert sorted(grouped) == ["whole"]
    assert len(grouped["whole"]) == 15  # all 15 blue images, over 4 pages


def test_queries_from_a_csv_file_and_from_sql(
    run_search: RunSearch, sqlite_results: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlalchemy as sa

    csv = tmp_path / "queries.csv"
    csv.write_text(
        "query_id,path,tag.color,limit\n"
        f"a,{obs('lib/001.jpg')},red,2\n"
        f"b,{obs('lib/002.jpg')},,4\n"
        f"c,{obs('lib/003.jpg')},blue,\n"
    )
    result = run_search(str(csv), limit=3)
    assert result["hits"] == 2 + 4 + 3
    grouped = by_query(table_rows(sqlite_results))
    assert {json.loads(h["tags"])["color"] for h in grouped["a"]} == {"red"}
    assert {json.loads(h["tags"])["color"] for h in grouped["c"]} == {"blue"}

    source = tmp_path / "source.db"
    set_connection(monkeypatch, "queries_db", conn_type="sqlite", host=str(source))
    engine = sa.create_engine(f"sqlite:///{source}")
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE wanted (query_id INTEGER, path TEXT, tags TEXT)"))
        connection.execute(
            sa.text("INSERT INTO wanted VALUES (:i, :p, :t)"),
            [{"i": i, "p": obs(f"lib/{i:03d}.jpg"), "t": '{"color": "blue"}'} for i in (10, 12)],
        )
    engine.dispose()
    from_sql = run_search(
        None, run_id="run-sql", queries_sql="SELECT * FROM wanted", queries_conn_id="queries_db", limit=2
    )
    assert (from_sql["queries"], from_sql["hits"]) == (2, 4)
    assert sorted(by_query(table_rows(sqlite_results, "run-sql"))) == ["10", "12"]


@pytest.mark.parametrize(
    ("rows", "field", "allowed"),
    [
        ([{"path": obs("lib/001.jpg")}], "query_id (queries row 1)", "non-empty string"),
        (
            [{"query_id": "a", "path": obs("a")}, {"query_id": " ", "path": obs("b")}],
            "query_id (queries row 2)",
            "",
        ),
        ([{"query_id": "a"}], "path/file (queries row 1)", "path (an image of the library) or file"),
        (
            [{"query_id": "a", "path": obs("a")}, {"query_id": "a", "file": "x.png"}],
            "query_id (queries row 2)",
            "row 1 already has it",
        ),
        (
            [{"query_id": "a", "path": obs("a"), "tags": '{"color": {"x": "y"}}'}],
            "tags (queries row 1)",
            "flat map",
        ),
        ([{"query_id": "a", "path": obs("a"), "limit": "500"}], "limit (queries row 1)", "1 to 100"),
        ([{"query_id": "a", "path": 5}], "path (queries row 1)", "string"),
    ],
)
def test_bad_query_rows_are_refused_naming_the_row_and_field(
    rows: list[dict[str, Any]], field: str, allowed: str
) -> None:
    with pytest.raises(ImageSearchValidationError) as refused:
        check_queries(rows)
    assert refused.value.field == field
    assert allowed in refused.value.allowed


def test_bad_queries_fail_the_task_before_any_search(
    run_search: RunSearch, sqlite_results: Any, emulator: Emulator
) -> None:
    emulator.reset_stats()
    with pytest.raises(AirflowFailException, match=r"query_id \(queries row 3\)"):
        run_search([*_queries(2), {"query_id": "q000", "path": obs("lib/005.jpg")}])
    with pytest.raises(AirflowFailException, match=r"Invalid path .*None with queries"):
        run_search(_queries(2), path=obs("lib/001.jpg"))
    with pytest.raises(AirflowFailException, match="Invalid queries_conn_id"):
        run_search(None, queries_sql="SELECT 1")
    with pytest.raises(AirflowFailException, match="Invalid results_table"):
        run_search(_queries(2), results_table="bad name")
    assert search_requests(emulator) == []


def test_progress_is_logged(
    run_search: RunSearch, sqlite_results: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    # The task logger writes through Airflow's structlog to the console, not to caplog.
    run_search(_queries(20), limit=1, max_concurrency=2)
    out = capfd.readouterr().out
    progress = [
        line[line.index("Search progress") :] for line in out.splitlines() if "Search progress" in line
    ]
    assert progress, out[-2000:]
    assert progress[-1].startswith("Search progress: 20/20 queries (100%)")
    assert "0 failed" in progress[-1]
    assert "ETA" in progress[-1]
    assert len(progress) >= 5  # at most 2 queries finish per line here: at least 10 lines for 20 queries


def test_a_missing_instance_stops_the_batch_at_once(
    imagesearch_conn: Callable[..., str], sqlite_results: Any, emulator: Emulator
) -> None:
    from airflow_provider_imagesearch.operators.imagesearch import ImageSearchSearchImagesOperator

    emulator.reset_stats()
    op = ImageSearchSearchImagesOperator(
        task_id="search_missing",
        instance_name="no-such-instance",
        queries=_queries(40),
        imagesearch_conn_id=imagesearch_conn("aksk"),
        results_conn_id=RESULTS_CONN,
        max_concurrency=2,
    )
    with pytest.raises(AirflowFailException, match="no-such-instance"):
        op.execute({"run_id": "run-1"})  # type: ignore[arg-type]
    # Not 40 searches: the first answer stops the batch; only the two already in flight were sent.
    assert len(search_requests(emulator)) <= 2
    assert table_rows(sqlite_results) == []


def test_a_queries_file_the_reader_refuses_is_named_as_queries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The queries are read with the import's manifest reader: its refusal must name this argument.
    from airflow_provider_imagesearch.searches import read_queries

    monkeypatch.chdir(tmp_path)
    Path("manifest.txt").write_text("query_id,path\nq1,x\n")
    with pytest.raises(ImageSearchValidationError) as caught:
        read_queries("manifest.txt")
    assert caught.value.field == "queries"
    assert str(caught.value).startswith("Invalid queries 'manifest.txt': a file name ending in")
