"""The ImageSearch page in a real browser, in ``airflow standalone``, after the example DAGs ran.

Airflow runs as shipped (the simple auth manager with two users, *not* in all-admins mode) against the
emulator. The example DAGs run for real: the archive DAG, the catalogue import (v1) and the v2 catalogue;
then an instance turns ABNORMAL in the emulator and the archive DAG runs again. Headless Chromium logs in
as a viewer, opens the page from Airflow's navigation and checks what it shows against the tables and
the emulator: the fleet's statuses, the status change in the history chart, the ledger's counts in the
libraries table, the problem rows and their CSV. Every endpoint of the page is also called without a
credential through the real api-server, and refused.

Screenshots go to the test's tmp folder (kept); with ``IMAGESEARCH_DOCS_SCREENSHOTS=1`` they are also
written to ``docs/img/`` for ``docs/ui-page.rst``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from tests.support.connections import connection_fields, env_name
from tests.support.waiting import wait_until
from tests.ui.standalone import Standalone, run_standalone

# The compatibility venv (make test-compat) has no browser driver: the rest of tests/plugin runs there.
sync_api = pytest.importorskip("playwright.sync_api")
expect, sync_playwright = sync_api.expect, sync_api.sync_playwright

REPO = Path(__file__).resolve().parents[2]
DOCS_IMAGES = REPO / "docs" / "img"
ARCHIVE_DAG = "imagesearch_instance_archive"
IMPORT_DAG = "imagesearch_catalog_import"
V2_DAG = "imagesearch_v2_catalog"
FLEET = ["shop-main", "shop-new", "archive-forever"]
SICK = "shop-new"
PASSWORDS = {"admin": "admin-Passw0rd-ui", "viewer": "viewer-Passw0rd-ui"}
PAGE_PATHS = ["/", "/fleet", "/history", "/libraries", "/problems", "/problems.csv"]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def chromium() -> Path:
    """Debian's Chromium, installed by scripts/ensure-chromium.sh when missing."""
    import subprocess

    if not CHROMIUM.exists():
        subprocess.run(["bash", str(REPO / "scripts" / "ensure-chromium.sh")], check=False, timeout=600)
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing and scripts/ensure-chromium.sh could not install it")
    return CHROMIUM


@pytest.fixture(scope="module")
def page_emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        for name in FLEET:
            emu.upsert_instance(name, description=f"{name} catalogue", tags=["color"])
        # The import DAG reuses an existing instance with its tags (no minutes of creation to wait).
        emu.upsert_instance(
            "catalog-demo",
            tags=["color", "size"],
            description="Sample catalogue of the imagesearch_catalog_import example DAG",
        )
        emu.upsert_v2_service("catalog", custom_tags=["color"], custom_num_tags=["price"], items={})
        yield emu


@pytest.fixture(scope="module")
def page_airflow(
    tmp_path_factory: pytest.TempPathFactory, page_emulator: Emulator
) -> Iterator[tuple[Standalone, Path]]:
    home = tmp_path_factory.mktemp("page-airflow-home")
    database = home / "imagesearch.db"
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps(PASSWORDS))
    env = {
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        env_name("imagesearch_default"): json.dumps(connection_fields(page_emulator.url, "token")),
        env_name("imagesearch_archive_db"): json.dumps({"conn_type": "sqlite", "host": str(database)}),
    }
    # A loaded CI machine can take minutes to bring every component up.
    with run_standalone(home, REPO / "dags", env, ready_timeout=300) as standalone:
        yield standalone, database


def call(base_url: str, method: str, path: str, body: Any = None, token: str = "") -> tuple[int, Any]:
    """One HTTP call to the api-server, with a bearer token when given; (status, JSON or text)."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        base_url + path,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers=headers,
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def log_in(base_url: str, user: str) -> str:
    status, body = call(base_url, "POST", "/auth/token", {"username": user, "password": PASSWORDS[user]})
    assert status in (200, 201), body
    return str(body["access_token"])


class Api:
    """Airflow's REST API as the admin user."""

    def __init__(self, airflow: Standalone) -> None:
        self.airflow = airflow
        self.token = log_in(airflow.base_url, "admin")

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return call(self.airflow.base_url, method, path, body, self.token)

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        found = wait_until(lambda: self.call("GET", f"/api/v2/dags/{dag_id}")[0], lambda s: s == 200, 120, 1)
        assert found == 200, f"{dag_id} never parsed: {self.call('GET', '/api/v2/importErrors')[1]}"
        assert self.call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})[0] == 200
        status, run = self.call(
            "POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf or {}}
        )
        assert status == 200, run
        return str(run["dag_run_id"])

    def finish(self, dag_id: str, run_id: str, timeout: float = 240, expect: str = "success") -> None:
        state = wait_until(
            lambda: self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")[1].get("state"),
            lambda value: value in ("success", "failed"),
            timeout=timeout,
            every=1,
        )
        tasks = self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")[1]
        summary = [(t["task_id"], t["map_index"], t["state"]) for t in tasks.get("task_instances", [])]
        assert state == expect, f"{dag_id} {run_id} ended {state}: {summary}\n{self.airflow.tail()}"


def _sql(database: Path, query: str) -> list[tuple[Any, ...]]:
    import sqlite3

    with sqlite3.connect(database) as connection:
        return connection.execute(query).fetchall()


@pytest.fixture
def shots(tmp_path: Path) -> Iterator[Any]:
    folder = tmp_path / "screenshots"
    folder.mkdir()
    publish = os.environ.get("IMAGESEARCH_DOCS_SCREENSHOTS") == "1"

    def shot(page: Any, name: str, *, full_page: bool = True) -> Path:
        path = folder / f"ui-page-{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        if publish:
            DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, DOCS_IMAGES / path.name)
        return path

    yield shot
    print(f"screenshots in {folder}")


def test_the_page_after_the_example_dags_ran(
    page_airflow: tuple[Standalone, Path],
    page_emulator: Emulator,
    chromium: Path,
    shots: Any,
    tmp_path: Path,
) -> None:
    airflow, database = page_airflow
    api = Api(airflow)

    # --- every endpoint of the page refuses a request without a credential -------------------
    viewer = log_in(airflow.base_url, "viewer")
    for path in PAGE_PATHS:
        url = f"/imagesearch{path}?instance=catalog-demo&api=v1"
        status, body = call(airflow.base_url, "GET", url)
        assert status == 401, (path, status, body)
        # ... and answers the viewer (the tables do not exist yet: the pages say so).
        assert call(airflow.base_url, "GET", url, token=viewer)[0] in (200, 307, 404), path

    # --- the example DAGs run: an archive, the v1 catalogue import, the v2 catalogue -----------
    first_archive = api.trigger(ARCHIVE_DAG, {"instance_names": FLEET})
    imported = api.trigger(IMPORT_DAG)
    v2_imported = api.trigger(V2_DAG)
    api.finish(ARCHIVE_DAG, first_archive)
    api.finish(IMPORT_DAG, imported)
    api.finish(V2_DAG, v2_imported)
    # The status changes between two archive runs.
    page_emulator.upsert_instance(SICK, description=f"{SICK} catalogue", tags=["color"], status="ABNORMAL")
    second_archive = api.trigger(ARCHIVE_DAG, {"instance_names": FLEET})
    api.finish(ARCHIVE_DAG, second_archive, expect="failed")  # archived, then check_fleet fails the run
    archived = dict(
        _sql(
            database,
            f"SELECT instance_name, status FROM imagesearch_instance_archive WHERE run_id = '{second_archive}'",
        )
    )
    assert archived == {"shop-main": "NORMAL", "shop-new": "ABNORMAL", "archive-forever": "NORMAL"}
    page_emulator.reset_stats()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
            context.set_default_timeout(30_000)
            page = context.new_page()
            _log_in(page, airflow, shots)
            _fleet(page, context, airflow, shots, second_archive)
            _history(page, shots, second_archive)
            _libraries(page, shots, database, imported, tmp_path)
            # A run link leads to the DAG run in Airflow's UI.
            page.goto(f"{airflow.base_url}/imagesearch/fleet")
            page.locator(f'tr[data-instance="{SICK}"] a[title="DAG run of {ARCHIVE_DAG}"]').click()
            page.wait_for_url(re.compile(rf"/dags/{ARCHIVE_DAG}/runs/"))
            expect(page.get_by_text(second_archive).first).to_be_visible()
        finally:
            browser.close()
    # Nothing the page did called ImageSearch.
    assert page_emulator.requests_log() == []


def _log_in(page: Any, airflow: Standalone, shots: Any) -> None:
    page.goto(airflow.base_url + "/")
    page.locator("input[name=username]").fill("viewer")
    page.locator("input[name=password]").fill(PASSWORDS["viewer"])
    page.get_by_role("button", name=re.compile("sign in|log in|login", re.I)).click()
    page.get_by_role("heading", name="Welcome").wait_for()
    page.wait_for_load_state("networkidle")
    page.get_by_role("button", name="Browse").click()
    entry = page.get_by_role("menuitem", name="ImageSearch")
    expect(entry).to_be_visible()
    assert entry.get_attribute("href") == "imagesearch/"
    shots(page, "navigation", full_page=False)


def _fleet(page: Any, context: Any, airflow: Standalone, shots: Any, second_archive: str) -> None:
    # Browse -> ImageSearch opens the page in a new tab.
    with context.expect_page() as opened:
        page.get_by_role("menuitem", name="ImageSearch").click()
    tab = opened.value
    tab.wait_for_load_state()
    assert tab.url == f"{airflow.base_url}/imagesearch/fleet"
    tab.close()
    page.goto(f"{airflow.base_url}/imagesearch/fleet")
    rows = page.locator("#fleet tbody tr")
    expect(rows).to_have_count(3)
    shown = {
        rows.nth(i).get_attribute("data-instance"): rows.nth(i).get_attribute("data-status") for i in range(3)
    }
    assert shown == {"shop-main": "NORMAL", "shop-new": "ABNORMAL", "archive-forever": "NORMAL"}
    sick = page.locator(f'#fleet tr[data-instance="{SICK}"]')
    assert sick.get_attribute("class") == "tone-bad"  # highlighted
    expect(sick.get_by_role("link", name=second_archive)).to_be_visible()
    expect(sick.get_by_role("link", name="console")).to_have_attribute("target", "_blank")
    shots(page, "fleet")
    page.get_by_role("link", name=re.compile(r"ABNORMAL\s+1")).click()
    expect(page.locator("#fleet tbody tr")).to_have_count(1)


def _history(page: Any, shots: Any, second_archive: str) -> None:
    page.get_by_role("link", name="History").click()
    lane = page.locator(f'#history-chart g.lane[data-instance="{SICK}"] rect')
    expect(lane).to_have_count(2)
    assert [lane.nth(i).get_attribute("data-status") for i in range(2)] == ["NORMAL", "ABNORMAL"]
    assert lane.nth(1).get_attribute("data-run") == second_archive
    expect(page.locator(f'#lanes tr[data-instance="{SICK}"]')).to_contain_text("ABNORMAL since")
    change = page.locator(f'#changes tr[data-instance="{SICK}"]')
    expect(change).to_contain_text("NORMAL")
    expect(change.get_by_role("link", name=second_archive)).to_be_visible()
    shots(page, "history")


def _libraries(page: Any, shots: Any, database: Path, imported: str, tmp_path: Path) -> None:
    page.get_by_role("link", name="Libraries").click()
    v1 = page.locator('#libraries tr[data-library="catalog-demo"][data-api="v1"]')
    v2 = page.locator('#libraries tr[data-library="catalog"][data-api="v2"]')
    expect(v1).to_be_visible()
    expect(v2).to_be_visible()
    # The ledger's own counts, read here with plain SQL.
    ledger = "imagesearch_import_ledger"
    outcomes = dict(
        _sql(
            database,
            f"SELECT outcome, count(*) FROM {ledger} WHERE instance_name='catalog-demo' AND api='v1' GROUP BY outcome",
        )
    )
    held = _sql(
        database,
        f"SELECT count(*) FROM {ledger} WHERE instance_name='catalog-demo' AND api='v1' "
        "AND held_fingerprint IS NOT NULL AND held_fingerprint <> '?'",
    )[0][0]
    assert outcomes.get("invalid", 0) > 0
    assert v1.locator("td[data-held]").get_attribute("data-held") == str(held)
    assert v1.locator("td[data-problems]").get_attribute("data-problems") == str(
        outcomes.get("invalid", 0) + outcomes.get("failed", 0)
    )
    counts = v1.locator("[data-outcome]")
    shown = {
        counts.nth(i).get_attribute("data-outcome"): int(counts.nth(i).get_attribute("data-count") or 0)
        for i in range(counts.count())
    }
    assert shown == outcomes  # one import run wrote every row
    expect(v1.get_by_role("link", name=imported)).to_be_visible()
    v2_rows = _sql(database, f"SELECT count(*) FROM {ledger} WHERE instance_name='catalog' AND api='v2'")[0][
        0
    ]
    assert v2_rows > 0
    expect(v2.locator("td.num").nth(1)).to_have_text(f"{v2_rows:,}")
    shots(page, "libraries")

    v1.locator("td[data-problems] a").click()
    problems = page.locator("#problems tbody tr")
    expect(problems).to_have_count(outcomes.get("invalid", 0) + outcomes.get("failed", 0))
    reasons = dict(
        _sql(
            database,
            f"SELECT row_number, error_message FROM {ledger} WHERE instance_name='catalog-demo' AND outcome='invalid'",
        )
    )
    first_row = problems.first
    number = int(first_row.get_attribute("data-row") or 0)
    assert number == min(reasons)
    expect(first_row).to_contain_text(reasons[number])
    shots(page, "problems")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download all as CSV").click()
    saved = tmp_path / "problems.csv"
    download_info.value.save_as(saved)
    table = list(csv.reader(io.StringIO(saved.read_text())))
    assert sorted(int(line[0]) for line in table[1:]) == sorted(reasons)
