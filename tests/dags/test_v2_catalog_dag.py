"""The example v2 catalog DAG end to end in real Airflow, against the emulator, into SQLite."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from tests.support.dagrun import states, xcom

pytestmark = pytest.mark.usefixtures("airflow_db")

REPO = Path(__file__).resolve().parents[2]
DAG_FILE = REPO / "dags" / "imagesearch_v2_catalog.py"
DAG_ID = "imagesearch_v2_catalog"
#: Rows of dags/data/imagesearch_v2_catalog.csv.
MANIFEST_ROWS = 6


def test_v2_catalog_end_to_end(
    imagesearch_conn: Callable[..., str], emulator: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import sqlalchemy as sa
    from airflow.dag_processing.dagbag import DagBag

    from airflow_provider_imagesearch.emulator.routes_v2 import R2_ADD, V2_ROUTES

    emulator.upsert_v2_service("catalog", custom_tags=["color"], custom_num_tags=["price"], items={})
    db_file = tmp_path / "catalog.db"
    monkeypatch.setenv("AIRFLOW_CONN_CATALOG_DB", json.dumps({"conn_type": "sqlite", "host": str(db_file)}))
    bag = DagBag(dag_folder=str(DAG_FILE))
    assert not bag.import_errors, bag.import_errors
    dag = bag.dags[DAG_ID]
    conf = {"imagesearch_conn_id": imagesearch_conn("aksk"), "db_conn_id": "catalog_db"}
    dr = dag.test(run_conf=conf)
    assert str(dr.state) == "success", states(dr)
    assert states(dr)[("import_items", -1)] == ("success", 1)
    counts = xcom(dr, "import_items")
    assert (counts["added"], counts["invalid"], counts["failed"]) == (MANIFEST_ROWS, 0, 0)
    adds = [r for r in emulator.requests_log() if r["route"] == R2_ADD]
    assert len(adds) == MANIFEST_ROWS  # one data/add per row, no mapped task per item
    by_image = xcom(dr, "search_by_image")
    assert by_image[0]["id"] == "sku-red-shirt"  # the query image itself
    assert by_image[0]["score"] == 1.0
    by_keyword = xcom(dr, "search_by_keyword")
    assert sorted(h["id"] for h in by_keyword) == ["sku-blue-shirt", "sku-red-shirt", "sku-white-shirt"]
    assert by_keyword[0]["custom_num_tags"] in ({"price": 24.5}, {"price": 19.9}, {"price": 29.0})
    assert xcom(dr, "write_results") == {"table": "imagesearch_v2_results", "rows": len(by_image) + 3}
    engine = sa.create_engine(f"sqlite:///{db_file}")
    with engine.connect() as connection:
        rows: list[Any] = connection.execute(
            sa.text(
                "SELECT query, rank, item_id FROM imagesearch_v2_results WHERE run_id = :r ORDER BY query, rank"
            ),
            {"r": dr.run_id},
        ).all()
    assert rows[0] == ("image", 1, "sku-red-shirt")
    assert [r[2] for r in rows if r[0] == "keyword"] == [h["id"] for h in by_keyword]

    # A second run of the unchanged manifest: the ledger says everything is there, no data/add is sent.
    emulator.reset_stats()
    again = dag.test(run_conf=conf)
    assert str(again.state) == "success", states(again)
    assert xcom(again, "import_items")["unchanged"] == MANIFEST_ROWS
    assert xcom(again, "import_items")["added"] == 0
    routes = [r["route"] for r in emulator.requests_log() if r["route"] in V2_ROUTES]
    assert R2_ADD not in routes
    assert routes  # the searches still ran
    with engine.connect() as connection:
        ledger = connection.execute(
            sa.text("SELECT api, outcome, COUNT(*) FROM imagesearch_import_ledger GROUP BY api, outcome")
        ).all()
    engine.dispose()
    assert ledger == [("v2", "added", MANIFEST_ROWS)]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_write_results_replaces_the_runs_rows_and_keeps_other_runs(
    backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A retry with other hits leaves exactly its own rows for the run; other runs' rows stay; a table
    created by an earlier version (pandas ``to_sql``: no primary key) is written the same way."""
    import sqlalchemy as sa
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.execution_time.context import set_current_context

    if backend == "sqlite":
        uri = f"sqlite:///{tmp_path / 'results.db'}"
        monkeypatch.setenv("AIRFLOW_CONN_CATALOG_DB", json.dumps({"conn_type": "sqlite", "host": uri[10:]}))
    else:
        uri = request.getfixturevalue("postgres_uri")
        monkeypatch.setenv("AIRFLOW_CONN_CATALOG_DB", uri)
        uri = uri.replace("postgres://", "postgresql+psycopg2://")
    engine = sa.create_engine(uri)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE IF EXISTS v2_hits"))
        connection.execute(
            sa.text(
                'CREATE TABLE v2_hits (run_id TEXT, query TEXT, rank BIGINT, item_id TEXT, score FLOAT, "desc" TEXT,'
                " keywords TEXT)"
            )
        )
        connection.execute(
            sa.text("INSERT INTO v2_hits VALUES ('earlier', 'image', 1, 'sku-0', 0.5, NULL, '')")
        )
    write = DagBag(dag_folder=str(DAG_FILE)).dags[DAG_ID].get_task("write_results")
    context: Any = {"run_id": "manual__1", "params": {"table": "v2_hits", "db_conn_id": "catalog_db"}}
    first = [{"id": f"sku-{i}", "score": 1.0 - i / 10} for i in range(3)]
    with set_current_context(context):
        write.python_callable(first, first)  # type: ignore[attr-defined]
    retry = [{"id": "sku-9", "score": 0.9, "desc": "d", "keywords": ["a", "b"]}]
    with set_current_context(context):
        assert write.python_callable(retry, []) == {"table": "v2_hits", "rows": 1}  # type: ignore[attr-defined]
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT run_id, query, rank, item_id, keywords FROM v2_hits ORDER BY run_id")
        ).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [
        ("earlier", "image", 1, "sku-0", ""),
        ("manual__1", "image", 1, "sku-9", "a,b"),
    ]
