"""Review of issue 19 (bulk import round 2): reproductions of what still goes wrong.

Each test was marked ``xfail(strict=True)`` (it failed on the code under review); the commit that fixed
its defect removed the mark.
Against the emulator over loopback HTTP, ledgers on real SQLite / PostgreSQL.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from airflow_provider_imagesearch.emulator.routes import R_ADD, R_TOKENS
from tests.imports.conftest import INSTANCE, LEDGER_CONN, library, obs
from tests.imports.test_object_store import MotoS3, moto_s3  # noqa: F401 (fixture)
from tests.support.connections import connection_fields, env_name, set_connection
from tests.support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
TABLE = "imagesearch_import_ledger"
PNG_A = b"\x89PNG\r\n\x1a\n" + b"A" * 64
PNG_B = b"\x89PNG\r\n\x1a\n" + b"B" * 64


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


def _pg_ledger(postgres_uri: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The ledger connection on the throwaway PostgreSQL server, its tables dropped; an engine on it."""
    import sqlalchemy as sa

    monkeypatch.setenv(env_name(LEDGER_CONN), postgres_uri)
    engine = sa.create_engine(postgres_uri.replace("postgres://", "postgresql+psycopg2://"))
    with engine.begin() as connection:
        connection.execute(sa.text(f"DROP TABLE IF EXISTS {TABLE}"))
        connection.execute(sa.text(f"DROP TABLE IF EXISTS {TABLE}_lock"))
    return engine


def _images(emulator: Emulator, instance: str = INSTANCE) -> dict[str, dict[str, Any]]:
    return dict(emulator.control.state().get("images", {}).get(f"{DEFAULT_PROJECT_ID}/{instance}", {}))


# --- the lock on PostgreSQL ---------------------------------------------------------------------------


def test_pg_a_run_whose_lock_connection_dropped_keeps_sending_beside_the_next_run(
    imagesearch_conn: Callable[..., str],
    catalog: str,
    emulator: Emulator,
    postgres_uri: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The holder's lock connection drops (a database failover, a pooler restart, a DBA's
    ``pg_terminate_backend``): the server frees its advisory lock, so the next run takes the target over
    at once. The first run never notices: its heartbeat fails with "Can't reconnect until invalid
    transaction is rolled back" every 10 s, logs "retrying" and never marks the lock lost, so it keeps
    sending its whole plan beside the second run: two imports of one target at once, every row sent by
    both (what the lock exists to prevent)."""
    import sqlalchemy as sa

    from airflow_provider_imagesearch.imports import lock as lock_module

    monkeypatch.setattr(lock_module, "HEARTBEAT_SECONDS", 0.5)
    engine = _pg_ledger(postgres_uri, monkeypatch)
    first_conn = imagesearch_conn("aksk")
    second_conn = imagesearch_conn("token", conn_id="imagesearch_second")
    manifest = [{"path": obs(f"drop/{i:04d}.jpg"), "tags": {"color": "red"}} for i in range(200)]
    emulator.set_faults(latency_seconds=0.1)
    first, first_outcome = _in_thread(
        lambda: _operator(first_conn, manifest, "first", max_concurrency=1).execute({"run_id": "first"})
    )
    wait_until(
        emulator.requests_log,
        lambda log: sum(1 for r in log if r["route"] == R_ADD) >= 5,
        timeout=60,
    )
    with engine.begin() as connection:  # the holder's lock session goes away (the server side of a drop)
        sessions = connection.execute(
            sa.text(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        ).scalars()
        for pid in set(sessions):
            connection.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    time.sleep(2.0)  # four heartbeats of the first run
    second = _operator(second_conn, manifest, "second", max_concurrency=8, lock_timeout=0)
    with contextlib.suppress(Exception):  # refusing the second run would be a correct outcome too
        second.execute({"run_id": "second"})
    second_started = min(
        (r["ts"] for r in emulator.requests_log() if r["route"] != R_TOKENS and r["auth"] == "token"),
        default=None,
    )
    first.join(timeout=120)
    engine.dispose()
    if second_started is None:
        return  # the second run was refused: one import at a time held
    first_after = [
        r
        for r in emulator.requests_log()
        if r["route"] == R_ADD and r["auth"] == "aksk" and r["ts"] > second_started + 1.5
    ]
    assert not first_after, (
        f"the first run sent {len(first_after)} adds after the second run had taken its target over "
        f"(first run: {first_outcome})"
    )


def test_pg_the_same_ledger_table_spelled_with_its_schema_takes_over_a_live_lock(
    postgres_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two DAGs import into the same instance, one with ``ledger_table="imagesearch_import_ledger"``, the
    other with ``"public.imagesearch_import_ledger"`` (the same table, the same lock table). The advisory
    lock keys hash the *spelling* of ``ledger_table``, so the second run's liveness check probes a key
    nobody holds, decides the live holder is dead, deletes its row and takes the target: two imports of
    one instance at once (the first learns at its next heartbeat, 10 s later, and fails)."""
    from airflow_provider_imagesearch.imports.lock import ImportLock, ImportLockedError

    engine = _pg_ledger(postgres_uri, monkeypatch)
    holder = ImportLock(engine, TABLE, "v1", INSTANCE, "scheduled__2026-12-01")
    holder.acquire(0)
    other = ImportLock(engine, f"public.{TABLE}", "v1", INSTANCE, "manual__2026-12-01")
    try:
        with pytest.raises(ImportLockedError):
            other.acquire(0)
    finally:
        other.release()
        holder.release()
        engine.dispose()


# --- time_limit with max_rate ---------------------------------------------------------------------------


def test_time_limit_is_kept_when_rows_wait_for_a_slow_max_rate(
    run_import: Callable[..., dict[str, Any]],
    emulator: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``max_rate=1`` (a quota of 1 QPS) with ``max_concurrency=8`` and ``time_limit=2``: every thread's
    row waits in the token bucket, and when the time limit comes, each waiting row still takes its token
    and is sent, one a second: requests keep going out for about ``max_concurrency / max_rate`` seconds
    after the time limit (with ``max_rate=0.1``, 80 s), although ``deadline`` is documented as "after which
    no request is sent" (the same holds after a fatal error: "no request after a fatal error")."""
    set_connection(monkeypatch, LEDGER_CONN, conn_type="sqlite", host=str(tmp_path / "ledger.db"))
    run_import([{"path": obs("warm.jpg")}])  # modules loaded: the time limit is spent sending
    emulator.reset_stats()
    manifest = [{"path": obs(f"paced/{i:03d}.jpg")} for i in range(40)]
    started = time.time()
    result = run_import(manifest, max_concurrency=8, max_rate=1, time_limit=3)
    sent = sorted(r["ts"] - started for r in emulator.requests_log() if r["route"] != R_TOKENS)
    assert sent, result
    assert result["remaining"] > 0
    late = [round(t, 1) for t in sent if t > 3 + 1.5]
    assert not late, f"requests sent after time_limit=3 s: at {late} s (result {result})"


# --- manifests from other tools ------------------------------------------------------------------------


def test_a_json_lines_number_beyond_64_bits_fails_its_row_not_the_import(
    run_v2_import: Callable[..., dict[str, Any]],
    emulator: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A JSON-lines export (Spark, jq, a Python ``json.dumps``) with a 20+ digit integer in a numeric
    tag: pandas' JSON reader stops the whole manifest with ``ValueError: Value is too big! at position
    ...``, naming neither the field nor the row, and nothing is imported, although issue 19 asks that
    "any bad value (... too large ...) is an invalid row with its reason, never an exception that stops
    the import" (the same value in a list manifest is an invalid row)."""
    set_connection(monkeypatch, LEDGER_CONN, conn_type="sqlite", host=str(tmp_path / "ledger.db"))
    manifest = tmp_path / "items.jsonl"
    rows = [
        {"item_id": "sku-1", "image_url": "https://cdn.example.com/1.jpg", "num.price": 19},
        {"item_id": "sku-2", "image_url": "https://cdn.example.com/2.jpg", "num.price": 10**20},
        {"item_id": "sku-3", "image_url": "https://cdn.example.com/3.jpg", "num.price": 7},
    ]
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows), "utf-8")
    from airflow_provider_imagesearch.version_compat import AirflowFailException

    with pytest.raises(AirflowFailException) as failure:
        run_v2_import(str(manifest), max_failed=0)
    message = str(failure.value)
    assert "row 2" in message
    assert "sku-2" in message
    from tests.imports.conftest import v2_items

    assert set(v2_items(emulator)) == {"sku-1", "sku-3"}


# --- a ledger written by the previous release ------------------------------------------------------------


OLD_RELEASE = "8752aac"
OLD_CHILD = r"""
import json, os, sys
# This venv's editable install finds the package before PYTHONPATH does: leave it to the old tree.
sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "")]
import airflow_provider_imagesearch as package
assert package.__file__.startswith(os.environ["OLD_ROOT"]), package.__file__
from airflow_provider_imagesearch.operators.import_images import ImageSearchImportImagesOperator
op = ImageSearchImportImagesOperator(
    task_id="old", instance_name=os.environ["OLD_INSTANCE"], manifest=json.loads(os.environ["OLD_MANIFEST"]),
)
print(json.dumps(op.execute({"run_id": "old-release"})))
"""


def _old_release(tmp_path: Path) -> Path:
    root = tmp_path / "old-release"
    root.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", OLD_RELEASE, "airflow_provider_imagesearch"],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        pytest.skip(f"the previous release ({OLD_RELEASE}) is not in this clone")
    subprocess.run(["tar", "-x", "-C", str(root)], input=archive.stdout, check=True)
    return root


def test_a_stale_image_the_previous_release_reconciled_is_overwritten_after_the_upgrade(
    emulator: Emulator, catalog: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 19's defect 3, carried over an upgrade. The previous release (8752aac), meeting a path the
    library already held with an older picture (a run killed before its ledger write, a dropped ledger)
    after an ambiguous add, checked the library, found the path and recorded it ``reconciled``: the library
    kept the OLD picture under a ledger row claiming the new one. This release reads such a row as "the
    library holds this fingerprint" (success, held = fingerprint) and reports the row unchanged on every
    run: the stale picture stays forever, although the docs now promise a present path is "never
    'reconciled' by looking at the library". Nothing migrates or re-checks the old rows, and the docs say
    nothing about them."""
    import sqlalchemy as sa

    ledger_path = tmp_path / "ledger.db"
    set_connection(monkeypatch, LEDGER_CONN, conn_type="sqlite", host=str(ledger_path))
    monkeypatch.setenv(env_name("imagesearch_default"), json.dumps(connection_fields(emulator.url, "aksk")))
    image = tmp_path / "sku-1.png"
    image.write_bytes(PNG_A)
    # The library holds sku-1 with picture A (an earlier add whose ledger row is gone).
    seed = _operator("imagesearch_default", [{"path": "sku-1", "file": str(image)}], "seed")
    seed.execute({"run_id": "seed"})
    old_digest = _images(emulator)["sku-1"]["digest"]
    engine = sa.create_engine(f"sqlite:///{ledger_path}")
    with engine.begin() as connection:
        connection.execute(sa.text(f"DROP TABLE {TABLE}"))
        connection.execute(sa.text(f"DROP TABLE IF EXISTS {TABLE}_lock"))
    engine.dispose()
    # The previous release imports the new picture; its add fails once before the service.
    image.write_bytes(PNG_B)
    root = _old_release(tmp_path)
    emulator.set_faults(sequence=["503_json"])
    env = {
        **os.environ,
        "PYTHONPATH": str(root),
        "AIRFLOW_HOME": tempfile.mkdtemp(prefix="imagesearch-old-release-"),
        "OLD_ROOT": str(root),
        "OLD_INSTANCE": INSTANCE,
        "OLD_MANIFEST": json.dumps([{"path": "sku-1", "file": str(image)}]),
    }
    old = subprocess.run(
        [sys.executable, "-c", OLD_CHILD],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert old.returncode == 0, old.stderr[-3000:]
    assert json.loads(old.stdout.strip().splitlines()[-1])["reconciled"] == 1
    assert _images(emulator)["sku-1"]["digest"] == old_digest  # what the previous release left
    emulator.set_faults(reset=True)
    # Upgrade: this release imports the same manifest.
    result = _operator("imagesearch_default", [{"path": "sku-1", "file": str(image)}], "upgraded").execute(
        {"run_id": "upgraded"}
    )
    assert _images(emulator)["sku-1"]["digest"] != old_digest, (
        f"after the upgrade the library still holds the OLD picture; the import says {result}"
    )


# --- the lock on SQLite: another PID namespace with the same host name -------------------------------


def _unshare_works() -> bool:
    try:
        return (
            subprocess.run(
                ["unshare", "--pid", "--fork", "true"], capture_output=True, timeout=30, check=False
            ).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


def test_sqlite_a_live_holder_in_another_container_of_the_same_host_name_is_not_taken_over(
    emulator: Emulator, catalog: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two worker containers share a SQLite ledger on a volume and report the same host name (Docker's
    ``--network host`` and Kubernetes' ``hostNetwork: true`` give containers the node's name). The lock's
    "same host" check trusts the name and probes the holder's pid with ``os.kill(pid, 0)`` in its own
    PID namespace, where that pid does not exist: the live holder is declared dead, its row deleted, and
    the second run imports beside it at once (the first finds out at its next heartbeat and fails)."""
    if not _unshare_works():
        pytest.skip("needs unshare --pid (root)")
    from airflow_provider_imagesearch.archive import sql_engine
    from airflow_provider_imagesearch.imports.lock import ImportLock

    ledger = tmp_path / "ledger.db"
    conn = json.dumps({"conn_type": "sqlite", "host": str(ledger)})
    monkeypatch.setenv(env_name(LEDGER_CONN), conn)
    monkeypatch.setenv(env_name("imagesearch_default"), json.dumps(connection_fields(emulator.url, "aksk")))
    engine = sql_engine(LEDGER_CONN)
    holder = ImportLock(engine, TABLE, "v1", INSTANCE, "scheduled__2026-12-01")  # alive, this process
    holder.acquire(0)
    manifest = tmp_path / "m.csv"
    manifest.write_text("path\n" + "".join(f"{obs(f'ns/{i}.jpg')}\n" for i in range(3)), "utf-8")
    env = {
        **os.environ,
        "AIRFLOW_HOME": tempfile.mkdtemp(prefix="imagesearch-ns-"),
        "PYTHONPATH": str(REPO),
        "IMPORT_MANIFEST": str(manifest),
        "IMPORT_INSTANCE": INSTANCE,
        "IMPORT_RUN_ID": "manual__other-container",
        "IMPORT_LOCK_TIMEOUT": "0",
    }
    try:
        other = subprocess.run(
            ["unshare", "--pid", "--fork", sys.executable, str(REPO / "tests/reliability/_import_child.py")],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    finally:
        holder.release()
        engine.dispose()
    took = f"the other container's run took the live holder's lock and imported: {other.stdout[-500:]}"
    assert other.returncode != 0, took
    assert "holds the lock" in other.stderr, took
    assert set(library(emulator)) == set()


# --- s3:// manifests with a wrong connection -----------------------------------------------------------


def _dead_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("mistake", ["conn id with a typo", "store down"])
def test_an_s3_manifest_with_a_wrong_connection_fails_naming_it(
    mistake: str,
    moto_s3: MotoS3,  # noqa: F811 (the fixture imported above)
    run_import: Callable[..., dict[str, Any]],
    emulator: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``manifest="s3://bucket/key.csv"`` with a ``manifest_conn_id`` that is misspelt, or names a
    connection that is not an ``aws`` one, is silently ignored: the amazon provider falls back to the
    worker's default AWS credentials and endpoint, so the import reads from AWS S3 instead of OBS (or, as
    here where the default endpoint is unreachable, fails after ~10 s of botocore retries with a raw
    ``botocore.exceptions.EndpointConnectionError: Could not connect to the endpoint URL``). A store that is
    down fails the same raw way. None of these name ``manifest`` or ``manifest_conn_id``, unlike every
    other bad manifest ("Bad input gets a clear error naming the field")."""
    from tests.imports.test_object_store import ACCESS_KEY, BUCKET, SECRET_KEY

    set_connection(monkeypatch, LEDGER_CONN, conn_type="sqlite", host=str(tmp_path / "ledger.db"))
    # The workers' default AWS endpoint: a dead port on loopback (nothing leaves this machine).
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_dead_port()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIADEFAULTWORKERKEY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "default-worker-secret")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    endpoint = moto_s3.endpoint if mistake != "store down" else f"http://127.0.0.1:{_dead_port()}"
    name = f"obs_manifests_{mistake.split()[0]}"  # Airflow caches a filesystem per connection id
    set_connection(
        monkeypatch,
        name,
        conn_type="aws",
        login=ACCESS_KEY,
        password=SECRET_KEY,
        extra={"endpoint_url": endpoint, "region_name": "us-east-1"},
    )
    conn_id = name.replace("manifests", "manifets") if mistake == "conn id with a typo" else name
    with pytest.raises(Exception) as failure:  # noqa: PT011 (which exception is the finding)
        run_import(f"s3://{BUCKET}/manifest.csv", manifest_conn_id=conn_id)
    message = f"{type(failure.value).__name__}: {failure.value}"
    if mistake == "store down":  # like an unreachable presigned URL: "Invalid manifest '...': ..."
        assert "Invalid manifest" in message, message
    else:
        assert "manifest_conn_id" in message, message
        assert conn_id in message, message


# --- XCom honesty: v2 adds the hook sends again ----------------------------------------------------------


@pytest.mark.parametrize("fault", ["503_after", "drop_after"])
def test_v2_an_add_processed_twice_after_a_lost_answer_is_counted_in_xcom(
    fault: str,
    run_v2_import: Callable[..., dict[str, Any]],
    emulator: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A v2 add whose answer is lost after the service processed it (a 503 from the gateway after the
    service, a dropped connection) is sent again by the hook's own retry policy (every import add carries
    ``force``, so it counts as idempotent). The service processes it twice, yet the XCom says ``added: 1,
    reconciled: 0, resent: 0``, which the docs define as "rows / requests sent again after an ambiguous
    answer": the issue's own check "adds <= rows + retried ambiguous rows" cannot be made from a v2
    import's XCom, and the v1 and v2 counts of the same event differ."""
    from airflow_provider_imagesearch.emulator.routes_v2 import R2_ADD

    set_connection(monkeypatch, LEDGER_CONN, conn_type="sqlite", host=str(tmp_path / "ledger.db"))
    emulator.set_faults(sequence=[fault])
    result = run_v2_import([{"item_id": "sku-1", "image_url": "https://cdn.example.com/1.jpg"}])
    adds = [r for r in emulator.requests_log() if r["route"] == R2_ADD]
    processed = sum(1 for r in adds if r["status"] == 200 or r["fault"] in ("503_after", "drop_after"))
    assert processed == 2, adds  # the service processed the add twice
    assert result["resent"] == processed - 1, result
    assert result["reconciled"] == 1, result


def test_a_json_lines_manifest_written_with_a_byte_order_mark_is_read(
    run_import: Callable[..., dict[str, Any]],
    emulator: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Windows tools write UTF-8 with a byte order mark (PowerShell's ``Out-File -Encoding utf8``, Notepad,
    .NET's default UTF8 encoder). A CSV with a BOM is read fine (pandas' CSV reader drops it), but a
    JSON-lines manifest with one fails the whole import with a raw ``ValueError: Expected object or value
    at position 0``, which names neither ``manifest`` nor a row."""
    set_connection(monkeypatch, LEDGER_CONN, conn_type="sqlite", host=str(tmp_path / "ledger.db"))
    manifest = tmp_path / "catalog.jsonl"
    rows = [{"path": obs(f"bom/{i}.jpg"), "tags": {"color": "red"}} for i in range(3)]
    manifest.write_bytes(b"\xef\xbb\xbf" + "".join(json.dumps(row) + "\r\n" for row in rows).encode())
    result = run_import(str(manifest))
    assert result["added"] == 3
    assert set(library(emulator)) == {row["path"] for row in rows}


# --- shards and max_failed -----------------------------------------------------------------------------


def test_a_sharded_import_refuses_prune_when_the_manifests_bad_rows_exceed_max_failed(
    run_import: Callable[..., dict[str, Any]],
    emulator: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 19: "Prune is refused before any delete when the manifest's invalid rows exceed max_failed".
    Split into shards, each shard compares only its own slice's bad rows with ``max_failed``: a manifest
    with 8 invalid rows and ``max_failed=5``, imported as 2 shards (4 bad rows each), prunes in both shards
    and succeeds, where the same import unsharded refuses the prune and fails. With the example DAG's 4
    shards, 4x ``max_failed`` bad rows pass unnoticed and the library is pruned against a broken export."""
    from airflow_provider_imagesearch.imports.manifest import path_key
    from airflow_provider_imagesearch.imports.plan import shard_of
    from airflow_provider_imagesearch.version_compat import AirflowFailException

    set_connection(monkeypatch, LEDGER_CONN, conn_type="sqlite", host=str(tmp_path / "ledger.db"))
    good = [{"path": obs(f"g/{i:03d}.jpg")} for i in range(20)]
    run_import(good)  # the library and the ledger hold 20 images
    bad: list[dict[str, Any]] = []
    per_shard = [0, 0]
    for i in range(1000):  # 4 invalid rows (not an OBS URL of the region) in each shard
        path = f"https://elsewhere.example.com/{i}.jpg"
        shard = shard_of(path_key(path), 2)
        if per_shard[shard] < 4:
            per_shard[shard] += 1
            bad.append({"path": path})
    manifest = good[:10] + bad  # 10 images left the catalogue; 8 rows are broken
    outcomes = []
    for index in range(2):
        try:
            outcomes.append(run_import(manifest, shard=(index, 2), prune=True, max_failed=5))
        except AirflowFailException as error:
            outcomes.append(str(error))
    assert len(library(emulator)) == 20, (
        f"the shards pruned although the manifest has 8 invalid rows > max_failed=5: {outcomes}"
    )
