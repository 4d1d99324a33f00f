"""Review of issue 24 (the ImageSearch page): attacks through Airflow's own API app (``create_app()``)
with the simple auth manager as shipped, against an archive and a ledger the provider's code wrote."""

from __future__ import annotations

import csv
import io
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.plugin.conftest import (
    LEDGER,
    Database,
    archive_run,
    at,
    database,
    detail,
    ledger_run,
    page_options,
    sqlite_database,
)
from tests.plugin.test_app import api_app, bearer, client

__all__ = ["api_app", "client", "database", "page_options", "sqlite_database"]
pytestmark = pytest.mark.usefixtures("airflow_db")

EVIL = "</svg><script>alert(1)</script>\"'><img src=x onerror=alert(2)>\u202e\u200f"


def _seed_evil(db: Database) -> None:
    archive_run(
        db,
        [
            detail("shop-main", tags=[EVIL, "javascript:alert(3)"], description=EVIL, domain=EVIL),
            detail("shop-new", "CREATION"),
        ],
        "manual__</svg><script>x</script>",
        at(1),
    )
    archive_run(
        db,
        [detail("shop-main", "ABNORMAL", description=EVIL, domain=EVIL), detail("shop-new")],
        "run_two",
        at(2),
    )
    ledger_run(
        db,
        "shop-main",
        "manual__import",
        [
            (f"https://h.example/{EVIL}.jpg", "invalid", EVIL, EVIL, 2),
            ("javascript:alert(4)", "failed", "E", "javascript:alert(5)", 3),
        ],
    )


def _no_markup(html: str) -> None:
    body = html.split("<body>", 1)[1]
    assert "<script" not in body
    assert "<img" not in body
    assert "onerror=" not in body.replace("onerror=alert", "")  # only escaped text may contain it
    assert 'href="javascript' not in body
    assert body.count("</svg>") <= 1


@pytest.mark.parametrize("path", ["/fleet", "/history", "/libraries", "/problems"])
def test_markup_from_the_tables_never_becomes_markup(
    client: Any, database: Database, page_options: Callable[..., None], path: str
) -> None:
    """Held: names, tags, descriptions, run ids, paths and error messages with HTML, `</svg>`, RTL
    overrides and `javascript:` URLs are escaped on every page (SQLite and PostgreSQL)."""
    page_options(archive_conn_id=database.conn_id, ledger_conn_id=database.conn_id, imagesearch_conn_id="")
    _seed_evil(database)
    params = {"instance": "shop-main", "api": "v1"} if path == "/problems" else {}
    answer = client.get(f"/imagesearch{path}", params=params, headers=bearer("viewer"))
    assert answer.status_code == 200, answer.text
    _no_markup(answer.text)
    assert "&lt;script&gt;" in answer.text or path == "/libraries"


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/fleet", {"q": "' OR 1=1 --"}),
        ("/fleet", {"status": "x' OR '1'='1"}),
        ("/fleet", {"q": "%"}),
        ("/fleet", {"q": "_"}),
        ("/history", {"q": "shop'; DROP TABLE imagesearch_instance_archive; --"}),
        ("/problems", {"instance": "x' OR ''='", "api": "v1"}),
        ("/problems.csv", {"instance": "x' OR ''='", "api": "v1"}),
    ],
)
def test_query_parameters_are_values_not_sql(
    client: Any, database: Database, page_options: Callable[..., None], path: str, params: dict[str, str]
) -> None:
    """Held: every filter is a bound value (no row matches; the tables are still there)."""
    page_options(archive_conn_id=database.conn_id, ledger_conn_id=database.conn_id, imagesearch_conn_id="")
    _seed_evil(database)
    answer = client.get(f"/imagesearch{path}", params=params, headers=bearer("viewer"))
    assert answer.status_code == 200, answer.text
    assert "data-instance=" not in answer.text
    if path == "/problems.csv":
        assert len(list(csv.reader(io.StringIO(answer.text)))) == 1
    assert client.get("/imagesearch/fleet", headers=bearer("viewer")).text.count('data-status="') >= 2


@pytest.mark.parametrize(
    "params",
    [
        {"page": "0"},
        {"page": "-1"},
        {"page": "abc"},
        {"page": "1.5"},
        {"page": "1000001"},
        {"page": "9" * 40},
        {"days": "0"},
        {"days": "99999"},
    ],
)
def test_paging_edges_are_refused(
    client: Any, sqlite_database: Database, page_options: Callable[..., None], params: dict[str, str]
) -> None:
    """Held: out-of-range and non-integer pages answer 422, never a 500; and only after the user is
    known (401 first)."""
    page_options(archive_conn_id=sqlite_database.conn_id, ledger_conn_id=sqlite_database.conn_id)
    assert client.get("/imagesearch/history", params=params).status_code == 401
    assert client.get("/imagesearch/history", params=params, headers=bearer("viewer")).status_code == 422


def test_api_with_a_newline_is_refused(
    client: Any, sqlite_database: Database, page_options: Callable[..., None]
) -> None:
    """Held: ``api`` is ``^v[12]$`` matched whole (no ``v1\\n`` into the Content-Disposition header)."""
    page_options(ledger_conn_id=sqlite_database.conn_id)
    answer = client.get(
        "/imagesearch/problems.csv", params={"instance": "shop", "api": "v1\n"}, headers=bearer("viewer")
    )
    assert answer.status_code == 422


def test_the_csv_download_of_a_library_with_a_non_ascii_name(
    client: Any, sqlite_database: Database, page_options: Callable[..., None]
) -> None:
    """A user opens the CSV download of a library whose name (or the instance typed in the URL) has a
    letter outside Latin-1 ("图库"): the file name is built from the name's alphanumerics, which
    ``str.isalnum`` says "图" is, and Starlette cannot encode that header: 500 Internal Server Error
    instead of the CSV (or an empty one)."""
    page_options(ledger_conn_id=sqlite_database.conn_id)
    ledger_run(
        sqlite_database, "shop-main", "manual__import", [("https://h.example/a.jpg", "invalid", "E", "m", 2)]
    )
    answer = client.get(
        "/imagesearch/problems.csv", params={"instance": "图库", "api": "v1"}, headers=bearer("viewer")
    )
    assert answer.status_code == 200


def test_ledger_with_sending_intents_and_its_lock_table(
    client: Any, database: Database, page_options: Callable[..., None]
) -> None:
    """Held: an import that died mid-batch leaves ``sending`` rows (content unknown) and the
    ``<ledger>_lock`` table beside the ledger: the page counts them under their own name and the lock
    table is not taken for a library."""
    import sqlalchemy as sa

    page_options(ledger_conn_id=database.conn_id, imagesearch_conn_id="")
    ledger = ledger_run(
        database, "shop-main", "manual__import", [("https://h.example/a.jpg", "added", None, None, 2)]
    )
    from airflow_provider_imagesearch.imports.ledger import LedgerEntry

    ledger.intend([LedgerEntry("k" * 32, "https://h.example/b.jpg", "f" * 32, "sending", None, None, 3, 0)])
    with database.engine.begin() as connection:
        connection.execute(sa.text(f"CREATE TABLE IF NOT EXISTS {LEDGER}_lock (holder VARCHAR(64))"))
    html = client.get("/imagesearch/libraries", headers=bearer("viewer")).text
    assert re.findall(r'data-library="([^"]+)"', html) == ["shop-main"]
    assert re.findall(r'data-outcome="(\w+)" data-count="(\d+)"', html) == [("added", "1"), ("sending", "1")]
    assert "+1 unknown" in html


def test_the_first_page_view_does_not_stop_the_import_writing_the_ledger(
    client: Any, page_options: Callable[..., None], postgres_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An import is writing the ledger (PostgreSQL) when someone opens Libraries for the first time
    after an API server start. The page runs a plain ``CREATE INDEX`` (not ``CONCURRENTLY``): it queues
    for a SHARE lock behind the import's open write transaction, and every *other* writer of the ledger
    (the next batch of that import, another import) queues behind the page for up to the page's 5 s
    lock_timeout, then again ten minutes later, and then for the whole build. docs/ui-page.rst says
    "the page waits at most 5 s for the table's lock", not that the imports wait with it. Here a
    one-row ledger write that takes milliseconds waits seconds.
    """
    import sqlalchemy as sa

    from airflow_provider_imagesearch.plugins import storage

    monkeypatch.setenv("AIRFLOW_CONN_PAGE_TEST_DB", postgres_uri)
    storage.ENGINES.clear()
    engine = sa.create_engine(postgres_uri.replace("postgres://", "postgresql+psycopg2://"))
    with engine.begin() as connection:
        connection.execute(sa.text(f"DROP TABLE IF EXISTS {LEDGER}"))
    db = Database("page_test_db", engine, "postgresql")
    page_options(ledger_conn_id=db.conn_id, imagesearch_conn_id="")
    ledger_run(db, "shop-main", "manual__import", [("https://h.example/a.jpg", "added", None, None, 2)])

    holder = engine.connect()  # the import's batch transaction, in progress
    batch = holder.begin()
    holder.execute(sa.text(f"UPDATE {LEDGER} SET updated_at = updated_at WHERE instance_name = 'shop-main'"))
    viewed: dict[str, float] = {}

    def view() -> None:
        started = time.monotonic()
        client.get("/imagesearch/libraries", headers=bearer("viewer"))
        viewed["seconds"] = time.monotonic() - started

    viewer = threading.Thread(target=view)
    viewer.start()
    time.sleep(1.0)  # the page is now waiting for its lock
    started = time.monotonic()
    with engine.begin() as connection:  # another writer: a one-row ledger update
        connection.execute(sa.text(f"UPDATE {LEDGER} SET updated_at = updated_at WHERE row_number = -1"))
    waited = time.monotonic() - started
    batch.rollback()
    holder.close()
    viewer.join(60)
    storage.ENGINES.clear()
    engine.dispose()
    print(
        f"a one-row ledger write waited {waited:.2f} s; the page view took {viewed.get('seconds', -1):.2f} s"
    )
    assert waited < 1.0


def test_a_slow_csv_download_does_not_stop_the_import_on_sqlite(
    sqlite_database: Database, page_options: Callable[..., None]
) -> None:
    """Someone downloads the problem rows of a big library (SQLite ledger) over a slow link. The page
    streams the CSV from an open cursor (``queries.all_problems``, ``stream_results``): between two
    chunks the generator waits for the client, with the SELECT unfinished, so the database file keeps
    its SHARED lock for as long as the download lasts. An import writing the ledger then cannot commit:
    it waits its busy timeout (60 s) and fails with "database is locked".

    Driven here as Starlette drives the response: the route's own generator (``_csv_lines`` over
    ``all_problems``), its first chunk sent, the next not yet asked for.
    """
    import sqlite3

    from airflow_provider_imagesearch.plugins import app as page_app
    from airflow_provider_imagesearch.plugins import queries, storage

    rows = [(f"https://h.example/{index}.jpg", "invalid", "E", "bad row", index) for index in range(6000)]
    ledger_run(sqlite_database, "shop-main", "manual__import", rows)
    engine = storage.ENGINES.get(sqlite_database.conn_id, "ledger_conn_id")
    problems = queries.all_problems(engine, LEDGER, "shop-main", "v1")  # 5,000 rows a fetch
    stream = page_app._csv_lines(next(problems), problems)
    assert next(stream).startswith("row_number")  # the first chunk reached the slow client
    path = str(engine.url.database)
    writer = sqlite3.connect(path, timeout=2.0)  # an import's ledger write (its busy timeout: 60 s)
    try:
        writer.execute(f"UPDATE {LEDGER} SET attempts = attempts WHERE row_number = 1")
        writer.commit()
        committed = True
    except sqlite3.OperationalError as error:
        committed = False
        print(f"the import's write failed: {error}")
    finally:
        writer.close()
        stream.close()
    assert committed


def test_refused_credentials_are_not_archived_as_a_skipped_wait(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, imagesearch_conn: Callable[..., str], emulator: Any
) -> None:
    """Held: with ``soft_fail`` on the archive DAG's wait, credentials refused (403) skip the wait, but
    ``read_details`` (none_failed) meets the same refusal and fails: the run fails, nothing is archived."""
    import json

    import sqlalchemy as sa

    from tests.plugin.test_archive_records_failures import load_dag
    from tests.support.dagrun import states

    emulator.upsert_instance("fleet-ok", status="CREATION")
    database = tmp_path / "archive.db"
    monkeypatch.setenv(
        "AIRFLOW_CONN_OUTAGE_ARCHIVE_DB", json.dumps({"conn_type": "sqlite", "host": str(database)})
    )
    conn_id = imagesearch_conn("token")
    emulator.set_faults(forbidden_rate=1.0)
    dag = load_dag()
    for task in dag.tasks:
        task.retries = 0
    dr = dag.test(
        run_conf={
            "instance_names": ["fleet-ok"],
            "imagesearch_conn_id": conn_id,
            "db_conn_id": "outage_archive_db",
        }
    )
    run_states = states(dr)
    assert run_states[("wait_until_normal", 0)][0] == "skipped", run_states
    assert run_states[("read_details", 0)][0] == "failed", run_states
    assert str(dr.state) == "failed", run_states
    engine = sa.create_engine(f"sqlite:///{database}")
    assert not sa.inspect(engine).has_table("imagesearch_instance_archive")
    engine.dispose()
