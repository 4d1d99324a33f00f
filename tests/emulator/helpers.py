"""Helpers for the emulator tests: a thin ``requests`` wrapper, AK/SK signing, error assertions.

The tests talk HTTP to a real server on loopback with plain ``requests``; they never use the provider's hook.
"""

from __future__ import annotations

import base64
import os
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests

from airflow_provider_imagesearch import signing
from airflow_provider_imagesearch.emulator import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_DOMAIN,
    DEFAULT_PASSWORD,
    DEFAULT_PROJECT_ID,
    DEFAULT_READY_TOKEN,
    DEFAULT_REGION,
    DEFAULT_SECRET_KEY,
    DEFAULT_USER,
)
from tests.support.waiting import wait_until

#: Where the service can download an image from (OBS in the default region): ``f"{OBS}/a.jpg"``.
OBS = "https://shop-images.obs.cn-north-4.myhuaweicloud.com"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + os.urandom(64)
JPEG = b"\xff\xd8\xff\xe0" + b"JFIF" + b"\x01" * 64


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class Api:
    """``requests`` calls against one emulator, authenticated with the ready token unless told otherwise."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()
        self.session.trust_env = False
        self.token: str | None = DEFAULT_READY_TOKEN
        self.project_id = DEFAULT_PROJECT_ID

    def call(
        self,
        method: str,
        path: str,
        json: Any = None,
        *,
        token: str | None = "default",
        headers: dict[str, str] | None = None,
        data: bytes | None = None,
        timeout: float = 5.0,
    ) -> requests.Response:
        all_headers = dict(headers or {})
        token = self.token if token == "default" else token
        if token is not None:
            all_headers["X-Auth-Token"] = token
        return self.session.request(
            method, self.url + path, json=json, data=data, headers=all_headers, timeout=timeout
        )

    def v1(self, method: str, suffix: str, json: Any = None, **kwargs: Any) -> requests.Response:
        return self.call(method, f"/v1/{self.project_id}{suffix}", json, **kwargs)

    def create(self, name: str, **fields: Any) -> requests.Response:
        body = {"name": name, "model": "common-search", **fields}
        return self.v1("POST", "/service", body)

    def query(self, name: str, **kwargs: Any) -> requests.Response:
        return self.v1("GET", f"/service/{name}", **kwargs)

    def password_token(
        self,
        *,
        user: str = DEFAULT_USER,
        password: str = DEFAULT_PASSWORD,
        domain: str = DEFAULT_DOMAIN,
        scope: dict[str, Any] | None = None,
        query: str = "",
    ) -> requests.Response:
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {"user": {"name": user, "password": password, "domain": {"name": domain}}},
                },
                "scope": scope if scope is not None else {"project": {"name": DEFAULT_REGION}},
            }
        }
        return self.session.post(f"{self.url}/v3/auth/tokens{query}", json=body, timeout=5)


def signed_request(
    api: Api,
    method: str,
    path: str,
    body: bytes = b"",
    *,
    access_key: str = DEFAULT_ACCESS_KEY,
    secret_key: str = DEFAULT_SECRET_KEY,
    extra_headers: dict[str, str] | None = None,
    host: str | None = None,
    **sign_kwargs: Any,
) -> requests.Response:
    """Send an AK/SK-signed request; ``host`` overrides the Host header (it is sent as signed)."""
    url = api.url + path
    parts = urlsplit(url)
    headers = {"Content-Type": "application/json;charset=UTF-8", **(extra_headers or {})}
    signed = signing.sign_headers(
        access_key=access_key,
        secret_key=secret_key,
        method=method,
        host=host or parts.netloc,
        path=parts.path,
        headers=headers,
        body=body,
        query=parse_qsl(parts.query),
        **sign_kwargs,
    )
    return api.session.request(method, url, data=body, headers=signed, timeout=5)


def assert_error(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["error_code"] == code, body
    assert isinstance(body["error_msg"], str)
    assert body["error_msg"]
    return body


def wait_until_rejected(api: Api, name: str, token: str) -> requests.Response:
    """Query ``name`` with ``token`` until it stops answering 200; returns that first non-200 answer."""
    response = wait_until(lambda: api.query(name, token=token), lambda r: r.status_code != 200)
    assert response.status_code != 200, f"token still accepted: {response.text}"
    return response
