"""IAM: ``POST /v3/auth/tokens`` (password identity) and ``GET /v3/projects?name=<project name>``.

Errors use the Keystone body ``{"error": {"code": N, "message": "...", "title": "..."}}``: 400 for a
body that is not a password-auth request, 401 "The username or password is wrong." for bad credentials.
A scope naming a project the emulator does not have is a 400 (a guess; real IAM's answer is unknown).
Scope by project name or id -> a token for that project only (the region's name, e.g. ``cn-north-4``, is the
name of the region's default project; sub-projects are ``{region}_{suffix}``, each with its own id); by domain -> domain-scoped token (refused
by the v1 routes with 403 APIGW.0302, like any token not scoped to the path's project); none -> global.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from airflow_provider_imagesearch.emulator.state import State, Token
from airflow_provider_imagesearch.emulator.wire import Request, Response

_TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden"}
WRONG_CREDENTIALS = "The username or password is wrong."


def keystone_error(status: int, message: str) -> Response:
    return Response.json(status, {"error": {"code": status, "message": message, "title": _TITLES[status]}})


def stable_id(*parts: str) -> str:
    """A 32-hex id derived from names, so users/domains keep their ids across restarts."""
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def iso(moment: float) -> str:
    """ISO-8601 UTC with microseconds and ``Z``, as IAM formats ``expires_at``/``issued_at``."""
    return datetime.fromtimestamp(moment, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class BadAuthBody(Exception):
    pass


def _dig(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            raise BadAuthBody(f"Invalid request body: '{'.'.join(keys)}' is required.")
        data = data[key]
    return data


def _text(data: Any, *keys: str) -> str:
    value = _dig(data, *keys)
    if not isinstance(value, str) or not value:
        raise BadAuthBody(f"Invalid request body: '{'.'.join(keys)}' must be a non-empty string.")
    return value


def issue_token(request: Request, state: State, lifetime: float, now: float, base_url: str) -> Response:
    """Answer a password-auth token request; on success 201 with ``X-Subject-Token``."""
    try:
        body = json.loads(request.body)
        methods = _dig(body, "auth", "identity", "methods")
        if not isinstance(methods, list) or "password" not in methods:
            raise BadAuthBody("Invalid request body: only the 'password' identity method is supported.")
        user = _dig(body, "auth", "identity", "password", "user")
        name = _text(user, "name")
        password = _text(user, "password")
        domain = _text(user, "domain", "name")
        scope = body["auth"].get("scope")
        if scope is not None and not isinstance(scope, dict):
            raise BadAuthBody("Invalid request body: 'auth.scope' must be an object.")
    except BadAuthBody as exc:
        return keystone_error(400, str(exc))
    except (ValueError, UnicodeDecodeError):
        return keystone_error(400, "Invalid request body: not a JSON document.")
    if state.users.get((domain, name)) != password:
        return keystone_error(401, WRONG_CREDENTIALS)
    project_id: str | None = None
    scoped_domain: str | None = None
    if scope and "project" in scope:
        project = scope["project"]
        if isinstance(project, dict) and isinstance(project.get("id"), str):
            project_id = project["id"] if project["id"] in state.project_regions else None
        elif isinstance(project, dict) and isinstance(project.get("name"), str):
            project_id = state.projects.get(project["name"])
        else:
            return keystone_error(400, "Invalid request body: 'auth.scope.project' needs an id or a name.")
        if project_id is None:
            return keystone_error(400, "The project in the scope does not exist.")
    elif scope and "domain" in scope:
        wanted = scope["domain"]
        if not isinstance(wanted, dict) or wanted.get("name", wanted.get("id")) not in (
            domain,
            stable_id(domain),
        ):
            return keystone_error(401, "The domain in the scope does not match the user.")
        scoped_domain = domain
    value = "MII" + secrets.token_urlsafe(384)
    token = Token(value, name, domain, project_id, scoped_domain, now, now + lifetime)
    state.tokens[value] = token
    nocatalog = bool(parse_qs(request.query).get("nocatalog", [""])[0])
    payload = {"token": token_body(token, state, base_url, nocatalog)}
    response = Response.json(201, payload)
    response.headers.append(("X-Subject-Token", value))
    return response


def token_body(token: Token, state: State, base_url: str, nocatalog: bool) -> dict[str, Any]:
    domain = {"id": stable_id(token.domain), "name": token.domain}
    body: dict[str, Any] = {
        "methods": ["password"],
        "expires_at": iso(token.expires_at or token.issued_at),
        "issued_at": iso(token.issued_at),
        "user": {
            "id": stable_id(token.domain, token.user),
            "name": token.user,
            "domain": domain,
            "password_expires_at": "",
        },
        "roles": [{"id": stable_id("role", "te_admin"), "name": "te_admin"}],
    }
    if token.project_id is not None:
        name = state.project_names[token.project_id]
        body["project"] = {"id": token.project_id, "name": name, "domain": domain}
    elif token.scoped_domain is not None:
        body["domain"] = domain
    if not nocatalog:
        body["catalog"] = [
            {
                "type": service,
                "id": stable_id("service", service),
                "name": service,
                "endpoints": [
                    {
                        "id": stable_id("endpoint", service, region),
                        "interface": "public",
                        "region": region,
                        "region_id": region,
                        "url": base_url + suffix,
                    }
                    for region in dict.fromkeys(state.project_regions.values())
                ],
            }
            for service, suffix in (("imagesearch", ""), ("iam", "/v3"))
        ]
    return body


def list_projects(request: Request, state: State, token: Token) -> Response:
    """``GET /v3/projects[?name=<project name>]``; the caller has already checked the token."""
    wanted = parse_qs(request.query).get("name", [None])[0]
    projects = [
        {
            "id": pid,
            "name": name,
            "domain_id": stable_id(token.domain) if token.domain else "",
            "enabled": True,
            "is_domain": False,
            "parent_id": stable_id(token.domain) if token.domain else "",
            "description": "",
        }
        for name, pid in state.projects.items()
        if wanted is None or name == wanted
    ]
    return Response.json(
        200, {"projects": projects, "links": {"self": "/v3/projects", "next": None, "previous": None}}
    )
