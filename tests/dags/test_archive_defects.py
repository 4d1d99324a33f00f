"""Issue #14, items 5-8: the archive path on SQLite and PostgreSQL.

5. Duplicate instance names are refused by the DAG param and by the archive, before any write.
6. Several first archives into a table that does not exist yet all succeed (no CREATE TABLE race).
7. A 63-character table name works on PostgreSQL (its primary key's name stays within 63 characters).
8. ``latest_snapshot`` returns the same UTC ISO strings on both backends for the same rows.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from tests.dags.test_archive_dag import load_dag
from tests.support.connections import env_name
from tests.support.dagrun import states

pytestmark = pytest.mark.usefixtures("airflow_db")

CONN_ID = "archive_defects_db"
#: Runs racing into one new table per trial, and trials per backend. On the code before the fix a
#: single trial of two runs failed in about 3 of 5 (PostgreSQL) and 4 of 6 (SQLite); four runs per trial
#: over ten trials make a pass on that code all but impossible.
RACERS = 4
TRIALS = 10


def _engine(uri: str) -> Any:
    import sqlalchemy as sa

    return sa.create_engine(uri.replace("postgres://", "postgresql+psycopg2://"))


@pytest.fixture(params=["sqlite", "postgres"])
def backend(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[tuple[str, Any]]:
    """(connection id, SQLAlchemy engine) of an empty archive database; PostgreSQL in a fresh schema."""
    import sqlalchemy as sa

    if request.param == "sqlite":
        path = tmp_path / "archive.db"
        monkeypatch.setenv(env_name(CONN_ID), json.dumps({"conn_type": "sqlite", "host": str(path)}))
        engine = sa.create_engine(f"sqlite:///{path}")
    else:
        uri = request.getfixturevalue("postgres_uri")
        monkeypatch.setenv(env_name(CONN_ID), uri)
        engine = _engine(uri)
        with engine.begin() as connection:
            # Tables named here are the test's own: start each test without them.
            for (name,) in connection.execute(
                sa.text(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'd14_%'"
                )
            ):
                connection.execute(sa.text(f'DROP TABLE "{name}"'))
    yield CONN_ID, engine
    engine.dispose()


def _count(engine: Any, table: str) -> int:
    import sqlalchemy as sa

    with engine.connect() as connection:
        return int(connection.execute(sa.text(f'SELECT COUNT(*) FROM "{table}"')).scalar_one())


# -- 5. duplicate instance names ---------------------------------------------------------------------


def test_archive_refuses_duplicate_instance_names_and_writes_nothing(backend: tuple[str, Any]) -> None:
    import sqlalchemy as sa

    from airflow_provider_imagesearch.archive import archive_details
    from airflow_provider_imagesearch.errors import ImageSearchValidationError

    conn_id, engine = backend
    table = "d14_duplicates"
    archive_details([{"instance_name": "other"}], db_conn_id=conn_id, table=table, run_id="earlier")
    details = [{"instance_name": "shop"}, {"instance_name": "mall"}, {"instance_name": "shop"}]
    with pytest.raises(ImageSearchValidationError, match=r"details\[2\]\.instance_name 'shop'.*details\[0\]"):
        archive_details(details, db_conn_id=conn_id, table=table, run_id="run-1")
    with engine.connect() as connection:
        names = connection.execute(sa.text(f"SELECT instance_name, run_id FROM {table}")).all()
    assert [tuple(row) for row in names] == [("other", "earlier")]


def test_dag_param_refuses_duplicate_instance_names(
    backend: tuple[str, Any], imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    conn_id, engine = backend
    emulator.upsert_instance("shop", status="NORMAL")
    dag = load_dag()
    conf = {
        "instance_names": ["shop", "shop"],
        "imagesearch_conn_id": imagesearch_conn("token"),
        "db_conn_id": conn_id,
        "table": "d14_dag_duplicates",
    }
    # The param schema refuses the run before any task runs: no table is ever created.
    with pytest.raises(Exception, match="instance_names"):
        dag.test(run_conf=conf)
    import sqlalchemy as sa

    assert not sa.inspect(engine).has_table("d14_dag_duplicates")
    # The same names once each still run.
    dr = dag.test(run_conf={**conf, "instance_names": ["shop"]})
    assert str(dr.state) == "success", states(dr)
    assert _count(engine, "d14_dag_duplicates") == 1


# -- 6. concurrent first archives -------------------------------------------------------------------


def _race(conn_id: str, table: str) -> list[BaseException]:
    """``RACERS`` first archives into ``table`` at once; the errors they raised."""
    from airflow_provider_imagesearch.archive import details_frame, sql_engine, write_frame

    # Everything but the write is done before the barrier, so the runs meet at the table's creation.
    frames = [
        details_frame([{"instance_name": f"inst-{racer}"}], run_id=f"run-{racer}", logical_date=None)
        for racer in range(RACERS)
    ]
    engines = [sql_engine(conn_id) for _ in range(RACERS)]
    for engine in engines:
        engine.connect().close()  # a pooled connection, ready
    barrier = threading.Barrier(RACERS)

    def write(racer: int) -> None:
        barrier.wait(timeout=60)
        write_frame(engines[racer], table, frames[racer], f"run-{racer}")

    try:
        with ThreadPoolExecutor(RACERS) as pool:
            futures = [pool.submit(write, racer) for racer in range(RACERS)]
            return [error for future in futures if (error := future.exception(timeout=120)) is not None]
    finally:
        for engine in engines:
            engine.dispose()


def test_concurrent_first_archives_into_a_new_table_all_succeed(backend: tuple[str, Any]) -> None:
    conn_id, engine = backend
    failures: list[str] = []
    for trial in range(TRIALS):
        table = f"d14_race_{trial}"
        errors = _race(conn_id, table)
        failures += [f"trial {trial}: {type(e).__name__}: {str(e)[:160]}" for e in errors]
        if not errors:
            assert _count(engine, table) == RACERS
    assert failures == []


# -- 7. long table names ----------------------------------------------------------------------------


@pytest.mark.parametrize("length", [61, 63])
def test_longest_table_names_work(backend: tuple[str, Any], length: int) -> None:
    from airflow_provider_imagesearch.archive import archive_details, latest_snapshot

    conn_id, engine = backend
    table = ("d14_long_" + "x" * 63)[:length]
    assert len(table) == length
    for run in ("run-1", "run-2"):  # the second run finds the table and appends
        result = archive_details([{"instance_name": "a"}], db_conn_id=conn_id, table=table, run_id=run)
        assert result.rows_written == 1
    assert _count(engine, table) == 2
    assert [row["run_id"] for row in latest_snapshot(db_conn_id=conn_id, table=table)] in (
        ["run-1"],
        ["run-2"],
    )


# -- 8. timestamps carry UTC -------------------------------------------------------------------------

FETCHED = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
DETAILS = [
    {
        "instance_name": "a",
        "status": "NORMAL",
        "registered_at": "2026-01-01T00:00:00+00:00",
        "expires_at": "2027-01-01T08:00:00+08:00",
    },
    {"instance_name": "b", "status": "NORMAL", "registered_at": "2026-01-01T12:34:56.5+00:00"},
]


def _snapshot(conn_id: str, table: str) -> list[dict[str, Any]]:
    from airflow_provider_imagesearch.archive import details_frame, latest_snapshot, sql_engine, write_frame

    frame = details_frame(
        DETAILS, run_id="run-1", logical_date=datetime(2026, 3, 1, tzinfo=UTC), fetched_at=FETCHED
    )
    engine = sql_engine(conn_id)
    try:
        write_frame(engine, table, frame, "run-1")
    finally:
        engine.dispose()
    return latest_snapshot(db_conn_id=conn_id, table=table)


def test_latest_snapshot_timestamps_are_identical_utc_strings_on_both_backends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_uri: str
) -> None:
    monkeypatch.setenv(env_name(CONN_ID), json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "a.db")}))
    on_sqlite = _snapshot(CONN_ID, "d14_utc")
    # A PostgreSQL session in another time zone answers timestamptz in that zone: still the same strings.
    monkeypatch.setenv("PGTZ", "Asia/Shanghai")
    monkeypatch.setenv(env_name(CONN_ID), postgres_uri)
    engine = _engine(postgres_uri)
    with engine.begin() as connection:
        import sqlalchemy as sa

        connection.execute(sa.text("DROP TABLE IF EXISTS d14_utc"))
    engine.dispose()
    on_postgres = _snapshot(CONN_ID, "d14_utc")

    expected = {
        "a": {
            "registered_at": "2026-01-01T00:00:00+00:00",
            "expires_at": "2027-01-01T00:00:00+00:00",
        },
        "b": {"registered_at": "2026-01-01T12:34:56.500000+00:00", "expires_at": None},
    }
    for snapshot in (on_sqlite, on_postgres):
        assert [row["instance_name"] for row in snapshot] == ["a", "b"]
        for row in snapshot:
            assert row["fetched_at"] == "2026-03-04T05:06:07.890123+00:00"
            assert row["logical_date"] == "2026-03-01T00:00:00+00:00"
            assert {k: row[k] for k in ("registered_at", "expires_at")} == expected[row["instance_name"]]
    assert on_sqlite == on_postgres
