"""Reproductions of defects found reviewing issues 20 (operators, round 2) and 21 (emulator codes, testing kit).

Each test is marked ``xfail(strict=True)``: it FAILS on the reviewed code (main at 083230a) and the fixer
removes the mark with the fix. Everything runs against the emulator over loopback, in real Airflow
(``dag.test()``) or as a user's pytest session would; where a test needs the service to answer what the
emulator never answers, a small rewriting HTTP proxy stands between the provider and the emulator.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import DAG

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from airflow_provider_imagesearch.operators.imagesearch import ImageSearchCreateInstanceOperator
from airflow_provider_imagesearch.operators.imagesearch_v2 import ImageSearchV2DeleteDataOperator
from tests.support.dagrun import run_dag, states, xcom
from tests.support.rewriting_proxy import RewritingProxy

REPO = Path(__file__).resolve().parents[2]


def _token_connection(monkeypatch: pytest.MonkeyPatch, emulator: Emulator, mms_endpoint: str) -> str:
    from tests.support.connections import connection_fields, set_connection

    fields = connection_fields(emulator.url, "token", max_attempts=3)
    fields["extra"]["mms_endpoint"] = mms_endpoint
    return set_connection(monkeypatch, "imagesearch_default", **fields)


def _dag(dag_id: str, operator: type, **kwargs: Any) -> DAG:
    kwargs.setdefault("retries", 0)
    kwargs.setdefault("retry_delay", timedelta(seconds=0))
    with DAG(dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
        operator(task_id="op", **kwargs)
    return dag


def _items(emulator: Emulator, service: str) -> dict[str, Any]:
    for found in emulator.control.state()["v2_services"]:
        if found["name"] == service and found["project_id"] == DEFAULT_PROJECT_ID:
            items: dict[str, Any] = found["items"]
            return items
    return {}


def _conditional_deletes(emulator: Emulator) -> list[dict[str, Any]]:
    return [r for r in emulator.requests_log() if r["path"].endswith("/data/delete")]


# --- issue 20: the conditional v2 delete that now deletes every matching item --------------------------------


@pytest.mark.usefixtures("airflow_db")
def test_a_conditional_delete_racing_a_writer_stops_after_the_batches_it_was_asked_for(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator
) -> None:
    """A user purges ``season=old`` (250 items) while an import keeps adding ``season=old`` items (here:
    100 more between every two batches, for 20 batches). The operator loops "until none matches" with no
    bound: it sends 23 deletes and deletes 2,250 items, 2,000 of which did not exist when the task started;
    with a writer that never stops, the task never ends (only ``execution_timeout`` stops it).
    Expected: a bounded number of batches (what matched at the start, plus the retry budget), then stop
    (or fail, naming what still matches)."""
    service = "purge-race"
    emulator.upsert_v2_service(
        service,
        items={f"o{n:04d}": {"digest": f"o{n}", "custom_tags": {"season": "old"}} for n in range(250)},
    )
    rounds = {"added": 0}

    def writer(path: str, body: dict[str, Any], status: int, answer: Any) -> Any:
        if path.endswith("/data/delete") and "custom_tags" in body and rounds["added"] < 20:
            batch = rounds["added"]
            rounds["added"] += 1
            emulator.control.add_v2_items(
                service,
                {
                    f"w{batch:02d}-{n:03d}": {"digest": f"w{batch}-{n}", "custom_tags": {"season": "old"}}
                    for n in range(100)
                },
                project_id=DEFAULT_PROJECT_ID,
            )
        return answer

    with RewritingProxy(emulator.url, writer) as proxy:
        dr = run_dag(
            _dag(
                "review_purge_race",
                ImageSearchV2DeleteDataOperator,
                service_name=service,
                custom_tags={"season": ["old"]},
                imagesearch_conn_id=_token_connection(monkeypatch, emulator, proxy.url),
            )
        )
    sent = len(_conditional_deletes(emulator))
    result = xcom(dr, "op") or {}
    assert sent <= 3 + 3, (
        f"{sent} conditional deletes for 250 items that matched at the start; deleted "
        f"{result.get('delete_num')} (total_num {result.get('total_num')})"
    )


@pytest.mark.usefixtures("airflow_db")
def test_a_conditional_delete_answered_without_data_does_not_end_with_items_still_matching(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator
) -> None:
    """The provider now accepts a v2 answer without ``data`` (the SDK models it optional). A conditional
    delete answered ``{"result": "success"}`` (100 deleted, no counts) is read as "0 deleted", and the loop
    that promises "deletes every matching item, until none matches" stops there: the task succeeds,
    reporting ``delete_num: 0``, with 150 items still matching. The operator never reads back what is left
    before declaring success."""
    service = "purge-nodata"
    emulator.upsert_v2_service(
        service,
        items={f"o{n:04d}": {"digest": f"o{n}", "custom_tags": {"season": "old"}} for n in range(250)},
    )

    def without_data(path: str, body: dict[str, Any], status: int, answer: Any) -> Any:
        if path.endswith("/data/delete") and status == 200 and isinstance(answer, dict):
            return {k: v for k, v in answer.items() if k != "data"}
        return answer

    with RewritingProxy(emulator.url, without_data) as proxy:
        dr = run_dag(
            _dag(
                "review_purge_nodata",
                ImageSearchV2DeleteDataOperator,
                service_name=service,
                custom_tags={"season": ["old"]},
                imagesearch_conn_id=_token_connection(monkeypatch, emulator, proxy.url),
            )
        )
    left = len(_items(emulator, service))
    assert not (states(dr) == {("op", -1): ("success", 1)} and left), (
        f"the task succeeded with {left} items still matching; XCom {xcom(dr, 'op')}"
    )


# --- issue 20 x 21: a forced v2 delete by id -----------------------------------------------------------------


@pytest.mark.usefixtures("airflow_db")
def test_a_forced_delete_of_an_item_that_was_never_there_does_not_report_it_deleted(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    """``ImageSearchV2DeleteDataOperator(item_id="ghost", force=True)`` on a service without that item:
    the service deleted nothing, but the XCom says ``deleted_ids: ["ghost"]`` (i21's parser puts the asked
    id in ``deleted_ids`` for every forced delete by id). A downstream task counting ``deleted_ids`` counts
    a deletion that never happened."""
    emulator.upsert_v2_service("force-ghost", items={"real": {"digest": "r"}})
    dr = run_dag(
        _dag(
            "review_force_ghost",
            ImageSearchV2DeleteDataOperator,
            service_name="force-ghost",
            item_id="ghost",
            force=True,
            imagesearch_conn_id=imagesearch_conn("token"),
        )
    )
    assert states(dr) == {("op", -1): ("success", 1)}
    assert "ghost" not in xcom(dr, "op")["deleted_ids"], xcom(dr, "op")


@pytest.mark.usefixtures("airflow_db")
def test_a_forced_delete_that_deleted_the_item_reports_one_deleted(
    imagesearch_conn: Callable[..., str], emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    """A forced delete of an item that IS there, answered normally: the task logs "Deleted 0 item(s)" and
    pushes ``delete_num: None``, while the same delete whose answer was lost (issue 20 item 6) pushes
    ``{"deleted_ids": [id], "total_num": 1, "delete_num": 1}``. The normal path reports less than the
    faulty one; ``_delete_item``'s ``earlier_try and not result.deleted_ids`` branch can no longer run."""
    emulator.upsert_v2_service("force-real", items={"real": {"digest": "r"}})
    with caplog.at_level(logging.INFO):
        dr = run_dag(
            _dag(
                "review_force_real",
                ImageSearchV2DeleteDataOperator,
                service_name="force-real",
                item_id="real",
                force=True,
                imagesearch_conn_id=imagesearch_conn("token"),
            )
        )
    assert states(dr) == {("op", -1): ("success", 1)}
    assert _items(emulator, "force-real") == {}
    assert "Deleted 0 item(s)" not in caplog.text
    assert xcom(dr, "op")["delete_num"] == 1, xcom(dr, "op")


# --- issue 20: the create marker ----------------------------------------------------------------------------


@pytest.mark.usefixtures("airflow_db")
def test_reuse_adopts_an_instance_whose_description_is_exactly_the_one_asked(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    """An instance created by an ``if_exists="fail"`` run shows ``"spring [airflow:3f9c2a71b4d0]"`` in the
    console and in that run's XCom. A second DAG adopts it with ``if_exists="reuse"`` and passes that very
    description (copied from the console, or templated from the XCom): the operator strips the marker from
    what the service holds but not from what was asked, and fails with "description is 'spring', wanted
    'spring [airflow:3f9c2a71b4d0]'", although the two are identical."""
    held = "spring [airflow:3f9c2a71b4d0]"
    emulator.upsert_instance("reuse-marked", tags=["color"], description=held)
    dr = run_dag(
        _dag(
            "review_reuse_marked",
            ImageSearchCreateInstanceOperator,
            instance_name="reuse-marked",
            tags=["color"],
            description=held,
            if_exists="reuse",
            wait_for_completion=False,
            imagesearch_conn_id=imagesearch_conn("token"),
        )
    )
    assert states(dr) == {("op", -1): ("success", 1)}


# --- issue 21: the testing kit ------------------------------------------------------------------------------

_KIT_PROJECT_TEST = """
import os
from datetime import datetime
from pathlib import Path

from airflow.sdk import DAG
from airflow_provider_imagesearch.operators.imagesearch import InstanceDetailOperator
from airflow_provider_imagesearch.testing import run_dag

with DAG("shop_detail", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
    InstanceDetailOperator(task_id="detail", instance_name="shop-main")


def test_the_dag(imagesearch_emulator):
    from airflow.configuration import conf

    out = Path(os.environ["REVIEW_OUT"]) / f"{os.getpid()}.txt"
    out.write_text(conf.get("database", "sql_alchemy_conn"))
    imagesearch_emulator.add_instance("shop-main", tags=["color"])
    assert run_dag(dag).state == "success"
"""


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "IMAGESEARCH", "PYTEST"))}
    env.update(extra)
    return env


@pytest.mark.not_in_mutation_run
def test_concurrent_kit_sessions_started_like_xdist_workers_use_their_own_metadata_db(tmp_path: Path) -> None:
    """A user runs their suite with ``pytest -n 2`` (pytest-xdist), the usual way to speed up DAG tests.
    The plugin's ``pytest_configure`` makes the sandbox ``AIRFLOW_HOME`` in the controller process, and
    the workers inherit that environment: both see "their" sandbox, and the first ``run_dag`` in each
    calls ``db.resetdb()`` on the same SQLite file, dropping the tables under the other worker's running
    ``dag.test()`` ("table dag_run already exists", missing tables, failed runs; with the docs' own
    example files 3 of 6 tests failed under ``-n 2`` in this review). Here: two sessions started with the
    environment the plugin left in their parent, as xdist starts its workers; each must have its own DB."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "conftest.py").write_text('pytest_plugins = ["airflow_provider_imagesearch.testing"]\n')
    (project / "test_dag.py").write_text(textwrap.dedent(_KIT_PROJECT_TEST))
    out = tmp_path / "out"
    out.mkdir()
    # The controller: the plugin's pytest_configure runs there first; its environment is what workers get.
    controller = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, os; from airflow_provider_imagesearch.testing import sandbox_airflow_home; "
            "sandbox_airflow_home(); print(json.dumps(dict(os.environ)))",
        ],
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    worker_env = json.loads(controller.stdout)
    worker_env["REVIEW_OUT"] = str(out)
    # What xdist adds to each worker's inherited environment.
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", str(project)],
            cwd=project,
            env={**worker_env, "PYTEST_XDIST_WORKER": f"gw{n}", "PYTEST_XDIST_WORKER_COUNT": "2"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for n in range(2)
    ]
    for worker in workers:
        worker.communicate(timeout=300)
    databases = [path.read_text() for path in sorted(out.glob("*.txt"))]
    assert len(databases) == 2, databases
    assert databases[0] != databases[1], f"both sessions used {databases[0]}"


def test_the_guard_refuses_a_huawei_host_spelt_with_an_ideographic_full_stop() -> None:
    """The kit promises a request to a public Huawei Cloud host is impossible. The guard compares the name
    it is given with ``*.myhuaweicloud.com``; Python's resolver IDNA-encodes a str host, mapping U+3002
    (and U+FF0E, U+FF61) to ".". ``urllib.request`` and ``http.client`` pass the host through unchanged,
    so ``iam.cn-north-4.myhuaweicloud\\u3002com`` passes the guard and resolves the real IAM host. (Here the
    real resolver is replaced by a recorder first: no name leaves the machine.)"""
    from airflow_provider_imagesearch.testing.guard import HuaweiCloudGuard, PublicHostBlockedError

    host = "iam.cn-north-4.myhuaweicloud\u3002com"
    assert host.encode("idna") == b"iam.cn-north-4.myhuaweicloud.com"
    resolved: list[str] = []
    real = socket.getaddrinfo

    def recorder(name: Any, *args: Any, **kwargs: Any) -> Any:
        resolved.append(name)
        return real("127.0.0.1", *args, **kwargs)

    socket.getaddrinfo = recorder
    try:
        with HuaweiCloudGuard(), pytest.raises(PublicHostBlockedError):
            socket.getaddrinfo(host, 443)
    finally:
        socket.getaddrinfo = real
    assert resolved == []


_KIT_ORDER_TEST = """
from datetime import datetime

from airflow.sdk import DAG
from airflow_provider_imagesearch.operators.imagesearch import InstanceDetailOperator
from airflow_provider_imagesearch.testing import run_dag

with DAG("shop_detail", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
    InstanceDetailOperator(task_id="detail", instance_name="shop-main")


def test_a_token_expiry_is_handled(imagesearch_emulator):
    imagesearch_emulator.add_instance("shop-main")
    assert run_dag(dag).state == "success"
    imagesearch_emulator.expire_tokens()


def test_b_starts_clean(imagesearch_emulator):
    imagesearch_emulator.add_instance("shop-main")
    assert run_dag(dag).state == "success"
    log = [(r["route"], r["status"], r["error_code"]) for r in imagesearch_emulator.requests()]
    assert log[0] == ("POST /v3/auth/tokens", 201, None), log
"""


@pytest.mark.not_in_mutation_run
def test_a_kit_test_starts_with_no_token_left_by_the_test_before(tmp_path: Path) -> None:
    """The fixture promises every test starts from the emulator's start state with an empty request log.
    The provider's process-wide token cache is not cleared between tests: a test that calls
    ``expire_tokens()`` makes the NEXT test's first request a 401 ``APIGW.0307`` (then a token request),
    and without expiry the next test sends no token request at all: a user's assertion on the request
    log passes or fails depending on test order. The provider's own suite clears ``TOKEN_CACHE`` around
    every test (``tests/support/fixtures.py``); the kit does not."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "conftest.py").write_text('pytest_plugins = ["airflow_provider_imagesearch.testing"]\n')
    (project / "test_order.py").write_text(textwrap.dedent(_KIT_ORDER_TEST))
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", str(project)],
        cwd=project,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:]


@pytest.mark.usefixtures("airflow_db")
def test_a_v2_search_by_the_documented_enum_value_is_not_refused(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    """Issue 21: "the SDK's docstring and the search page say the name or the value is accepted" (``IMAGE``
    or ``"0"``), and the emulator now accepts ``"0"``. The provider's own check still refuses it before
    any request: ``ImageSearchV2SearchOperator(search_type="0")`` fails with "Invalid search_type '0': one
    of IMAGE, CATEGORY, KEYWORD, TEXT", so a DAG written from Huawei's page cannot run."""
    from airflow_provider_imagesearch.operators.imagesearch_v2 import ImageSearchV2SearchOperator

    emulator.upsert_v2_service("enum-svc", items={"a": {"image_url": "https://cdn.example/a.jpg"}})
    dr = run_dag(
        _dag(
            "review_search_type_value",
            ImageSearchV2SearchOperator,
            service_name="enum-svc",
            search_type="0",
            image_url="https://cdn.example/a.jpg",
            imagesearch_conn_id=imagesearch_conn("token"),
        )
    )
    assert states(dr) == {("op", -1): ("success", 1)}
    assert [item["id"] for item in xcom(dr, "op")] == ["a"]


@pytest.mark.usefixtures("airflow_db")
def test_a_write_on_a_service_failing_writes_sends_at_most_max_attempts_requests_per_try(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    """The service's index is failing: every v2 update answers ``MMS.1016`` "Process INDEX failed" (a
    documented "try again later"), reads work. The connection says ``max_attempts=3``. The hook retries the
    (idempotent) update 3 times; the write rule then reads the item back, finds the old ``desc`` and, the
    update being an overwrite, sends it again through the hook: 3 sends x 3 attempts = 9 updates (and 3
    reads) in ONE task try, each with its backoff; with task retries, 9 per try. ``max_attempts`` no longer
    bounds the requests a call makes against a failing service; it is squared."""
    from airflow_provider_imagesearch.operators.imagesearch_v2 import ImageSearchV2UpdateDataOperator

    emulator.upsert_v2_service("index-down", items={"it": {"digest": "x", "desc": "old"}})
    emulator.set_faults(sequence=(["MMS.1016"] * 3 + ["ok"]) * 3)
    dr = run_dag(
        _dag(
            "review_update_amplified",
            ImageSearchV2UpdateDataOperator,
            service_name="index-down",
            item_id="it",
            desc="new",
            imagesearch_conn_id=imagesearch_conn("token", max_attempts=3),
        )
    )
    assert states(dr) == {("op", -1): ("failed", 1)}
    updates = [r for r in emulator.requests_log() if r["path"].endswith("/data/update")]
    assert len(updates) <= 3, f"{len(updates)} update requests in one try with max_attempts=3"


@pytest.mark.not_in_mutation_run
def test_a_conftest_that_imports_airflow_first_does_not_run_the_dags_in_the_users_home(
    tmp_path: Path,
) -> None:
    """The docs' two-line conftest.py, with one line a user typically adds above it (``from airflow.sdk
    import Variable``). Airflow is then imported before the plugin's ``pytest_configure``, so the kit
    silently skips its sandbox; ``run_dag`` does not create a DB; every test fails with "no such table:
    dag_bundle", and ``~/airflow/airflow.db`` and ``~/airflow/logs`` are created in the user's home, which
    the docs say is "never touched". Nothing tells the user why (no header, no message naming the kit)."""
    project = tmp_path / "project"
    project.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    (project / "conftest.py").write_text(
        'from airflow.sdk import Variable  # noqa: F401\n\npytest_plugins = ["airflow_provider_imagesearch.testing"]\n'
    )
    (project / "test_dag.py").write_text(textwrap.dedent(_KIT_PROJECT_TEST))
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(project)],
        cwd=project,
        env=_clean_env(HOME=str(home), REVIEW_OUT=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert not (home / "airflow" / "airflow.db").exists(), "the DAG ran against ~/airflow"
    assert run.returncode == 0 or "imagesearch" in run.stdout.split("short test summary")[-1], run.stdout[
        -2000:
    ]
