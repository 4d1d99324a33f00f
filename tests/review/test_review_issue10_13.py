"""Reproductions of defects found in the review of issues #10 and #13 (bulk import, batch search, v2).

Each test FAILS on the reviewed code (e677760) against the emulator over loopback.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from tests.imports.conftest import ledger_rows, library, obs

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
