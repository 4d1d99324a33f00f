"""The emulator uses each documented error code only with its documented meaning, and says which are its own.

The confirmed rows below are copied from the published error tables (``imagesearch-api.md`` §3.1 and
§3.1b): v1 page imagesearch_02_0019 (IS.0001-IS.0016; the Chinese page shows the rows after IS.0012) and v2
page imagesearch_02_0043 ("图像搜索 V2 错误码"). The emulator declares its tables in
:mod:`airflow_provider_imagesearch.emulator.constants`; these tests hold them, every error constant, and
every error the emulator actually answers to a battery of bad requests, against those rows.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.emulator import constants as c

from .helpers import OBS, PNG, Api, assert_error, b64

#: v1, page imagesearch_02_0019: every row (HTTP 400 each).
CONFIRMED_V1 = {
    "IS.0001": "The request parameter is missing or empty.",
    "IS.0002": "The type of the request parameter is not supported.",
    "IS.0003": "The request parameter cannot be empty.",
    "IS.0004": "Exception verifying token.",
    "IS.0005": "The header is missing or empty.",
    "IS.0006": "The request body is too big.",
    "IS.0007": "Invalid instance name.",
    "IS.0008": "The JSON format of the input data is incorrect.",
    "IS.0009": "The request failed due to an internal error.",
    "IS.0010": "The request method is not allowed.",
    "IS.0011": "The user is not allowed to use the request method.",
    "IS.0012": "Operation timed out.",
    "IS.0013": "The token is empty.",
    "IS.0014": "Instance status is abnormal.",
    "IS.0015": "The model file does not exist.",
    "IS.0016": "The path is invalid.",
}
#: Messages the v1 pages' own examples show for a code, besides the table's.
V1_EXAMPLE_MESSAGES = {
    "IS.0003": {"Arguments of path can not be null."},  # delete/modify image examples
    "IS.0004": {"The authentication token is abnormal."},  # delete instance example
}
#: v2, page imagesearch_02_0043: the confirmed rows (the table has more, about console operations).
CONFIRMED_V2 = {
    "MMS.0001": "Request is unauthorized.",
    "MMS.0002": "Request cannot be accessed by the current authorization.",
    "MMS.0003": "Invalid parameter.",  # also "Required parameter is empty."
    "MMS.1001": "Service instance not found.",
    "MMS.1002": "Instances number out of limit.",
    "MMS.1003": "Description of instance is too long.",
    "MMS.1004": "Instance name is already exists.",
    "MMS.1005": "No such service type.",
    "MMS.1006": "User info not found.",
    "MMS.1007": "There is no service type yet.",
    "MMS.1008": "No such service template.",
    "MMS.1009": "No such plugin type.",
    "MMS.1010": "Service plugin not found.",
    "MMS.1011": "Plugin template not found.",
    "MMS.1014": "Build BIZ failed.",
    "MMS.1015": "Process BIZ failed.",
    "MMS.1016": "Process INDEX failed.",
    "ModelArts.4204": "Request api error! The API is not subscribed.",  # FAQ imagesearch_01_0013
}
#: MMS.0003's documented messages; the v2 examples append the field: "Invalid parameter: item_id".
MMS_0003_STEMS = ("Invalid parameter", "Required parameter is empty")
CODE_RE = re.compile(r"^(IS|MMS|ModelArts)\.(\d{4})$")


def _documented(code: str, message: str) -> bool:
    """Whether ``(code, message)`` is a confirmed row used with its documented message."""
    if code in CONFIRMED_V1:
        return message == CONFIRMED_V1[code] or message in V1_EXAMPLE_MESSAGES.get(code, set())
    if code == "MMS.0003":
        return any(message == f"{stem}." or message.startswith(f"{stem}: ") for stem in MMS_0003_STEMS)
    if code in CONFIRMED_V2:
        return message == CONFIRMED_V2[code]
    return False


def _own(code: str, message: str) -> bool:
    return code in c.EMULATOR_OWN_CODES and message == c.EMULATOR_OWN_CODES[code][0]


# --- the declared tables ------------------------------------------------------------------------------
def test_the_declared_v1_table_is_the_confirmed_table() -> None:
    assert c.V1_DOCUMENTED_CODES == CONFIRMED_V1


def test_the_declared_v2_rows_are_confirmed_rows() -> None:
    for code, message in c.V2_DOCUMENTED_CODES.items():
        assert CONFIRMED_V2.get(code) == message, code


def test_the_emulators_own_codes_lie_outside_every_documented_range() -> None:
    assert c.EMULATOR_OWN_CODES, "the emulator declares its own codes in one table"
    for code, (message, when) in c.EMULATOR_OWN_CODES.items():
        match = CODE_RE.match(code)
        assert match is not None, code
        family, number = match.group(1), int(match.group(2))
        assert code not in CONFIRMED_V1, code
        assert code not in CONFIRMED_V2, code
        if family == "IS":
            assert number > max(int(k[3:]) for k in CONFIRMED_V1), code  # the table ends at IS.0016
        else:
            assert family == "MMS"
            assert not 1 <= number <= 3, code
            assert not 1001 <= number <= 1016, code
        assert "(emulator-specific code)" in message, code
        assert when, code


def test_every_error_constant_is_a_documented_row_or_the_emulators_own() -> None:
    seen = 0
    for name, value in vars(c).items():
        if not (isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, str) for v in value)):
            continue
        code, message = value
        if not CODE_RE.match(code):
            continue
        seen += 1
        assert _documented(code, message) or _own(code, message), f"{name} = {value}"
    assert seen >= 15
    for code, (fault_code, message) in c.SERVICE_FAULT_ERRORS.items():
        assert code == fault_code
        assert _documented(code, message), code


# --- what the emulator answers --------------------------------------------------------------------------
def _v2(api: Api, service: str, op: str, body: Any, **kwargs: Any) -> requests.Response:
    suffix = "search" if op == "search" else f"data/{op}"
    return api.call("POST", f"/v2/{api.project_id}/mms/{service}/{suffix}", body, **kwargs)


def _bad_requests(api: Api, emulator: Emulator) -> list[requests.Response]:
    """Every error path of the v1 and v2 routes that a client can reach with one request."""
    emulator.upsert_instance("lib", tags=["color"])
    emulator.upsert_instance("busy", status="CREATION", transition_after_s=600)
    emulator.upsert_instance("odd", model="retired-model")
    emulator.upsert_v2_service("shop", custom_tags=["color"], items={"a": {"image_url": "https://x/a.jpg"}})
    json_type = {"Content-Type": "application/json"}
    v1 = [
        api.create("lib"),
        api.create("Bad Name"),
        api.create("x", model="nope"),
        api.v1("POST", "/service", {"model": "common-search"}),
        api.v1("POST", "/service", data=b"{nope", headers=json_type),
        api.query("ghost"),
        api.v1("POST", "/lib/image", {"path": "https://example.com/a.jpg"}),
        api.v1("POST", "/lib/image", {"path": ""}),
        api.v1("POST", "/lib/image", {"path": "p", "file": "@@"}),
        api.v1("POST", "/lib/image", {"path": f"{OBS}/a.jpg", "tags": {"size": "L"}}),
        api.v1("PUT", "/lib/image", {"path": "nope", "tags": {"color": "red"}}),
        api.v1("PUT", "/lib/image", {"path": "nope"}),
        api.v1("DELETE", "/lib/image", {"path": "nope"}),
        api.v1("POST", "/lib/image/search", {"path": "nope"}),
        api.v1("POST", "/lib/image/search", {"file": b64(PNG), "limit": 0}),
        api.v1("POST", "/busy/image/check", {"path": "p"}),
        api.v1("POST", "/odd/image/check", {"path": "p"}),
        api.v1("POST", "/lib/image", data=b'{"path": "p"}', headers={"Content-Type": ""}),
        api.v1("GET", "/service/lib", token=""),
    ]
    v2 = [
        _v2(api, "ghost", "check", {"item_id": "a"}),
        _v2(api, "shop", "add", {"item_id": "a", "image_url": "https://x/a.jpg"}),
        _v2(api, "shop", "add", {"image_url": "https://x/b.jpg"}),
        _v2(api, "shop", "add", {"item_id": "b", "image_url": "u", "custom_tags": {"size": "L"}}),
        _v2(api, "shop", "add", {"item_id": "b", "image_url": "u", "optional_params": {"bogus": 1}}),
        _v2(api, "shop", "update", {"item_id": "nope", "desc": "x"}),
        _v2(api, "shop", "delete", {"item_id": "nope"}),
        _v2(api, "shop", "delete", {}),
        _v2(api, "shop", "check", {"item_id": "x" * 257}),
        _v2(api, "shop", "search", {"image_url": "u"}),
        _v2(api, "shop", "search", {"search_type": "SOUND", "image_url": "u"}),
        _v2(api, "shop", "search", {"search_type": "IMAGE", "image_url": "u", "limit": 1001}),
        _v2(api, "shop", "search", {"search_type": "KEYWORD"}),
        api.call("POST", f"/v2/{api.project_id}/mms/shop/data/add", data=b"{nope", headers=json_type),
    ]
    return v1 + v2


def test_every_error_answered_is_a_documented_row_or_the_emulators_own(api: Api, emulator: Emulator) -> None:
    answers = _bad_requests(api, emulator)
    codes = set()
    for response in answers:
        assert response.status_code == 400, response.text
        body = response.json()
        code, message = body["error_code"], body["error_msg"]
        codes.add(code)
        assert _documented(code, message) or _own(code, message), body
    # The battery reaches every code the emulator produces on its own, documented and its own.
    assert {"IS.0013", "IS.0014", "IS.0015", "IS.0016", "MMS.0003", "MMS.1001"} <= codes
    assert set(c.EMULATOR_OWN_CODES) <= codes
    # The request log names the code of each error.
    logged = {r["error_code"] for r in emulator.requests_log() if r["status"] == 400}
    assert logged == codes


def test_v2_routes_answer_only_v2_families(api: Api, emulator: Emulator) -> None:
    _bad_requests(api, emulator)
    v2 = [r for r in emulator.requests_log() if r["route"].startswith("POST /v2/")]
    assert len(v2) >= 10
    for entry in v2:
        assert entry["error_code"].split(".")[0] in {"MMS", "ModelArts", "APIGW", "APIG"}, entry


# --- the rules one by one ---------------------------------------------------------------------------------
def test_an_empty_token_is_is0013_on_v1_and_a_gateway_refusal_on_v2(api: Api, emulator: Emulator) -> None:
    emulator.upsert_instance("lib")
    body = assert_error(api.query("lib", token=""), 400, "IS.0013")
    assert body["error_msg"] == "The token is empty."
    emulator.upsert_v2_service("shop")
    assert_error(_v2(api, "shop", "check", {"item_id": "a"}, token=""), 401, "APIGW.0301")
    assert emulator.stats()["auth_failures"] == 2


def test_an_unknown_instance_name_is_is0007(api: Api) -> None:
    body = assert_error(api.query("nobody-here"), 400, "IS.0007")
    assert body["error_msg"] == "Invalid instance name."


def test_v2_tag_key_not_defined_is_the_documented_invalid_custom_tags(api: Api, emulator: Emulator) -> None:
    emulator.upsert_v2_service("shop", custom_tags=["color"], items={"a": {"image_url": "https://x/a.jpg"}})
    response = _v2(api, "shop", "update", {"item_id": "a", "custom_tags": {"size": "L"}})
    assert response.json() == {"error_code": "MMS.0003", "error_msg": "Invalid parameter: custom_tags"}


@pytest.mark.parametrize(
    ("kind", "route_is_v2", "applied"),
    [
        ("IS.0009", False, True),
        ("IS.0009", True, False),
        ("MMS.1015", True, True),
        ("MMS.1015", False, False),
    ],
)
def test_a_service_fault_is_only_answered_on_its_own_apis_routes(
    api: Api, emulator: Emulator, kind: str, route_is_v2: bool, applied: bool
) -> None:
    emulator.upsert_instance("lib")
    emulator.upsert_v2_service("shop")
    emulator.set_faults(sequence=[kind])
    response = _v2(api, "shop", "check", {"item_id": "a"}) if route_is_v2 else api.query("lib")
    if applied:
        body = assert_error(response, 400, kind)
        assert body["error_msg"] == c.SERVICE_FAULT_ERRORS[kind][1]
        assert emulator.stats()["faults_injected"] == {kind: 1}
    else:
        assert response.status_code == 200, response.text
        assert emulator.stats()["faults_injected"] == {}


def test_a_random_service_error_is_drawn_among_the_requests_api(api: Api, emulator: Emulator) -> None:
    emulator.upsert_instance("lib")
    emulator.upsert_v2_service("shop")
    emulator.set_faults(service_error_rate=1.0, random_seed=5)
    v1 = {api.query("lib").json()["error_code"] for _ in range(20)}
    v2 = {_v2(api, "shop", "check", {"item_id": "a"}).json()["error_code"] for _ in range(20)}
    assert v1 <= set(c.SERVICE_FAULT_ERRORS)
    assert all(code.startswith("IS.") for code in v1)
    assert v2 <= set(c.SERVICE_FAULT_ERRORS)
    assert not any(code.startswith("IS.") for code in v2)
    assert len(v1) > 1
    assert len(v2) > 1


def test_own_codes_can_be_answered_as_any_other_code(api: Api, emulator: Emulator) -> None:
    """``own_codes_as``: a client's suite can prove it depends on no code of the emulator's own."""
    emulator.upsert_instance("lib")
    emulator.upsert_v2_service("shop")
    emulator.control.set_config(own_codes_as="X.UNKNOWN")
    assert_error(api.create("lib"), 400, "X.UNKNOWN")
    assert_error(_v2(api, "shop", "delete", {"item_id": "nope"}), 400, "X.UNKNOWN")
    assert_error(api.query("ghost"), 400, "IS.0007")  # documented codes are untouched
    emulator.control.set_config(own_codes_as=None)
    assert_error(api.create("lib"), 400, "IS.9001")
