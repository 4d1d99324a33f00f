#!/usr/bin/env bash
# Make sure moto's S3 server is at .tools/moto/bin/moto_server, in a virtualenv of its own: moto needs
# botocore, which needs python-dateutil<3, and the project's Airflow pins python-dateutil 4, so it can
# never go into .venv. tests/imports/test_object_store.py starts and stops its own server on a free
# port, and uploads with that venv's boto3; this only installs. A stamp makes a second run instant.
set -euo pipefail

MOTO_VERSION=5.2.5
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.tools/moto"
STAMP="$VENV/.installed-moto-$MOTO_VERSION"
UV="$ROOT/.tools/bin/uv"

if [ -f "$STAMP" ] && [ -x "$VENV/bin/moto_server" ]; then
    echo "moto_server $MOTO_VERSION found: $VENV/bin/moto_server"
    exit 0
fi
if [ ! -x "$UV" ]; then
    # The Makefile owns how uv is installed (and which version).
    make --no-print-directory -C "$ROOT" .tools/bin/uv
fi
echo "Installing moto[server]==$MOTO_VERSION into $VENV"
rm -f "$VENV"/.installed-moto-*
"$UV" venv -q -p "${PYTHON:-python3}" --allow-existing "$VENV"
VIRTUAL_ENV="$VENV" "$UV" pip install -q "moto[server]==$MOTO_VERSION"
"$VENV/bin/python" -c "import boto3, moto.server"
touch "$STAMP"
echo "moto_server $MOTO_VERSION installed: $VENV/bin/moto_server"
