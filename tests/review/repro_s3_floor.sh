#!/usr/bin/env bash
# Review 22 (script; not collected by pytest): the [s3] extra's floor on the floor Airflow. Resolves the
# declared lower bounds with the extra (uv --resolution lowest-direct, as make test-lowest does) beside
# Airflow 3.1.8, then reads an s3:// manifest from moto's S3 server through the provider's manifest reader
# (Airflow's ObjectStoragePath, an aws connection with endpoint_url).
# Was: `apache-airflow-providers-amazon[s3fs]>=9.0` resolved amazon 9.0.0, which imports
# airflow.utils.log.secrets_masker (gone in Airflow 3.1): no s3 filesystem, and the read failed with
# "Invalid manifest ... (No filesystem registered for scheme s3)". 9.2.0 fails the same way; 9.4.0 (no 9.3)
# is the lowest release that loads on 3.1.8, so the floor is >=9.4.0. Should the s3 filesystem still fail
# to load, the error now names the missing s3 support and the [s3] extra.
# Run from the repository root: bash tests/review/repro_s3_floor.sh   (expects: s3 manifest: [[...3 rows]])
set -euo pipefail
UV=${UV:-.tools/bin/uv}
work=$(mktemp -d)
moto_pid=
trap '[ -n "$moto_pid" ] && kill "$moto_pid" 2>/dev/null; rm -rf "$work"' EXIT
"$UV" venv -q -p python3.11 "$work/venv"
VIRTUAL_ENV="$work/venv" "$UV" pip install -q --resolution lowest-direct ".[s3]" "apache-airflow==3.1.8" \
    "moto[server]==5.2.5"
port=$("$work/venv/bin/python" -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
"$work/venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
moto_pid=$!
cd "$work"
export AWS_ACCESS_KEY_ID=AK AWS_SECRET_ACCESS_KEY=SK AWS_DEFAULT_REGION=us-east-1
"$work/venv/bin/python" - "$port" <<'PY'
import sys, time
import boto3
endpoint = f"http://127.0.0.1:{sys.argv[1]}"
for _ in range(100):
    try:
        s3 = boto3.client("s3", endpoint_url=endpoint)
        s3.list_buckets()
        break
    except Exception:
        time.sleep(0.2)
s3.create_bucket(Bucket="catalogue")
s3.put_object(
    Bucket="catalogue",
    Key="manifest.csv",
    Body=b"path,tag.color\n"
    + b"".join(f"https://b.obs.cn-north-4.myhuaweicloud.com/{i}.jpg,red\n".encode() for i in range(3)),
)
PY
AIRFLOW_HOME="$work/home" \
AIRFLOW_CONN_AWS_DEFAULT="{\"conn_type\": \"aws\", \"login\": \"AK\", \"password\": \"SK\", \"extra\": {\"endpoint_url\": \"http://127.0.0.1:$port\", \"region_name\": \"us-east-1\"}}" \
    "$work/venv/bin/python" - <<'PY'
from importlib.metadata import version

print({p: version(p) for p in ("apache-airflow-providers-amazon", "s3fs", "apache-airflow")})
from airflow_provider_imagesearch.imports.manifest import read_chunks

chunks = list(read_chunks("s3://catalogue/manifest.csv", manifest_conn_id="aws_default"))
print("s3 manifest:", chunks)
assert [len(c) for c in chunks] == [3], chunks
PY
