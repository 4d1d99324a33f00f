"""Reproductions of defects found in the review of issues #10 and #13 (bulk import, batch search, v2).

Each test FAILS on the reviewed code (e677760) against the emulator over loopback.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from tests.imports.conftest import ledger_rows, library, obs, v2_items

RunImport = Callable[..., dict[str, Any]]
PNG_A = b"\x89PNG\r\n\x1a\n" + b"A" * 64
PNG_B = b"\x89PNG\r\n\x1a\n" + b"B" * 64


def _images(emulator: Emulator, instance: str = "catalog") -> dict[str, dict[str, Any]]:
    state = emulator.control.state()
    return dict(state.get("images", {}).get(f"{DEFAULT_PROJECT_ID}/{instance}", {}))


def test_prune_deletes_an_added_image_whose_later_row_became_invalid(
    run_import: RunImport, emulator: Emulator, ledger_conn: dict[str, Any]
) -> None:
    """An image the import added, whose row later turns invalid, is forgotten by prune, not deleted."""
    keep, gone = obs("keep.jpg"), obs("gone.jpg")
    run_import([{"path": keep}, {"path": gone, "tags": {"color": "red"}}])
    assert set(library(emulator)) == {keep, gone}
    # The row turns bad (tags not a flat map of strings): recorded invalid, the image stays in the library.
    run_import([{"path": keep}, {"path": gone, "tags": {"color": 5}}], max_failed=1)
    # The row leaves the manifest: prune must delete the image the import put there.
    result = run_import([{"path": keep}], prune=True)
    assert set(library(emulator)) == {keep}, (
        f"prune left an image the import added (result {result}, ledger {list(ledger_rows(ledger_conn['engine']))})"
    )


def test_a_changed_file_is_not_lost_when_a_failed_update_is_retried_as_an_ambiguous_add(
    run_import: RunImport, emulator: Emulator, ledger_conn: dict[str, Any], tmp_path: Path
) -> None:
    """Run 2's replacement of the image fails; run 3's add meets a 503 and is 'reconciled' with the OLD image."""
    image = tmp_path / "img.png"
    image.write_bytes(PNG_A)
    row = {"path": "sku-1", "file": str(image), "tags": {"color": "red"}}
    run_import([row])
    old_digest = _images(emulator)["sku-1"].get("digest")
    image.write_bytes(PNG_B)  # the catalogue's picture changes
    emulator.set_faults(sequence=["503_json"] * 4)  # every send of run 2 is refused before the service
    run_import([row], max_failed=1)
    emulator.set_faults(sequence=["503_json"])  # run 3: one transient 503, then a healthy service
    result = run_import([row])
    assert result["failed"] == 0
    assert _images(emulator)["sku-1"].get("digest") != old_digest, (
        f"the library still holds the old picture while the ledger says {ledger_rows(ledger_conn['engine'])['sku-1']['outcome']!r} "
        f"for the new one (result {result})"
    )


def test_removed_tags_are_not_lost_when_a_failed_update_is_retried_as_an_ambiguous_add(
    run_import: RunImport, emulator: Emulator, ledger_conn: dict[str, Any]
) -> None:
    path = obs("t.jpg")
    run_import([{"path": path, "tags": {"color": "red"}}])
    emulator.set_faults(sequence=["503_json"] * 4)
    run_import([{"path": path}], max_failed=1)  # the tags are removed from the catalogue
    emulator.set_faults(sequence=["503_json"])
    result = run_import([{"path": path}])
    assert library(emulator)[path] == {}, f"old tags kept, ledger says success (result {result})"
    # And the next run believes it is all done: nothing will ever fix it.


def test_a_prune_killed_after_its_delete_leaves_no_ledger_row_claiming_the_deleted_image(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """SIGKILL between a prune's delete and its (batched) ledger write: the ledger claims a deleted image.

    A later run whose manifest lists the path again (unchanged) trusts the ledger and never re-adds it.
    """
    import sqlalchemy as sa

    from airflow_provider_imagesearch.emulator.routes import R_DELETE_IMAGE
    from airflow_provider_imagesearch.operators.import_images import ImageSearchImportImagesOperator
    from tests.support.connections import connection_fields, env_name
    from tests.support.waiting import wait_until

    instance = "pruned"
    emulator.upsert_instance(instance, tags=["color"], images={})
    ledger_path = tmp_path / "ledger.db"
    monkeypatch.setenv(
        env_name("imagesearch_archive_db"), json.dumps({"conn_type": "sqlite", "host": str(ledger_path)})
    )
    monkeypatch.setenv(env_name("imagesearch_default"), json.dumps(connection_fields(emulator.url, "aksk")))
    paths = [obs(f"k/{i}.jpg") for i in range(6)]
    full = tmp_path / "full.csv"
    full.write_text("path,tag.color\n" + "".join(f"{p},red\n" for p in paths), "utf-8")
    ImageSearchImportImagesOperator(task_id="first", instance_name=instance, manifest=str(full)).execute(
        {"run_id": "first"}  # type: ignore[arg-type]
    )
    assert set(library(emulator, instance)) == set(paths)

    kept = tmp_path / "kept.csv"
    kept.write_text("path,tag.color\n" + f"{paths[0]},red\n", "utf-8")
    emulator.set_faults(latency_seconds=0.4)
    emulator.reset_stats()
    env = {
        **os.environ,
        "AIRFLOW_HOME": tempfile.mkdtemp(prefix="imagesearch-review-prune-"),
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "IMPORT_MANIFEST": str(kept),
        "IMPORT_INSTANCE": instance,
        "IMPORT_RUN_ID": "pruning",
    }
    child = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("_prune_child.py"))],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(
            emulator.requests_log,
            lambda log: any(r["route"] == R_DELETE_IMAGE and r["status"] == 200 for r in log),
            timeout=60,
        )
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    emulator.set_faults(reset=True)

    held = set(library(emulator, instance))
    engine = sa.create_engine(f"sqlite:///{ledger_path}")
    with engine.connect() as connection:
        claimed = {
            row[0]
            for row in connection.execute(
                sa.text(
                    "SELECT path FROM imagesearch_import_ledger WHERE outcome IN ('added','updated','retried')"
                )
            )
        }
    engine.dispose()
    assert claimed <= held, f"the ledger claims {sorted(claimed - held)}, which the library does not hold"


def test_a_rerun_failing_on_known_invalid_rows_names_them(
    run_import: RunImport, emulator: Emulator, ledger_conn: dict[str, Any]
) -> None:
    """The rerun fails on the same bad row, but its summary names no row, path or reason."""
    from airflow_provider_imagesearch.version_compat import AirflowFailException

    bad = obs("bad.jpg")
    manifest = [{"path": obs("ok.jpg")}, {"path": bad, "tags": {"color": ["red", 5]}}]
    with pytest.raises(AirflowFailException) as first:
        run_import(manifest)
    assert bad in str(first.value)
    with pytest.raises(AirflowFailException) as second:
        run_import(manifest)
    assert bad in str(second.value), f"the rerun's failure does not name the bad row: {second.value}"


def test_a_bad_ledger_table_is_refused_naming_ledger_table(run_import: RunImport) -> None:
    from airflow_provider_imagesearch.version_compat import AirflowFailException

    with pytest.raises(AirflowFailException) as error:
        run_import([{"path": obs("a.jpg")}], ledger_table="ledger; DROP TABLE x")
    assert "ledger_table" in str(error.value), f"the error does not name the argument: {error.value}"


def test_v2_a_changed_image_is_not_lost_when_a_failed_overwrite_is_retried_as_an_ambiguous_add(
    run_v2_import: RunImport, emulator: Emulator, ledger_conn: dict[str, Any]
) -> None:
    """v2 twin: after a failed overwrite, a 503'd add finds the OLD item, compares no image, 'reconciles'."""
    row = {"item_id": "sku-1", "image_url": "https://cdn.example.com/old.jpg", "desc": "shoe"}
    run_v2_import([row])
    old = v2_items(emulator)["sku-1"]["digest"]
    row["image_url"] = "https://cdn.example.com/new.jpg"  # the catalogue's picture changes
    # Run 2's overwrite fails every time, not processed ("Process BIZ failed.", retried, then 'failed').
    emulator.set_faults(service_error_rate=1.0, service_error_kinds=["MMS.1015"])
    run_v2_import([row], max_failed=1)
    assert v2_items(emulator)["sku-1"]["digest"] == old
    emulator.set_faults(reset=True, sequence=["503_json"])  # run 3: one transient 503 before the service
    result = run_v2_import([row])
    item = v2_items(emulator)["sku-1"]
    assert item["digest"] != old, f"the service keeps the old image {item} (result {result})"


def test_a_path_with_a_nul_character_does_not_stop_the_import_on_postgres(
    run_import: RunImport, emulator: Emulator, ledger_conn: dict[str, Any], tmp_path: Path
) -> None:
    """One bad row (a NUL in its id) must be recorded invalid, not crash the ledger write of every row."""
    image = tmp_path / "img.png"
    image.write_bytes(PNG_A)
    manifest = [{"path": obs(f"ok/{i}.jpg")} for i in range(5)]
    manifest.append({"path": "sku\x00evil", "file": str(image)})
    try:
        result = run_import(manifest, max_failed=1)
    except Exception as error:
        pytest.fail(f"the import died on one bad row: {type(error).__name__}: {str(error)[:200]}")
    assert result["added"] >= 5
    assert set(ledger_rows(ledger_conn["engine"])) >= {obs(f"ok/{i}.jpg") for i in range(5)}


def test_v2_dag_write_results_retried_in_the_same_run_does_not_double_the_rows(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``write_results`` appends (``if_exists="append"``): its retry (retries=2) or a clear doubles the run's rows."""
    import sqlalchemy as sa
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.execution_time.context import set_current_context

    db_file = tmp_path / "results.db"
    monkeypatch.setenv("AIRFLOW_CONN_CATALOG_DB", json.dumps({"conn_type": "sqlite", "host": str(db_file)}))
    dag_file = Path(__file__).resolve().parents[2] / "dags" / "imagesearch_v2_catalog.py"
    bag = DagBag(dag_folder=str(dag_file))
    write = bag.dags["imagesearch_v2_catalog"].get_task("write_results")
    hits = [{"id": "sku-1", "score": 1.0, "desc": "d", "keywords": ["k"]}]
    context: Any = {"run_id": "manual__1", "params": {"table": "v2_results", "db_conn_id": "catalog_db"}}
    for _try in range(2):  # the task's first try, then its retry (or a clear) in the same DAG run
        with set_current_context(context):
            write.python_callable(hits, hits)  # type: ignore[attr-defined]
    engine = sa.create_engine(f"sqlite:///{db_file}")
    with engine.connect() as connection:
        count = connection.execute(
            sa.text("SELECT COUNT(*) FROM v2_results WHERE run_id = 'manual__1'")
        ).scalar()
    engine.dispose()
    assert count == 2, f"{count} rows for the run's 2 hits: the retry appended them again"


def test_a_file_the_service_refuses_as_too_big_is_invalid_and_not_sent_again(
    run_import: RunImport, emulator: Emulator, ledger_conn: dict[str, Any], tmp_path: Path
) -> None:
    """A 7.8 MiB file passes the 8 MiB check, but its base64 body (> 10 MiB) is refused IS.0006.

    It is recorded 'failed' (IS.0006 is not a refusal code), so every rerun uploads the 10 MB again.
    """
    from airflow_provider_imagesearch.emulator.routes import R_ADD
    from airflow_provider_imagesearch.version_compat import AirflowFailException

    big = tmp_path / "big.png"
    big.write_bytes(PNG_A + b"\x00" * int(7.8 * 1024 * 1024))
    manifest = [{"path": "sku-big", "file": str(big)}]
    with pytest.raises(AirflowFailException) as first:
        run_import(manifest)
    assert "IS.0006" in str(first.value)
    emulator.reset_stats()
    with pytest.raises(AirflowFailException):
        run_import(manifest)
    resent = [r for r in emulator.requests_log() if r["route"] == R_ADD]
    assert resent == [], f"the unchanged oversized row was uploaded again ({len(resent)} add requests)"


def test_throttling_never_deadlocks_the_import(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """429s halve the limit; throttled rows wait for a slot on pool threads while the slots are held by
    submitted rows queued behind them (the pool has 2 x cap threads): the import stops sending for good.

    Runs in a child process (a deadlocked pool would keep pytest from exiting); stalled = no request
    reaches the emulator for 20 s while the child lives.
    """
    import time

    from tests.support.connections import connection_fields, env_name

    emulator.upsert_instance("throttled", tags=["color"], images={})
    emulator.set_faults(throttle_429_rate=0.3, retry_after="0.05", latency_seconds=0.02, random_seed=3)
    env = {
        **os.environ,
        "AIRFLOW_HOME": tempfile.mkdtemp(prefix="imagesearch-review-throttle-"),
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        env_name("imagesearch_default"): json.dumps(connection_fields(emulator.url, "aksk")),
        env_name("imagesearch_archive_db"): json.dumps(
            {"conn_type": "sqlite", "host": str(tmp_path / "l.db")}
        ),
        "IMPORT_INSTANCE": "throttled",
        "IMPORT_ROWS": "100",
        "IMPORT_CONCURRENCY": "2",
    }
    out = tmp_path / "child.out"
    child = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("_throttled_child.py"))],
        env=env,
        stdout=out.open("wb"),
        stderr=subprocess.DEVNULL,
    )
    seen, since, stalled = -1, time.monotonic(), False
    try:
        while child.poll() is None:
            count = emulator.stats()["requests_total"]
            if count != seen:
                seen, since = count, time.monotonic()
            elif time.monotonic() - since > 20:
                stalled = True
                break
            time.sleep(0.5)
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    output = out.read_text("utf-8", "replace")
    assert not stalled, f"the import stopped sending after {seen} requests and never finished (deadlock)"
    assert "DONE" in output
