"""How a prune reads the answer to its delete (docs/bulk-import.rst, "Pruning").

A delete refused because the path is not there is checked: a path the library no longer holds is
pruned (its ledger row forgotten), one it still holds fails the row and keeps its row. A delete the
gateway failed (a 5xx, a 429 past the retry budget) or the credentials refused is not taken for a
missing path: no check, the row stays for the next run, and a refusal of the credentials fails the task.
Against the emulator over loopback HTTP, the ledger on real SQLite.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from airflow_provider_imagesearch.emulator.routes import R_CHECK, R_DELETE_IMAGE
from tests.imports.conftest import INSTANCE, LEDGER_CONN, library, obs
from tests.support.connections import set_connection

KEPT, GONE = obs("prune/kept.jpg"), obs("prune/gone.jpg")


@pytest.fixture(autouse=True)
def _sqlite_ledger(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    set_connection(monkeypatch, LEDGER_CONN, conn_type="sqlite", host=str(tmp_path / "ledger.db"))


@pytest.fixture
def run(imagesearch_conn: Callable[..., str], catalog: str) -> Callable[..., dict[str, Any]]:
    """``run(manifest, extras={connection extras}, **operator kwargs)`` -> the task's XCom value."""
    from airflow_provider_imagesearch.operators.import_images import ImageSearchImportImagesOperator

    counter = {"n": 0}

    def go(manifest: Any, *, extras: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
        counter["n"] += 1
        conn_id = imagesearch_conn("aksk", **(extras or {}))
        op = ImageSearchImportImagesOperator(
            task_id=f"import_{counter['n']}",
            instance_name=catalog,
            manifest=manifest,
            imagesearch_conn_id=conn_id,
            **kwargs,
        )
        result: dict[str, Any] = op.execute({"run_id": f"run-{counter['n']}"})
        json.dumps(result)
        return result

    return go


def _ledger_paths(tmp_path: Path) -> dict[str, str]:
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT path, outcome FROM imagesearch_import_ledger WHERE instance_name = :i"),
                {"i": INSTANCE},
            )
            return dict(rows.tuples().all())
    finally:
        engine.dispose()


def _day_one(run: Callable[..., dict[str, Any]], emulator: Emulator, *, keep_gone: bool) -> None:
    """Both paths added and recorded; then ``GONE`` leaves the manifest (and maybe the library)."""
    run([{"path": KEPT}, {"path": GONE}])
    if not keep_gone:
        # Removed behind the ledger's back (a manual delete): the ledger still says it may be held.
        emulator.upsert_instance(
            INSTANCE, project_id=DEFAULT_PROJECT_ID, tags=["color", "size"], images={KEPT: {}}
        )
    emulator.reset_stats()


def _prune_routes(emulator: Emulator) -> list[tuple[str, int]]:
    return [
        (r["route"], r["status"]) for r in emulator.requests_log() if r["route"] in (R_DELETE_IMAGE, R_CHECK)
    ]


def test_a_path_already_gone_from_the_library_is_pruned_after_a_check(
    run: Callable[..., dict[str, Any]], emulator: Emulator, tmp_path: Path
) -> None:
    _day_one(run, emulator, keep_gone=False)
    result = run([{"path": KEPT}], prune=True)
    assert (result["pruned"], result["failed"]) == (1, 0), result
    assert _prune_routes(emulator) == [(R_DELETE_IMAGE, 400), (R_CHECK, 200)]
    assert _ledger_paths(tmp_path) == {KEPT: "added"}


def test_a_refused_delete_of_a_path_still_held_fails_and_keeps_its_row(
    run: Callable[..., dict[str, Any]], emulator: Emulator, tmp_path: Path
) -> None:
    """IS.0005 (a service error that changed nothing) on the delete: the check finds the image."""
    _day_one(run, emulator, keep_gone=True)
    emulator.set_faults(sequence=["IS.0005"])
    result = run([{"path": KEPT}], prune=True, max_failed=1)
    assert (result["pruned"], result["failed"]) == (0, 1), result
    assert set(library(emulator)) == {KEPT, GONE}
    assert _ledger_paths(tmp_path) == {KEPT: "added", GONE: "pruning"}


@pytest.mark.parametrize(
    ("fault", "extras"),
    [
        ("500_json", {"max_attempts": 1}),
        ("429", {"retry_max_elapsed": 0}),
    ],
)
def test_a_delete_the_gateway_failed_is_not_taken_for_a_missing_path(
    fault: str,
    extras: dict[str, Any],
    run: Callable[..., dict[str, Any]],
    emulator: Emulator,
    tmp_path: Path,
) -> None:
    """The delete never reached the service: nothing tells whether the path is held, so no check."""
    _day_one(run, emulator, keep_gone=False)
    emulator.set_faults(sequence=[fault])
    result = run([{"path": KEPT}], prune=True, max_failed=1, extras=extras)
    assert (result["pruned"], result["failed"]) == (0, 1), result
    assert [route for route, _ in _prune_routes(emulator)] == [R_DELETE_IMAGE]
    assert _ledger_paths(tmp_path) == {KEPT: "added", GONE: "pruning"}


def test_a_delete_the_credentials_may_not_make_fails_the_task(
    run: Callable[..., dict[str, Any]], emulator: Emulator, tmp_path: Path
) -> None:
    _day_one(run, emulator, keep_gone=False)
    emulator.set_faults(sequence=["403"])
    with pytest.raises(Exception, match="403") as raised:
        run([{"path": KEPT}], prune=True)
    assert "DELETE" in str(raised.value)
    assert GONE in _ledger_paths(tmp_path)


def test_a_delete_the_hook_sent_again_after_a_503_counts_as_resent(
    run: Callable[..., dict[str, Any]], emulator: Emulator, tmp_path: Path
) -> None:
    _day_one(run, emulator, keep_gone=True)
    emulator.set_faults(sequence=["503_json"])
    result = run([{"path": KEPT}], prune=True, extras={"backoff_initial": 0, "backoff_max": 0})
    assert (result["pruned"], result["resent"]) == (1, 1), result
    assert set(library(emulator)) == {KEPT}
    assert _ledger_paths(tmp_path) == {KEPT: "added"}
