"""Figures "bulk import": throughput against ideal, under faults, the unchanged rerun, the diff's memory.

The emulator runs in its own process (no shared GIL) with ``latency_seconds`` modelling the network;
the import runs here through the operator (``execute``), its ledger on SQLite in a temporary folder.
Ideal wall time = rows x latency / max_concurrency.

* clean: N path-only rows, 20 ms latency, ``max_concurrency=16``: wall <= 1.3x ideal. Next to it, the
  control measured in the same run: the same adds from a bare ``requests`` session in 16 threads (no
  retry policy, signing, ledger or plan), which shows how much of the gap to ideal is this machine's.
* faults: the same with 5% 429 (``Retry-After`` 0.2 s) and 2% 503: every row imported, wall <= 1.8x
  ideal, the emulator's log shows processed adds <= rows + reconciled.
* rerun: the clean manifest again: 0 API requests, under 2 s.
* v2: the clean and faults figures again into a v2 (MMS) service with ``ImageSearchV2ImportDataOperator``
  (``item_id`` + ``image_url`` rows), the same goals (issue 13: "same figures as the v1 import").
* diff: a 1,000,000-row manifest against a full ledger of the same rows (written directly), in a child
  process: peak RSS growth <= 300 MB (``ru_maxrss`` after minus before; the child first diffs a
  100-row manifest, so pandas and SQLAlchemy are loaded before the baseline and not counted).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.results import Result, verdict

LATENCY = 0.02
CONCURRENCY = 16
BUCKET = "https://shop.obs.cn-north-4.myhuaweicloud.com"


FAULTS: dict[str, Any] = {
    "throttle_429_rate": 0.05,
    "retry_after": "0.2",
    "error_5xx_rate": 0.02,
    "error_5xx_kinds": ["503_json"],
    "random_seed": 1,
}


@dataclass(frozen=True)
class Target:
    """One API's side of the figures: how its manifest looks, how it is imported, what the emulator holds."""

    label: str  # "" for v1, "v2 " for v2, prefixed to the figure names
    header: str
    add_route: str

    def row(self, index: int) -> str:
        image = f"{BUCKET}/bench/{index:07d}.jpg"
        return f"sku-{index:07d},{image}" if self.label else image

    def write(self, path: Path, rows: int) -> None:
        with path.open("w", encoding="utf-8") as handle:
            handle.write(self.header + "\n")
            for index in range(rows):
                handle.write(self.row(index) + "\n")

    def create(self, emulator: Any, name: str) -> None:
        if self.label:
            emulator.upsert_v2_service(name, items={})
        else:
            emulator.upsert_instance(name, images={})

    def held(self, emulator: Any, name: str) -> int:
        state = emulator.control.state()
        if not self.label:
            return len(state["images"].get(f"{_project()}/{name}", {}))
        service: dict[str, Any] = next((s for s in state.get("v2_services", []) if s["name"] == name), {})
        return len(service.get("items") or {})

    def run_import(self, manifest: Path, name: str, run_id: str) -> dict[str, Any]:
        from airflow_provider_imagesearch.operators import import_images

        if self.label:
            op: Any = import_images.ImageSearchV2ImportDataOperator(
                task_id="bench_v2", service_name=name, manifest=str(manifest), max_concurrency=CONCURRENCY
            )
        else:
            op = import_images.ImageSearchImportImagesOperator(
                task_id="bench", instance_name=name, manifest=str(manifest), max_concurrency=CONCURRENCY
            )
        result: dict[str, Any] = op.execute({"run_id": run_id})
        return result


def _targets() -> list[Target]:
    from airflow_provider_imagesearch.emulator.routes import R_ADD
    from airflow_provider_imagesearch.emulator.routes_v2 import R2_ADD

    return [Target("", "path", R_ADD), Target("v2 ", "item_id,image_url", R2_ADD)]


def _manifest(path: Path, rows: int) -> None:
    Target("", "path", "").write(path, rows)


def _control(url: str, emulator: Any, rows: int) -> float:
    """Seconds for ``rows`` path-only adds from a bare requests session in CONCURRENCY threads."""
    import json as json_
    from concurrent.futures import ThreadPoolExecutor

    import requests

    from airflow_provider_imagesearch.emulator import DEFAULT_READY_TOKEN

    emulator.upsert_instance("bench-control", images={})
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=CONCURRENCY))
    endpoint = f"{url}/v1/{_project()}/bench-control/image"
    headers = {"X-Auth-Token": DEFAULT_READY_TOKEN, "Content-Type": "application/json"}

    def add(index: int) -> None:
        body = json_.dumps({"path": f"{BUCKET}/control/{index:07d}.jpg"})
        answer = session.post(endpoint, data=body, headers=headers, timeout=30)
        if answer.status_code != 200:
            raise RuntimeError(f"control add answered {answer.status_code}: {answer.text[:200]}")

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(add, range(min(rows, 200))))  # warm the pool's connections
        emulator.set_faults(reset=True, latency_seconds=LATENCY)
        started = time.perf_counter()
        list(pool.map(add, range(200, 200 + rows)))
        seconds = time.perf_counter() - started
    emulator.set_faults(reset=True)
    session.close()
    return seconds


def run(url: str, emulator: Any, rows: int, diff_rows: int) -> list[Result]:
    from tests.support.connections import connection_fields, install

    folder = Path(tempfile.mkdtemp(prefix="bench-import-"))
    install("imagesearch_default", connection_fields(url, "aksk"))
    install("imagesearch_archive_db", {"conn_type": "sqlite", "host": str(folder / "ledger.db")})
    ideal = rows * LATENCY / CONCURRENCY
    results: list[Result] = []
    for target in _targets():
        results.extend(_figures(target, url, emulator, folder, rows, ideal))
    if diff_rows:
        results.append(_diff(folder, diff_rows))
    return results


def _figures(target: Target, url: str, emulator: Any, folder: Path, rows: int, ideal: float) -> list[Result]:
    """Clean (v1: beside the control), unchanged rerun, faults: one API's three figures."""
    from airflow_provider_imagesearch.emulator.routes import R_TOKENS

    prefix = f"bench-{target.label.strip() or 'v1'}"
    manifest = folder / f"{prefix}.csv"
    target.write(manifest, rows)
    # Untimed warm-up: imports (pandas, SQLAlchemy), the ledger table, the connection pool.
    warm = folder / f"{prefix}-warm.csv"
    target.write(warm, 200)
    target.create(emulator, f"{prefix}-warm")
    target.run_import(warm, f"{prefix}-warm", "warm")
    control = None if target.label else _control(url, emulator, rows) / ideal
    results = []
    for kind, faults, goal in (("clean", {}, 1.3), ("5% 429 + 2% 503", FAULTS, 1.8)):
        name = f"{prefix}-{'clean' if not faults else 'faults'}"
        target.create(emulator, name)
        emulator.set_faults(reset=True, latency_seconds=LATENCY, **faults)
        emulator.reset_stats()
        started = time.perf_counter()
        xcom = target.run_import(manifest, name, kind)
        wall = time.perf_counter() - started
        emulator.set_faults(reset=True)
        adds = sum(
            1 for r in emulator.requests_log() if r["route"] == target.add_route and r["status"] == 200
        )
        held = target.held(emulator, name)
        ratio = wall / ideal
        measured = (
            f"{held:,}/{rows:,} held, {ratio:.2f}x ideal ({wall:.2f} s vs {ideal:.2f} s), {adds:,} adds "
            f"processed, {xcom['reconciled']} reconciled"
        )
        if control is not None and not faults:
            measured += (
                f"; control (bare requests, {CONCURRENCY} threads) {control:.2f}x ideal, "
                f"import/control {ratio / control:.2f}"
            )
        results.append(
            Result(
                figure=f"{target.label}bulk import, {kind}",
                goal=f"all rows, wall <= {goal:g}x ideal, adds <= rows + reconciled",
                measured=measured,
                status=verdict(held == rows and adds <= rows + xcom["reconciled"] and ratio <= goal),
                value=ratio,
                details={"xcom": xcom, "wall_s": wall, "ideal_s": ideal, "control_ratio": control},
            )
        )
        if not faults:
            emulator.reset_stats()
            started = time.perf_counter()
            rerun = target.run_import(manifest, name, "rerun")
            rerun_s = time.perf_counter() - started
            api = [r for r in emulator.requests_log() if r["route"] != R_TOKENS]
            results.append(
                Result(
                    figure=f"{target.label}bulk import, unchanged rerun",
                    goal="0 API requests, < 2 s",
                    measured=f"{len(api)} requests, {rerun_s:.2f} s for {rows:,} rows",
                    status=verdict(not api and rerun_s < 2.0 and rerun["unchanged"] == rows),
                    value=rerun_s,
                    details={"xcom": rerun},
                )
            )
    return results


def _project() -> str:
    from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID

    return DEFAULT_PROJECT_ID


DIFF_CHILD = r"""
import json, resource, sys, time
rows, manifest, db = int(sys.argv[1]), sys.argv[2], sys.argv[3]
from airflow_provider_imagesearch.imports.ledger import Ledger
from airflow_provider_imagesearch.imports.manifest import read_chunks
from airflow_provider_imagesearch.imports.plan import Plan
import sqlalchemy as sa
engine = sa.create_engine(f"sqlite:///{db}")
ledger = Ledger(engine, "imagesearch_import_ledger", "bench-diff", "diff")
with Plan() as plan:  # load pandas, SQLAlchemy's dialect, the plan's tables: not part of the growth
    plan.load_manifest(read_chunks(sys.argv[4]), region="cn-north-4")
    plan.load_ledger(Ledger(engine, "imagesearch_import_ledger", "bench-none", "warm"))
    sum(1 for _ in plan.work(prune=True))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
with Plan() as plan:
    plan.load_manifest(read_chunks(manifest), region="cn-north-4")
    plan.load_ledger(ledger)
    todo = sum(1 for _ in plan.work(prune=True))
    summary = plan.summary
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"before_kb": before, "after_kb": after, "seconds": time.perf_counter() - started,
                  "unchanged": summary.unchanged, "todo": todo}))
"""


def _diff(folder: Path, rows: int) -> Result:
    """A full ledger written directly (what a finished import leaves), then the diff in a child."""
    import sqlalchemy as sa

    from airflow_provider_imagesearch.imports.ledger import Ledger, LedgerEntry
    from airflow_provider_imagesearch.imports.manifest import check_row, path_key

    manifest = folder / "diff.csv"
    _manifest(manifest, rows)
    warm = folder / "diff-warm.csv"
    _manifest(warm, 100)
    db = folder / "diff-ledger.db"
    engine = sa.create_engine(f"sqlite:///{db}")
    ledger = Ledger(engine, "imagesearch_import_ledger", "bench-diff", "seed")
    ledger.create_if_missing()
    batch: list[LedgerEntry] = []
    for index in range(rows):
        path = f"{BUCKET}/bench/{index:07d}.jpg"
        fp = check_row({"path": path}, index + 1, region="cn-north-4").fingerprint
        batch.append(LedgerEntry(path_key(path), path, fp, "added", None, None, index + 1, 1))
        if len(batch) == 50_000:
            ledger.record(batch)
            batch = []
    ledger.record(batch)
    engine.dispose()
    output = subprocess.run(
        [sys.executable, "-c", DIFF_CHILD, str(rows), str(manifest), str(db), str(warm)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    data = json.loads(output.stdout.strip().splitlines()[-1])
    growth_mb = (data["after_kb"] - data["before_kb"]) / 1024
    return Result(
        figure="bulk import, manifest diff memory",
        goal="peak RSS growth <= 300 MB",
        measured=(
            f"{rows:,} rows vs a full ledger: +{growth_mb:.0f} MB peak RSS (peak {data['after_kb'] / 1024:.0f} MB,"
            f" {data['before_kb'] / 1024:.0f} MB after a 100-row warm-up diff), {data['seconds']:.1f} s"
        ),
        status=verdict(growth_mb <= 300 and data["unchanged"] == rows and data["todo"] == 0),
        value=growth_mb,
        details=data,
    )


def main() -> None:
    from airflow_provider_imagesearch.emulator import EmulatorProcess

    rows = int(os.environ.get("BENCH_IMPORT_ROWS", "10000"))
    diff_rows = int(os.environ.get("BENCH_IMPORT_DIFF_ROWS", "1000000"))
    with EmulatorProcess(quiet=True) as emulator:
        for result in run(emulator.url, emulator, rows, diff_rows):
            print(json.dumps(result.to_dict(), default=str))


if __name__ == "__main__":
    main()
