"""The emulator is as strict as the real API (issue 15): one test per rule, so it cannot drift back.

Each test here failed on the lenient emulator it replaced.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from airflow_provider_imagesearch import signing
from airflow_provider_imagesearch.emulator import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_PROJECT_ID,
    DEFAULT_REGION,
    DEFAULT_SECRET_KEY,
    DEFAULT_SUB_PROJECT_ID,
    DEFAULT_SUB_PROJECT_NAME,
    Emulator,
    EmulatorControlError,
)

from .helpers import OBS, PNG, Api, assert_error, b64

SERVICE_ERRORS = {
    "IS.0004": "The authentication token is abnormal.",
    "IS.0005": "The header is missing or empty.",
    "IS.0009": "The request failed due to an internal error.",
    "IS.0011": "The user is not allowed to use the request method.",
    "IS.0012": "Operation timed out.",
}


# --- 1. documented service errors as faults --------------------------------------------------------
@pytest.mark.parametrize("code", sorted(SERVICE_ERRORS))
def test_service_error_fault_answers_400_with_the_documented_body_and_changes_nothing(
    emulator: Emulator, api: Api, code: str
) -> None:
    emulator.set_faults(sequence=[code, "ok"])
    response = api.create("never")
    assert response.status_code == 400
    assert response.json() == {"error_code": code, "error_msg": SERVICE_ERRORS[code]}
    assert response.headers["X-Request-Id"]
    assert_error(api.query("never"), 400, "IS.0007")  # the create did not take effect
    assert api.create("later").status_code == 200  # "ok": the next one goes through
    assert emulator.stats()["faults_injected"] == {code: 1}
    assert emulator.requests_log()[0]["fault"] == code


def test_service_error_rate_draws_from_its_kinds(emulator: Emulator, api: Api, ready_instance: str) -> None:
    emulator.set_faults(service_error_rate=1.0, service_error_kinds=["IS.0009", "IS.0012"])
    codes = {api.query(ready_instance).json()["error_code"] for _ in range(30)}
    assert codes == {"IS.0009", "IS.0012"}
    assert sum(emulator.stats()["faults_injected"].values()) == 30


def test_service_error_needs_authentication_first(emulator: Emulator, api: Api, ready_instance: str) -> None:
    emulator.set_faults(sequence=["IS.0009", "IS.0009"])
    assert_error(api.query(ready_instance, token=None), 401, "APIGW.0301")  # the gateway answers
    assert_error(api.query(ready_instance), 400, "IS.0009")
    assert emulator.stats()["faults_injected"] == {"IS.0009": 1}


def test_service_error_fault_config_is_validated(emulator: Emulator) -> None:
    with pytest.raises(EmulatorControlError, match=r"IS\.0001"):
        emulator.set_faults(sequence=["IS.0001"])
    with pytest.raises(EmulatorControlError, match="service_error_kinds"):
        emulator.set_faults(service_error_rate=0.5, service_error_kinds=[])


# --- 8. processed, then the answer is lost ---------------------------------------------------------
def test_drop_after_processes_the_request_then_closes_without_answer(
    emulator: Emulator, api: Api, ready_instance: str
) -> None:
    emulator.set_faults(sequence=["drop_after"])
    with pytest.raises(requests.ConnectionError):
        api.v1("DELETE", f"/service/{ready_instance}")
    assert_error(api.query(ready_instance), 400, "IS.0007")  # the delete took effect
    entries = [(e["route"], e["status"]) for e in emulator.requests_log() if e["fault"] == "drop_after"]
    assert entries == [("DELETE /v1/{project_id}/service/{instance_name}", None)]
    assert emulator.stats()["by_status"]["dropped"] == 1


def test_drop_after_rate(emulator: Emulator, api: Api) -> None:
    emulator.set_faults(drop_after_rate=1.0)
    with pytest.raises(requests.ConnectionError):
        api.create("made")
    emulator.control.reset_faults()
    assert api.query("made").json()["status"] in {"CREATION", "NORMAL"}


# --- 2. signatures that sign nothing ---------------------------------------------------------------
def _signed_over(api: Api, path: str, names: list[str]) -> requests.Response:
    """A GET whose signature is correct but covers only the headers ``names`` (lower-case)."""
    headers = {
        "Host": api.url.split("//")[1],
        "Content-Type": "application/json",
        "X-Sdk-Date": signing.format_sdk_date(datetime.now(UTC)),
    }
    canonical = signing.canonical_request("GET", path, [], headers, names, b"")
    sig = signing.signature(DEFAULT_SECRET_KEY, signing.string_to_sign(canonical, headers["X-Sdk-Date"]))
    headers["Authorization"] = (
        f"{signing.ALGORITHM} Access={DEFAULT_ACCESS_KEY}, SignedHeaders={';'.join(names)}, Signature={sig}"
    )
    return api.session.get(api.url + path, headers=headers, timeout=5)


@pytest.mark.parametrize(
    "names", [[], ["content-type"], ["content-type", "host"], ["content-type", "x-sdk-date"], ["x-sdk-date"]]
)
def test_signature_must_cover_host_and_sdk_date(api: Api, ready_instance: str, names: list[str]) -> None:
    path = f"/v1/{DEFAULT_PROJECT_ID}/service/{ready_instance}"
    body = assert_error(_signed_over(api, path, names), 401, "APIGW.0301")
    assert body["error_msg"] == "Incorrect IAM authentication information: verify aksk signature fail"
    assert _signed_over(api, path, ["content-type", "host", "x-sdk-date"]).status_code == 200
    assert _signed_over(api, path, ["host", "x-sdk-date"]).status_code == 200


# --- 3. wrong field types --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "fields",
    [
        {"description": False},
        {"description": 0},
        {"description": []},
        {"tags": ""},
        {"tags": {}},
        {"tags": False},
        {"tags": 0},
    ],
)
def test_create_refuses_wrong_types(api: Api, fields: dict[str, Any]) -> None:
    assert_error(api.create("typed", **fields), 400, "IS.0002")
    assert_error(api.query("typed"), 400, "IS.0007")  # nothing was created


@pytest.mark.parametrize("fields", [{"tags": []}, {"tags": None}, {"description": None}, {"description": ""}])
def test_create_accepts_empty_or_null_optional_fields(api: Api, fields: dict[str, Any]) -> None:
    assert api.create("typed", **fields).status_code == 200


@pytest.mark.parametrize("tags", ["", [], 0, False, ["animal"]])
def test_search_refuses_a_tag_filter_that_is_not_an_object(api: Api, ready_instance: str, tags: Any) -> None:
    base = f"/{ready_instance}/image"
    assert api.v1("POST", base, {"path": "img", "file": b64(PNG)}).status_code == 200
    assert_error(api.v1("POST", base + "/search", {"path": "img", "tags": tags}), 400, "IS.0002")
    assert api.v1("POST", base + "/search", {"path": "img", "tags": {}}).json()["count"] == 1


def test_modify_refuses_empty_tags(api: Api, ready_instance: str) -> None:
    base = f"/{ready_instance}/image"
    assert api.v1("POST", base, {"path": "img", "file": b64(PNG)}).status_code == 200
    assert_error(api.v1("PUT", base, {"path": "img", "tags": {}}), 400, "IS.0001")


@pytest.mark.parametrize(
    "data",
    [
        b'{"name": "nan", "model": "common-search", "level": NaN}',
        b'{"name": "inf", "model": "common-search", "level": Infinity}',
        b'{"name": "ninf", "model": "common-search", "level": -Infinity}',
        '{"name": "utf16", "model": "common-search"}'.encode("utf-16"),
        '{"name": "utf16le", "model": "common-search"}'.encode("utf-16-le"),
        '{"name": "latin", "model": "common-search", "description": "caf\u00e9"}'.encode("latin-1"),
        '{"name": "bom", "model": "common-search"}'.encode("utf-8-sig"),
    ],
    ids=["nan", "infinity", "minus-infinity", "utf-16", "utf-16-le", "latin-1", "utf-8-bom"],
)
def test_non_json_constants_and_non_utf8_bodies_are_is0008(api: Api, data: bytes) -> None:
    headers = {"Content-Type": "application/json;charset=UTF-8"}
    assert_error(api.v1("POST", "/service", data=data, headers=headers), 400, "IS.0008")


# --- 4. search path, DELETE without a body, Content-Type --------------------------------------------
def test_search_by_a_path_not_in_the_library_is_the_emulators_image_not_found(
    api: Api, ready_instance: str
) -> None:
    base = f"/{ready_instance}/image"
    assert api.v1("POST", base, {"path": "img", "file": b64(PNG)}).status_code == 200
    # The docs give no code for it: the emulator's own (IS.9002), never a documented one.
    body = assert_error(api.v1("POST", base + "/search", {"path": "not-there"}), 400, "IS.9002")
    assert body["error_msg"] == "The image does not exist. (emulator-specific code)"
    assert api.v1("POST", base + "/search", {"path": "img"}).json()["count"] == 1
    # With a file the path is not the query (the file wins), so an unknown path does not matter.
    assert api.v1("POST", base + "/search", {"path": "not-there", "file": b64(PNG)}).json()["count"] == 1


def test_delete_image_without_a_body_is_is0003(api: Api, ready_instance: str) -> None:
    response = api.v1("DELETE", f"/{ready_instance}/image", headers={"Content-Type": "application/json"})
    body = assert_error(response, 400, "IS.0003")
    assert body["error_msg"] == "Arguments of path can not be null."
    assert_error(api.v1("DELETE", f"/{ready_instance}/image"), 400, "IS.0003")  # nor a Content-Type


@pytest.mark.parametrize("content_type", [None, "", "  "])
def test_a_body_without_content_type_is_is0005(
    api: Api, ready_instance: str, content_type: str | None
) -> None:
    body = b'{"name": "untyped", "model": "common-search"}'
    session = requests.Session()
    session.trust_env = False
    headers = {"X-Auth-Token": str(api.token)}
    if content_type is not None:
        headers["Content-Type"] = content_type
    prepared = requests.Request("POST", f"{api.url}/v1/{DEFAULT_PROJECT_ID}/service", data=body).prepare()
    prepared.headers.pop("Content-Type", None)  # requests adds none for bytes, but make sure
    prepared.headers.update(headers)
    answer = assert_error(session.send(prepared, timeout=5), 400, "IS.0005")
    assert answer["error_msg"] == "The header is missing or empty."
    assert_error(api.query("untyped"), 400, "IS.0007")
    image = b'{"path": "img"}'
    no_type = {"X-Auth-Token": str(api.token)}
    url = f"{api.url}/v1/{DEFAULT_PROJECT_ID}/{ready_instance}/image/check"
    assert_error(session.post(url, data=image, headers=no_type, timeout=5), 400, "IS.0005")


# --- 6. image paths: an OBS HTTPS URL of the service's region unless a file is sent ----------------------
@pytest.mark.parametrize(
    "path",
    [
        "obs://shop-images/a.jpg",
        "shop-images/a.jpg",
        "a.jpg",
        "https://bucketName.obs.myhuaweicloud.com/image/test1.jpg",  # no region (and an uppercase bucket)
        "https://shop-images.obs.ap-southeast-1.myhuaweicloud.com/a.jpg",  # another region
        "http://shop-images.obs.cn-north-4.myhuaweicloud.com/a.jpg",  # not HTTPS
        f"{OBS}/",  # no object key
        "https://example.com/a.jpg",
    ],
)
def test_add_without_file_needs_an_obs_url_of_the_region(api: Api, ready_instance: str, path: str) -> None:
    base = f"/{ready_instance}/image"
    body = assert_error(api.v1("POST", base, {"path": path}), 400, "IS.0016")
    assert body["error_msg"] == "The path is invalid."
    assert api.v1("POST", base + "/check", {"path": path}).json() == {"exist": "false"}
    # With the image bytes in ``file``, ``path`` is only the id: any non-empty string.
    assert api.v1("POST", base, {"path": path, "file": b64(PNG)}).json() == {"result": "Success"}


def test_add_without_file_accepts_the_documented_obs_url(api: Api, ready_instance: str) -> None:
    base = f"/{ready_instance}/image"
    for path in (
        f"{OBS}/a.jpg",
        f"{OBS}/dir/b%20c.png",
        "https://my.bucket-2.obs.cn-north-4.myhuaweicloud.com/x",
    ):
        assert api.v1("POST", base, {"path": path}).json() == {"result": "Success"}
        assert api.v1("POST", base + "/check", {"path": path}).json() == {"exist": "true"}


# --- 5. ``domain`` is the model's display name, not its id --------------------------------------------
def test_domain_is_the_models_display_name(api: Api) -> None:
    created = api.create("shown", model="common-search").json()
    assert created["domain"] == "General image search"
    assert created["domain"] != "common-search"
    assert api.query("shown").json()["domain"] == "General image search"
    body = {"name": "copy", "model": "image-copyright"}
    assert api.v1("POST", "/service", body).json()["domain"] == "Image infringement detection"


# --- 7. several projects per region ------------------------------------------------------------------
def _token(api: Api, project: dict[str, str]) -> str:
    response = api.password_token(scope={"project": project})
    assert response.status_code == 201, response.text
    return str(response.headers["X-Subject-Token"])


def test_a_sub_project_needs_its_own_token(emulator: Emulator, api: Api) -> None:
    emulator.upsert_instance("main-lib", project_id=DEFAULT_PROJECT_ID)
    emulator.upsert_instance("report-lib", project_id=DEFAULT_SUB_PROJECT_ID)
    by_region = _token(api, {"name": DEFAULT_REGION})
    by_sub_name = _token(api, {"name": DEFAULT_SUB_PROJECT_NAME})
    by_sub_id = _token(api, {"id": DEFAULT_SUB_PROJECT_ID})

    api.project_id = DEFAULT_PROJECT_ID
    assert api.query("main-lib", token=by_region).status_code == 200
    assert_error(api.query("main-lib", token=by_sub_name), 403, "APIGW.0302")
    api.project_id = DEFAULT_SUB_PROJECT_ID
    # The region's name scopes the region's default project only.
    assert_error(api.query("report-lib", token=by_region), 403, "APIGW.0302")
    assert api.query("report-lib", token=by_sub_name).status_code == 200
    assert api.query("report-lib", token=by_sub_id).status_code == 200
    assert_error(api.query("main-lib", token=by_sub_id), 400, "IS.0007")  # each project has its own instances


def test_token_body_names_the_scoped_project(api: Api) -> None:
    body = api.password_token(scope={"project": {"id": DEFAULT_SUB_PROJECT_ID}}).json()["token"]
    assert body["project"]["id"] == DEFAULT_SUB_PROJECT_ID
    assert body["project"]["name"] == DEFAULT_SUB_PROJECT_NAME
    regions = {
        e["region"] for e in next(s for s in body["catalog"] if s["type"] == "imagesearch")["endpoints"]
    }
    assert regions == {DEFAULT_REGION}  # one endpoint per region, not per project


def test_projects_filter_by_name(api: Api) -> None:
    def named(name: str | None) -> list[tuple[str, str]]:
        params = {"name": name} if name is not None else {}
        headers = {"X-Auth-Token": str(api.token)}
        response = api.session.get(api.url + "/v3/projects", params=params, headers=headers, timeout=5)
        assert response.status_code == 200
        return [(p["name"], p["id"]) for p in response.json()["projects"]]

    assert named(DEFAULT_REGION) == [(DEFAULT_REGION, DEFAULT_PROJECT_ID)]
    assert named(DEFAULT_SUB_PROJECT_NAME) == [(DEFAULT_SUB_PROJECT_NAME, DEFAULT_SUB_PROJECT_ID)]
    assert named("cn-north-4_nothing") == []
    assert len(named(None)) == 2


def test_sub_project_images_come_from_obs_of_its_region(emulator: Emulator, api: Api) -> None:
    emulator.upsert_instance("report-lib", project_id=DEFAULT_SUB_PROJECT_ID)
    api.project_id = DEFAULT_SUB_PROJECT_ID
    assert api.v1("POST", "/report-lib/image", {"path": f"{OBS}/r.jpg"}).json() == {"result": "Success"}


def test_seed_projects_need_unique_ids() -> None:
    from airflow_provider_imagesearch.emulator.state import SeedError, State

    with pytest.raises(SeedError, match="unique project id"):
        State.from_seed({"projects": {"cn-north-4": "a" * 32, "cn-north-4_x": "a" * 32}})
