"""The ImageSearch page inside Airflow's own API app (``create_app()``), with its real auth manager.

The simple auth manager runs as Airflow ships it (not in all-admins mode): every route of the page,
found by walking the page's app so a route added later is covered too, refuses a request without a
credential (401), with a forged token (403) and from a user without a role (403), and answers a viewer.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, DEFAULT_REGION, Emulator
from airflow_provider_imagesearch.settings import DEFAULT_CONSOLE_URL
from tests.plugin.conftest import ARCHIVE, LEDGER, Database, archive_run, at, detail, ledger_run

pytestmark = pytest.mark.usefixtures("airflow_db")

#: Query parameters a route needs to answer 200.
ROUTE_PARAMS = {
    "/problems": {"instance": "shop", "api": "v1"},
    "/problems.csv": {"instance": "shop", "api": "v1"},
}
SIGNED = (
    "https://b.obs.cn-north-4.myhuaweicloud.com/x.jpg?AccessKeyId=AKEXAMPLE&Expires=1767225600"
    "&Signature=c2VjcmV0LXNpZ25hdHVyZQ%3D%3D"
)


@pytest.fixture(scope="module")
def api_app(airflow_db: str) -> Iterator[Any]:
    import os

    from airflow.api_fastapi.app import create_app

    # What `airflow api-server` generates for a new deployment; the tokens below are signed with it.
    os.environ["AIRFLOW__API_AUTH__JWT_SECRET"] = "imagesearch-page-tests-jwt-secret"
    try:
        yield create_app()
    finally:
        del os.environ["AIRFLOW__API_AUTH__JWT_SECRET"]


@pytest.fixture
def client(api_app: Any) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    with TestClient(api_app, base_url="http://airflow.test") as test_client:
        yield test_client


def token(role: str | None, username: str = "reader") -> str:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return str(get_auth_manager().generate_jwt(SimpleAuthManagerUser(username=username, role=role)))


def bearer(role: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(role)}"}


def page_routes() -> list[str]:
    from airflow_provider_imagesearch.plugins.plugin import page_app

    return sorted(route.path for route in page_app.get().routes if hasattr(route, "methods"))


def test_the_plugin_is_mounted_and_listed(client: Any) -> None:
    assert page_routes() == ["/", "/fleet", "/history", "/libraries", "/problems", "/problems.csv"]
    listed = client.get("/api/v2/plugins", headers=bearer("admin"))
    assert listed.status_code == 200, listed.text
    (plugin,) = [p for p in listed.json()["plugins"] if p["name"] == "imagesearch"]
    assert plugin["fastapi_apps"][0]["url_prefix"] == "/imagesearch"
    (view,) = plugin["external_views"]
    assert (view["name"], view["href"], view["destination"], view["category"]) == (
        "ImageSearch",
        "imagesearch/",
        "nav",
        "browse",
    )
    assert view["url_route"] is None  # a new tab, not Airflow's sandboxed frame (see plugin.py)


@pytest.mark.parametrize("path", ["/", "/fleet", "/history", "/libraries", "/problems", "/problems.csv"])
def test_every_route_refuses_without_read_access(
    client: Any, path: str, sqlite_database: Database, page_options: Callable[..., None]
) -> None:
    assert path in page_routes()
    page_options(archive_conn_id=sqlite_database.conn_id, ledger_conn_id=sqlite_database.conn_id)
    _seed(sqlite_database)
    url = f"/imagesearch{path}"
    params = ROUTE_PARAMS.get(path, {})
    anonymous = client.get(url, params=params, follow_redirects=False)
    assert anonymous.status_code == 401, anonymous.text
    forged = token("admin")[:-4] + "AAAA"
    assert client.get(url, params=params, headers={"Authorization": f"Bearer {forged}"}).status_code == 403
    # A user the auth manager grants nothing (no role) is refused by the page's own check.
    refused = client.get(url, params=params, headers=bearer(None), follow_redirects=False)
    assert refused.status_code == 403, refused.text
    assert "read DAG runs" in refused.text
    # The session cookie the UI sets is a credential too.
    client.cookies.set("_token", token(None))
    assert client.get(url, params=params, follow_redirects=False).status_code == 403
    client.cookies.set("_token", token("viewer"))
    answered = client.get(url, params=params, follow_redirects=False)
    client.cookies.clear()
    assert answered.status_code == (307 if path == "/" else 200), answered.text
    assert (
        answered.status_code
        == client.get(url, params=params, headers=bearer("viewer"), follow_redirects=False).status_code
    )


def test_no_route_outside_the_dependency(client: Any) -> None:
    """FastAPI's generated docs would be public: the page's app has none."""
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert client.get(f"/imagesearch{path}").status_code in (401, 404)


def _seed(database: Database, sick_description: str = "main shop") -> None:
    archive_run(
        database,
        [detail("shop-main", description=sick_description), detail("shop-new", "CREATION")],
        "manual__first",
        at(1),
    )
    archive_run(
        database,
        [detail("shop-main", "ABNORMAL", description=sick_description), detail("shop-new")],
        "manual__second",
        at(2),
    )
    ledger_run(
        database,
        "shop-main",
        "manual__import",
        [
            ("https://b.obs.cn-north-4.myhuaweicloud.com/a.jpg", "added", None, None, 2),
            (SIGNED, "invalid", "INVALID_ROW", f"could not read {SIGNED}", 3),
            ('=HYPERLINK("https://evil.example")', "invalid", "INVALID_ROW", "-2+3", 4),
        ],
    )


@pytest.fixture
def seeded(
    database: Database,
    page_options: Callable[..., None],
    imagesearch_conn: Callable[..., str],
) -> Database:
    page_options(archive_conn_id=database.conn_id, ledger_conn_id=database.conn_id)
    imagesearch_conn("token")  # imagesearch_default, for the console links
    _seed(database, sick_description="<script>alert('x')</script> see https://u:pw@h.example/p?token=s3cr3t")
    return database


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _dag_run(dag_id: str, run_id: str) -> None:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        if session.query(DagRun).filter_by(dag_id=dag_id, run_id=run_id).first() is None:
            session.add(
                DagRun(
                    dag_id=dag_id,
                    run_id=run_id,
                    run_type="manual",
                    state="success",
                    run_after=datetime.now(UTC),
                )
            )


def test_fleet_page(client: Any, seeded: Database, emulator: Emulator) -> None:
    _dag_run("imagesearch_instance_archive", "manual__second")
    emulator.reset_stats()
    answer = client.get("/imagesearch/fleet", headers=bearer("viewer"))
    assert answer.status_code == 200, answer.text
    assert "script-src" not in answer.headers["content-security-policy"]
    assert "default-src 'none'" in answer.headers["content-security-policy"]
    html = answer.text
    rows = dict(re.findall(r'<tr class="tone-\w+" data-instance="([^"]+)" data-status="([^"]+)"', html))
    assert rows == {"shop-main": "ABNORMAL", "shop-new": "NORMAL"}
    assert '<tr class="tone-bad" data-instance="shop-main"' in html  # the failure is highlighted
    # Escaped, and the URL in the description lost its password and query string.
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "s3cr3t" not in html
    assert ":pw@" not in html
    # The run link goes to the DAG run in Airflow's UI; the console link is the extra link's URL.
    assert 'href="../dags/imagesearch_instance_archive/runs/manual__second"' in html
    console = DEFAULT_CONSOLE_URL.format(
        region=DEFAULT_REGION, project_id=DEFAULT_PROJECT_ID, instance_name="shop-main"
    )
    assert f'href="{console.replace("&", "&amp;")}"' in html
    # Loading the page sent nothing to ImageSearch (the connection's extras build the links).
    assert emulator.requests_log() == []
    filtered = client.get("/imagesearch/fleet", params={"status": "ABNORMAL"}, headers=bearer("viewer")).text
    assert re.findall(r'data-instance="([^"]+)" data-status', filtered) == ["shop-main"]


def test_history_page_shows_the_change(client: Any, seeded: Database) -> None:
    _dag_run("imagesearch_instance_archive", "manual__second")
    html = client.get("/imagesearch/history", headers=bearer("viewer")).text
    lane = re.search(r'<g class="lane" data-instance="shop-main".*?</g>', html, re.S)
    assert lane is not None
    assert re.findall(r'data-status="([A-Z_]+)"', lane.group(0)) == ["NORMAL", "ABNORMAL"]
    assert "ABNORMAL since 2026-03-02 00:00:00 UTC" in _text(html)
    changes = re.search(r'<table id="changes">.*?</table>', html, re.S)
    assert changes is not None
    assert 'href="../dags/imagesearch_instance_archive/runs/manual__second"' in changes.group(0)
    assert "CREATION" in _text(changes.group(0))
    assert "NORMAL" in _text(changes.group(0))


def test_libraries_and_problem_rows(client: Any, seeded: Database) -> None:
    html = client.get("/imagesearch/libraries", headers=bearer("viewer")).text
    row = re.search(r'<tr[^>]*data-library="shop-main" data-api="v1">.*?</tr>', html, re.S)
    assert row is not None
    assert 'data-held="1"' in row.group(0)
    assert 'data-problems="2"' in row.group(0)
    assert re.findall(r'data-outcome="(\w+)" data-count="(\d+)"', row.group(0)) == [
        ("added", "1"),
        ("invalid", "2"),
    ]
    problems = client.get(
        "/imagesearch/problems", params={"instance": "shop-main", "api": "v1"}, headers=bearer("viewer")
    ).text
    assert "Signature" not in problems
    assert "c2VjcmV0" not in problems
    assert "https://b.obs.cn-north-4.myhuaweicloud.com/x.jpg?***" in problems
    download = client.get(
        "/imagesearch/problems.csv", params={"instance": "shop-main", "api": "v1"}, headers=bearer("viewer")
    )
    assert download.status_code == 200
    assert (
        download.headers["content-disposition"]
        == 'attachment; filename="imagesearch-shop-main-v1-problems.csv"'
    )
    assert "Signature" not in download.text
    table = list(csv.reader(io.StringIO(download.text)))
    assert table[0] == [
        "row_number",
        "path",
        "outcome",
        "error_code",
        "error_message",
        "run_id",
        "updated_at",
    ]
    assert [line[0] for line in table[1:]] == ["3", "4"]
    # Cells a spreadsheet would run as formulas are quoted.
    assert table[2][1] == '\'=HYPERLINK("https://evil.example")'
    assert table[2][4] == "'-2+3"


@pytest.mark.parametrize(
    ("instance", "disposition"),
    [
        ("shop-main", 'attachment; filename="imagesearch-shop-main-v1-problems.csv"'),
        (
            "图库-1",
            'attachment; filename="imagesearch-__-1-v1-problems.csv"; '
            "filename*=UTF-8''imagesearch-%E5%9B%BE%E5%BA%93-1-v1-problems.csv",
        ),
        (
            "Café",
            "attachment; filename=\"imagesearch-Caf_-v1-problems.csv\"; filename*=UTF-8''imagesearch-Caf%C3%A9-v1-problems.csv",
        ),
        ('a"b\\c;d\r\n', 'attachment; filename="imagesearch-a_b_c_d__-v1-problems.csv"'),
    ],
)
def test_the_csv_file_name_is_ascii_with_the_library_name_as_filename_star(
    client: Any, sqlite_database: Database, page_options: Callable[..., None], instance: str, disposition: str
) -> None:
    page_options(ledger_conn_id=sqlite_database.conn_id, imagesearch_conn_id="")
    ledger_run(sqlite_database, instance, "run", [("https://h.example/a.jpg", "invalid", "E", "m", 2)])
    answer = client.get(
        "/imagesearch/problems.csv", params={"instance": instance, "api": "v1"}, headers=bearer("viewer")
    )
    assert answer.status_code == 200
    assert answer.headers["content-disposition"] == disposition
    assert [line[0] for line in csv.reader(io.StringIO(answer.text))] == ["row_number", "2"]


def test_without_tables_the_page_says_so(
    client: Any, database: Database, page_options: Callable[..., None]
) -> None:
    page_options(archive_conn_id=database.conn_id, ledger_conn_id=database.conn_id, imagesearch_conn_id="")
    for path in ("fleet", "history", "libraries"):
        answer = client.get(f"/imagesearch/{path}", headers=bearer("viewer"))
        assert answer.status_code == 200
        assert "does not exist on this connection" in answer.text


def test_a_connection_that_is_not_sql_is_a_notice(client: Any, page_options: Callable[..., None]) -> None:
    page_options(archive_conn_id="no_such_connection")
    answer = client.get("/imagesearch/fleet", headers=bearer("viewer"))
    assert answer.status_code == 200
    assert (
        "The connection &#39;no_such_connection&#39; ([imagesearch] archive_conn_id) could not be used."
        in answer.text
    )


def test_a_bad_option_names_itself(client: Any, page_options: Callable[..., None]) -> None:
    page_options(page_size="lots")
    answer = client.get("/imagesearch/fleet", headers=bearer("viewer"))
    assert answer.status_code == 500
    assert answer.json()["detail"] == "[imagesearch] page_size must be an integer from 1 to 500, got 'lots'"


def test_the_page_reads_a_table_without_its_index_and_writes_nothing(
    database: Database, client: Any, page_options: Callable[..., None]
) -> None:
    """A table created before the indexes came with it: every view of the page reads it (slower) and
    leaves the schema as it found it."""
    import sqlalchemy as sa

    archive_run(database, [detail("shop-a")], "run_1", at(1))
    archive_run(database, [detail("shop-a", "ABNORMAL")], "run_2", at(2))
    ledger_run(database, "shop", "import_1", [("https://h.example/a.jpg", "invalid", "E", "bad", 2)])
    with database.engine.begin() as connection:
        connection.execute(sa.text("DROP INDEX ix_isui_imagesearch_instance_archive"))
        connection.execute(sa.text("DROP INDEX ix_isui_imagesearch_import_ledger"))
    page_options(archive_conn_id=database.conn_id, ledger_conn_id=database.conn_id, imagesearch_conn_id="")
    for address in ("/imagesearch/fleet", "/imagesearch/history", "/imagesearch/libraries"):
        assert client.get(address, headers=bearer("viewer")).status_code == 200, address
    answer = client.get("/imagesearch/problems?instance=shop&api=v1", headers=bearer("viewer"))
    assert answer.status_code == 200
    csv_answer = client.get("/imagesearch/problems.csv?instance=shop&api=v1", headers=bearer("viewer"))
    assert csv_answer.status_code == 200
    assert "shop" in client.get("/imagesearch/libraries", headers=bearer("viewer")).text
    inspector = sa.inspect(database.engine)
    assert inspector.get_indexes(ARCHIVE) == inspector.get_indexes(LEDGER) == []
