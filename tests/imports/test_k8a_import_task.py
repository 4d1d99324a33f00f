"""What an import task shows beyond its counts: the progress line of its manifest's reading (with how far
it got, when the manifest knows its size), the reasons of a failure listed one after another, the prune
it refused named in its failure, and a shard that goes on while another shard of its split holds its
lock. Against the emulator, ledger on SQLite (tests/imports/conftest.py's ``import_into``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from tests.imports.conftest import RunImport, library, obs

INSTANCE = "k8a-task"
OUTSIDE = "https://elsewhere.example.com/k8a.jpg"  # not an OBS URL of the region: an invalid row


@pytest.fixture
def run(import_into: Callable[..., RunImport]) -> RunImport:
    return import_into(INSTANCE)


def test_reading_a_manifest_of_known_size_logs_how_far_it_got(
    run: RunImport, capfd: pytest.CaptureFixture[str]
) -> None:
    """A list manifest knows its size: the reading's line says the share read (all of it, at once)."""
    run([{"path": obs(f"k8a/read{i}.jpg"), "tags": {"color": "red"}} for i in range(2)])
    shown = "".join(capfd.readouterr())
    assert re.search(r"Reading manifest: 2 rows read and checked \(100%, ETA 0s\), ", shown), shown


def test_a_failure_lists_its_reasons_one_after_another(run: RunImport) -> None:
    """A row refused by an earlier run and unchanged since, and a new invalid row: two reasons, each
    counted, separated by a comma."""
    from airflow_provider_imagesearch.version_compat import AirflowFailException

    run([{"path": OUTSIDE}], max_failed=1)
    with pytest.raises(AirflowFailException) as failed:
        run([{"path": OUTSIDE}, {"path": OUTSIDE + "?2"}])
    text = str(failed.value)
    assert re.search(
        r"\}\)\. By reason: known invalid \(unchanged since refused\) x1, INVALID_ROW x1\. First ", text
    ), text


def test_a_failure_after_a_refused_prune_says_the_prune_was_refused(
    run: RunImport, emulator: Emulator
) -> None:
    """Bad rows past ``max_failed`` with ``prune``: the failure names the refused prune, as a sentence of
    its own between the result and the reasons; the library keeps every image."""
    from airflow_provider_imagesearch.version_compat import AirflowFailException

    paths = [obs(f"k8a/keep{i}.jpg") for i in range(3)]
    run([{"path": path} for path in paths])
    with pytest.raises(AirflowFailException) as failed:
        run([{"path": paths[0]}, {"path": OUTSIDE}, {"path": OUTSIDE + "?2"}], prune=True, max_failed=1)
    text = str(failed.value)
    assert re.search(
        r"\}\)\. Prune refused before any delete: 2 rows failed or were invalid, more than max_failed=1\. "
        r"By reason: INVALID_ROW x2\. ",
        text,
    ), text
    assert set(library(emulator, INSTANCE)) == set(paths)


def test_a_shard_goes_on_while_another_shard_of_its_split_holds_its_lock(
    run: RunImport, emulator: Emulator, sqlite_ledger: Path
) -> None:
    """Shard 1 of 2 takes its own slot of the lock: shard 0's run holding its slot does not stop it, even
    with no wait allowed."""
    import sqlalchemy as sa

    from airflow_provider_imagesearch.imports.lock import ImportLock

    manifest = [{"path": obs(f"k8a/shard{i}.jpg")} for i in range(8)]
    engine = sa.create_engine(f"sqlite:///{sqlite_ledger}")
    holder = ImportLock(engine, "imagesearch_import_ledger", "v1", INSTANCE, "shard-0-run", shard=(0, 2))
    holder.acquire(0)
    try:
        result = run(manifest, shard=(1, 2), lock_timeout=0)
    finally:
        holder.release()
        engine.dispose()
    assert result["shard"] == [1, 2]
    assert 0 < result["added"] < 8, result
    assert len(library(emulator, INSTANCE)) == result["added"]
