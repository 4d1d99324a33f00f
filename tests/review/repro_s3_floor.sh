#!/usr/bin/env bash
# Review 22 (script reproduction; not collected by pytest): the [s3] extra's floor
# `apache-airflow-providers-amazon[s3fs]>=9.0` is never tested (make test-lowest installs only [sqlite])
# and is false on the floor Airflow: resolving the declared lower bounds with the extra, as make
# test-lowest does for [sqlite], gives amazon 9.0.0 beside Airflow 3.1.8, and reading an s3:// manifest
# (docs/bulk-import.rst "Manifests in object storage") fails before any request: Airflow logs
# ModuleNotFoundError: No module named 'airflow.utils.log.secrets_masker' (amazon 9.0 predates Airflow 3)
# while loading the s3 filesystem, and the task fails with ImageSearchValidationError "Invalid manifest
# 's3://catalogue/manifest.csv': ... (No filesystem registered for scheme s3)", blaming the manifest.
# Run from the repository root: bash tests/review/repro_s3_floor.sh   (expects that error)
set -euo pipefail
UV=${UV:-.tools/bin/uv}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$UV" venv -q -p python3.11 "$work/venv"
VIRTUAL_ENV="$work/venv" "$UV" pip install -q --resolution lowest-direct ".[s3]" "apache-airflow==3.1.8"
cd "$work"
AIRFLOW_HOME="$work/home" AIRFLOW_CONN_AWS_DEFAULT='{"conn_type": "aws", "login": "AK", "password": "SK"}' \
    "$work/venv/bin/python" - <<'PY'
from importlib.metadata import version

print({p: version(p) for p in ("apache-airflow-providers-amazon", "apache-airflow")})
from airflow_provider_imagesearch.imports.manifest import read_chunks

print("s3 manifest:", list(read_chunks("s3://catalogue/manifest.csv", manifest_conn_id="aws_default")))
PY
