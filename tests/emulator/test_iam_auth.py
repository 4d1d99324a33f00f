"""IAM token issue/use/expiry/revocation and gateway authentication (token and AK/SK)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import requests

from airflow_provider_imagesearch import signing
from airflow_provider_imagesearch.emulator import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_PROJECT_ID,
    DEFAULT_READY_TOKEN,
    DEFAULT_REGION,
    DEFAULT_SECRET_KEY,
    DEFAULT_SECURITY_TOKEN,
    DEFAULT_SUB_PROJECT_ID,
    DEFAULT_SUB_PROJECT_NAME,
    DEFAULT_TEMP_ACCESS_KEY,
    DEFAULT_TEMP_SECRET_KEY,
    DEFAULT_USER,
    Emulator,
)

from .helpers import OBS, Api, assert_error, signed_request, wait_until_rejected

ISO_MICRO_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def test_password_token_is_issued_and_accepted(api: Api, ready_instance: str) -> None:
    response = api.password_token()
    assert response.status_code == 201
    token = response.headers["X-Subject-Token"]
    assert token.startswith("MII")
    body = response.json()["token"]
    assert ISO_MICRO_Z.fullmatch(body["expires_at"])
    assert ISO_MICRO_Z.fullmatch(body["issued_at"])
    assert body["methods"] == ["password"]
    assert body["user"]["name"] == DEFAULT_USER
    assert body["project"]["id"] == DEFAULT_PROJECT_ID
    assert body["project"]["name"] == DEFAULT_REGION
    assert {entry["type"] for entry in body["catalog"]} >= {"imagesearch"}
    assert response.headers["X-Request-Id"]
    assert api.query(ready_instance, token=token).status_code == 200


def test_token_lifetime_is_24h_by_default_and_nocatalog_drops_catalog(api: Api) -> None:
    body = api.password_token(query="?nocatalog=true").json()["token"]
    assert "catalog" not in body
    issued = datetime.strptime(body["issued_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    expires = datetime.strptime(body["expires_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert expires - issued == timedelta(days=1)


def test_scope_by_project_id_works_and_unknown_project_is_400(api: Api) -> None:
    assert api.password_token(scope={"project": {"id": DEFAULT_PROJECT_ID}}).status_code == 201
    response = api.password_token(scope={"project": {"name": "eu-west-0"}})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == 400


def test_wrong_password_is_401_keystone_body(api: Api) -> None:
    response = api.password_token(password="not-it")
    assert response.status_code == 401
    assert response.json() == {
        "error": {"code": 401, "message": "The username or password is wrong.", "title": "Unauthorized"}
    }
    assert "X-Subject-Token" not in response.headers
    assert api.password_token(domain="other-domain").status_code == 401
    assert api.password_token(user="nobody").status_code == 401
    assert api.session.get(api.url + "/_emulator/stats").json()["auth_failures"] == 3


def test_malformed_token_request_is_400(api: Api) -> None:
    for body in (b"not json", b"[]", json.dumps({"auth": {"identity": {"methods": ["token"]}}}).encode()):
        response = api.session.post(api.url + "/v3/auth/tokens", data=body, timeout=5)
        assert response.status_code == 400
        assert response.json()["error"]["title"] == "Bad Request"


def test_domain_scoped_token_is_refused_by_v1_with_403(api: Api, ready_instance: str) -> None:
    response = api.password_token(scope={"domain": {"name": "demo-account"}})
    assert response.status_code == 201
    assert "project" not in response.json()["token"]
    assert_error(api.query(ready_instance, token=response.headers["X-Subject-Token"]), 403, "APIGW.0302")


def test_token_expires_after_its_lifetime() -> None:
    with Emulator(token_lifetime=2.0, creation_seconds=0) as emu:
        api = Api(emu.url)
        emu.upsert_instance("lib")
        token = api.password_token().headers["X-Subject-Token"]
        assert api.query("lib", token=token).status_code == 200
        body = assert_error(wait_until_rejected(api, "lib", token), 401, "APIGW.0307")
        assert body["error_msg"] == "The token must be updated."
        assert api.query("lib").status_code == 200  # the ready token does not expire
        assert emu.stats()["token_expiries"] == 1


def test_expire_tokens_revokes_issued_and_ready_tokens(
    emulator: Emulator, api: Api, ready_instance: str
) -> None:
    token = api.password_token().headers["X-Subject-Token"]
    assert emulator.expire_tokens(include_ready=False) == 1
    assert_error(api.query(ready_instance, token=token), 401, "APIGW.0307")
    assert api.query(ready_instance).status_code == 200
    emulator.expire_tokens()
    assert_error(api.query(ready_instance), 401, "APIGW.0307")
    fresh = api.password_token().headers["X-Subject-Token"]
    assert api.query(ready_instance, token=fresh).status_code == 200


def test_missing_and_unknown_token(api: Api, ready_instance: str) -> None:
    body = assert_error(api.query(ready_instance, token=None), 401, "APIGW.0301")
    assert body["request_id"]
    body = assert_error(api.query(ready_instance, token="MIIforged"), 401, "APIGW.0301")
    assert "decrypt token fail" in body["error_msg"]


def test_unknown_project_is_403_0310_and_other_project_token_is_403_0302() -> None:
    seed = {"projects": {DEFAULT_REGION: DEFAULT_PROJECT_ID, "ap-southeast-1": "a" * 32}}
    with Emulator(seed=seed) as emu:
        api = Api(emu.url)
        api.project_id = "f" * 32
        assert_error(api.query("lib"), 403, "APIGW.0310")
        token = api.password_token(scope={"project": {"name": "ap-southeast-1"}}).headers["X-Subject-Token"]
        api.project_id = DEFAULT_PROJECT_ID
        assert_error(api.query("lib", token=token), 403, "APIGW.0302")
        api.project_id = "a" * 32
        assert_error(api.query("lib", token=token), 400, "IS.0007")  # authorised; instance absent


def test_projects_lookup_by_region(api: Api) -> None:
    response = api.session.get(
        api.url + "/v3/projects",
        params={"name": DEFAULT_REGION},
        headers={"X-Auth-Token": DEFAULT_READY_TOKEN},
    )
    assert response.status_code == 200
    assert [p["id"] for p in response.json()["projects"]] == [DEFAULT_PROJECT_ID]
    assert api.session.get(api.url + "/v3/projects").status_code == 401


# --- AK/SK -----------------------------------------------------------------------------------------
def test_aksk_signed_requests_are_accepted(api: Api, ready_instance: str) -> None:
    response = signed_request(api, "GET", f"/v1/{DEFAULT_PROJECT_ID}/service/{ready_instance}")
    assert response.status_code == 200, response.text
    body = json.dumps({"path": f"{OBS}/1.jpg"}).encode()
    response = signed_request(api, "POST", f"/v1/{DEFAULT_PROJECT_ID}/{ready_instance}/image", body)
    assert response.json() == {"result": "Success"}
    assert api.session.get(api.url + "/_emulator/stats").json()["requests_by_auth"]["aksk"] == 2


def test_aksk_verification_uses_the_host_header_sent(api: Api, ready_instance: str) -> None:
    host = "imagesearch.cn-north-4.myhuaweicloud.com"
    response = signed_request(api, "GET", f"/v1/{DEFAULT_PROJECT_ID}/service/{ready_instance}", host=host)
    assert response.status_code == 200, response.text


def test_tampered_aksk_requests_are_rejected(api: Api, ready_instance: str) -> None:
    path = f"/v1/{DEFAULT_PROJECT_ID}/{ready_instance}/image"
    good = json.dumps({"path": f"{OBS}/1.jpg"}).encode()
    headers = signing.sign_headers(
        access_key=DEFAULT_ACCESS_KEY,
        secret_key=DEFAULT_SECRET_KEY,
        method="POST",
        host=api.url.split("//")[1],
        path=path,
        headers={"Content-Type": "application/json"},
        body=good,
    )
    tampered_body = api.session.post(api.url + path, data=good.replace(b"1.jpg", b"2.jpg"), headers=headers)
    body = assert_error(tampered_body, 401, "APIGW.0301")
    assert "verify aksk signature fail" in body["error_msg"]
    bad_sig = dict(headers, Authorization=headers["Authorization"][:-4] + "0000")
    assert_error(api.session.post(api.url + path, data=good, headers=bad_sig), 401, "APIGW.0301")
    assert api.session.post(api.url + path, data=good, headers=headers).status_code == 200


def test_unknown_access_key_and_wrong_secret(api: Api, ready_instance: str) -> None:
    path = f"/v1/{DEFAULT_PROJECT_ID}/service/{ready_instance}"
    body = assert_error(signed_request(api, "GET", path, access_key="NOPE"), 401, "APIGW.0301")
    assert "Get secretKey failed" in body["error_msg"]
    body = assert_error(signed_request(api, "GET", path, secret_key="wrong"), 401, "APIGW.0301")
    assert "verify aksk signature fail" in body["error_msg"]


def test_signature_older_than_15_minutes_is_expired(api: Api, ready_instance: str) -> None:
    path = f"/v1/{DEFAULT_PROJECT_ID}/service/{ready_instance}"
    old = datetime.now(UTC) - timedelta(minutes=16)
    body = assert_error(signed_request(api, "GET", path, now=old), 401, "APIGW.0301")
    assert "signature expired" in body["error_msg"]
    recent = datetime.now(UTC) - timedelta(minutes=14)
    assert signed_request(api, "GET", path, now=recent).status_code == 200


def test_temporary_access_key_needs_its_security_token(api: Api, ready_instance: str) -> None:
    path = f"/v1/{DEFAULT_PROJECT_ID}/service/{ready_instance}"

    def send(extra: dict[str, str] | None) -> requests.Response:
        return signed_request(
            api,
            "GET",
            path,
            access_key=DEFAULT_TEMP_ACCESS_KEY,
            secret_key=DEFAULT_TEMP_SECRET_KEY,
            extra_headers=extra,
        )

    body = assert_error(send(None), 401, "APIGW.0301")
    assert "security token" in body["error_msg"]
    assert_error(send({"X-Security-Token": "not-it"}), 401, "APIGW.0301")
    assert send({"X-Security-Token": DEFAULT_SECURITY_TOKEN}).status_code == 200


def test_ready_token_constant_matches_default_seed(api: Api) -> None:
    state = api.session.get(api.url + "/_emulator/state").json()
    assert DEFAULT_READY_TOKEN in state["ready_tokens"]
    assert state["projects"] == {
        DEFAULT_REGION: DEFAULT_PROJECT_ID,
        DEFAULT_SUB_PROJECT_NAME: DEFAULT_SUB_PROJECT_ID,
    }
