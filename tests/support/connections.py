"""Airflow connections for tests, as AIRFLOW_CONN_* environment variables in JSON form."""

from __future__ import annotations

import json
import os
from typing import Any

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

#: Fast retries for tests: the policy is the same, only the waits are shorter.
FAST_RETRY_EXTRAS = {"backoff_initial": 0.01, "backoff_max": 0.05, "max_attempts": 5}


def env_name(conn_id: str) -> str:
    return "AIRFLOW_CONN_" + conn_id.upper()


def set_connection(monkeypatch: Any, conn_id: str, **fields: Any) -> str:
    monkeypatch.setenv(env_name(conn_id), json.dumps(fields))
    return conn_id


def connection_fields(url: str, auth: str = "iam_password", **extra: Any) -> dict[str, Any]:
    """Connection fields pointing at an emulator ``url`` with one of the three auth types."""
    extras: dict[str, Any] = {
        "region": DEFAULT_REGION,
        "project_id": DEFAULT_PROJECT_ID,
        "iam_endpoint": url,
        "mms_endpoint": url,
        **FAST_RETRY_EXTRAS,
    }
    fields: dict[str, Any] = {"conn_type": "imagesearch", "host": url}
    if auth == "iam_password":
        fields.update(login=DEFAULT_USER, password=DEFAULT_PASSWORD)
        extras["domain_name"] = DEFAULT_DOMAIN
    elif auth == "aksk":
        fields.update(login=DEFAULT_ACCESS_KEY, password=DEFAULT_SECRET_KEY)
    elif auth == "token":
        extras["token"] = DEFAULT_READY_TOKEN
    else:
        raise ValueError(auth)
    extras.update(extra)
    fields["extra"] = extras
    return fields


def install(conn_id: str, fields: dict[str, Any]) -> None:
    """Set a connection for the whole process (for subprocesses and session fixtures)."""
    os.environ[env_name(conn_id)] = json.dumps(fields)
