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


def test_v2_catalog_end_to_end(
    imagesearch_conn: Callable[..., str], emulator: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import sqlalchemy as sa
    from airflow.dag_processing.dagbag import DagBag

    emulator.upsert_v2_service("catalog", custom_tags=["color"], custom_num_tags=["price"], items={})
    db_file = tmp_path / "catalog.db"
    monkeypatch.setenv("AIRFLOW_CONN_CATALOG_DB", json.dumps({"conn_type": "sqlite", "host": str(db_file)}))
    bag = DagBag(dag_folder=str(DAG_FILE))
    assert not bag.import_errors, bag.import_errors
    dag = bag.dags[DAG_ID]
    conf = {"imagesearch_conn_id": imagesearch_conn("aksk"), "db_conn_id": "catalog_db"}
    for _ in range(2):  # a re-run overwrites (force=True) instead of failing on existing items
        dr = dag.test(run_conf=conf)
        assert str(dr.state) == "success", states(dr)
    assert [states(dr)[("add_items", i)] for i in range(3)] == [("success", 1)] * 3
    by_image = xcom(dr, "search_by_image")
    assert by_image[0]["id"] == "sku-red-shirt"  # the query image itself
    assert by_image[0]["score"] == 1.0
    assert sorted(h["id"] for h in xcom(dr, "search_by_keyword")) == ["sku-blue-shirt", "sku-red-shirt"]
    assert xcom(dr, "write_results") == {"table": "imagesearch_v2_results", "rows": len(by_image) + 2}
    engine = sa.create_engine(f"sqlite:///{db_file}")
    with engine.connect() as connection:
        rows: list[Any] = connection.execute(
            sa.text(
                "SELECT query, rank, item_id FROM imagesearch_v2_results WHERE run_id = :r ORDER BY query, rank"
            ),
            {"r": dr.run_id},
        ).all()
    engine.dispose()
    assert rows[0] == ("image", 1, "sku-red-shirt")
    assert [r[2] for r in rows if r[0] == "keyword"] == [h["id"] for h in xcom(dr, "search_by_keyword")]
