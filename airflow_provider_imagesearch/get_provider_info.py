"""Provider metadata for Airflow's ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from airflow_provider_imagesearch.plugins.options import config_section


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-imagesearch",
        "name": "Huawei Cloud ImageSearch",
        "description": "Huawei Cloud ImageSearch (v1 instances and v2 MMS services): read, wait, manage images and data, bulk import, batch search.",
        "integrations": [
            {
                "integration-name": "Huawei Cloud ImageSearch",
                "external-doc-url": "https://support.huaweicloud.com/intl/en-us/api-imagesearch/",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {
                "integration-name": "Huawei Cloud ImageSearch",
                "python-modules": ["airflow_provider_imagesearch.hooks.imagesearch"],
            }
        ],
        "operators": [
            {
                "integration-name": "Huawei Cloud ImageSearch",
                "python-modules": [
                    "airflow_provider_imagesearch.operators.imagesearch",
                    "airflow_provider_imagesearch.operators.imagesearch_v2",
                    "airflow_provider_imagesearch.operators.import_images",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": "Huawei Cloud ImageSearch",
                "python-modules": ["airflow_provider_imagesearch.sensors.imagesearch"],
            }
        ],
        "triggers": [
            {
                "integration-name": "Huawei Cloud ImageSearch",
                "python-modules": [
                    "airflow_provider_imagesearch.triggers.imagesearch",
                    "airflow_provider_imagesearch.triggers.events",
                ],
            }
        ],
        "extra-links": ["airflow_provider_imagesearch.links.ImageSearchConsoleLink"],
        # The ImageSearch page of the UI. Also an ``airflow.plugins`` entry point (pyproject.toml): Airflow
        # loads provider-declared plugins only with [core] lazy_discover_providers = False.
        "plugins": [
            {
                "name": "imagesearch",
                "plugin-class": "airflow_provider_imagesearch.plugins.plugin.ImageSearchPlugin",
            }
        ],
        "config": config_section(),
        "connection-types": [
            {
                "connection-type": "imagesearch",
                "hook-class-name": "airflow_provider_imagesearch.hooks.imagesearch.ImageSearchHook",
                "hook-name": "Huawei Cloud ImageSearch",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema"],
                    "relabeling": {
                        "host": "Endpoint (optional)",
                        "login": "IAM user or access key (AK)",
                        "password": "Password, secret key (SK) or token",
                    },
                    "placeholders": {
                        "host": "https://imagesearch.cn-north-4.myhuaweicloud.com (default from the region)",
                        "login": "IAM user name (iam_password) or AK (aksk)",
                        "password": "IAM password, SK, or a ready X-Auth-Token",
                        # Airflow 3.3.2's row Test button sends port 0 for an empty port and its API then
                        # refuses the test as a changed endpoint (400): a stored port avoids that. The hook
                        # ignores the port when the endpoint URL names one or the host is left empty.
                        "port": "443 - enter it: Airflow 3.3.2's Test button fails without a port",
                    },
                },
                "conn-fields": {
                    "auth_type": {
                        "label": "Auth type",
                        "description": "iam_password, aksk or token; inferred when left empty.",
                        "schema": {
                            "type": ["string", "null"],
                            "enum": ["iam_password", "aksk", "token", None],
                        },
                    },
                    "region": {
                        "label": "Region",
                        "description": "Region id, e.g. cn-north-4 (sets the default endpoints and token scope).",
                        "schema": {"type": ["string", "null"]},
                    },
                    "project_id": {
                        "label": "Project ID",
                        "description": "Project of the instances (32 hex characters).",
                        "schema": {"type": ["string", "null"]},
                    },
                    "domain_name": {
                        "label": "Account (domain) name",
                        "description": "For iam_password: the account the IAM user belongs to.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "security_token": {
                        "label": "Security token",
                        "description": "For temporary AK/SK only.",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "token": {
                        "label": "Ready token",
                        "description": "For auth_type token: an X-Auth-Token (short jobs and tests).",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "iam_endpoint": {
                        "label": "IAM endpoint",
                        "description": "Overrides https://iam.{region}.myhuaweicloud.com.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "mms_endpoint": {
                        "label": "ImageSearch v2 (MMS) endpoint",
                        "description": "Overrides https://mms.{region}.myhuaweicloud.com for the v2 operators.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "instance_name": {
                        "label": "Instance for connection tests",
                        "description": "test_connection reads this instance when set.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "connect_timeout": {
                        "label": "Connect timeout (s)",
                        "description": "Seconds to open a connection (default 10).",
                        "schema": {"type": ["number", "null"], "exclusiveMinimum": 0, "default": 10},
                    },
                    "read_timeout": {
                        "label": "Read timeout (s)",
                        "description": "Seconds to wait for an answer (default 60).",
                        "schema": {"type": ["number", "null"], "exclusiveMinimum": 0, "default": 60},
                    },
                    "max_attempts": {
                        "label": "Attempts per call",
                        "description": "Retries of 429, 5xx, timeouts and dropped connections included.",
                        "schema": {"type": ["integer", "null"], "minimum": 1, "default": 5},
                    },
                    "retry_max_elapsed": {
                        "label": "Retry budget (s)",
                        "description": "No retry starts this many seconds after a call's first attempt.",
                        "schema": {"type": ["number", "null"], "minimum": 0, "default": 120},
                    },
                    "verify": {
                        "label": "TLS verification",
                        "description": (
                            "true (default); a CA bundle file or directory on the workers for a private CA; "
                            "false turns checks off and needs 'Allow plain HTTP / no TLS verification'."
                        ),
                        "schema": {"type": ["string", "null"]},
                    },
                    "console_url": {
                        "label": "Console URL template",
                        "description": (
                            "Page the operators' 'ImageSearch console' link opens; placeholders {region}, "
                            "{project_id}, {instance_name}. Empty: the Huawei Cloud console's ImageSearch page."
                        ),
                        "schema": {"type": ["string", "null"]},
                    },
                    "allow_insecure": {
                        "label": "Allow plain HTTP / no TLS verification",
                        "schema": {"type": ["boolean", "null"], "default": False},
                    },
                },
            }
        ],
    }
