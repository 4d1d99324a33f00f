#!/usr/bin/env bash
# Make sure the project's .venv has the [s3] extra (apache-airflow-providers-amazon with s3fs, so that
# s3:// manifests open through Airflow's ObjectStoragePath) and moto's S3 server, which
# tests/imports/test_object_store.py starts on a free port (its boto3 creates the bucket and signs
# URLs). They live in .venv since constraints.txt pins python-dateutil 2.9 (what Airflow 3.3.2 resolves
# in a clean venv; the earlier 4.0.0 pin is what kept botocore out). A stamp makes a second run instant.
set -euo pipefail

MOTO_VERSION=5.2.5
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
STAMP="$VENV/.installed-s3-moto-$MOTO_VERSION"
UV="$ROOT/.tools/bin/uv"

if [ -f "$STAMP" ] && [ -x "$VENV/bin/moto_server" ] && [ "$STAMP" -nt "$ROOT/constraints.txt" ]; then
    echo "moto_server $MOTO_VERSION and the [s3] extra found in $VENV"
    exit 0
fi
if [ ! -x "$VENV/bin/python" ]; then
    # The Makefile owns how the venv (and uv) is built.
    make --no-print-directory -C "$ROOT" install
fi
echo "Installing the [s3] extra and moto[server]==$MOTO_VERSION into $VENV"
rm -f "$VENV"/.installed-s3-moto-*
cd "$ROOT"
VIRTUAL_ENV="$VENV" "$UV" pip install -q -c constraints.txt -e ".[s3]" "moto[server]==$MOTO_VERSION"
"$VENV/bin/python" -c "import boto3, moto.server, s3fs, airflow.providers.amazon"
touch "$STAMP"
echo "moto_server $MOTO_VERSION and the [s3] extra installed in $VENV"
