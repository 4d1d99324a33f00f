#!/usr/bin/env bash
# Review 22 (script; not collected by pytest): the [parquet] extra's floor beside numpy 2, which
# pandas>=2.2.2 lets the resolver pick. Resolves the declared lower bounds with the extra (uv
# --resolution lowest-direct) on Airflow 3.1.8, then reads a Parquet manifest with the provider's reader.
# Was: `pyarrow>=14` resolved pyarrow 14.0.0 + numpy 2.x and the import of pyarrow failed ("A module that
# was compiled using NumPy 1.x cannot be run in NumPy 2"; ImportError: numpy.core.multiarray failed to
# import). The floor is now pyarrow>=16 (the first release built for numpy 2), and make test-lowest
# installs [sqlite,parquet] and reads a Parquet manifest (tests/test_lowest.py).
# Run from the repository root: bash tests/review/repro_parquet_floor.sh   (expects: Parquet manifest: [[3 rows]])
set -euo pipefail
UV=${UV:-.tools/bin/uv}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$UV" venv -q -p python3.11 "$work/venv"
VIRTUAL_ENV="$work/venv" "$UV" pip install -q --resolution lowest-direct ".[parquet]" "apache-airflow==3.1.8"
cd "$work"
"$work/venv/bin/python" - <<'PY'
from importlib.metadata import version

import pandas as pd

print({p: version(p) for p in ("pyarrow", "numpy", "pandas", "apache-airflow")})
with open("manifest.csv", "w") as f:
    f.write("path\nhttps://b.obs.cn-north-4.myhuaweicloud.com/a.jpg\n")
from airflow_provider_imagesearch.imports.manifest import read_chunks

print("CSV manifest:", list(read_chunks("manifest.csv")))  # the control: no pyarrow involved
pd.read_csv("manifest.csv").to_parquet("manifest.parquet", index=False)  # pyarrow writes it
chunks = list(read_chunks("manifest.parquet"))
print("Parquet manifest:", chunks)
assert chunks == [[{"path": "https://b.obs.cn-north-4.myhuaweicloud.com/a.jpg"}]], chunks
PY
