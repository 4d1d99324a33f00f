"""Review r25e: the import result's ``throttled`` (issue 25, 9d9453b) where the change's own tests do not
look: a v2 import, a prune's deletes, a sharded import's shards, a run stopped by ``time_limit`` in the
middle of a 429 wait. Each passed on the reviewed change; they keep the figure honest."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from tests.imports.conftest import add_requests, obs

RunImport = Callable[..., dict[str, Any]]


@pytest.fixture
def one_backend(ledger_conn: dict[str, Any]) -> None:
    if ledger_conn["name"] != "sqlite":
        pytest.skip("the throttling does not depend on the ledger's database")


@pytest.mark.usefixtures("one_backend")
def test_a_v2_import_counts_its_throttling_episodes(run_v2_import: RunImport, emulator: Emulator) -> None:
    emulator.set_faults(sequence=["429", "429"], retry_after="0.001")
    result = run_v2_import([{"item_id": "a", "image_url": "https://cdn.example/a.jpg"}], max_concurrency=4)
    assert (result["added"], result["failed"], result["throttled"]) == (1, 0, 2)


@pytest.mark.usefixtures("one_backend")
def test_a_prunes_throttled_delete_counts_in_throttled(run_import: RunImport, emulator: Emulator) -> None:
    run_import([{"path": obs("kept.jpg")}, {"path": obs("gone.jpg")}])
    emulator.set_faults(sequence=["429"], retry_after="0.001")
    result = run_import([{"path": obs("kept.jpg")}], prune=True)
    assert (result["unchanged"], result["pruned"], result["failed"], result["throttled"]) == (1, 1, 0, 1)


@pytest.mark.usefixtures("one_backend")
def test_each_shard_counts_only_its_own_throttling(run_import: RunImport, emulator: Emulator) -> None:
    rows = [{"path": obs(f"s{n}.jpg")} for n in range(6)]
    emulator.set_faults(sequence=["429"], retry_after="0.001")
    first = run_import(rows, shard=(0, 2), max_concurrency=1)
    second = run_import(rows, shard=(1, 2), max_concurrency=1)
    assert (first["shard"], first["throttled"]) == ([0, 2], 1)
    assert (second["shard"], second["throttled"]) == ([1, 2], 0)
    assert first["added"] + second["added"] == 6


@pytest.mark.usefixtures("one_backend")
def test_a_run_its_time_limit_stops_in_a_429_wait_still_reports_the_throttling(
    run_import: RunImport, emulator: Emulator
) -> None:
    """The one row's add is throttled with a Retry-After far past the time limit: the run stops at its
    limit (the row is the next run's) and its XCom still says it was throttled. The limit only has to
    outlast reading a one-row manifest and sending one request."""
    emulator.set_faults(sequence=["429"], retry_after="3600")
    result = run_import([{"path": obs("late.jpg")}], max_concurrency=1, time_limit=15)
    assert (result["added"], result["remaining"], result["throttled"]) == (0, 1, 1)
    assert [r["status"] for r in add_requests(emulator)] == [429]


@pytest.mark.usefixtures("one_backend")
def test_the_import_operators_docstring_names_every_key_of_its_xcom(run_import: RunImport) -> None:
    from airflow_provider_imagesearch.operators.import_images import ImageSearchImportImagesOperator

    result = run_import([{"path": obs("doc.jpg")}])
    returns = (ImageSearchImportImagesOperator.__doc__ or "").split("Returns the counts", 1)[1]
    named = set(re.findall(r"``(\w+)``", returns.split(":param", 1)[0]))
    assert set(result) - named == set()
