"""Airflow connections that point at an emulator, for each of the provider's three auth types.

Plain data (no Airflow import): the fields of an ``imagesearch`` connection in the JSON form Airflow
reads from ``AIRFLOW_CONN_*`` variables. ``host``, ``iam_endpoint`` and ``mms_endpoint`` are all the
emulator's URL, so neither v1, v2 nor IAM calls leave the machine.
"""

from __future__ import annotations

import json
from typing import Any

from airflow_provider_imagesearch.emulator import constants as c

#: The provider's three auth types, in the order ``--print-connection`` shows them.
AUTH_TYPES = ("iam_password", "aksk", "token")
AUTH_DESCRIPTIONS = {
    "iam_password": "IAM password: the hook asks the emulator's IAM for a token",
    "aksk": "AK/SK: every request signed with SDK-HMAC-SHA256",
    "token": "a ready token, sent as X-Auth-Token (never expires)",
}
DEFAULT_CONN_ID = "imagesearch_default"


def connection_fields(
    url: str,
    auth: str = "iam_password",
    *,
    project_id: str = c.DEFAULT_PROJECT_ID,
    region: str = c.DEFAULT_REGION,
    **extra: Any,
) -> dict[str, Any]:
    """The fields of an ``imagesearch`` connection to the emulator at ``url`` with the default identity.

    :param url: the emulator's base URL, e.g. ``http://127.0.0.1:8080``.
    :param auth: ``iam_password``, ``aksk`` or ``token``.
    :param project_id: the project the hook calls (the default project of the emulator's region).
    :param region: the region (the IAM token scope).
    :param extra: more connection extras (e.g. retry settings), added last.
    """
    url = url.rstrip("/")
    extras: dict[str, Any] = {
        "region": region,
        "project_id": project_id,
        "iam_endpoint": url,
        "mms_endpoint": url,
    }
    fields: dict[str, Any] = {"conn_type": "imagesearch", "host": url}
    if auth == "iam_password":
        fields.update(login=c.DEFAULT_USER, password=c.DEFAULT_PASSWORD)
        extras["domain_name"] = c.DEFAULT_DOMAIN
    elif auth == "aksk":
        fields.update(login=c.DEFAULT_ACCESS_KEY, password=c.DEFAULT_SECRET_KEY)
    elif auth == "token":
        extras["token"] = c.DEFAULT_READY_TOKEN
    else:
        raise ValueError(f"auth must be one of {', '.join(AUTH_TYPES)}, got {auth!r}")
    extras.update(extra)
    fields["extra"] = extras
    return fields


def connection_json(url: str, auth: str = "iam_password", **extra: Any) -> str:
    """:func:`connection_fields` as the JSON an ``AIRFLOW_CONN_*`` variable holds."""
    return json.dumps(connection_fields(url, auth, **extra))


def env_name(conn_id: str) -> str:
    """``AIRFLOW_CONN_<CONN_ID>``: the variable Airflow reads the connection ``conn_id`` from."""
    return "AIRFLOW_CONN_" + conn_id.upper()


def export_lines(url: str, conn_id: str = DEFAULT_CONN_ID) -> str:
    """Shell lines defining the connection ``conn_id`` to the emulator at ``url``, one per auth type."""
    name = env_name(conn_id)
    lines = [
        f"# Airflow connection {conn_id!r} to the ImageSearch emulator at {url}.",
        "# Pick one of the three (each works alone); host, iam_endpoint and mms_endpoint are the",
        "# emulator, so no v1, v2 or IAM call leaves the machine.",
    ]
    for number, auth in enumerate(AUTH_TYPES, start=1):
        lines.append(f"# {number}. {AUTH_DESCRIPTIONS[auth]}")
        lines.append(f"export {name}='{connection_json(url, auth)}'")
    return "\n".join(lines) + "\n"
