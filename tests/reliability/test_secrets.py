"""Item 7: no password, secret key, security token or issued token ever reaches logs, output,
exception messages or XCom.

Every test of this folder is audited by the autouse ``audit`` fixture (see ``conftest.py``). This module
adds the dedicated end-to-end check: all three auth types (IAM password, permanent AK/SK, temporary
AK/SK with security token, ready token) through success and failure paths (wrong password, wrong SK,
wrong security token, forged token), via the sync hook, the async hook, ``test_connection()`` and a
``dag.test()`` run of the operator and the deferrable sensor, with the provider's, requests', urllib3's
and httpx's loggers at DEBUG. It also proves the auditor itself catches a leak.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from datetime import datetime
from typing import Any

import pytest
from airflow.sdk import DAG

from airflow_provider_imagesearch.auth import TOKEN_CACHE
from airflow_provider_imagesearch.emulator import (
    DEFAULT_PASSWORD,
    DEFAULT_SECURITY_TOKEN,
    DEFAULT_TEMP_ACCESS_KEY,
    DEFAULT_TEMP_SECRET_KEY,
    Emulator,
)
from airflow_provider_imagesearch.errors import ImageSearchAuthError, ImageSearchError
from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchAsyncHook, ImageSearchHook
from airflow_provider_imagesearch.operators.imagesearch import InstanceDetailOperator
from airflow_provider_imagesearch.sensors.imagesearch import ImageSearchInstanceStatusSensor
from tests.reliability.support import ISSUED_TOKENS, STATIC_SECRETS, SecretAudit, logger_levels, run_xcoms
from tests.support.connections import connection_fields, set_connection
from tests.support.dagrun import run_dag, states

BAD_PASSWORD = "Wrong-Passw0rd!zz"
BAD_SECRET_KEY = "wrong-sk-Secret-9999"
BAD_SECURITY_TOKEN = "wrong-security-token-Secret-9998"
FORGED_TOKEN = "MIIforged-token-Secret-9997-abcdefghijklmnop"
DEBUG_LOGGERS = dict.fromkeys(("urllib3", "requests", "httpx", "httpcore", "airflow.task"), logging.DEBUG)


def _connections(monkeypatch: pytest.MonkeyPatch, url: str) -> dict[str, tuple[str, bool]]:
    """conn id -> (conn id, whether it should authenticate)."""
    temp = connection_fields(url, "aksk")
    temp.update(login=DEFAULT_TEMP_ACCESS_KEY, password=DEFAULT_TEMP_SECRET_KEY)
    temp["extra"]["security_token"] = DEFAULT_SECURITY_TOKEN
    bad_temp = connection_fields(url, "aksk")
    bad_temp.update(login=DEFAULT_TEMP_ACCESS_KEY, password=DEFAULT_TEMP_SECRET_KEY)
    bad_temp["extra"]["security_token"] = BAD_SECURITY_TOKEN
    bad_iam = connection_fields(url, "iam_password")
    bad_iam["password"] = BAD_PASSWORD
    bad_aksk = connection_fields(url, "aksk")
    bad_aksk["password"] = BAD_SECRET_KEY
    forged = connection_fields(url, "token")
    forged["extra"]["token"] = FORGED_TOKEN
    specs: dict[str, tuple[dict[str, Any], bool]] = {
        "sec_iam": (connection_fields(url, "iam_password"), True),
        "sec_aksk": (connection_fields(url, "aksk"), True),
        "sec_temp_aksk": (temp, True),
        "sec_token": (connection_fields(url, "token"), True),
        "sec_bad_iam": (bad_iam, False),
        "sec_bad_aksk": (bad_aksk, False),
        "sec_bad_temp": (bad_temp, False),
        "sec_forged": (forged, False),
    }
    return {cid: (set_connection(monkeypatch, cid, **fields), ok) for cid, (fields, ok) in specs.items()}


def test_the_auditor_catches_leaks() -> None:
    """The checker is not a stub: each way a secret can show up is found, clean text is not flagged."""
    token = "MII" + "a1B2c3D4e5F6g7H8i9J0_-kLmNoPqRsTuVwXyZ" * 4
    ISSUED_TOKENS.add(token)
    audit = SecretAudit()
    audit.text("raw", f"login failed with password {DEFAULT_PASSWORD}")
    audit.text("url", "https://u:Demo-Passw0rd%21x@host/")
    audit.text("json", '{"password": "Demo-Passw0rd!x"}')
    audit.text("fragment", f"header X-Auth-Token: {token[40:70]}...")
    audit.xcom("xcom", {"deep": [{"sk": STATIC_SECRETS[1]}]})
    try:
        try:
            raise ValueError(f"token {token}")
        except ValueError as inner:
            raise RuntimeError("wrapper with no secret") from inner
    except RuntimeError as error:
        audit.exception("chained", error)
    selftest = logging.getLogger("reliability.selftest")
    selftest.propagate = False  # this deliberate leak must not reach the suite's own audit
    selftest.addHandler(audit.handler)
    try:
        selftest.error("sk=%s", STATIC_SECRETS[2])
    finally:
        selftest.removeHandler(audit.handler)
    leaks = audit.leaks()
    where = {leak.split(":")[0] for leak in leaks}
    assert where == {"raw", "url", "json", "fragment", "xcom", "chained", "log record"}, leaks
    clean = SecretAudit()
    clean.text("clean", "ImageSearch HTTP 401 APIGW.0301: Incorrect IAM authentication information")
    clean.exception("clean", ImageSearchAuthError(status=401, error_code="APIGW.0301", error_msg="x"))
    assert clean.leaks() == []


def test_all_auth_types_success_and_failure_paths_leak_nothing(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator, audit: SecretAudit
) -> None:
    for secret in (BAD_PASSWORD, BAD_SECRET_KEY, BAD_SECURITY_TOKEN, FORGED_TOKEN):
        audit.secret(secret)
    emulator.upsert_instance("sec-1", status="NORMAL")
    conns = _connections(monkeypatch, emulator.url)
    outcomes: dict[str, str] = {}
    with logger_levels(DEBUG_LOGGERS):
        for name, (conn_id, should_work) in conns.items():
            TOKEN_CACHE.clear()
            hook = ImageSearchHook(conn_id)
            try:
                detail = hook.get_instance("sec-1")
                audit.text(name, repr(detail))
                outcome = "ok"
            except ImageSearchError as error:
                audit.exception(name, error)
                outcome = type(error).__name__
            ok, message = hook.test_connection()
            audit.text(f"{name} test_connection", message)
            audit.text(f"{name} hook repr", repr(vars(hook)))
            audit.text(f"{name} settings repr", repr(hook.settings))

            async def aget(conn_id: str = conn_id) -> Any:
                async_hook = ImageSearchAsyncHook(conn_id)
                try:
                    return await async_hook.get_instance("sec-1")
                finally:
                    audit.text("async hook repr", repr(vars(async_hook)))
                    await async_hook.aclose()

            try:
                audit.text(f"{name} async", repr(asyncio.run(aget())))
                async_outcome = "ok"
            except ImageSearchError as error:
                audit.exception(f"{name} async", error)
                async_outcome = type(error).__name__
            outcomes[name] = f"{outcome}/{async_outcome}/{'ok' if ok else 'refused'}"
            assert (outcome == "ok") is should_work, (name, outcome)
            assert (async_outcome == "ok") is should_work, (name, async_outcome)
            assert ok is should_work, (name, message)
            if not should_work:
                assert "401" in message, message
    stats = emulator.stats()
    audit.figure(
        "secrets: auth paths",
        outcomes=outcomes,
        auth_failures=stats["auth_failures"],
        log_records=len(audit.handler.records),
        tokens_known=len(ISSUED_TOKENS),
    )
    assert stats["auth_failures"] >= 4 * 3
    assert len(audit.handler.records) > 20  # DEBUG logging really was captured
    assert stats["token_requests"] >= 1


@pytest.mark.usefixtures("airflow_db")
def test_dag_run_output_and_xcom_leak_nothing(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator, audit: SecretAudit
) -> None:
    for secret in (BAD_PASSWORD, BAD_SECRET_KEY, BAD_SECURITY_TOKEN, FORGED_TOKEN):
        audit.secret(secret)
    emulator.upsert_instance("sec-2", status="NORMAL")
    emulator.upsert_instance("sec-3", status="CREATION", transition_after_s=6.0, next_status="NORMAL")
    conns = _connections(monkeypatch, emulator.url)
    with DAG("rel_secrets", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
        for name, (conn_id, _) in conns.items():
            InstanceDetailOperator(
                task_id=f"detail_{name}", instance_name="sec-2", imagesearch_conn_id=conn_id
            )
        ImageSearchInstanceStatusSensor(
            task_id="wait_deferred",
            instance_name="sec-3",
            imagesearch_conn_id=conns["sec_iam"][0],
            deferrable=True,
            poke_interval=1,
            timeout=60,
        )
    from airflow._shared.logging import structlog as airflow_structlog

    # Task, operator, trigger and provider logs at DEBUG in the structlog output too. Not the root
    # level: at DEBUG, Airflow's own in-process test supervisor logs every MaskSecret message with
    # its value (InProcessSupervisorComms.send), which is Airflow's doing, not the provider's.
    for name in ("task", "airflow.task", "airflow.triggers", "airflow_provider_imagesearch"):
        monkeypatch.setitem(airflow_structlog.PER_LOGGER_LEVELS, name, logging.DEBUG)
    with logger_levels(DEBUG_LOGGERS):
        dr = run_dag(dag)
    xcoms = run_xcoms(dr)
    for key, value in xcoms:
        audit.xcom(key, value)
    output = audit.read_output()
    result = states(dr)
    audit.figure(
        "secrets: dag run",
        tasks={k[0]: v[0] for k, v in result.items()},
        xcoms=len(xcoms),
        output_chars=len(output),
        tokens_known=len(ISSUED_TOKENS),
    )
    for name, (_, should_work) in conns.items():
        assert result[(f"detail_{name}", -1)][0] == ("success" if should_work else "failed"), name
    assert result[("wait_deferred", -1)][0] == "success"
    assert len(xcoms) >= 5
    # The failures and the task's INFO logs were in the output (so it was really captured and checked).
    assert output.count("APIGW.0301") + output.count("HTTP 401") >= 4, output[-3000:]
    assert "Instance sec-2 is NORMAL" in output


@pytest.mark.usefixtures("airflow_db")
def test_every_operator_leaks_nothing(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator, audit: SecretAudit
) -> None:
    """The operators for every call, under each auth type that works, in one DAG run: logs and XCom."""
    from airflow_provider_imagesearch.operators.imagesearch import (
        ImageSearchAddImageOperator,
        ImageSearchCheckImageOperator,
        ImageSearchCreateInstanceOperator,
        ImageSearchDeleteImageOperator,
        ImageSearchDeleteInstanceOperator,
        ImageSearchSearchImagesOperator,
        ImageSearchUpdateImageTagsOperator,
    )

    conns = {name: conn for name, (conn, works) in _connections(monkeypatch, emulator.url).items() if works}
    path = "https://shop-images.obs.cn-north-4.myhuaweicloud.com/secret-audit.jpg"
    with DAG("rel_secrets_operators", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
        for index, (name, conn_id) in enumerate(sorted(conns.items())):
            instance = f"sec-op-{index}"
            common = {"instance_name": instance, "imagesearch_conn_id": conn_id}
            chain = [
                ImageSearchCreateInstanceOperator(
                    task_id=f"create_{name}", tags=["color"], poke_interval=0.5, timeout=60, **common
                ),
                ImageSearchAddImageOperator(
                    task_id=f"add_{name}", path=path, tags={"color": "red"}, **common
                ),
                ImageSearchCheckImageOperator(task_id=f"check_{name}", path=path, **common),
                ImageSearchSearchImagesOperator(task_id=f"search_{name}", path=path, **common),
                ImageSearchUpdateImageTagsOperator(
                    task_id=f"update_{name}", path=path, tags={"color": "blue"}, **common
                ),
                ImageSearchDeleteImageOperator(task_id=f"delete_image_{name}", path=path, **common),
                ImageSearchDeleteInstanceOperator(
                    task_id=f"delete_{name}", poke_interval=0.5, timeout=60, deferrable=True, **common
                ),
            ]
            for upstream, downstream in itertools.pairwise(chain):
                upstream >> downstream
    with logger_levels(DEBUG_LOGGERS):
        dr = run_dag(dag)
    xcoms = run_xcoms(dr)
    for key, value in xcoms:
        audit.xcom(key, value)
    output = audit.read_output()
    result = states(dr)
    audit.figure("secrets: operators", tasks=len(result), xcoms=len(xcoms), output_chars=len(output))
    assert {state for state, _ in result.values()} == {"success"}, result
    assert len(result) == 7 * len(conns)
    assert any("/_link_" in key for key, _ in xcoms)  # console links are audited too


def test_v2_calls_under_every_auth_type_leak_nothing(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator, audit: SecretAudit
) -> None:
    """The five v2 (MMS) calls, sync and async, for good and bad credentials of every kind."""
    for secret in (BAD_PASSWORD, BAD_SECRET_KEY, BAD_SECURITY_TOKEN, FORGED_TOKEN):
        audit.secret(secret)
    emulator.upsert_v2_service("sec-v2", items={})
    url = "https://cdn.example/secret-audit.jpg"
    outcomes: dict[str, str] = {}
    with logger_levels(DEBUG_LOGGERS):
        for name, (conn_id, should_work) in _connections(monkeypatch, emulator.url).items():
            TOKEN_CACHE.clear()
            hook = ImageSearchHook(conn_id)
            try:
                audit.text(name, repr(hook.add_data("sec-v2", item_id=name, image_url=url, force=True)))
                audit.text(name, repr(hook.update_data("sec-v2", item_id=name, desc="audited")))
                audit.text(name, repr(hook.check_data("sec-v2", item_id=name)))
                audit.text(name, repr(hook.search_all("sec-v2", image_url=url)))
                audit.text(name, repr(hook.delete_data("sec-v2", item_id=name)))
                outcome = "ok"
            except ImageSearchError as error:
                audit.exception(name, error)
                outcome = type(error).__name__
            audit.text(f"{name} hook repr", repr(vars(hook)))

            async def arun(conn_id: str = conn_id, item: str = name) -> Any:
                async with ImageSearchAsyncHook(conn_id) as async_hook:
                    await async_hook.add_data("sec-v2", item_id=item, image_url=url, force=True)
                    found = await async_hook.search_data("sec-v2", image_url=url)
                    await async_hook.delete_data("sec-v2", item_id=item)
                    audit.text("async hook repr", repr(vars(async_hook)))
                    return found

            try:
                audit.text(f"{name} async", repr(asyncio.run(arun())))
                async_outcome = "ok"
            except ImageSearchError as error:
                audit.exception(f"{name} async", error)
                async_outcome = type(error).__name__
            outcomes[name] = f"{outcome}/{async_outcome}"
            assert (outcome == "ok") is should_work, (name, outcome)
            assert (async_outcome == "ok") is should_work, (name, async_outcome)
    audit.figure("secrets: v2 auth paths", outcomes=outcomes, log_records=len(audit.handler.records))
    assert len(audit.handler.records) > 20  # DEBUG logging really was captured
    assert any(r["path"].startswith("/v2/") and r["status"] == 401 for r in emulator.requests_log())


@pytest.mark.usefixtures("airflow_db")
def test_every_v2_operator_leaks_nothing(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator, audit: SecretAudit
) -> None:
    """The five v2 operators under each auth type that works, in one DAG run: logs and XCom."""
    from airflow_provider_imagesearch.operators.imagesearch_v2 import (
        ImageSearchV2AddDataOperator,
        ImageSearchV2CheckDataOperator,
        ImageSearchV2DeleteDataOperator,
        ImageSearchV2SearchOperator,
        ImageSearchV2UpdateDataOperator,
    )

    emulator.upsert_v2_service("sec-v2-ops", items={})
    conns = {name: conn for name, (conn, works) in _connections(monkeypatch, emulator.url).items() if works}
    url = "https://cdn.example/secret-audit.jpg"
    with DAG(
        "rel_secrets_v2_operators", schedule=None, start_date=datetime(2026, 1, 1), catchup=False
    ) as dag:
        for name, conn_id in sorted(conns.items()):
            common = {"service_name": "sec-v2-ops", "imagesearch_conn_id": conn_id}
            chain = [
                ImageSearchV2AddDataOperator(task_id=f"add_{name}", item_id=name, image_url=url, **common),
                ImageSearchV2UpdateDataOperator(task_id=f"update_{name}", item_id=name, desc="d", **common),
                ImageSearchV2CheckDataOperator(task_id=f"check_{name}", item_id=name, **common),
                ImageSearchV2SearchOperator(task_id=f"search_{name}", image_url=url, **common),
                ImageSearchV2DeleteDataOperator(task_id=f"delete_{name}", item_id=name, **common),
            ]
            for upstream, downstream in itertools.pairwise(chain):
                upstream >> downstream
    with logger_levels(DEBUG_LOGGERS):
        dr = run_dag(dag)
    xcoms = run_xcoms(dr)
    for key, value in xcoms:
        audit.xcom(key, value)
    audit.read_output()
    result = states(dr)
    assert {state for state, _ in result.values()} == {"success"}, result
    assert len(result) == 5 * len(conns)
