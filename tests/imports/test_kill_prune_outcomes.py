"""What a prune makes of its delete's answer. The path is known from the ledger only; its image may be
gone already (someone deleted it in the console). A refusal (a 4xx other than 429) is read back: the
image gone is pruned, the image still there is a failed prune. A 5xx or a 429 past the retry budget is a
failed prune without a read-back (the next run tries again); a code that dooms every row stops the import.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from airflow_provider_imagesearch.emulator.routes import R_CHECK, R_DELETE_IMAGE
from airflow_provider_imagesearch.imports import engine as engine_module
from airflow_provider_imagesearch.version_compat import AirflowFailException
from tests.imports.conftest import INSTANCE, ledger_rows, library, obs
from tests.support.clocks import FrozenMonotonic

RunImport = Callable[..., dict[str, Any]]

KEPT: dict[str, Any] = {"path": obs("kept.jpg"), "tags": {"color": "red"}}
GONE: dict[str, Any] = {"path": obs("gone.jpg"), "tags": {"color": "blue"}}


@pytest.fixture
def one_backend(ledger_conn: dict[str, Any]) -> None:
    if ledger_conn["name"] != "sqlite":
        pytest.skip("what a prune makes of an answer does not depend on the ledger's database")


def _routes(emulator: Emulator, route: str) -> list[dict[str, Any]]:
    return [r for r in emulator.requests_log() if r["route"] == route]


def _remove_from_library(emulator: Emulator, path: str) -> None:
    """Someone deletes the image in the console: the library loses it, the ledger does not know."""
    images = emulator.control.state()["images"][f"{DEFAULT_PROJECT_ID}/{INSTANCE}"]
    kept = {p: {"tags": image.get("tags", {})} for p, image in images.items() if p != path}
    emulator.upsert_instance(INSTANCE, project_id=DEFAULT_PROJECT_ID, tags=["color", "size"], images=kept)


def _prune_run(imagesearch_conn: Callable[..., str], **extra: Any) -> dict[str, Any]:
    from airflow_provider_imagesearch.operators.import_images import ImageSearchImportImagesOperator

    op = ImageSearchImportImagesOperator(
        task_id="prune",
        instance_name=INSTANCE,
        manifest=[KEPT],
        prune=True,
        imagesearch_conn_id=imagesearch_conn("aksk", conn_id="prune_conn", **extra),
    )
    result: dict[str, Any] = op.execute({"run_id": "prune-run"})
    return result


@pytest.mark.usefixtures("one_backend")
def test_a_prune_refused_because_the_image_is_gone_already_is_pruned(
    run_import: RunImport, emulator: Emulator, ledger_conn: dict[str, Any]
) -> None:
    run_import([KEPT, GONE])
    _remove_from_library(emulator, GONE["path"])
    emulator.reset_stats()
    result = run_import([KEPT], prune=True)
    assert (result["pruned"], result["failed"]) == (1, 0)
    assert [r["status"] for r in _routes(emulator, R_DELETE_IMAGE)] == [400]  # refused: no such image
    assert len(_routes(emulator, R_CHECK)) == 1  # read back: gone
    assert set(ledger_rows(ledger_conn["engine"])) == {KEPT["path"]}


@pytest.mark.usefixtures("one_backend")
def test_a_prune_answered_500_is_a_failed_prune_without_a_read_back(
    run_import: RunImport, emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    """Even with the image gone already: a server error says nothing of the delete; the next run tries it
    again."""
    run_import([KEPT, GONE])
    _remove_from_library(emulator, GONE["path"])
    emulator.reset_stats()
    emulator.set_faults(sequence=["500_json"])
    with pytest.raises(AirflowFailException, match=r"ledger \('https://[^']*/gone\.jpg'\): "):
        _prune_run(imagesearch_conn, max_attempts=1)
    assert [r["status"] for r in _routes(emulator, R_DELETE_IMAGE)] == [500]
    assert _routes(emulator, R_CHECK) == []


@pytest.mark.usefixtures("one_backend")
def test_a_prune_still_throttled_past_max_elapsed_is_a_failed_prune_without_a_read_back(
    run_import: RunImport,
    emulator: Emulator,
    imagesearch_conn: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run_import([KEPT, GONE])
    _remove_from_library(emulator, GONE["path"])
    emulator.reset_stats()
    # By a clock that does not move only the wait counts: the first backoff already passes max_elapsed 0.
    monkeypatch.setattr(engine_module, "time", FrozenMonotonic())
    emulator.set_faults(sequence=["429"], retry_after="soon")
    with pytest.raises(AirflowFailException, match=r"ledger \('https://[^']*/gone\.jpg'\): "):
        _prune_run(imagesearch_conn, retry_max_elapsed=0, backoff_initial=0.01)
    assert [r["status"] for r in _routes(emulator, R_DELETE_IMAGE)] == [429]
    assert _routes(emulator, R_CHECK) == []


@pytest.mark.usefixtures("one_backend")
def test_a_prune_whose_first_delete_failed_and_was_resent_counts_the_resend(
    run_import: RunImport, emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    run_import([KEPT, GONE])
    emulator.reset_stats()
    emulator.set_faults(sequence=["503_json"])  # the hook sends the delete again
    result = _prune_run(imagesearch_conn)
    assert (result["pruned"], result["resent"]) == (1, 1)
    assert [r["status"] for r in _routes(emulator, R_DELETE_IMAGE)] == [503, 200]
    assert set(library(emulator)) == {KEPT["path"]}


@pytest.mark.usefixtures("one_backend")
def test_a_prune_into_an_instance_deleted_since_stops_the_import_without_a_read_back(
    run_import: RunImport, emulator: Emulator
) -> None:
    run_import([KEPT, GONE])
    emulator.control.delete_instance(DEFAULT_PROJECT_ID, INSTANCE)
    emulator.reset_stats()
    with pytest.raises(
        AirflowFailException, match=r"^ImageSearch instance 'catalog' does not exist .* IS\.0007"
    ):
        run_import([KEPT], prune=True)
    assert len(_routes(emulator, R_DELETE_IMAGE)) == 1
    assert _routes(emulator, R_CHECK) == []
