#!/usr/bin/env bash
# Review 22 (script reproduction; not collected by pytest): the [parquet] extra's floor `pyarrow>=14` is
# never tested (make test-lowest installs only [sqlite]) and is false beside numpy 2, which pandas>=2.2.2
# lets the resolver pick. Resolving the declared lower bounds with the extra, as make test-lowest does for
# [sqlite], gives pyarrow 14.0.0 + numpy 2.x, and the provider's Parquet manifest reader fails to import
# pyarrow ("A module that was compiled using NumPy 1.x cannot be run in NumPy 2"; ImportError:
# numpy.core.multiarray failed to import). pyarrow supports numpy 2 from 16.0.
# Run from the repository root: bash tests/review/repro_parquet_floor.sh   (expects the ImportError)
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
open("manifest.parquet", "wb").write(b"PAR1")  # never parsed: the import of pyarrow fails first
print("Parquet manifest:", list(read_chunks("manifest.parquet")))
PY
