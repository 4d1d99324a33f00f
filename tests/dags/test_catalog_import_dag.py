"""The example catalogue import DAG end to end in real Airflow, against the emulator, run twice."""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from airflow_provider_imagesearch.emulator.routes import R_ADD, R_CREATE
from tests.support.dagrun import states, xcom

pytestmark = pytest.mark.usefixtures("airflow_db")

REPO = Path(__file__).resolve().parents[2]
DAG_FILE = REPO / "dags" / "imagesearch_catalog_import.py"
DAG_ID = "imagesearch_catalog_import"
DATA = REPO / "dags" / "data"
NAME = "catalog-demo"


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location(
        "make_sample_catalog", REPO / "scripts" / "make_sample_catalog.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_samples_are_what_the_generator_writes(tmp_path: Path) -> None:
    generator = _generator()
    generator.main([str(tmp_path)])
    for name in (generator.CATALOG_FILE, generator.SEARCHES_FILE):
        assert (DATA / name).read_text(encoding="utf-8") == (tmp_path / name).read_text(encoding="utf-8"), (
            name
        )
    rows = generator.catalog_rows()
    assert len(rows) == generator.ROWS
    assert len(generator.valid_paths()) == generator.ROWS - generator.INVALID_ROWS


SHARDS = 4  # the DAG's import is mapped over four shards


def _shards(run: Any) -> Counter[str]:
    """The import's counts summed over its mapped shards (each one's XCom names its slice)."""
    total: Counter[str] = Counter()
    for index in range(SHARDS):
        value = xcom(run, "import_catalog", map_index=index)
        assert value["shard"] == [index, SHARDS]
        total.update({key: count for key, count in value.items() if type(count) is int})
    return total


def test_catalog_import_twice_sends_no_add_the_second_time(
    imagesearch_conn: Callable[..., str], emulator: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import sqlalchemy as sa
    from airflow.dag_processing.dagbag import DagBag

    generator = _generator()
    db_file = tmp_path / "catalog.db"
    monkeypatch.setenv("AIRFLOW_CONN_CATALOG_DB", json.dumps({"conn_type": "sqlite", "host": str(db_file)}))
    bag = DagBag(dag_folder=str(DAG_FILE))
    assert not bag.import_errors, bag.import_errors
    dag = bag.dags[DAG_ID]
    task = dag.get_task("import_catalog")
    assert task.partial_kwargs["max_failed"] == generator.INVALID_ROWS
    assert task.expand_input.value["shard"] == [(index, SHARDS) for index in range(SHARDS)]
    create = dag.get_task("create_instance")
    assert create.deferrable is True
    create.poke_interval = 0.5  # the emulator creates in 2 s
    conf = {
        "imagesearch_conn_id": imagesearch_conn("aksk", conn_id="catalog_conn"),
        "db_conn_id": "catalog_db",
    }
    valid = generator.valid_paths()

    first = dag.test(run_conf=conf)
    assert str(first.state) == "success", states(first)
    assert [r["route"] for r in emulator.requests_log()].count(R_CREATE) == 1
    imported = _shards(first)
    assert (imported["added"], imported["invalid"], imported["failed"]) == (
        len(valid),
        generator.INVALID_ROWS,
        0,
    )
    assert imported["rows"] == generator.ROWS  # the shards' slices add up to the manifest
    images = emulator.control.state()["images"][f"{DEFAULT_PROJECT_ID}/{NAME}"]
    assert sorted(images) == sorted(valid)
    engine = sa.create_engine(f"sqlite:///{db_file}")
    with engine.connect() as connection:
        outcomes = dict(
            connection.execute(
                sa.text(
                    "SELECT outcome, COUNT(*) FROM imagesearch_import_ledger WHERE instance_name = :i GROUP BY outcome"
                ),
                {"i": NAME},
            ).all()
        )
    # Rows without a path have no ledger key: they are counted and reported, not stored.
    assert outcomes == {"added": len(valid), "invalid": generator.INVALID_ROWS - 6}

    emulator.reset_stats()
    second = dag.test(run_conf=conf)
    assert str(second.state) == "success", states(second)
    log = emulator.requests_log()
    assert [r for r in log if r["route"] == R_ADD] == []
    assert [r for r in log if r["route"] == R_CREATE] == []  # reused
    again = _shards(second)
    assert (again["added"], again["unchanged"], again["invalid"]) == (0, len(valid), generator.INVALID_ROWS)

    searched = [xcom(run, "search_catalog") for run in (first, second)]
    for run, result in zip((first, second), searched, strict=True):
        assert result["queries"] == generator.SEARCHES
        assert result["failed"] == 0
        assert result["run_id"] == run.run_id
        assert result["table"] == "imagesearch_search_results"
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT run_id, query_id, rank, path FROM imagesearch_search_results")
        ).all()
    engine.dispose()
    keys = Counter((r[0], r[1], r[2]) for r in rows)
    assert max(keys.values()) == 1  # no duplicate hit
    per_run = Counter(r[0] for r in rows)
    assert per_run == {first.run_id: searched[0]["hits"], second.run_id: searched[1]["hits"]}
    queries = {row["query_id"]: row for row in generator.search_rows()}
    first_hits = [r for r in rows if r[0] == first.run_id]
    assert {r[1] for r in first_hits} == set(queries)
    for query_id, query in queries.items():
        ranks = sorted(r[2] for r in first_hits if r[1] == query_id)
        assert ranks == list(range(1, int(query["limit"]) + 1)), query_id
