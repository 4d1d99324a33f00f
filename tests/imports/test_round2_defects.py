"""Issue 19's nine reproductions: overlapping and killed runs, real catalogue data, bounded honest logs.

Each test failed on the code before the round-2 import (8752aac), against the emulator over loopback,
with the ledger on SQLite and on PostgreSQL where the ledger matters.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from airflow_provider_imagesearch.emulator.routes import R_ADD, R_DELETE_IMAGE
from tests.imports.conftest import INSTANCE, LEDGER_CONN, ledger_rows, library, obs, v2_items
from tests.support.connections import connection_fields, env_name, set_connection
from tests.support.waiting import wait_until

RunImport = Callable[..., dict[str, Any]]
REPO = Path(__file__).resolve().parents[2]
CHILD = REPO / "tests" / "reliability" / "_import_child.py"
PNG_A = b"\x89PNG\r\n\x1a\n" + b"A" * 64
PNG_B = b"\x89PNG\r\n\x1a\n" + b"B" * 64
SUCCESS = ("added", "updated", "retried")


def _images(emulator: Emulator, instance: str = INSTANCE) -> dict[str, dict[str, Any]]:
    return dict(emulator.control.state().get("images", {}).get(f"{DEFAULT_PROJECT_ID}/{instance}", {}))


def _processed_adds(emulator: Emulator) -> int:
    return sum(1 for r in emulator.requests_log() if r["route"] == R_ADD and r["status"] == 200)


def _operator(conn_id: str, manifest: Any, task_id: str, **kwargs: Any) -> Any:
    from airflow_provider_imagesearch.operators.import_images import ImageSearchImportImagesOperator

    return ImageSearchImportImagesOperator(
        task_id=task_id,
        instance_name=kwargs.pop("instance_name", INSTANCE),
        manifest=manifest,
        imagesearch_conn_id=conn_id,
        **kwargs,
    )


def _in_thread(target: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = target()
        except BaseException as error:
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def _held_paths(engine: Any) -> set[str]:
    """Paths the ledger says the library may hold (``held_fingerprint`` set)."""
    return {path for path, row in ledger_rows(engine).items() if row["held_fingerprint"] is not None}


# --- 1. two runs of the same import at once ----------------------------------------------------------


def test_two_runs_of_the_same_import_at_once_add_each_image_once(
    imagesearch_conn: Callable[..., str], catalog: str, emulator: Emulator, ledger_conn: dict[str, Any]
) -> None:
    """Before: on PostgreSQL one run crashed (UniqueViolation); on SQLite every image was added twice."""
    conn_id = imagesearch_conn("aksk")
    manifest = [{"path": obs(f"twice/{i:04d}.jpg"), "tags": {"color": "red"}} for i in range(300)]
    emulator.set_faults(latency_seconds=0.01)
    runs = [
        _in_thread(lambda i=i: _operator(conn_id, manifest, f"t{i}").execute({"run_id": f"run-{i}"}))
        for i in range(2)
    ]
    for thread, _ in runs:
        thread.join(timeout=240)
    errors = [outcome.get("error") for _, outcome in runs if "error" in outcome]
    assert not errors, f"a run crashed: {errors!r}"[:2000]
    assert _processed_adds(emulator) == 300, "an image was added by both runs"
    assert set(library(emulator)) == {row["path"] for row in manifest}
    rows = ledger_rows(ledger_conn["engine"])
    assert set(rows) == {row["path"] for row in manifest}
    assert {row["outcome"] for row in rows.values()} == {"added"}
    results = sorted((outcome["result"]["added"], outcome["result"]["unchanged"]) for _, outcome in runs)
    assert results == [(0, 300), (300, 0)]  # the second waited for the first, then had nothing to do


# --- 2. a prune and a re-add at once -----------------------------------------------------------------


def test_forget_removes_only_the_rows_this_run_marked_for_pruning(ledger_conn: dict[str, Any]) -> None:
    """Before: a pruning run's batched forget deleted another run's fresh ``added`` row of the path."""
    from airflow_provider_imagesearch.archive import sql_engine
    from airflow_provider_imagesearch.imports.ledger import Ledger, LedgerEntry
    from airflow_provider_imagesearch.imports.manifest import path_key

    engine = sql_engine(LEDGER_CONN)
    path = obs("x.jpg")
    key = path_key(path)
    pruning = Ledger(engine, "imagesearch_import_ledger", INSTANCE, "pruning-run")
    adding = Ledger(engine, "imagesearch_import_ledger", INSTANCE, "adding-run")
    pruning.create_if_missing()
    pruning.record([LedgerEntry(key, path, "f" * 32, "added", None, None, 1, 1)])
    pruning.mark_pruning([key])
    adding.record([LedgerEntry(key, path, "f" * 32, "added", None, None, 1, 1)])  # re-added meanwhile
    pruning.forget([key])
    rows = ledger_rows(ledger_conn["engine"])
    engine.dispose()
    assert path in rows, "the pruning run forgot a row another run had just written"
    assert (rows[path]["run_id"], rows[path]["outcome"]) == ("adding-run", "added")


def test_a_prune_and_a_re_add_at_once_leave_no_image_outside_the_ledger(
    imagesearch_conn: Callable[..., str],
    catalog: str,
    emulator: Emulator,
    ledger_conn: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Run A prunes X and Y (Y's delete is slow); run B, started once X is deleted, lists both again.

    Before: B re-added X and recorded it, then A's batched forget deleted B's row: X stayed in the
    library and no later prune could ever remove it.
    """
    from airflow_provider_imagesearch.imports import engine as engine_module

    monkeypatch.setattr(engine_module, "FLUSH_SECONDS", 60.0)  # A's forget waits for A's end
    conn_id = imagesearch_conn("aksk")
    kept, x, y = obs("kept.jpg"), obs("x.jpg"), obs("y.jpg")
    everything = [{"path": p, "tags": {"color": "red"}} for p in (kept, x, y)]
    _operator(conn_id, everything, "seed").execute({"run_id": "seed"})
    emulator.reset_stats()
    emulator.set_faults(sequence=["ok", "slow"], slow_seconds=4.0)
    prune, pruned = _in_thread(
        lambda: _operator(conn_id, everything[:1], "prune", prune=True, max_concurrency=1).execute(
            {"run_id": "prune"}
        )
    )
    wait_until(
        emulator.requests_log,
        lambda log: any(r["route"] == R_DELETE_IMAGE and r["status"] == 200 for r in log),
        timeout=60,
    )
    readd, readded = _in_thread(lambda: _operator(conn_id, everything, "readd").execute({"run_id": "readd"}))
    prune.join(timeout=120)
    readd.join(timeout=120)
    assert "error" not in pruned, pruned
    assert "error" not in readded, readded
    held = set(library(emulator))
    assert held <= _held_paths(ledger_conn["engine"]), (
        f"{sorted(held - _held_paths(ledger_conn['engine']))} in the library and not in the ledger"
    )


# --- 3. an add that reached the service, its run killed before the ledger write -----------------------


def _killed_import(
    emulator: Emulator, manifest: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run the import in a child that SIGKILLs itself when it first records an outcome."""
    monkeypatch.setenv(env_name("imagesearch_default"), json.dumps(connection_fields(emulator.url, "aksk")))
    env = {
        **os.environ,
        "AIRFLOW_HOME": tempfile.mkdtemp(prefix="imagesearch-round2-"),
        "PYTHONPATH": str(REPO),
        "IMPORT_MANIFEST": str(manifest),
        "IMPORT_INSTANCE": INSTANCE,
        "IMPORT_RUN_ID": "killed",
        "IMPORT_KILL_BEFORE_OUTCOME": "1",
    }
    with (tmp_path / "child.err").open("wb") as err:
        code = subprocess.run([sys.executable, str(CHILD)], env=env, stderr=err, timeout=120).returncode
    assert code == -signal.SIGKILL, (tmp_path / "child.err").read_text(errors="replace")[-3000:]


def test_an_add_whose_run_was_killed_before_its_ledger_write_is_pruned_later(
    run_import: RunImport,
    emulator: Emulator,
    ledger_conn: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = obs("orphan.jpg")
    manifest = tmp_path / "one.csv"
    manifest.write_text(f"path,tag.color\n{path},red\n", "utf-8")
    _killed_import(emulator, manifest, tmp_path, monkeypatch)
    assert set(library(emulator)) == {path}  # the add took effect
    run_import([{"path": obs("other.jpg")}], prune=True)
    assert set(library(emulator)) == {obs("other.jpg")}, "prune never removes the killed run's image"


def test_a_changed_file_after_a_killed_add_is_overwritten_not_reconciled(
    run_import: RunImport,
    emulator: Emulator,
    ledger_conn: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    image = tmp_path / "img.png"
    image.write_bytes(PNG_A)
    manifest = tmp_path / "file.csv"
    manifest.write_text(f"path,file\nsku-1,{image}\n", "utf-8")
    _killed_import(emulator, manifest, tmp_path, monkeypatch)
    old = _images(emulator)["sku-1"]["digest"]
    image.write_bytes(PNG_B)  # the catalogue's picture changes
    emulator.set_faults(sequence=["503_json"])  # the next add fails once (before the service)
    run_import([{"path": "sku-1", "file": str(image)}])
    assert _images(emulator)["sku-1"]["digest"] != old, "the library keeps the OLD image"
    emulator.reset_stats()
    assert run_import([{"path": "sku-1", "file": str(image)}])["unchanged"] == 1


def test_a_changed_file_after_the_ledger_was_dropped_is_overwritten_not_reconciled(
    run_import: RunImport, emulator: Emulator, ledger_conn: dict[str, Any], tmp_path: Path
) -> None:
    import sqlalchemy as sa

    image = tmp_path / "img.png"
    image.write_bytes(PNG_A)
    run_import([{"path": "sku-1", "file": str(image)}])
    old = _images(emulator)["sku-1"]["digest"]
    with ledger_conn["engine"].begin() as connection:
        connection.execute(sa.text("DROP TABLE imagesearch_import_ledger"))
    image.write_bytes(PNG_B)
    emulator.set_faults(sequence=["503_json"])
    run_import([{"path": "sku-1", "file": str(image)}])
    assert _images(emulator)["sku-1"]["digest"] != old, "the library keeps the OLD image"


def test_v2_an_item_the_ledger_does_not_know_is_overwritten_after_an_ambiguous_add(
    run_v2_import: RunImport, emulator: Emulator, ledger_conn: dict[str, Any]
) -> None:
    """The service holds the id with another image (a dropped ledger): fields alike, image not: overwrite."""
    import sqlalchemy as sa

    row = {"item_id": "sku-1", "image_url": "https://cdn.example.com/old.jpg", "desc": "shoe"}
    run_v2_import([row])
    old = v2_items(emulator)["sku-1"]["digest"]
    with ledger_conn["engine"].begin() as connection:
        connection.execute(sa.text("DROP TABLE imagesearch_import_ledger"))
    emulator.set_faults(sequence=["503_after"])  # the add is processed, its answer lost
    run_v2_import([{**row, "image_url": "https://cdn.example.com/new.jpg"}])
    assert v2_items(emulator)["sku-1"]["digest"] != old


# --- 4. different targets sharing a ledger -----------------------------------------------------------


def test_a_long_ledger_read_of_one_instance_does_not_lock_out_another(
    run_import: RunImport, emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: ``Ledger.stream`` held one read transaction across the whole plan load (SQLite: the other
    import's writes failed with 'database is locked' after the busy timeout)."""
    import sqlalchemy as sa

    from airflow_provider_imagesearch.imports.ledger import Ledger, LedgerEntry
    from airflow_provider_imagesearch.imports.manifest import path_key

    set_connection(monkeypatch, LEDGER_CONN, conn_type="sqlite", host=str(tmp_path / "ledger.db"))
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    big = Ledger(engine, "imagesearch_import_ledger", "big", "seed")
    big.create_if_missing()
    paths = [obs(f"big/{i}.jpg") for i in range(3000)]
    big.record([LedgerEntry(path_key(p), p, "f" * 32, "added", None, None, 1, 1) for p in paths])
    chunks = big.stream(chunk_rows=500)
    next(chunks)  # the big instance's import is half-way through loading its ledger
    try:
        result = run_import([{"path": obs("small.jpg")}])
    finally:
        rest = sum(len(chunk) for chunk in chunks)
        engine.dispose()
    assert result["added"] == 1
    assert rest == 2500


# --- 5, 6. real catalogue data: decimals, Arrow MAP columns ----------------------------------------------


def test_v2_decimal_numbers_are_numbers(
    run_v2_import: RunImport, emulator: Emulator, ledger_conn: dict[str, Any], tmp_path: Path
) -> None:
    import numpy
    import pyarrow as pa
    import pyarrow.parquet as pq

    if ledger_conn["name"] != "sqlite":
        pytest.skip("the row check does not depend on the ledger's database")
    manifest = [
        {"item_id": "sql-1", "image_url": "https://cdn.example.com/1.jpg", "num.price": Decimal("19.90")},
        {
            "item_id": "sql-2",
            "image_url": "https://cdn.example.com/2.jpg",
            "custom_num_tags": {"price": Decimal("5")},
        },
        {"item_id": "np-1", "image_url": "https://cdn.example.com/4.jpg", "num.price": numpy.int64(3)},
    ]
    assert run_v2_import(manifest)["added"] == 3
    table = pa.table(
        {
            "item_id": ["pq-1"],
            "image_url": ["https://cdn.example.com/3.jpg"],
            "num.price": pa.array([Decimal("7.25")], pa.decimal128(10, 2)),
        }
    )
    pq.write_table(table, tmp_path / "decimal.parquet")
    result = run_v2_import(str(tmp_path / "decimal.parquet"))
    assert (result["added"], result["invalid"]) == (1, 0)
    items = v2_items(emulator)
    assert items["sql-1"]["custom_num_tags"] == {"price": 19.9}
    assert items["sql-2"]["custom_num_tags"] == {"price": 5.0}
    assert items["np-1"]["custom_num_tags"] == {"price": 3.0}
    assert items["pq-1"]["custom_num_tags"] == {"price": 7.25}


def test_parquet_map_columns_are_tags(
    run_import: RunImport,
    run_v2_import: RunImport,
    emulator: Emulator,
    ledger_conn: dict[str, Any],
    tmp_path: Path,
) -> None:
    """Spark writes ``map<string,string>``; pyarrow reads it as a list of (key, value) pairs."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if ledger_conn["name"] != "sqlite":
        pytest.skip("the row check does not depend on the ledger's database")
    v1 = pa.table(
        {
            "path": [obs("map/1.jpg"), obs("map/2.jpg")],
            "tags": pa.array([[("color", "red"), ("size", "L")], []], pa.map_(pa.string(), pa.string())),
        }
    )
    pq.write_table(v1, tmp_path / "v1.parquet")
    assert run_import(str(tmp_path / "v1.parquet"))["added"] == 2
    assert library(emulator) == {obs("map/1.jpg"): {"color": "red", "size": "L"}, obs("map/2.jpg"): {}}
    v2 = pa.table(
        {
            "item_id": ["m-1"],
            "image_url": ["https://cdn.example.com/m.jpg"],
            "custom_tags": pa.array([[("color", "blue")]], pa.map_(pa.string(), pa.string())),
            "custom_num_tags": pa.array([[("price", 9.5)]], pa.map_(pa.string(), pa.float64())),
        }
    )
    pq.write_table(v2, tmp_path / "v2.parquet")
    result = run_v2_import(str(tmp_path / "v2.parquet"))
    assert (result["added"], result["invalid"]) == (1, 0)
    item = v2_items(emulator)["m-1"]
    assert (item["custom_tags"], item["custom_num_tags"]) == ({"color": "blue"}, {"price": 9.5})


# --- 7, 8. bounded, honest logs ----------------------------------------------------------------------


def _log_lines(capfd: pytest.CaptureFixture[str], text: str) -> list[str]:
    """The task log's lines holding ``text`` (the operator logs through Airflow's logging to stdout)."""
    return [line for line in capfd.readouterr().out.splitlines() if text in line]


def test_a_path_repeated_50000_times_makes_a_bounded_warning(
    run_import: RunImport, ledger_conn: dict[str, Any], capfd: pytest.CaptureFixture[str]
) -> None:
    if ledger_conn["name"] != "sqlite":
        pytest.skip("the log does not depend on the ledger's database")
    path = obs("same.jpg")
    result = run_import([{"path": path}] * 50_000)
    assert (result["duplicates"], result["added"]) == (49_999, 1)
    lines = _log_lines(capfd, "repeat an earlier path")
    assert lines
    assert max(len(line) for line in lines) < 1000, f"a warning line of {max(len(x) for x in lines)} chars"
    assert "1, 2, 3, 4, 5, 6, 7, 8, 9, 10" in lines[0]
    assert "49,990 more" in lines[0]


class _SlowList(list):  # type: ignore[type-arg]
    """A manifest whose reading takes at least ``seconds`` (a slow source, a huge file)."""

    seconds = 1.0

    def __iter__(self) -> Iterator[Any]:
        for index, item in enumerate(super().__iter__()):
            if index % 5000 == 0:
                time.sleep(self.seconds / max(1, len(self) // 5000))
            yield item


def test_seconds_covers_reading_and_diffing_and_progress_is_logged_while_reading(
    run_import: RunImport,
    emulator: Emulator,
    ledger_conn: dict[str, Any],
    capfd: pytest.CaptureFixture[str],
) -> None:
    if ledger_conn["name"] != "sqlite":
        pytest.skip("the log does not depend on the ledger's database")
    manifest = _SlowList({"path": obs(f"slow/{i}.jpg")} for i in range(20_000))
    run_import(list(manifest))
    capfd.readouterr()
    emulator.reset_stats()
    started = time.monotonic()
    result = run_import(manifest)
    wall = time.monotonic() - started
    assert result["unchanged"] == 20_000
    assert result["seconds"] >= _SlowList.seconds, f"seconds={result['seconds']} for a {wall:.1f} s task"
    assert result["seconds"] <= wall
    phases = result["phases"]
    assert set(phases) >= {"read", "diff", "send"}
    assert phases["read"] >= _SlowList.seconds
    reading = _log_lines(capfd, "Reading manifest:")
    assert len(reading) >= 3, reading  # every 5% of a manifest whose size is known (25% chunks here)


# --- 9. one odd value fails its row, not the import ------------------------------------------------------


def test_a_surrogate_in_a_key_or_a_huge_number_is_an_invalid_row(
    run_import: RunImport,
    run_v2_import: RunImport,
    emulator: Emulator,
    ledger_conn: dict[str, Any],
    tmp_path: Path,
) -> None:
    image = tmp_path / "img.png"
    image.write_bytes(PNG_A)
    manifest = [
        {"path": obs("fine.jpg")},
        {"path": "sku-\ud800", "file": str(image)},
        {"path": obs("tag.jpg"), "tags": {"col\udfffor": "red"}},
    ]
    result = run_import(manifest, max_failed=2)
    assert (result["added"], result["invalid"]) == (1, 2)
    v2 = [
        {"item_id": "ok", "image_url": "https://cdn.example.com/ok.jpg"},
        {"item_id": "big", "image_url": "https://cdn.example.com/b.jpg", "custom_num_tags": {"p": 10**400}},
        {"item_id": "nan", "image_url": "https://cdn.example.com/n.jpg", "num.p": Decimal("NaN")},
        {"item_id": "id-\udc80", "image_url": "https://cdn.example.com/s.jpg"},
    ]
    result = run_v2_import(v2, max_failed=3)
    assert (result["added"], result["invalid"]) == (1, 3)
    assert set(v2_items(emulator)) == {"ok"}


# --- build item 3: prune refused before any delete ------------------------------------------------------


def test_prune_is_refused_before_any_delete_when_invalid_rows_exceed_max_failed(
    run_import: RunImport, emulator: Emulator, ledger_conn: dict[str, Any]
) -> None:
    from airflow_provider_imagesearch.version_compat import AirflowFailException

    paths = [obs(f"keep/{i}.jpg") for i in range(4)]
    run_import([{"path": p} for p in paths])
    manifest = [
        {"path": paths[0]},
        {"path": paths[1], "tags": {"color": 5}},
        {"path": paths[2], "tags": "not json"},
    ]
    emulator.reset_stats()
    with pytest.raises(AirflowFailException) as failure:
        run_import(manifest, prune=True, max_failed=1)
    assert "prune" in str(failure.value)
    assert "2 rows" in str(failure.value)
    assert set(library(emulator)) == set(paths), "prune deleted images before the task failed"
    assert [r for r in emulator.requests_log() if r["route"] == R_DELETE_IMAGE] == []
