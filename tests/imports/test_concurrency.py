"""One import per target at a time (the lock), shards, time_limit and max_rate, against the emulator."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from tests.imports.conftest import INSTANCE, LEDGER_CONN, api_requests, ledger_rows, library, obs

RunImport = Callable[..., dict[str, Any]]
TABLE = "imagesearch_import_ledger"


def _lock(run_id: str, shard: tuple[int, int] = (0, 1), target: str = INSTANCE) -> Any:
    from airflow_provider_imagesearch.archive import sql_engine
    from airflow_provider_imagesearch.imports.lock import ImportLock

    return ImportLock(sql_engine(LEDGER_CONN), TABLE, "v1", target, run_id, shard=shard)


def _manifest(count: int, prefix: str = "c") -> list[dict[str, Any]]:
    return [{"path": obs(f"{prefix}/{i:04d}.jpg"), "tags": {"color": "red"}} for i in range(count)]


def test_a_second_run_fails_at_once_naming_the_run_that_holds_the_target(
    run_import: RunImport, emulator: Emulator, ledger_conn: dict[str, Any]
) -> None:
    from airflow_provider_imagesearch.version_compat import AirflowException, AirflowFailException

    holder = _lock("scheduled__2026-12-01")
    holder.acquire(0)
    try:
        with pytest.raises(AirflowException) as refused:
            run_import(_manifest(3), lock_timeout=0)
    finally:
        holder.release()
    assert not isinstance(refused.value, AirflowFailException)  # a retry later may well succeed
    message = str(refused.value)
    assert "'scheduled__2026-12-01'" in message
    assert "Nothing was sent" in message
    assert api_requests(emulator) == []
    assert run_import(_manifest(3), lock_timeout=0)["added"] == 3  # released: the next run goes


def test_a_waiting_run_goes_on_once_the_holder_is_done(
    run_import: RunImport, emulator: Emulator, ledger_conn: dict[str, Any], capfd: pytest.CaptureFixture[str]
) -> None:
    holder = _lock("manual__first")
    holder.acquire(0)
    said = []  # the output read so far (the task's log goes to stdout)
    waited_for = "waits for run 'manual__first'"

    def release_once_it_waits() -> None:
        # Released only once the run says it waits (reading its manifest first may take seconds on a
        # loaded machine), then half a second later: the wait is the run's, whatever the load.
        deadline = time.monotonic() + 60
        while waited_for not in "".join(said) and time.monotonic() < deadline:
            said.append(capfd.readouterr().out)
            time.sleep(0.1)
        time.sleep(0.5)
        holder.release()

    releaser = threading.Thread(target=release_once_it_waits)
    releaser.start()
    try:
        result = run_import(_manifest(2), lock_timeout=60)
    finally:
        releaser.join()
    assert waited_for in "".join(said)
    assert result["added"] == 2
    assert result["phases"]["lock_wait"] >= 0.5


def test_a_dead_holder_does_not_keep_the_target_locked(
    run_import: RunImport, ledger_conn: dict[str, Any]
) -> None:
    """SQLite: a row of this host whose process is gone, or whose heartbeat is stale, is taken over.
    PostgreSQL: a holder whose connection closed (the worker died) holds nothing."""
    import sqlalchemy as sa

    holder = _lock("killed-run")
    holder.acquire(0)
    holder._stop.set()  # no more heartbeats, and the row stays: what a SIGKILL leaves
    if ledger_conn["name"] == "sqlite":
        gone = subprocess.Popen(["true"])
        gone.wait()
        with ledger_conn["engine"].begin() as connection:
            connection.execute(
                sa.text(f"UPDATE {TABLE}_lock SET pid = :pid WHERE run_id = 'killed-run'"), {"pid": gone.pid}
            )
        assert run_import(_manifest(1), lock_timeout=0)["added"] == 1
        # Another host's holder: only a stale heartbeat says it died.
        other = _lock("other-host")
        other.acquire(0)
        other._stop.set()
        stale = datetime.now(UTC) - timedelta(minutes=10)
        with ledger_conn["engine"].begin() as connection:
            connection.execute(
                sa.text(f"UPDATE {TABLE}_lock SET host = 'elsewhere', heartbeat_at = :t"), {"t": stale}
            )
        assert run_import(_manifest(2), lock_timeout=0)["added"] == 1
    else:
        assert holder._session is not None
        holder._session.invalidate()  # the connection is closed: the server drops its session lock
        holder._session = None
        assert run_import(_manifest(1), lock_timeout=0)["added"] == 1


def test_pg_a_holder_whose_lock_session_was_dropped_learns_it_lost_the_lock(
    ledger_conn: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server ends the holder's lock session (a failover, ``pg_terminate_backend``): the advisory
    lock is gone, so the holder's next heartbeat marks the lock lost (the engine then stops sending).
    The session carries TCP keepalives and ``tcp_user_timeout``, for a drop without a reset."""
    import sqlalchemy as sa

    from airflow_provider_imagesearch.imports import lock as lock_module

    if ledger_conn["name"] != "postgres":
        pytest.skip("the session lock is PostgreSQL's")
    monkeypatch.setattr(lock_module, "HEARTBEAT_SECONDS", 0.2)
    holder = _lock("dropped-run")
    holder.acquire(0)
    try:
        assert holder._session is not None
        info = holder._session.connection.dbapi_connection.info  # type: ignore[union-attr]
        dsn = (
            info.get_parameters() if hasattr(info, "get_parameters") else info.dsn_parameters
        )  # psycopg 3, 2
        assert dsn["keepalives_idle"] == "10"
        assert dsn["tcp_user_timeout"] == "30000"
        time.sleep(0.6)
        assert not holder.lost  # heartbeats go on while the session lives
        with ledger_conn["engine"].begin() as connection:
            pid = connection.execute(
                sa.text(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
                    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                )
            ).scalar_one()
            connection.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        deadline = time.monotonic() + 10
        while not holder.lost and time.monotonic() < deadline:
            time.sleep(0.1)
        assert holder.lost
    finally:
        holder.release()


def test_sqlite_a_holder_of_another_pid_namespace_with_our_host_name_is_judged_by_its_heartbeat(
    run_import: RunImport, ledger_conn: dict[str, Any]
) -> None:
    """A holder row with this host name but another boot or PID namespace (another container on the
    same node, or a row of an earlier release, which wrote the bare host name): its pid means nothing
    here, so a pid that does not run here does not make it dead; a stale heartbeat still does."""
    import socket

    import sqlalchemy as sa

    if ledger_conn["name"] != "sqlite":
        pytest.skip("PostgreSQL holders are judged by their session lock")
    from airflow_provider_imagesearch.imports.lock import ImportLockedError, process_space

    assert process_space().startswith(socket.gethostname() + " (boot ")
    holder = _lock("other-container")
    holder.acquire(0)
    holder._stop.set()
    gone = subprocess.Popen(["true"])
    gone.wait()
    elsewhere = f"{socket.gethostname()} (boot {'0' * 36}, pid:[4026532999])"
    try:
        for host in (elsewhere, socket.gethostname()):
            with ledger_conn["engine"].begin() as connection:
                connection.execute(
                    sa.text(f"UPDATE {TABLE}_lock SET host = :host, pid = :pid"),
                    {"host": host, "pid": gone.pid},
                )
            with pytest.raises(ImportLockedError):
                _lock("manual__second").acquire(0)
        stale = datetime.now(UTC) - timedelta(minutes=10)
        with ledger_conn["engine"].begin() as connection:
            connection.execute(sa.text(f"UPDATE {TABLE}_lock SET heartbeat_at = :t"), {"t": stale})
        assert run_import(_manifest(1), lock_timeout=0)["added"] == 1
    finally:
        holder.release()


def test_a_run_whose_lock_was_taken_over_stops_sending_and_fails(
    run_import: RunImport,
    emulator: Emulator,
    ledger_conn: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The holder's row is gone (taken over after its heartbeat was late): its next heartbeat marks the
    lock lost, the engine stops starting rows (ImportLockLostError) and the task fails saying so, with
    every answer recorded; the next run sends only the rest."""
    import sqlalchemy as sa

    from airflow_provider_imagesearch.imports import lock as lock_module
    from tests.support.waiting import wait_until

    monkeypatch.setattr(lock_module, "HEARTBEAT_SECONDS", 0.2)
    manifest = _manifest(100, "lost")
    emulator.set_faults(latency_seconds=0.05)
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = run_import(manifest, max_concurrency=1)
        except Exception as error:
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    wait_until(lambda: len(api_requests(emulator)), lambda sent: sent >= 5, timeout=60)
    with ledger_conn["engine"].begin() as connection:
        connection.execute(sa.text(f"DELETE FROM {TABLE}_lock"))
    thread.join(timeout=60)
    error = outcome.get("error")
    assert error is not None, outcome
    assert "was taken over" in str(error)
    assert "every answer was recorded" in str(error)
    sent = len(library(emulator))
    assert sent < 100  # stopped: not the whole plan
    emulator.set_faults(reset=True)
    rerun = run_import(manifest)
    assert rerun["unchanged"] + rerun["added"] + rerun["updated"] == 100
    assert rerun["added"] + rerun["updated"] <= 100 - sent + 1  # at most the row in flight sent again
    assert set(library(emulator)) == {row["path"] for row in manifest}


def test_pg_a_live_holder_of_the_earlier_release_is_not_taken_over_after_the_upgrade(
    ledger_conn: dict[str, Any],
) -> None:
    """The earlier release keyed its session lock by the spelling of ``ledger_table``; this one keys by
    the lock table's oid. A run of the earlier release still importing during the upgrade (its row, its
    session lock under the spelled key) is alive to a run of this release with the same spelling."""
    import uuid

    import sqlalchemy as sa

    from airflow_provider_imagesearch.imports.lock import ImportLockedError, _key

    if ledger_conn["name"] != "postgres":
        pytest.skip("the session lock is PostgreSQL's")
    first = _lock("warm-up")  # creates the lock table
    first.acquire(0)
    first.release()
    token = uuid.uuid4().hex
    engine = ledger_conn["engine"]
    with engine.connect() as old_session:  # the earlier release's holder
        old_session.execute(sa.select(sa.func.pg_advisory_lock(_key(TABLE, "v1", INSTANCE, token))))
        old_session.commit()
        now = datetime.now(UTC)
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    f"INSERT INTO {TABLE}_lock VALUES ('{INSTANCE}', 'v1', 0, 1, :token, 'scheduled__old', "
                    "'worker-1', 4711, :now, :now)"
                ),
                {"token": token, "now": now},
            )
        with pytest.raises(ImportLockedError, match="scheduled__old"):
            _lock("manual__new").acquire(0)
        old_session.execute(sa.select(sa.func.pg_advisory_unlock_all()))
        old_session.commit()
    taker = _lock("manual__after")
    taker.acquire(0)  # the earlier release's run ended: its row is taken over
    taker.release()


def test_shards_of_one_split_hold_their_locks_together_and_other_splits_wait(
    ledger_conn: dict[str, Any],
) -> None:
    from airflow_provider_imagesearch.imports.lock import ImportLockedError

    shards = [_lock(f"shard-{i}", (i, 4)) for i in range(4)]
    for shard in shards:
        assert shard.acquire(0) >= 0  # disjoint slices: no wait
    try:
        # The error carries who holds what the refused run needs: every shard of another split, or the
        # run on its own slice of the same split.
        for other, blocking in (((0, 1), [0, 1, 2, 3]), ((1, 2), [0, 1, 2, 3]), ((2, 4), [2])):
            with pytest.raises(ImportLockedError) as refused:
                _lock("other", other).acquire(0)
            holders = sorted((h.run_id, h.shard_index, h.shard_count) for h in refused.value.holders)
            assert holders == [(f"shard-{i}", i, 4) for i in blocking]
        elsewhere = _lock("elsewhere", (0, 1), target="another")
        elsewhere.acquire(0)  # another target of the same ledger: never blocked
        elsewhere.release()
    finally:
        for shard in shards:
            shard.release()


def test_four_shards_import_the_manifest_and_prune_only_their_slice(
    run_import: RunImport, emulator: Emulator, ledger_conn: dict[str, Any]
) -> None:
    from airflow_provider_imagesearch.imports.manifest import path_key
    from airflow_provider_imagesearch.imports.plan import shard_of

    manifest = _manifest(40, "s")
    manifest.append({"tags": {"color": "red"}})  # no path: reported by shard 0 only
    results: dict[int, dict[str, Any]] = {}
    threads = [
        threading.Thread(
            target=lambda i=i: results.__setitem__(i, run_import(manifest, shard=[i, 4], max_failed=1))
        )
        for i in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sum(r["added"] for r in results.values()) == 40
    assert [results[i]["invalid"] for i in range(4)] == [1, 0, 0, 0]
    assert sum(r["rows"] for r in results.values()) == 41
    assert all(r["shard"] == [i, 4] for i, r in results.items())
    assert set(library(emulator)) == {row["path"] for row in manifest[:40]}

    kept = manifest[:20]
    gone = {row["path"] for row in manifest[20:40]}
    in_shard_1 = {path for path in gone if shard_of(path_key(path), 4) == 1}
    assert in_shard_1
    assert in_shard_1 != gone
    result = run_import(kept, shard=(1, 4), prune=True)
    assert result["pruned"] == len(in_shard_1)
    assert set(library(emulator)) == {row["path"] for row in kept} | (gone - in_shard_1)
    assert set(ledger_rows(ledger_conn["engine"])) == set(library(emulator))


def test_max_failed_counts_the_whole_manifests_invalid_rows_in_every_shard(
    run_import: RunImport, emulator: Emulator, ledger_conn: dict[str, Any]
) -> None:
    """Each shard's own bad rows are within ``max_failed``, the manifest's are not: every shard fails,
    naming both counts (every shard reads and checks the whole manifest)."""
    from airflow_provider_imagesearch.imports.manifest import path_key
    from airflow_provider_imagesearch.imports.plan import shard_of
    from airflow_provider_imagesearch.version_compat import AirflowFailException

    if ledger_conn["name"] != "sqlite":
        pytest.skip("the count does not depend on the ledger's database")
    bad: list[dict[str, Any]] = []
    per_shard = [0, 0]
    for i in range(100):  # not an OBS URL of the region: invalid; 1 row in shard 0, 2 in shard 1
        path = f"https://elsewhere.example.com/{i}.jpg"
        shard = shard_of(path_key(path), 2)
        if per_shard[shard] < shard + 1:
            per_shard[shard] += 1
            bad.append({"path": path})
    manifest = _manifest(6, "mf") + bad
    for index, own in ((0, 1), (1, 2)):
        with pytest.raises(AirflowFailException) as failure:
            run_import(manifest, shard=(index, 2), max_failed=2)
        assert (
            f"3 rows failed or were invalid ({own} in this shard, {3 - own} invalid in the other shards' "
            "slices) (max_failed=2" in str(failure.value)
        )
    results = [run_import(manifest, shard=(index, 2), max_failed=3) for index in range(2)]
    assert [r["invalid"] for r in results] == [1, 2]  # each reports its own slice's
    assert len(library(emulator)) == 6


def test_time_limit_stops_cleanly_and_the_next_run_does_the_rest(
    run_import: RunImport, emulator: Emulator, ledger_conn: dict[str, Any]
) -> None:
    manifest = _manifest(40, "t")
    emulator.set_faults(latency_seconds=0.1)
    first = run_import(manifest, max_concurrency=2, time_limit=1.5)
    assert 0 < first["added"] < 40
    assert first["remaining"] == 40 - first["added"]
    assert first["failed"] == 0
    held = set(library(emulator))
    rows = ledger_rows(ledger_conn["engine"])
    assert held <= set(rows)  # every image sent has its row
    assert {p for p, r in rows.items() if r["outcome"] == "added"} <= held
    emulator.set_faults(reset=True)
    second = run_import(manifest)
    assert second["unchanged"] == first["added"]
    assert second["remaining"] == 0
    assert set(library(emulator)) == {row["path"] for row in manifest}


def test_a_request_waiting_for_its_token_is_not_sent_past_the_deadline_or_after_a_stop() -> None:
    """No token is handed out at or after ``deadline``: a waiter whose slot falls there is refused at
    once, not slept into the deadline; a waiter behind it is refused when ``stop`` is set."""
    from airflow_provider_imagesearch.imports.pacing import RateStopped, RequestRate

    rate = RequestRate(1.0, deadline=time.monotonic() + 0.5)
    rate.acquire()  # the first token is now
    started = time.monotonic()
    with pytest.raises(RateStopped):
        rate.acquire()  # the next slot is about 1 s on, after the deadline
    assert time.monotonic() - started < 0.4  # refused, not slept out to the slot

    stop = threading.Event()
    paced = RequestRate(0.05, stop=stop)  # one token per 20 s
    paced.acquire()
    outcomes: list[str] = []

    def wait() -> None:
        try:
            paced.acquire()
            outcomes.append("sent")
        except RateStopped:
            outcomes.append("stopped")

    waiters = [threading.Thread(target=wait) for _ in range(2)]  # one sleeps in the lock, one queues
    for waiter in waiters:
        waiter.start()
    time.sleep(0.3)
    stop.set()
    for waiter in waiters:
        waiter.join(timeout=5)
    assert outcomes == ["stopped", "stopped"]


def test_max_rate_never_lets_more_requests_start_in_a_second_than_the_rate(
    run_import: RunImport, emulator: Emulator, ledger_conn: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counted where the bucket grants (the emulator's log stamps when answered); the benchmark also
    counts the emulator's one-second windows for 20,000 rows."""
    from airflow_provider_imagesearch.imports import pacing

    if ledger_conn["name"] != "sqlite":
        pytest.skip("pacing does not depend on the ledger's database")
    grants: list[float] = []
    original = pacing.RequestRate.acquire

    def recorded(self: pacing.RequestRate) -> None:
        original(self)
        grants.append(time.monotonic())

    monkeypatch.setattr(pacing.RequestRate, "acquire", recorded)
    emulator.set_faults(error_5xx_rate=0.1, error_5xx_kinds=["503_json"], random_seed=4)
    started = time.monotonic()
    result = run_import(_manifest(50, "r"), max_concurrency=8, max_rate=20)
    wall = time.monotonic() - started
    assert result["added"] + result["reconciled"] == 50
    sent = api_requests(emulator)
    assert len(grants) >= len(sent) >= 50  # every request took a token (retries included)
    busiest = max(sum(1 for t in grants if start <= t < start + 1.0) for start in grants)
    assert busiest <= 20
    assert wall >= (len(grants) - 1) / 20


@pytest.mark.parametrize(
    ("space", "other", "comparable"),
    [
        ("w1 (boot b1, pid:[4026531836])", "w1 (boot b1, pid:[4026531836])", True),
        ("w1 (boot b1, pid:[4026531836])", "w1 (boot b1, pid:[4026532001])", False),  # another container
        ("w1 (boot b1, pid:unknown)", "w1 (boot b1, pid:unknown)", False),  # namespace unreadable
        (
            "w1 (boot unknown, pid:[4026531836])",
            "w1 (boot unknown, pid:[4026531836])",
            False,
        ),  # boot unreadable
        ("w1", "w1", False),  # the bare host name an earlier release wrote
    ],
)
def test_pids_are_compared_only_within_one_fully_known_pid_space(
    space: str, other: str, comparable: bool
) -> None:
    """An identity with an unknown part is the same text in every container: never "the same pids"."""
    from airflow_provider_imagesearch.imports.lock import pids_comparable

    assert pids_comparable(space, other) is comparable


@pytest.mark.parametrize(
    ("driver", "libpq", "query", "expected"),
    [
        (
            "psycopg2",
            170011,
            {},
            {"keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count", "tcp_user_timeout"},
        ),
        (
            "psycopg",
            120000,
            {"keepalives_idle": "60"},
            {"keepalives", "keepalives_interval", "keepalives_count", "tcp_user_timeout"},
        ),
        (
            "psycopg2",
            110022,
            {},
            {"keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count"},
        ),
        ("psycopg2", None, {}, {"keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count"}),
        ("pg8000", 170011, {}, set()),
    ],
)
def test_the_lock_session_passes_tcp_user_timeout_only_to_a_libpq_that_knows_it(
    driver: str, libpq: int | None, query: dict[str, str], expected: set[str]
) -> None:
    """libpq before 12 refuses a connection with ``tcp_user_timeout`` ("invalid connection option")."""
    from airflow_provider_imagesearch.imports.lock import session_tcp_options

    assert set(session_tcp_options(driver, query, libpq)) == expected


def test_the_installed_drivers_libpq_version_is_read() -> None:
    from airflow_provider_imagesearch.imports.lock import libpq_version

    assert (libpq_version("psycopg2") or 0) >= 90000
    assert libpq_version("pg8000") is None
