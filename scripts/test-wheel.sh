#!/usr/bin/env bash
# make test-wheel: the package as a user installs it, without this checkout.
#
# 1. Build the sdist, and the wheel from the sdist (so the sdist's contents are enough to build it).
# 2. Install the wheel (with its [sqlite] extra, for the archive table) into a brand-new venv: the newest
#    Airflow and dependencies the resolver picks, no constraints file.
# 3. From a directory outside the checkout, with isolated Python (-I): scripts/test_wheel.py checks that
#    Airflow discovers the provider, imports every module of the installed package, and runs the archive
#    example DAG against the emulator shipped in the wheel.
set -euo pipefail
UV=${UV:-uv}
PYTHON=${PYTHON:-python3}
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/imagesearch-test-wheel.XXXXXX")
trap 'rm -rf "$work"' EXIT

"$UV" build -q --out-dir "$work/dist" "$repo"
wheel=$(ls "$work"/dist/*.whl)
sdist=$(ls "$work"/dist/*.tar.gz)
echo "test-wheel: built $(basename "$sdist") and $(basename "$wheel")"

"$UV" venv -q -p "$PYTHON" "$work/venv"
VIRTUAL_ENV="$work/venv" "$UV" pip install -q "${wheel}[sqlite]"
echo "test-wheel: installed into a new venv: $(VIRTUAL_ENV="$work/venv" "$UV" pip list -q --format freeze | wc -l) packages," \
    "apache-airflow $("$work/venv/bin/python" -c 'from importlib.metadata import version; print(version("apache-airflow"))')"

mkdir -p "$work/dags"
cp "$repo/dags/imagesearch_instance_archive.py" "$work/dags/"
cd "$work"
env -u PYTHONPATH "$work/venv/bin/python" -I "$repo/scripts/test_wheel.py" "$work" "$sdist"
