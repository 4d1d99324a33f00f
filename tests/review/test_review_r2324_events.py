"""Review of issue 23 (event-driven scheduling): reproductions against the emulator over loopback.

The watchers run as in ``tests/triggers/test_event_trigger.py``: in this event loop through ``run()``,
each life rebuilt from the trigger's kwargs as a triggerer does, with an asset state store of the shape
the 3.3 triggerer hands a watcher (``aget``/``aset``).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any, cast

import pytest

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from airflow_provider_imagesearch.models import InstanceDetail
from airflow_provider_imagesearch.triggers import events as events_module
from airflow_provider_imagesearch.triggers.status_memory import StatusMemory
from airflow_provider_imagesearch.triggers.status_polling import Reading, StatusRound
from tests.triggers.test_event_trigger import CONN, FakeAssetStore, Watching, _set, _watch


@pytest.fixture(autouse=True)
def _quick_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events_module, "STORE_DELAY_SECONDS", 0.3)


@pytest.fixture
def conn(imagesearch_conn: Callable[..., str]) -> str:
    return imagesearch_conn("token", conn_id=CONN)


def _life(
    emulator: Emulator,
    store: FakeAssetStore,
    names: list[str],
    statuses: list[str],
    body: Callable[[Watching], Any],
) -> list[dict[str, Any]]:
    """One life of a watcher (a triggerer start), rebuilt from its kwargs, on ``store``."""

    async def scenario() -> list[dict[str, Any]]:
        trigger = _watch(names, statuses)
        trigger.asset_state_store = cast(Any, store)
        async with Watching(emulator, trigger) as watching:
            await body(watching)
            return watching.events

    return asyncio.run(scenario())


def test_a_fleet_edited_back_does_not_report_again_what_was_reported(conn: str, emulator: Emulator) -> None:
    """A user removes an instance from the watched fleet in the DAG file, and puts it back a day later.

    While the smaller fleet was watched, shop-a became NORMAL and the asset got its event (the
    catalogue was imported). When the fleet is edited back, the watcher resumes the memory of the
    *first* fleet (its key in the asset state store is derived from the instance list, and it was never
    removed), in which shop-a is still CREATION: it fires "shop-a CREATION -> NORMAL" a second time,
    with another event_id, so the import DAG runs again and the incident table gets a second row.
    docs/events.rst: "a status it had already reported does not fire again".
    """
    _set(emulator, "shop-a", "CREATION")
    _set(emulator, "shop-b", "CREATION")
    store = FakeAssetStore()
    first_fleet, edited_fleet = ["shop-a", "shop-b"], ["shop-a"]

    async def baseline(watching: Watching) -> None:
        await watching.until(lambda: len(store.saves) >= 1)
        await watching.rounds("shop-a", 2)

    assert _life(emulator, store, first_fleet, ["NORMAL"], baseline) == []

    async def becomes_ready(watching: Watching) -> None:
        await watching.rounds("shop-a", 2)
        _set(emulator, "shop-a", "NORMAL")
        await watching.until(lambda: bool(watching.events))
        await watching.until(
            lambda: any(s["known"].get("shop-a", [None])[0] == "NORMAL" for s in store.saves)
        )

    reported = _life(emulator, store, edited_fleet, ["NORMAL"], becomes_ready)
    assert [(e["instance_name"], e["new_status"]) for e in reported] == [("shop-a", "NORMAL")]

    async def quiet(watching: Watching) -> None:
        await watching.rounds("shop-a", 4)

    again = _life(emulator, store, first_fleet, ["NORMAL"], quiet)
    assert again == [], (
        f"reported again: {[(e['instance_name'], e['old_status'], e['event_id']) for e in again]}"
    )


def test_an_instance_recreated_while_the_triggerer_was_down_fires_when_it_is_ready(
    conn: str, emulator: Emulator
) -> None:
    """shop-a is NORMAL (baseline, stored). While the triggerer is down (an upgrade, a crash), the
    instance is deleted and created again under the same name, and is NORMAL again when the triggerer
    is back: a *new, empty* instance became ready, and the import DAG should load its catalogue.

    The watcher compares only the status string with what it stored (NORMAL == NORMAL) and fires
    nothing, although the details it reads (``registered_at``) show another instance. The docs promise
    on 3.3 that "a change made while the triggerer was down fires once it is back". The same happens
    without a restart when delete + re-create + ready fit in one poll interval.
    """
    _set(emulator, "shop-a", "NORMAL")
    emulator.upsert_instance(
        "shop-a", project_id=DEFAULT_PROJECT_ID, status="NORMAL", register_date_ms=1_700_000_000_000
    )
    store = FakeAssetStore()

    async def baseline(watching: Watching) -> None:
        await watching.until(lambda: len(store.saves) >= 1)
        await watching.rounds("shop-a", 2)

    assert _life(emulator, store, ["shop-a"], ["NORMAL"], baseline) == []
    # The triggerer is down: the instance is deleted, then created again and becomes ready.
    emulator.control.delete_instance(DEFAULT_PROJECT_ID, "shop-a")
    emulator.upsert_instance(
        "shop-a", project_id=DEFAULT_PROJECT_ID, status="NORMAL", register_date_ms=1_800_000_000_000
    )

    async def back(watching: Watching) -> None:
        await watching.rounds("shop-a", 4)

    events = _life(emulator, store, ["shop-a"], ["NORMAL"], back)
    assert [e["instance_name"] for e in events] == ["shop-a"]


def test_an_event_with_odd_unicode_in_the_details_can_be_sent_by_the_triggerer() -> None:
    """An instance whose tag or description holds a lone UTF-16 surrogate (what a Java service gives
    when it cuts an emoji in half at a length limit, sent as the JSON escape ``\\ud83d``) enters NORMAL.

    The watcher puts the details as they were parsed into the event payload. The 3.3 triggerer sends
    events to its supervisor msgpack-encoded; the lone surrogate makes that raise UnicodeEncodeError,
    which ``sync_state_to_supervisor`` does not handle (only NotImplementedError is): the trigger runner
    stops with "Trigger runner failed", taking every trigger of the triggerer with it, and on 3.3 the
    memory was not stored yet, so the restarted watcher fires the same event again: a crash loop.
    """
    from airflow.sdk.execution_time.comms import _new_encoder

    wire = '{"instanceName": "shop-a", "status": "NORMAL", "tags": ["cut \\ud83d"], "desc": "\\u202eRTL \\u0000 nul"}'
    detail = InstanceDetail.from_api(json.loads(wire), project_id=DEFAULT_PROJECT_ID)
    trigger = _watch(["shop-a"], ["NORMAL"])

    async def rounds() -> AsyncIterator[StatusRound]:
        yield StatusRound(1, time.time(), {"shop-a": Reading(status="CREATION")})
        yield StatusRound(2, time.time(), {"shop-a": Reading(status="NORMAL", instance=detail.to_dict())})
        await asyncio.sleep(3600)

    async def first_event() -> Any:
        events = cast(AsyncGenerator[Any, None], trigger.filter_shared_stream(rounds()))
        try:
            return await anext(events)
        finally:
            await events.aclose()

    event = asyncio.run(first_event())
    assert event.payload["instance_name"] == "shop-a"
    _new_encoder().encode(event)  # what the triggerer does before sending it to its supervisor


def test_two_watchers_with_other_statuses_on_one_loop_keep_their_own_memories(
    conn: str, emulator: Emulator
) -> None:
    """Held: sharing one poll loop does not mix what two watchers (NORMAL / failures) know or fire."""
    for name in ("shop-a", "shop-b"):
        _set(emulator, name, "CREATION")
    ready = _watch(["shop-a", "shop-b"], ["NORMAL"])
    failing = _watch(["shop-a"], ["ABNORMAL"])
    ready_store, failing_store = FakeAssetStore(), FakeAssetStore()
    ready.asset_state_store = cast(Any, ready_store)
    failing.asset_state_store = cast(Any, failing_store)

    async def scenario() -> list[dict[str, Any]]:
        async with Watching(emulator, ready, failing) as watching:
            await watching.rounds("shop-a", 2)
            _set(emulator, "shop-a", "ABNORMAL")
            await watching.until(lambda: len(watching.events) >= 1)
            await watching.rounds("shop-a", 2)
            _set(emulator, "shop-a", "NORMAL")
            await watching.until(lambda: len(watching.events) >= 2)
            await watching.rounds("shop-a", 3)
            return watching.events

    events = asyncio.run(scenario())
    assert [(e["watched_statuses"], e["old_status"], e["new_status"]) for e in events] == [
        (["ABNORMAL"], "CREATION", "ABNORMAL"),
        (["NORMAL"], "ABNORMAL", "NORMAL"),
    ]
    # One key per instance (the memory is kept per instance since this review): the instances each
    # store holds are those of its own watcher.
    assert set().union(*(v["known"] for v in failing_store.values.values())) == {"shop-a"}
    assert set().union(*(v["known"] for v in ready_store.values.values())) == {"shop-a", "shop-b"}


def test_a_flap_within_one_interval_is_not_seen() -> None:
    """Held as designed (polling), but not documented: NORMAL -> ABNORMAL -> NORMAL between two reads
    is no change at all. docs/events.rst says "Leaving and entering again fires again" without saying
    both changes must be seen by a read."""
    memory = StatusMemory(["NORMAL"], 1)
    assert memory.observe("shop-a", "NORMAL") is None
    assert memory.observe("shop-a", "NORMAL") is None  # the ABNORMAL in between was never read


def test_the_memory_of_each_instance_is_as_small_as_documented_whatever_the_fleet() -> None:
    """docs/events.rst said "The memory takes about 30 bytes per instance: Airflow warns above 64 KB per
    value ([state_store] max_value_storage_bytes), about 2,000 instances per watcher." With instance
    names of the allowed 16 characters and a few changes each, an entry was ~44 bytes: 2,000 instances
    were ~88 KB in one value, and the triggerer logged Airflow's size warning at every save.

    (Rewritten with the fix: the memory is now one value per instance, so the figure that matters is
    the size of one instance's value, which the docs now give; it is measured here at its largest: the
    longest name and status, a six-digit change count, a creation time to the microsecond. A
    2,000-instance fleet is 2,000 such values.)
    """
    import re
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[2] / "docs" / "events.rst").read_text()
    found = re.search(r"Each instance's entry is its own value of at most (\d+) bytes", docs)
    assert found is not None
    documented = int(found.group(1))
    memory = StatusMemory(["NORMAL"], 1_767_225_600_000)
    names = [f"fleet-{index:010d}" for index in range(2000)]  # 16 characters, the longest allowed
    created = "2023-11-14T22:13:20.123000Z"  # registered_at as a reading gives it, to the microsecond
    for status in ("CREATION", "NORMAL", "DELETING_FAILED", "NORMAL"):
        for name in names:
            memory.observe(name, status, created)
    values = [value for _, value in memory.unstored().values()]
    assert len(values) == 2000
    worst = StatusMemory(["NORMAL"], 1)
    stored = memory.to_stored([names[0]])
    stored["known"][names[0]][:2] = ["DELETING_FAILED", 999_999]
    assert worst.resume(names[0], stored)
    values.append(worst.to_stored([names[0]]))
    size = max(len(json.dumps(value)) for value in values)
    assert size <= documented, f"an instance's value: {size} bytes, documented at most {documented}"
    assert size > documented * 0.7, f"the documented {documented} bytes overstate {size}"


def test_record_incidents_two_runs_at_once_on_postgres(
    postgres_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runs of the incident DAG recording the same event at once (the DAG sets max_active_runs=1,
    but a run cleared by hand, or the function reused in a DAG without it, runs beside another).

    ``record_incidents`` reads which event ids are known, then inserts the others: the second writer
    does not see the first one's uncommitted row, and its INSERT fails with a primary-key violation
    instead of leaving the row as it is (the task fails; a retry then passes).
    """
    import importlib.util
    from pathlib import Path

    import sqlalchemy as sa

    spec = importlib.util.spec_from_file_location(
        "events_dag_r2324", Path(__file__).resolve().parents[2] / "dags" / "imagesearch_instance_events.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setenv("AIRFLOW_CONN_INCIDENTS_R2324", postgres_uri)
    payload = {
        "event_id": "abc123-1767225600000-shop-a-1",
        "instance_name": "shop-a",
        "project_id": DEFAULT_PROJECT_ID,
        "old_status": "NORMAL",
        "new_status": "ABNORMAL",
        "meaning": "x",
        "observed_at": "2026-01-01T10:00:00Z",
    }
    table = "incidents_r2324"
    engine = sa.create_engine(postgres_uri.replace("postgres://", "postgresql+psycopg2://"))
    with engine.begin() as connection:
        connection.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
    # The table, created by an earlier run's event.
    module.record_incidents(
        [{**payload, "event_id": "seed"}], db_conn_id="incidents_r2324", table=table, run_id="r0"
    )

    # Run 1 has inserted the event's row and not committed yet when run 2 checks.
    other = engine.connect()
    transaction = other.begin()
    other.execute(
        sa.text(
            f"INSERT INTO {table} (event_id, instance_name, new_status, observed_at, dag_run_id, recorded_at) "
            "VALUES (:e, 'shop-a', 'ABNORMAL', now(), 'run-1', now())"
        ),
        {"e": payload["event_id"]},
    )
    outcome: dict[str, Any] = {}

    def second_run() -> None:
        try:
            outcome["result"] = module.record_incidents(
                [payload], db_conn_id="incidents_r2324", table=table, run_id="run-2"
            )
        except Exception as error:
            outcome["error"] = error

    thread = threading.Thread(target=second_run)
    thread.start()
    time.sleep(2.0)  # run 2 is now waiting on run 1's row
    transaction.commit()
    other.close()
    thread.join(60)
    engine.dispose()
    assert "error" not in outcome, f"the second run failed: {type(outcome['error']).__name__}"
    assert outcome["result"]["already_recorded"] + outcome["result"]["recorded"] == 1


def test_a_quota_smaller_than_the_fleet_still_reads_every_instance_in_turn(
    conn: str, emulator: Emulator
) -> None:
    """The account's request quota lets only part of a round through (here 2 of 4 reads, then 429
    after the hook's retries). Each round stops at the throttled read, as documented, but every round
    starts again from the first name in sorted order: shop-c and shop-d are never read while the quota
    holds, so shop-d becoming NORMAL never fires, round after round, whatever the backoff. Reading on
    from where the last round stopped would watch the whole fleet, only more slowly.
    """
    fleet = ["shop-a", "shop-b", "shop-c", "shop-d"]
    for name in fleet:
        _set(emulator, name, "CREATION")

    async def scenario() -> tuple[int, list[dict[str, Any]]]:
        trigger = _watch(fleet, ["NORMAL"], max_concurrency=1)
        async with Watching(emulator, trigger) as watching:
            await watching.rounds("shop-d", 2)  # the baseline, before the quota bites
            emulator.set_faults(retry_after="0", sequence=(["ok", "ok"] + ["429"] * 5) * 5)
            _set(emulator, "shop-d", "NORMAL")
            before = watching.reads("shop-d")
            await watching.until(lambda: not emulator.control.faults()["sequence"], timeout=120)
            return watching.reads("shop-d") - before, list(watching.events)

    reads_of_d, events = asyncio.run(scenario())
    assert reads_of_d > 0, (reads_of_d, events)
    assert [e["instance_name"] for e in events] == ["shop-d"]


@pytest.mark.usefixtures("airflow_db")
def test_running_the_import_dag_by_hand_acts_on_an_instance_that_is_ready_now(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
    emulator: Emulator,
    imagesearch_conn: Callable[..., str],
) -> None:
    """docs/events.rst: "An instance that is already NORMAL when the watcher starts does not fire ...
    (To act on instances that are ready now, run the DAG once by hand.)" A newcomer does that with the
    example's ``imagesearch_import_on_ready``: a manual run has no triggering asset event, so
    ``instances_that_became_ready`` returns ``[]``, the import maps over nothing, and the run succeeds
    having imported nothing; the DAG has no parameter to name an instance.
    """
    import importlib.util
    from pathlib import Path

    from tests.support.dagrun import run_dag, states

    conn_id = imagesearch_conn("token", conn_id="imagesearch_manual_run")
    monkeypatch.setenv("IMAGESEARCH_EVENTS_CONN_ID", conn_id)
    monkeypatch.setenv("IMAGESEARCH_EVENTS_INSTANCES", "catalog-demo")
    monkeypatch.setenv(
        "AIRFLOW_CONN_MANUAL_LEDGER", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "ledger.db")})
    )
    # (With the fix: the instance has the tags the sample catalogue uses, as imagesearch_catalog_import
    # creates it; without them every row is refused with IS.9003 and the import fails.)
    emulator.upsert_instance(
        "catalog-demo", project_id=DEFAULT_PROJECT_ID, status="NORMAL", images={}, tags=["color", "size"]
    )
    spec = importlib.util.spec_from_file_location(
        "events_dag_manual_r2324",
        Path(__file__).resolve().parents[2] / "dags" / "imagesearch_instance_events.py",
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dag = module.imagesearch_import_on_ready()
    dag_run = run_dag(dag, run_conf={"db_conn_id": "manual_ledger"})
    print(states(dag_run))
    images = emulator.control.state()["images"].get(f"{DEFAULT_PROJECT_ID}/catalog-demo", {})
    assert len(images) > 0, f"nothing imported by the manual run: {states(dag_run)}"
