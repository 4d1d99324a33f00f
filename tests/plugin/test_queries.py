"""The page's SQL against an archive and a ledger written by the provider itself, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from airflow_provider_imagesearch.plugins import queries, storage
from tests.plugin.conftest import (
    ARCHIVE,
    LEDGER,
    Database,
    archive_run,
    at,
    detail,
    ledger_run,
)


def _engine(database: Database) -> object:
    return storage.ENGINES.get(database.conn_id, "archive_conn_id")


def _three_runs(database: Database) -> None:
    archive_run(database, [detail("shop-a"), detail("shop-b"), detail("shop-c")], "run_1", at(1))
    archive_run(
        database,
        [detail("shop-a"), detail("shop-b", "ABNORMAL"), detail("shop-c", "CREATION")],
        "run_2",
        at(2),
    )
    # shop-c is no longer archived: its newest snapshot stays the one of run_2.
    archive_run(database, [detail("shop-a"), detail("shop-b", "ABNORMAL")], "run_3", at(3))


def test_fleet_is_each_instances_newest_snapshot(database: Database) -> None:
    _three_runs(database)
    page = queries.fleet(_engine(database), ARCHIVE)
    assert [(row.instance_name, row.status, row.run_id) for row in page.rows] == [
        ("shop-a", "NORMAL", "run_3"),
        ("shop-b", "ABNORMAL", "run_3"),
        ("shop-c", "CREATION", "run_2"),
    ]
    assert page.status_counts == {"NORMAL": 1, "ABNORMAL": 1, "CREATION": 1}
    assert page.rows[1].fetched_at == at(3)
    assert page.rows[0].expires_at is not None
    assert page.rows[0].expires_at.year == 2027
    assert not page.has_next


def test_two_runs_at_one_moment_give_an_instance_one_row_counted_once(database: Database) -> None:
    """Two archive runs that fetched at the same moment (a cleared run beside a manual one): each
    instance is its greatest run id's row, chosen before the counts and the page, so it is counted once
    and pages neither repeat it nor end early."""
    archive_run(database, [detail("shop-a", "ABNORMAL"), detail("shop-b")], "run_1", at(1))
    archive_run(database, [detail("shop-a"), detail("shop-b"), detail("shop-c")], "run_2", at(1))
    engine = _engine(database)
    pages = [queries.fleet(engine, ARCHIVE, offset=offset, limit=1) for offset in range(3)]
    assert [[(row.instance_name, row.run_id) for row in page.rows] for page in pages] == [
        [("shop-a", "run_2")],
        [("shop-b", "run_2")],
        [("shop-c", "run_2")],
    ]
    assert [page.has_next for page in pages] == [True, True, False]
    assert pages[0].status_counts == {"NORMAL": 3}
    assert queries.fleet(engine, ARCHIVE, status="ABNORMAL").rows == []


def test_fleet_filters_and_pages(database: Database) -> None:
    _three_runs(database)
    engine = _engine(database)
    abnormal = queries.fleet(engine, ARCHIVE, status="ABNORMAL")
    assert [row.instance_name for row in abnormal.rows] == ["shop-b"]
    # The counts stay those of every status, so the filter chips keep their numbers.
    assert abnormal.instances == 3
    first = queries.fleet(engine, ARCHIVE, offset=0, limit=2)
    second = queries.fleet(engine, ARCHIVE, offset=2, limit=2)
    assert [row.instance_name for row in first.rows] == ["shop-a", "shop-b"]
    assert first.has_next
    assert [row.instance_name for row in second.rows] == ["shop-c"]
    assert not second.has_next
    assert [row.instance_name for row in queries.fleet(engine, ARCHIVE, name_contains="p-c").rows] == [
        "shop-c"
    ]


def test_filters_are_parameters_not_sql(database: Database) -> None:
    archive_run(database, [detail("shop_a"), detail("shopxa")], "run_1", at(1))
    engine = _engine(database)
    # LIKE wildcards in the filter are literal characters.
    assert [row.instance_name for row in queries.fleet(engine, ARCHIVE, name_contains="p_a").rows] == [
        "shop_a"
    ]
    assert queries.fleet(engine, ARCHIVE, name_contains="%").rows == []
    assert queries.fleet(engine, ARCHIVE, status="NORMAL' OR '1'='1").rows == []
    assert queries.fleet(engine, ARCHIVE, name_contains="x' OR 1=1 --").rows == []
    with pytest.raises(ValueError, match="archive_table"):
        queries.fleet(engine, "t; DROP TABLE imagesearch_instance_archive")


def test_history_is_the_window_oldest_first(database: Database) -> None:
    _three_runs(database)
    points = queries.history(_engine(database), ARCHIVE, ["shop-b", "shop-c"], since=at(2))
    assert [(p.run_id, p.status) for p in points["shop-b"]] == [("run_2", "ABNORMAL"), ("run_3", "ABNORMAL")]
    assert [(p.run_id, p.status) for p in points["shop-c"]] == [("run_2", "CREATION")]
    everything = queries.history(_engine(database), ARCHIVE, ["shop-b"], since=at(1) - timedelta(days=1))
    assert [p.status for p in everything["shop-b"]] == ["NORMAL", "ABNORMAL", "ABNORMAL"]


def test_a_missing_table_is_told_apart(database: Database) -> None:
    with pytest.raises(queries.TableMissing):
        queries.fleet(_engine(database), ARCHIVE)
    with pytest.raises(queries.TableMissing):
        queries.libraries(_engine(database), LEDGER)


def _ledger(database: Database) -> None:
    ledger_run(
        database,
        "shop",
        "import_1",
        [
            ("https://b.obs.cn-north-4.myhuaweicloud.com/a.jpg", "added", None, None, 2),
            ("https://b.obs.cn-north-4.myhuaweicloud.com/b.jpg", "added", None, None, 3),
            ("https://b.obs.cn-north-4.myhuaweicloud.com/c.jpg", "added", None, None, 4),
            ("bad-path", "invalid", "INVALID_ROW", "path must be an OBS HTTPS URL", 5),
        ],
    )
    second = ledger_run(
        database,
        "shop",
        "import_2",
        [
            ("https://b.obs.cn-north-4.myhuaweicloud.com/b.jpg", "updated", None, None, 3),
            ("https://b.obs.cn-north-4.myhuaweicloud.com/d.jpg", "failed", "IS.0003", "service busy", 6),
        ],
    )
    # A prune in progress: the library may or may not hold c.jpg any more.
    second.mark_pruning([queries_path_key("https://b.obs.cn-north-4.myhuaweicloud.com/c.jpg")])
    ledger_run(database, "shop", "v2_import", [("sku-1", "added", None, None, 2)], api="v2")


def queries_path_key(path: str) -> str:
    from tests.plugin.conftest import path_key

    return path_key(path)


def test_libraries_count_the_ledger(database: Database) -> None:
    _ledger(database)
    found = queries.libraries(_engine(database), LEDGER)
    assert [(library.instance_name, library.api) for library in found] == [("shop", "v1"), ("shop", "v2")]
    v1, v2 = found
    assert v1.rows == 5
    assert v1.outcomes == {"added": 1, "updated": 1, "invalid": 1, "failed": 1, "pruning": 1}
    # a.jpg and b.jpg are held; c.jpg is being pruned (unknown); d.jpg failed and bad-path was refused.
    assert (v1.held, v1.held_unknown) == (2, 1)
    assert v1.problems == 2
    assert v1.last_run is not None
    assert v1.last_run.run_id == "import_2"
    assert v1.last_run.outcomes == {"updated": 1, "failed": 1, "pruning": 1}
    assert v1.runs == 2
    assert (v2.rows, v2.held, v2.problems) == (1, 1, 0)
    assert v2.last_run is not None
    assert v2.last_run.outcomes == {"added": 1}


def test_an_outcome_the_page_does_not_know_is_counted_by_its_name(database: Database) -> None:
    """A later ledger may write new outcomes (an intent written before a request, say): kept, not lost."""
    import sqlalchemy as sa

    _ledger(database)
    with database.engine.begin() as connection:
        connection.execute(
            sa.text(
                f"UPDATE {LEDGER} SET outcome = 'intent', held_fingerprint = '?' "
                "WHERE path = 'https://b.obs.cn-north-4.myhuaweicloud.com/a.jpg'"
            )
        )
    (v1, _) = queries.libraries(_engine(database), LEDGER)
    assert v1.outcomes["intent"] == 1
    assert "added" not in v1.outcomes
    # What an unknown outcome holds is read from held_fingerprint, not assumed.
    assert (v1.held, v1.held_unknown) == (1, 2)


def test_problem_rows_by_row_number_paged_and_streamed(database: Database) -> None:
    ledger_run(
        database,
        "shop",
        "import_1",
        [
            (f"p{row}", "invalid" if row % 2 else "failed", "INVALID_ROW", f"reason {row}", row)
            for row in range(9, 2, -1)
        ]
        + [("ok", "added", None, None, 1)],
    )
    engine = _engine(database)
    first, more = queries.problems(engine, LEDGER, "shop", "v1", offset=0, limit=4)
    assert [row.row_number for row in first] == [3, 4, 5, 6]
    assert more
    rest, more = queries.problems(engine, LEDGER, "shop", "v1", offset=4, limit=4)
    assert [row.row_number for row in rest] == [7, 8, 9]
    assert not more
    assert [
        row.row_number for row in queries.all_problems(engine, LEDGER, "shop", "v1", chunk_rows=2)
    ] == list(range(3, 10))
    assert queries.problems(engine, LEDGER, "shop", "v2", offset=0, limit=4) == ([], False)


def test_the_csv_rows_come_in_keyed_pages_each_read_on_its_own(database: Database) -> None:
    """Rows sharing a row number (two runs' manifests), rows without one, and rows written between two
    pages: every problem row once, in the page's order, and no read left open between pages."""
    rows: list[tuple[str, str, str | None, str | None, int | None]] = [
        (f"p{row}-{copy}", "invalid", "INVALID_ROW", "r", row) for row in (5, 3, 4) for copy in range(3)
    ]
    rows += [
        ("nan-a", "failed", "E", "m", None),
        ("nan-b", "failed", "E", "m", None),
        ("ok", "added", None, None, 2),
    ]
    ledger_run(database, "shop", "import_1", rows)
    engine = _engine(database)
    pages = queries.all_problems(engine, LEDGER, "shop", "v1", chunk_rows=2)
    seen = [next(pages)]
    # Between two pages nothing of the page's is open: the pool holds every connection back.
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    ledger_run(database, "shop", "import_2", [("p1-late", "invalid", "INVALID_ROW", "r", 1)])
    seen += list(pages)
    expected = queries.problems(engine, LEDGER, "shop", "v1", offset=0, limit=100)[0]
    paths = [row.path for row in seen]
    assert len(paths) == len(set(paths)) == 11  # each once; the late row before the key is not re-read
    assert [row.row_number for row in seen] == [3, 3, 3, 4, 4, 4, 5, 5, 5, None, None]
    assert [row.path for row in expected if row.path != "p1-late"] == paths


def test_the_indexes_come_with_the_tables_and_are_used(database: Database) -> None:
    """The archive and the ledger the provider's own code creates carry the page's read indexes: the
    page needs no ``CREATE INDEX`` of its own (one on a page view queued the imports behind it)."""
    import sqlalchemy as sa

    _three_runs(database)
    _ledger(database)
    inspector = sa.inspect(database.engine)
    archive_indexes = {i["name"]: i["column_names"] for i in inspector.get_indexes(ARCHIVE)}
    ledger_indexes = {i["name"]: i["column_names"] for i in inspector.get_indexes(LEDGER)}
    assert archive_indexes["ix_isui_imagesearch_instance_archive"] == list(queries.ARCHIVE_INDEX)
    assert ledger_indexes["ix_isui_imagesearch_import_ledger"] == list(queries.LEDGER_INDEX)
    # Written again (the tables exist now): no second index.
    _three_runs(database)
    assert len(sa.inspect(database.engine).get_indexes(ARCHIVE)) == len(archive_indexes)
    if database.dialect == "sqlite":
        with database.engine.connect() as connection:
            plan = " ".join(
                str(row[-1])
                for row in connection.exec_driver_sql(
                    f"EXPLAIN QUERY PLAN SELECT instance_name, api, outcome, run_id, count(*), max(updated_at) "
                    f"FROM {LEDGER} GROUP BY instance_name, api, outcome, run_id"
                )
            )
        assert "COVERING INDEX ix_isui_imagesearch_import_ledger" in plan


def test_an_edited_connection_applies_at_the_next_view(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    first, second = tmp_path / "first.db", tmp_path / "second.db"
    monkeypatch.setenv("AIRFLOW_CONN_PAGE_EDITED_DB", json.dumps({"conn_type": "sqlite", "host": str(first)}))
    engine = storage.ENGINES.get("page_edited_db", "archive_conn_id")
    assert storage.ENGINES.get("page_edited_db", "archive_conn_id") is engine  # one pool per connection
    monkeypatch.setenv(
        "AIRFLOW_CONN_PAGE_EDITED_DB", json.dumps({"conn_type": "sqlite", "host": str(second)})
    )
    edited = storage.ENGINES.get("page_edited_db", "archive_conn_id")
    assert edited is not engine
    assert str(edited.url.database) == str(second)
    storage.ENGINES.clear()


def test_a_connection_that_is_not_sql_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    # An ImageSearch connection: a hook, but not a SQL one.
    monkeypatch.setenv(
        "AIRFLOW_CONN_PAGE_NOT_SQL", json.dumps({"conn_type": "imagesearch", "host": "https://example.com"})
    )
    with pytest.raises(ValueError, match="Invalid ledger_conn_id 'page_not_sql': the id of a SQL connection"):
        storage.ENGINES.get("page_not_sql", "ledger_conn_id")
