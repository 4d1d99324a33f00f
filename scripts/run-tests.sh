#!/usr/bin/env bash
# `make test`: every test under tests/, in two pytest processes side by side. Most of the suite waits
# (on an airflow standalone booting, a Celery worker, a trigger's poll interval, the emulator's latency)
# rather than computes: run in one process it left the second core idle and took over 30 minutes. The
# split is by folder: the first stream takes the suites built on real Airflow processes and browsers,
# the second everything else (computed as "tests" minus the first's paths, so no test is left out).
# Each process has its own Airflow home, PostgreSQL and emulators (tests/conftest.py, fixtures); the
# tests that use the quickstart's fixed port 18080 (README, docs, the docs review) share the second.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
TIMEOUT=${TEST_TIMEOUT:-2400}
FIRST=(tests/events tests/ui tests/plugin tests/distributed tests/reliability)
for path in tests/review/test_*.py; do
    [ "$path" = tests/review/test_review_docs.py ] || FIRST+=("$path")
done
SECOND_IGNORE=()
for path in "${FIRST[@]}"; do SECOND_IGNORE+=("--ignore=$path"); done
logs=$(mktemp -d)
run() {  # name, pytest arguments...
    local name=$1
    shift
    local started=$SECONDS status=0
    timeout -k 15 "$TIMEOUT" "$PY" -m pytest -q -p no:cacheprovider "$@" >"$logs/$name.log" 2>&1 || status=$?
    echo "$status $((SECONDS - started))" >"$logs/$name.status"
}
run first "${FIRST[@]}" &
run second tests "${SECOND_IGNORE[@]}" &
wait
overall=0
for name in first second; do
    read -r status seconds <"$logs/$name.status"
    echo "===== make test, $name stream: exit $status after $seconds s ====="
    cat "$logs/$name.log"
    [ "$status" -eq 0 ] || overall=1
done
for name in first second; do
    read -r status seconds <"$logs/$name.status"
    echo "make test: $name stream exit $status after $seconds s: $(grep -E '[0-9]+ (passed|failed)' "$logs/$name.log" | tail -1)"
done
rm -rf "$logs"
exit "$overall"
