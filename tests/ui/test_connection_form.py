"""The connection form and the task page in a real browser, as a new user meets them.

``airflow standalone`` (Airflow's own API server, scheduler, DAG processor, triggerer) runs in a temporary
home against the emulator; headless Chromium (Debian's package, driven by Playwright) adds an ImageSearch
connection through Admin -> Connections, presses the row's Test button and reads the hook's answer, then
opens a finished task of an ImageSearch operator and finds the console extra link.

The docs show three of its screenshots (``docs/img/*.png``): ``make screenshots`` runs this test with
``IMAGESEARCH_SCREENSHOTS=docs/img``, which saves them there under the names in :data:`DOCS_SHOTS`.

Airflow 3.3.2's row Test button sends ``port: 0`` for a connection without a port, and the API refuses
that as "a different endpoint" (400). The workaround users are told (README, and the form's port hint) is
to fill Port with 443; the test shows both the failure without it and the success with it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect, sync_playwright

from airflow_provider_imagesearch.emulator import (
    DEFAULT_DOMAIN,
    DEFAULT_PASSWORD,
    DEFAULT_PROJECT_ID,
    DEFAULT_REGION,
    DEFAULT_USER,
    Emulator,
)
from airflow_provider_imagesearch.settings import DEFAULT_CONSOLE_URL
from tests.support.connections import connection_fields, env_name
from tests.support.waiting import wait_until
from tests.ui.standalone import Standalone, run_standalone

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
HOOK_NAME = "Huawei Cloud ImageSearch"
DAG_ID = "imagesearch_ui_detail"
TASK_ID = "read_instance"
INSTANCE = "ui-shoes"
DAG_CONN = "imagesearch_ui_dag"
FORM_CONN = "imagesearch_ui_form"
NO_PORT_CONN = "imagesearch_ui_no_port"
#: The workaround for Airflow 3.3.2's Test button: any stored port that the UI sends back unchanged.
#: 443 is what an https endpoint uses anyway; the hook ignores it when the endpoint URL names a port.
WORKAROUND_PORT = "443"
#: Screenshots the docs include: this test's name for the shot -> the file name under docs/img.
DOCS_SHOTS = {
    "form-extra-fields": "connection-form-extra-fields.png",
    "form-transport-fields": "connection-form-transport-fields.png",
    "test-succeeded": "connection-test-succeeded.png",
    "task-instance-console-link": "task-instance-console-link.png",
}

DAG_SOURCE = textwrap.dedent(
    f"""
    from __future__ import annotations

    from datetime import datetime

    from airflow.sdk import DAG

    from airflow_provider_imagesearch.operators.imagesearch import InstanceDetailOperator

    with DAG("{DAG_ID}", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
        InstanceDetailOperator(
            task_id="{TASK_ID}", imagesearch_conn_id="{DAG_CONN}", instance_name="{INSTANCE}"
        )
    """
)


@pytest.fixture(scope="module")
def chromium() -> Path:
    """Debian's Chromium, installed by scripts/ensure-chromium.sh when missing."""
    if not CHROMIUM.exists():
        subprocess.run(["bash", str(REPO / "scripts" / "ensure-chromium.sh")], check=False, timeout=600)
    if not CHROMIUM.exists():
        pytest.skip(
            f"{CHROMIUM} is missing and scripts/ensure-chromium.sh could not install it "
            "(needs apt-get and root or sudo): the browser test cannot run here"
        )
    return CHROMIUM


@pytest.fixture(scope="module")
def ui_emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        emu.upsert_instance(INSTANCE, tags=["colour"])
        yield emu


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory, ui_emulator: Emulator) -> Iterator[Standalone]:
    home = tmp_path_factory.mktemp("ui-airflow-home")
    dags = home / "dags"
    dags.mkdir()
    (dags / f"{DAG_ID}.py").write_text(DAG_SOURCE)
    dag_conn = json.dumps(connection_fields(ui_emulator.url))
    with run_standalone(home, dags, {env_name(DAG_CONN): dag_conn}) as standalone:
        yield standalone


@pytest.fixture
def shots(tmp_path: Path) -> Iterator[Any]:
    """``shot(page, name)`` saves a full-page screenshot into the test's tmp dir (kept on failure too)."""
    folder = tmp_path / "screenshots"
    folder.mkdir()
    counter = iter(range(1, 100))

    def shot(page: Any, name: str) -> Path:
        # Let toasts and accordions finish sliding in, so the picture shows what a person reads.
        # (Spinners loop forever: only finite animations count.)
        page.wait_for_function(
            "document.getAnimations().every(a => a.playState !== 'running'"
            " || a.effect?.getComputedTiming().iterations === Infinity)"
        )
        path = folder / f"{next(counter):02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        docs_folder = os.environ.get("IMAGESEARCH_SCREENSHOTS")
        if docs_folder and name in DOCS_SHOTS:
            shutil.copyfile(path, Path(docs_folder) / DOCS_SHOTS[name])
        return path

    yield shot
    print(f"screenshots in {folder}")


@pytest.fixture
def page(chromium: Path) -> Iterator[Any]:

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            context.set_default_timeout(30_000)
            yield context.new_page()
        finally:
            browser.close()


def _fill_connection_form(page: Any, shots: Any, ui_emulator: Emulator, conn_id: str, port: str) -> None:
    page.get_by_role("button", name="Add Connection").click()
    page.locator("input[name=connection_id]").fill(conn_id)
    page.get_by_text("Select Connection Type").click(force=True)
    page.keyboard.type(HOOK_NAME)
    page.keyboard.press("Enter")
    page.locator("input[name=host]").fill(ui_emulator.url)
    page.locator("input[name=login]").fill(DEFAULT_USER)
    page.locator("input[name=password]").fill(DEFAULT_PASSWORD)
    port_input = page.locator("input[name=port]")
    # The form tells the user to fill Port (the workaround for Airflow 3.3.2's Test button).
    assert "Test button" in (port_input.get_attribute("placeholder") or "")
    shots(page, "form-standard-fields-port-hint")
    port_input.fill(port)
    shots(page, "form-standard-fields")
    for label in ("Endpoint (optional)", "IAM user or access key (AK)", "Password, secret key (SK) or token"):
        assert page.get_by_text(label, exact=True).is_visible(), f"form lacks the field {label!r}"
    # The extras' section replaces the standard one on screen (an accordion).
    page.get_by_role("button", name="Extra Fields", exact=True).click()
    for extra, value in {
        "region": DEFAULT_REGION,
        "project_id": DEFAULT_PROJECT_ID,
        "domain_name": DEFAULT_DOMAIN,
        "iam_endpoint": ui_emulator.url,
    }.items():
        page.locator(f"input[name=element_{extra}]").fill(value)
    for label in (
        "Region",
        "Project ID",
        "Account (domain) name",
        "IAM endpoint",
        "ImageSearch v2 (MMS) endpoint",
        "Connect timeout (s)",
        "Read timeout (s)",
        "Attempts per call",
        "Retry budget (s)",
        "TLS verification",
    ):
        assert page.get_by_text(label, exact=True).is_visible(), f"form lacks the extra {label!r}"
    shots(page, "form-extra-fields")
    # The transport settings further down the form (a viewport shot: the modal scrolls on its own).
    page.locator("input[name=element_verify]").scroll_into_view_if_needed()
    shots(page, "form-transport-fields")


def _press_test(page: Any, conn_id: str) -> Any:
    """Press the Test button on ``conn_id``'s row; return the API's response to it."""
    row = page.get_by_role("row").filter(has_text=conn_id)
    with page.expect_response(lambda r: r.url.endswith("/api/v2/connections/test")) as answer:
        row.get_by_role("button", name="Test Connection").click()
    return answer.value


def test_connection_form_test_button_and_console_link(
    airflow: Standalone, ui_emulator: Emulator, page: Any, shots: Any
) -> None:
    page.goto(f"{airflow.base_url}/connections")
    page.get_by_role("button", name="Add Connection").wait_for()
    shots(page, "connections-list")

    # --- the form shows our relabelled fields and saves ---------------------------------------
    _fill_connection_form(page, shots, ui_emulator, FORM_CONN, WORKAROUND_PORT)
    with page.expect_response(
        lambda r: r.url.endswith("/api/v2/connections") and r.request.method == "POST"
    ) as saved:
        page.get_by_role("button", name="Save").click()
    assert saved.value.status == 201, saved.value.text()
    stored = airflow.api("GET", f"/api/v2/connections/{FORM_CONN}")[1]
    assert stored["conn_type"] == "imagesearch"
    assert stored["port"] == int(WORKAROUND_PORT)
    assert json.loads(stored["extra"])["domain_name"] == DEFAULT_DOMAIN
    page.get_by_role("row").filter(has_text=FORM_CONN).wait_for()
    shots(page, "connection-saved")

    # --- Test on its row: the hook authenticates against the emulator -------------------------
    ui_emulator.reset_stats()
    answer = _press_test(page, FORM_CONN)
    body = answer.json()
    assert answer.status == 200, body
    assert body["status"] is True, body
    assert body["message"].startswith(f"Connected: authenticated to {ui_emulator.url}"), body
    assert ui_emulator.stats()["auth_failures"] == 0
    toast = page.get_by_text("Test Connection Successful")
    expect(toast).to_be_in_viewport()
    expect(page.get_by_text(body["message"], exact=False).first).to_be_in_viewport()
    shots(page, "test-succeeded")

    # --- the same connection without a port: Airflow 3.3.2's bug that the workaround avoids ---
    fields = connection_fields(ui_emulator.url)
    status, created = airflow.api(
        "POST",
        "/api/v2/connections",
        {
            "connection_id": NO_PORT_CONN,
            "conn_type": fields["conn_type"],
            "host": fields["host"],
            "login": fields["login"],
            "password": fields["password"],
            "extra": json.dumps(fields["extra"]),
        },
    )
    assert status == 201, created
    page.reload()
    page.get_by_role("row").filter(has_text=NO_PORT_CONN).wait_for()
    refused = _press_test(page, NO_PORT_CONN)
    # If this starts answering 200, the Airflow in use has the upstream fix: the README's port
    # workaround (and the form's hint) can be dropped.
    assert refused.status == 400, refused.text()
    assert "differs from the stored connection" in refused.text()
    expect(page.get_by_text("Test Connection Failed")).to_be_in_viewport()
    shots(page, "test-without-port-refused")

    # --- a DAG run of an ImageSearch operator, then its task page shows the console link ------
    assert (
        wait_until(
            lambda: airflow.api("GET", f"/api/v2/dags/{DAG_ID}")[0], lambda s: s == 200, timeout=60, every=0.5
        )
        == 200
    ), f"DAG {DAG_ID} never parsed: {airflow.api('GET', '/api/v2/importErrors')[1]}"
    assert airflow.api("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})[0] == 200
    status, run = airflow.api("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {"logical_date": None})
    assert status == 200, run
    run_id = run["dag_run_id"]
    final = wait_until(
        lambda: airflow.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")[1].get("state"),
        lambda state: state in ("success", "failed"),
        timeout=90,
        every=0.5,
    )
    assert final == "success", f"run ended {final}:\n{airflow.tail()}"

    page.goto(f"{airflow.base_url}/dags/{DAG_ID}/runs/{run_id}/tasks/{TASK_ID}")
    page.get_by_text(TASK_ID).first.wait_for()
    shots(page, "task-instance")
    # Airflow 3.3 shows a task's extra links on its Details tab.
    page.get_by_role("tab", name="Details").or_(page.get_by_role("link", name="Details")).first.click()
    link = page.get_by_role("link", name="ImageSearch console")
    expect(link).to_be_visible()
    shots(page, "task-instance-console-link")
    expected = DEFAULT_CONSOLE_URL.format(
        region=DEFAULT_REGION, project_id=DEFAULT_PROJECT_ID, instance_name=INSTANCE
    )
    assert link.get_attribute("href") == expected
