"""Figures "bulk import": throughput against ideal, under faults, the unchanged rerun, the diff's memory.

The emulator runs in its own process (no shared GIL) with ``latency_seconds`` modelling the network;
the import runs here through the operator (``execute``), its ledger on SQLite in a temporary folder.
Ideal wall time = rows x latency / max_concurrency.

* clean: N path-only rows, 20 ms latency, ``max_concurrency=16``: v1 within 1.15x of the control
  measured in the same run (the same adds from a bare ``requests`` session in 16 threads: no retry
  policy, signing, write-ahead ledger or plan), so the machine's share of the gap to ideal is not
  counted against the import; v2 (no control of its own) within 1.3x of ideal.
* faults: the same with 5% 429 (``Retry-After`` 0.2 s) and 2% 503: every row imported, wall <= 1.8x
  ideal, the emulator's log shows processed adds <= rows + resent (adds sent again after an ambiguous
  answer).
* rerun: the clean manifest again: 0 API requests, under 2 s (the write-ahead intents cost no request).
* paced: 20,000 rows at ``max_rate=200``: wall within 1.1x of 100 s, and no one-second window of the
  emulator's request log (API routes, any answer) holds more than 200 requests.
* shards: 20,000 rows by one run, then by four shards at once (four processes, as four mapped tasks on
  workers would be; each ``max_concurrency`` a quarter of the run's): the shards together reach at least
  1/1.2 of the single run's throughput, and the library equals the manifest.
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


def run(
    url: str, emulator: Any, rows: int, diff_rows: int, *, paced_rows: int = 0, shard_rows: int = 0
) -> list[Result]:
    from tests.support.connections import connection_fields, install

    folder = Path(tempfile.mkdtemp(prefix="bench-import-"))
    install("imagesearch_default", connection_fields(url, "aksk"))
    install("imagesearch_archive_db", {"conn_type": "sqlite", "host": str(folder / "ledger.db")})
    ideal = rows * LATENCY / CONCURRENCY
    results: list[Result] = []
    for target in _targets():
        results.extend(_figures(target, url, emulator, folder, rows, ideal))
    if paced_rows:
        results.append(_paced(emulator, folder, paced_rows))
    if shard_rows:
        results.append(_shards(emulator, folder, shard_rows))
    if diff_rows:
        results.append(_diff(folder, diff_rows))
    return results


#: Requests per second of the paced figure, and its goal: within 1.1x of rows / rate.
PACED_RATE = 200
SHARDS = 4

SHARD_CHILD = r"""
import json, sys, time
from airflow_provider_imagesearch.operators.import_images import ImageSearchImportImagesOperator
# Warm: what any worker has loaded after its first task (pandas, SQLAlchemy, the engine, the hook).
import pandas, sqlalchemy, requests
from airflow_provider_imagesearch.imports import engine, plan, ledger, lock
from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchHook
from airflow_provider_imagesearch.imports.manifest import read_chunks
manifest, name, index, count, concurrency = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
next(read_chunks(manifest, chunk_rows=10))  # pandas' CSV reader loaded
op = ImageSearchImportImagesOperator(
    task_id="bench_shard", instance_name=name, manifest=manifest, max_concurrency=concurrency,
    shard=(index, count) if count > 1 else None,
)
started = time.time()
result = op.execute({"run_id": f"shard-{index}"})
print(json.dumps({"started": started, "ended": time.time(), "xcom": result}))
"""


def _paced(emulator: Any, folder: Path, rows: int) -> Result:
    """``rows`` at ``max_rate=PACED_RATE``: wall against rows / rate, and the busiest one-second window."""
    from airflow_provider_imagesearch.emulator.routes import R_TOKENS

    manifest = folder / "paced.csv"
    _manifest(manifest, rows)
    Target("", "path", "").create(emulator, "bench-paced")
    emulator.set_faults(reset=True, latency_seconds=LATENCY)
    emulator.reset_stats()
    from airflow_provider_imagesearch.imports import pacing
    from airflow_provider_imagesearch.operators import import_images

    grants: list[float] = []
    original = pacing.RequestRate.acquire

    def acquire(self: pacing.RequestRate) -> None:  # the client's own count, beside the emulator's
        original(self)
        grants.append(time.monotonic())

    pacing.RequestRate.acquire = acquire  # type: ignore[method-assign]
    op = import_images.ImageSearchImportImagesOperator(
        task_id="bench_paced",
        instance_name="bench-paced",
        manifest=str(manifest),
        max_concurrency=CONCURRENCY,
        max_rate=PACED_RATE,
    )
    started = time.perf_counter()
    try:
        xcom = op.execute({"run_id": "paced"})
    finally:
        pacing.RequestRate.acquire = original  # type: ignore[method-assign]
    wall = time.perf_counter() - started
    emulator.set_faults(reset=True)
    sent_busiest = _busiest(sorted(grants))
    stamps = sorted(r["ts"] for r in emulator.requests_log() if r["route"] != R_TOKENS)
    busiest = _busiest(stamps)
    goal = rows / PACED_RATE
    ratio = wall / goal
    return Result(
        figure=f"bulk import, max_rate={PACED_RATE}",
        goal=f"{rows:,} rows within 1.1x of {goal:g} s; no 1-s window over {PACED_RATE} requests",
        measured=(
            f"{wall:.1f} s ({ratio:.3f}x), busiest 1-s window {busiest} requests (emulator log, stamped "
            f"when answered; {len(stamps):,} requests), {sent_busiest} as sent (the client's bucket), "
            f"{xcom['added']:,} added"
        ),
        status=verdict(ratio <= 1.1 and busiest <= PACED_RATE and xcom["added"] == rows),
        value=ratio,
        details={"xcom": xcom, "wall_s": wall, "busiest_window": busiest},
    )


def _busiest(stamps: list[float]) -> int:
    """The most stamps in any window [t, t + 1 s) (sorted stamps; windows starting at a stamp)."""
    busiest, start = 0, 0
    for end, stamp in enumerate(stamps):
        while stamps[start] <= stamp - 1.0:
            start += 1
        busiest = max(busiest, end - start + 1)
    return busiest


def _shards(emulator: Any, folder: Path, rows: int) -> Result:
    """One run of ``rows``, then SHARDS shard processes at once into another instance: throughputs."""
    manifest = folder / "shards.csv"
    _manifest(manifest, rows)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    emulator.set_faults(reset=True, latency_seconds=LATENCY)

    def launch(name: str, index: int, count: int) -> tuple[subprocess.Popen[bytes], Path]:
        concurrency = max(1, CONCURRENCY // count)
        # Output to a file, not a pipe: a pipe nobody reads yet would stall a shard once it is full.
        out = folder / f"{name}-{index}.out"
        with out.open("wb") as handle:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    SHARD_CHILD,
                    str(manifest),
                    name,
                    str(index),
                    str(count),
                    str(concurrency),
                ],
                stdout=handle,
                stderr=subprocess.STDOUT,
                env=env,
            )
        return process, out

    def finish(processes: list[tuple[subprocess.Popen[bytes], Path]]) -> list[dict[str, Any]]:
        outputs = []
        for process, out in processes:
            if process.wait(timeout=1800) != 0:
                raise RuntimeError(f"an import process failed ({process.returncode}): see {out}")
            last = [line for line in out.read_text("utf-8", "replace").splitlines() if line.startswith("{")]
            outputs.append(json.loads(last[-1]))
        return outputs

    Target("", "path", "").create(emulator, "bench-single")
    single = finish([launch("bench-single", 0, 1)])[0]
    single_s = single["ended"] - single["started"]
    Target("", "path", "").create(emulator, "bench-sharded")
    sharded = finish([launch("bench-sharded", index, SHARDS) for index in range(SHARDS)])
    emulator.set_faults(reset=True)
    sharded_s = max(o["ended"] for o in sharded) - min(o["started"] for o in sharded)
    held = Target("", "path", "").held(emulator, "bench-sharded")
    added = sum(o["xcom"]["added"] for o in sharded)
    ratio = sharded_s / single_s  # throughput of one run over the shards': <= 1.2 is the goal
    return Result(
        figure=f"bulk import, {SHARDS} shards at once",
        goal=f"{rows:,} rows: the shards together within 1.2x of one run's throughput; library = manifest",
        measured=(
            f"{SHARDS} shards {sharded_s:.1f} s ({rows / sharded_s:.0f} rows/s) vs one run {single_s:.1f} s "
            f"({rows / single_s:.0f} rows/s): {ratio:.2f}x; {held:,}/{rows:,} held, {added:,} added"
        ),
        status=verdict(ratio <= 1.2 and held == rows and added == rows),
        value=ratio,
        details={"single": single, "shards": sharded},
    )


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
        against_control = control is not None and not faults
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
            f"processed, {xcom['resent']} resent"
        )
        if control is not None and not faults:
            measured += (
                f"; control (bare requests, {CONCURRENCY} threads) {control:.2f}x ideal, "
                f"import/control {ratio / control:.2f}"
            )
        speed_ok = ratio / control <= 1.15 if against_control and control else ratio <= goal
        results.append(
            Result(
                figure=f"{target.label}bulk import, {kind}",
                goal=(
                    "all rows, wall <= 1.15x the control, adds <= rows + resent"
                    if against_control
                    else f"all rows, wall <= {goal:g}x ideal, adds <= rows + resent"
                ),
                measured=measured,
                status=verdict(held == rows and adds <= rows + xcom["resent"] and speed_ok),
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
