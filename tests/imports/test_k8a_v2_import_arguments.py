"""The v2 import operator keeps its import options as the v1 one does: ``max_rate``, ``time_limit`` and
``shard`` out of bounds fail the task before any request, naming them, and by default (``max_failed=0``)
one invalid row fails the task. Against the emulator (tests/imports/conftest.py's ``import_into``)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.imports.conftest import RunImport

SERVICE = "k8a-v2-args"
ROW = {"item_id": "k8a-1", "image_url": "https://cdn.example/k8a/1.jpg"}


@pytest.fixture
def run(import_into: Callable[..., RunImport]) -> RunImport:
    return import_into(SERVICE, v2=True)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_rate": 0}, "Invalid max_rate 0: "),
        ({"time_limit": 0}, "Invalid time_limit 0: "),
        ({"shard": (2, 2)}, "Invalid shard (2, 2): "),
    ],
    ids=repr,
)
def test_a_v2_import_option_out_of_bounds_fails_the_task_naming_it(
    run: RunImport, kwargs: dict[str, Any], message: str
) -> None:
    from airflow_provider_imagesearch.version_compat import AirflowFailException

    with pytest.raises(AirflowFailException, match=re.escape(message)):
        run([ROW], **kwargs)


def test_one_invalid_row_fails_a_v2_import_by_default(run: RunImport) -> None:
    from airflow_provider_imagesearch.version_compat import AirflowFailException

    with pytest.raises(AirflowFailException, match=r"1 rows failed or were invalid \(max_failed=0;"):
        run([ROW, {"item_id": "k8a-2"}])


def test_a_v2_import_reads_its_manifest_from_a_sql_query(
    run: RunImport, emulator: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``manifest_sql`` on ``manifest_conn_id``: the query's rows are the items sent."""
    import sqlite3

    from tests.support.connections import set_connection

    db = tmp_path / "catalog.db"
    with sqlite3.connect(db) as connection:
        connection.execute("CREATE TABLE products (id TEXT, url TEXT)")
        connection.execute("INSERT INTO products VALUES ('k8a-sql', 'https://cdn.example/k8a/sql.jpg')")
    set_connection(monkeypatch, "k8a_catalog_db", conn_type="sqlite", host=str(db))
    result = run(
        None,
        manifest_sql="SELECT id AS item_id, url AS image_url FROM products",
        manifest_conn_id="k8a_catalog_db",
    )
    assert result["added"] == 1, result
