"""Fault injection: every kind, sequences, random rates, scopes, token expiry interval."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests

from airflow_provider_imagesearch.emulator import Emulator, EmulatorControlError, FaultConfig
from tests.support.waiting import wait_until

from .helpers import Api, assert_error, wait_until_rejected


def _wait_for_log_entry(emulator: Emulator, fault: str) -> dict[str, Any]:
    """The emulator's log entry for the last request carrying ``fault``, once it has recorded one."""
    log = wait_until(emulator.requests_log, lambda log: any(r["fault"] == fault for r in log))
    entries = [entry for entry in log if entry["fault"] == fault]
    assert entries, f"no {fault!r} request logged"
    return entries[-1]


def test_sequence_of_gateway_faults_then_ok(emulator: Emulator, api: Api, ready_instance: str) -> None:
    emulator.set_faults(sequence=["500_json", "502_html", "503_json", "403", "ok", "429"], retry_after="0.05")
    assert_error(api.query(ready_instance), 500, "APIGW.0601")
    bad_gateway = api.query(ready_instance)
    assert bad_gateway.status_code == 502
    assert bad_gateway.headers["Content-Type"].startswith("text/html")
    assert "502 Bad Gateway" in bad_gateway.text
    assert bad_gateway.headers["X-Request-Id"]
    assert_error(api.query(ready_instance), 503, "APIGW.0613")
    assert_error(api.query(ready_instance), 403, "APIGW.0302")
    assert api.query(ready_instance).status_code == 200
    throttled = api.query(ready_instance)
    assert_error(throttled, 429, "APIGW.0308")
    assert throttled.headers["Retry-After"] == "0.05"
    assert api.query(ready_instance).status_code == 200  # sequence exhausted, no rates
    stats = emulator.stats()
    assert stats["faults_injected"] == {"500_json": 1, "502_html": 1, "503_json": 1, "403": 1, "429": 1}
    assert emulator.control.faults()["sequence"] == []


def test_gateway_faults_happen_before_processing(emulator: Emulator, api: Api) -> None:
    emulator.set_faults(sequence=["500_json"])
    assert api.create("never").status_code == 500
    assert_error(api.query("never"), 400, "IS.0007")


def test_drop_closes_without_answer_and_does_not_process(emulator: Emulator, api: Api) -> None:
    emulator.set_faults(sequence=["drop"])
    with pytest.raises(requests.ConnectionError):
        api.create("dropped")
    assert_error(api.query("dropped"), 400, "IS.0007")  # same session reconnects fine
    log = emulator.requests_log()
    assert log[0]["fault"] == "drop"
    assert log[0]["status"] is None
    assert emulator.stats()["by_status"]["dropped"] == 1


def test_slow_trips_read_timeout_and_skips_processing(emulator: Emulator, api: Api) -> None:
    # The client gives up long before the emulator's wait ends, even if the process stalls for a while.
    emulator.set_faults(sequence=["slow"], slow_seconds=1.5)
    with pytest.raises(requests.ReadTimeout):
        api.v1("POST", "/service", {"name": "late", "model": "common-search"}, timeout=0.25)
    entry = _wait_for_log_entry(emulator, "slow")  # the emulator has decided what to do with it
    assert entry["status"] is None
    assert_error(api.query("late"), 400, "IS.0007")  # the client hung up before it was processed


def test_slow_answers_late_when_client_waits(emulator: Emulator, api: Api) -> None:
    emulator.set_faults(sequence=["slow"], slow_seconds=0.3)
    started = time.monotonic()
    assert api.create("patient").status_code == 200
    assert time.monotonic() - started >= 0.3
    assert api.query("patient").status_code == 200


def test_latency_applies_to_every_in_scope_request(emulator: Emulator, api: Api, ready_instance: str) -> None:
    emulator.set_faults(latency_seconds=0.5)
    started = time.monotonic()
    assert api.query(ready_instance).status_code == 200
    assert api.query(ready_instance).status_code == 200
    assert time.monotonic() - started >= 1.0
    # A latency far above any CI stall: out-of-scope requests that waited for it would blow the bound
    # (and the 5 s client timeouts) instead of passing by luck.
    emulator.set_faults(latency_seconds=10)
    started = time.monotonic()
    assert api.password_token().status_code == 201  # IAM is outside the default "api" scope
    assert api.session.get(api.url + "/_emulator/health", timeout=5).status_code == 200
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    "kind",
    [
        "html_502",
        "truncated_json",
        "json_list",
        "missing_fields",
        "wrong_types",
        "unknown_status",
        "empty_body",
    ],
)
def test_malformed_kinds_replace_a_200_body(
    emulator: Emulator, api: Api, ready_instance: str, kind: str
) -> None:
    emulator.set_faults(sequence=[kind])
    response = api.query(ready_instance)
    if kind == "html_502":
        assert response.status_code == 502
        assert response.headers["Content-Type"].startswith("text/html")
    else:
        assert response.status_code == 200
    text = response.text
    if kind == "truncated_json":
        with pytest.raises(json.JSONDecodeError):
            json.loads(text)
    elif kind == "json_list":
        assert isinstance(response.json(), list)
    elif kind == "missing_fields":
        assert "status" not in response.json()
        assert "instanceName" not in response.json()
    elif kind == "wrong_types":
        body = response.json()
        assert isinstance(body["status"], int)
        assert isinstance(body["registerDate"], str)
    elif kind == "unknown_status":
        assert response.json()["status"] == "EMULATOR_UNKNOWN_STATUS"
    elif kind == "empty_body":
        assert text == ""
    assert emulator.stats()["faults_injected"] == {kind: 1}
    assert api.query(ready_instance).json()["status"] == "NORMAL"


def test_malformed_is_not_applied_to_errors(emulator: Emulator, api: Api) -> None:
    emulator.set_faults(sequence=["json_list"])
    assert_error(api.query("missing"), 400, "IS.0007")
    assert emulator.stats()["faults_injected"] == {}


def test_malformed_applies_after_processing(emulator: Emulator, api: Api) -> None:
    emulator.set_faults(sequence=["empty_body"])
    assert api.create("made").text == ""
    assert api.query("made").status_code == 200  # the create did happen


def test_token_expiry_interval_expires_password_tokens(
    emulator: Emulator, api: Api, ready_instance: str
) -> None:
    emulator.set_faults(token_expiry_interval=2.0)
    token = api.password_token().headers["X-Subject-Token"]
    assert api.query(ready_instance, token=token).status_code == 200
    # Right after the first boundary, so the fresh token and its query have about a whole interval.
    assert_error(wait_until_rejected(api, ready_instance, token), 401, "APIGW.0307")
    fresh = api.password_token().headers["X-Subject-Token"]
    assert api.query(ready_instance, token=fresh).status_code == 200
    assert api.query(ready_instance).status_code == 200  # ready tokens are exempt
    stats = emulator.stats()
    assert stats["token_expiries"] == 1
    assert stats["token_expiry_events"] >= 1
    assert stats["tokens_issued"] == 2


def test_scopes(emulator: Emulator, api: Api, ready_instance: str) -> None:
    emulator.set_faults(sequence=["503_json"], scope="iam")
    assert api.query(ready_instance).status_code == 200
    assert api.password_token().status_code == 503
    assert api.password_token().status_code == 201
    emulator.set_faults(sequence=["503_json", "503_json"], scope="all")
    assert api.password_token().status_code == 503
    assert api.query(ready_instance).status_code == 503
    emulator.set_faults(sequence=["503_json"], scope="api")
    assert api.password_token().status_code == 201
    assert api.query(ready_instance).status_code == 503


def test_control_routes_are_never_faulted(emulator: Emulator, api: Api) -> None:
    emulator.set_faults(drop_rate=1.0, scope="all")
    assert emulator.control.health()["status"] == "ok"
    with pytest.raises(requests.ConnectionError):
        api.password_token()


def _pattern(emulator: Emulator, api: Api, name: str, count: int) -> list[int]:
    return [api.query(name).status_code for _ in range(count)]


def test_random_rates_are_seeded_and_reproducible(emulator: Emulator, api: Api, ready_instance: str) -> None:
    emulator.set_faults(
        error_5xx_rate=0.3, error_5xx_kinds=["500_json"], throttle_429_rate=0.2, random_seed=7
    )
    first = _pattern(emulator, api, ready_instance, 60)
    emulator.set_faults(random_seed=7)  # re-installing the config restarts the RNG
    second = _pattern(emulator, api, ready_instance, 60)
    assert first == second
    assert set(first) == {200, 429, 500}
    emulator.set_faults(random_seed=8)
    assert _pattern(emulator, api, ready_instance, 60) != first
    emulator.set_faults(reset=True)
    assert set(_pattern(emulator, api, ready_instance, 20)) == {200}


def test_forbidden_rate_one(emulator: Emulator, api: Api, ready_instance: str) -> None:
    emulator.set_faults(forbidden_rate=1.0)
    assert {api.query(ready_instance).status_code for _ in range(5)} == {403}
    assert emulator.stats()["faults_injected"] == {"403": 5}


def test_malformed_rate_with_restricted_kinds(emulator: Emulator, api: Api, ready_instance: str) -> None:
    emulator.set_faults(malformed_rate=1.0, malformed_kinds=["unknown_status"])
    assert api.query(ready_instance).json()["status"] == "EMULATOR_UNKNOWN_STATUS"


def test_invalid_fault_configs_are_refused(emulator: Emulator) -> None:
    for bad in (
        {"drop_rate": 1.5},
        {"bogus": 1},
        {"sequence": ["explode"]},
        {"scope": "web"},
        {"slow_seconds": -1},
    ):
        with pytest.raises(EmulatorControlError, match="400"):
            emulator.set_faults(**bad)
    assert emulator.control.faults() == FaultConfig().to_dict()


def test_faults_given_at_construction() -> None:
    with Emulator(faults=FaultConfig(sequence=["429"], retry_after="2")) as emu:
        response = Api(emu.url).query("x")
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "2"
    with pytest.raises(ValueError, match="drop_rate"):
        Emulator(faults={"drop_rate": 2})
