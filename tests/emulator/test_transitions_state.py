"""Lazy status transitions, seeds, control endpoints for instances/stats/log, and state persistence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_provider_imagesearch.emulator import (
    DEFAULT_PROJECT_ID,
    Emulator,
    EmulatorControlError,
    default_seed,
)
from tests.support.waiting import wait_until

from .helpers import OBS, Api, assert_error

#: Long enough that the "still in progress" checks right after a create/delete survive a stalled CI machine.
TRANSITION_S = 2.0


def _status(api: Api, name: str) -> str:
    response = api.query(name)
    return str(response.json()["status"]) if response.status_code == 200 else response.json()["error_code"]


def _wait_for_status(api: Api, name: str, expected: str, *, while_status: str) -> None:
    """Poll until ``name`` leaves ``while_status``; it must go straight to ``expected``."""
    status = wait_until(lambda: _status(api, name), lambda status: status != while_status)
    assert status == expected, f"{name}: expected {while_status} -> {expected}, last status seen {status}"


def test_create_goes_creation_then_normal() -> None:
    with Emulator(creation_seconds=TRANSITION_S) as emu:
        api = Api(emu.url)
        assert api.create("lib").json()["status"] == "CREATION"
        assert _status(api, "lib") == "CREATION"
        assert_error(api.v1("POST", "/lib/image", {"path": f"{OBS}/p.jpg"}), 400, "IS.0014")
        _wait_for_status(api, "lib", "NORMAL", while_status="CREATION")


def test_fail_marker_ends_in_creation_faild() -> None:
    with Emulator(creation_seconds=TRANSITION_S) as emu:
        api = Api(emu.url)
        api.create("bad", description="please [emulator:fail] now")
        assert _status(api, "bad") == "CREATION"
        _wait_for_status(api, "bad", "CREATION_FAILD", while_status="CREATION")
        assert api.v1("DELETE", "/service/bad").json() == {"result": "success"}


def test_delete_goes_deleting_then_gone() -> None:
    with Emulator(creation_seconds=0, deletion_seconds=TRANSITION_S) as emu:
        api = Api(emu.url)
        api.create("lib")
        assert api.v1("DELETE", "/service/lib").json() == {"result": "success"}
        assert _status(api, "lib") == "DELETING"
        assert api.v1("DELETE", "/service/lib").status_code == 200  # idempotent while deleting
        assert_error(api.create("lib"), 400, "IS.9001")  # the name is still taken
        _wait_for_status(api, "lib", "IS.0007", while_status="DELETING")
        assert api.create("lib").status_code == 200


def test_seed_presets_with_transitions() -> None:
    seed = {
        "instances": [
            {"name": "coming", "status": "CREATION", "transition_after_s": TRANSITION_S},
            {
                "name": "failing",
                "status": "CREATION",
                "transition_after_s": TRANSITION_S,
                "next_status": "CREATION_FAILD",
            },
            {"name": "going", "status": "DELETING", "transition_after_s": TRANSITION_S, "next_status": None},
            {"name": "stuck", "status": "ABNORMAL", "tags": ["animal"], "register_date_ms": 1529377136279},
        ],
        "images": {f"{DEFAULT_PROJECT_ID}/stuck": {f"{OBS}/x": {"tags": {"animal": "cat"}}}},
    }
    with Emulator(seed=seed) as emu:
        api = Api(emu.url)
        assert [_status(api, n) for n in ("coming", "failing", "going")] == [
            "CREATION",
            "CREATION",
            "DELETING",
        ]
        assert api.query("stuck").json()["registerDate"] == 1529377136279
        _wait_for_status(api, "coming", "NORMAL", while_status="CREATION")
        _wait_for_status(api, "failing", "CREATION_FAILD", while_status="CREATION")
        _wait_for_status(api, "going", "IS.0007", while_status="DELETING")
        assert _status(api, "stuck") == "ABNORMAL"
        assert emu.control.state()["images"][f"{DEFAULT_PROJECT_ID}/stuck"][f"{OBS}/x"]["tags"] == {
            "animal": "cat"
        }


def test_seed_with_only_instances_gets_default_identity() -> None:
    with Emulator(seed={"instances": [{"name": "lib"}]}) as emu:
        api = Api(emu.url)
        assert api.password_token().status_code == 201
        assert _status(api, "lib") == "NORMAL"


def test_bad_seed_is_rejected_in_the_caller() -> None:
    with pytest.raises(ValueError, match="unknown seed key"):
        Emulator(seed={"instancez": []})
    with pytest.raises(ValueError, match="images given for unknown instance"):
        Emulator(seed={"images": {"p/nope": {}}})


def test_upsert_and_delete_instance_through_control(emulator: Emulator, api: Api) -> None:
    body = emulator.upsert_instance("pre", status="DELETING_FAILED", tags=["animal"], description="d")
    assert body["status"] == "DELETING_FAILED"
    assert api.query("pre").json()["desc"] == "d"
    emulator.upsert_instance("pre", status="CREATION", transition_after_s=0.1, next_status="ABNORMAL")
    _wait_for_status(api, "pre", "ABNORMAL", while_status="CREATION")
    emulator.control.delete_instance(DEFAULT_PROJECT_ID, "pre")
    assert _status(api, "pre") == "IS.0007"
    with pytest.raises(EmulatorControlError, match="404"):
        emulator.control.delete_instance(DEFAULT_PROJECT_ID, "pre")
    with pytest.raises(EmulatorControlError, match="400"):
        emulator.control.upsert_instances([{"status": "NORMAL"}])


def test_stats_and_request_log(emulator: Emulator, api: Api, ready_instance: str) -> None:
    emulator.reset_stats()
    assert emulator.stats()["requests_total"] == 0
    for _ in range(3):
        api.query(ready_instance)
    api.query(ready_instance, token=None)
    api.call("GET", "/nowhere")
    api.password_token()
    stats = emulator.stats()
    assert stats["requests_total"] == 6
    assert stats["by_route"]["GET /v1/{project_id}/service/{instance_name}"] == 4
    assert stats["by_route"]["UNKNOWN"] == 1
    assert stats["by_status"] == {"200": 3, "401": 1, "404": 1, "201": 1}
    assert stats["requests_by_auth"] == {"token": 4, "aksk": 0, "none": 2}  # /nowhere carried a token
    assert stats["token_requests"] == 1
    assert stats["tokens_issued"] == 1
    assert stats["auth_failures"] == 1
    assert stats["requests_per_second"] > 0
    assert stats["uptime_s"] >= stats["since_reset_s"]
    log = emulator.requests_log()
    assert len(log) == 6
    first = log[0]
    assert set(first) == {
        "ts",
        "method",
        "path",
        "route",
        "status",
        "fault",
        "auth",
        "instance",
        "error_code",
    }
    assert (first["method"], first["status"], first["instance"], first["auth"]) == (
        "GET",
        200,
        "lib",
        "token",
    )
    assert emulator.requests_log(limit=2) == log[-2:]


def test_state_save_and_load_round_trip(tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    with Emulator(state_file=str(state_file), creation_seconds=0, deletion_seconds=30) as emu:
        api = Api(emu.url)
        api.create("kept", tags=["animal"])
        api.v1("POST", "/kept/image", {"path": f"{OBS}/a", "tags": {"animal": "cat"}})
        api.create("leaving")
        api.v1("DELETE", "/service/leaving")
        token = api.password_token().headers["X-Subject-Token"]
        assert emu.control.save() == str(state_file)
        saved = json.loads(state_file.read_text())
        assert {i["name"] for i in saved["instances"]} == {"kept", "leaving"}
        api.create("late")  # only in the file written by stop()
    final = json.loads(state_file.read_text())
    assert {i["name"] for i in final["instances"]} == {"kept", "leaving", "late"}
    with Emulator(state_file=str(state_file)) as emu:
        api = Api(emu.url)
        assert api.query("kept", token=token).json()["tags"] == ["animal"]  # the token survived too
        assert api.v1("POST", "/kept/image/check", {"path": f"{OBS}/a"}).json() == {"exist": "true"}
        assert _status(api, "leaving") == "DELETING"
        assert _status(api, "late") == "NORMAL"


def test_save_without_state_file_is_refused(emulator: Emulator) -> None:
    with pytest.raises(EmulatorControlError, match="without a state file"):
        emulator.control.save()


def test_runtime_config(emulator: Emulator, api: Api) -> None:
    assert emulator.control.set_config(creation_seconds=30)["creation_seconds"] == 30.0
    api.create("slowly")
    assert _status(api, "slowly") == "CREATION"
    with pytest.raises(EmulatorControlError):
        emulator.control.set_config(bogus=1)


def test_default_seed_is_a_fresh_copy() -> None:
    seed = default_seed()
    seed["users"].clear()
    assert default_seed()["users"]
