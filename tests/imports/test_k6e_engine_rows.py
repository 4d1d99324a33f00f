"""One row's requests and what the import records of them: resends, codes, and what the library may hold.

Each test drives one row (or two) through a fault the emulator answers, or one the transport raises
(a connection never made, a file gone after planning), and reads the result, the ledger row and the
requests the emulator saw.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.imports.ledger import Ledger
from tests.imports.conftest import RunImport, add_requests, library, obs, sqlite_ledger_rows, v2_routes

INSTANCE = "k6e-rows"
SERVICE = "k6e-rows-v2"
NOT_AN_IMAGE = b"plain text, not JPEG, PNG or BMP"


@pytest.fixture
def run(import_into: Callable[..., RunImport]) -> RunImport:
    """One attempt per hook call: every failure reaches the engine's own rules."""
    return import_into(INSTANCE, max_attempts=1)


def _ledger(path: Path, key: str, instance: str = INSTANCE) -> dict[str, Any]:
    return sqlite_ledger_rows(path, instance)[key]


def test_a_request_that_never_reached_the_service_is_sent_again_as_a_plain_add(
    run: RunImport, emulator: Emulator, sqlite_ledger: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection never made cannot have taken effect: the row is sent again, recorded ``added``
    (not ``retried``), with nothing counted as resent."""
    import requests

    send = requests.adapters.HTTPAdapter.send
    refused = {"n": 0}

    def first_connect_times_out(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        if refused["n"] == 0:
            refused["n"] += 1
            raise requests.exceptions.ConnectTimeout("connect timed out", request=request)
        return send(self, request, *args, **kwargs)

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", first_connect_times_out)
    row = {"path": obs("k6e/never.jpg"), "tags": {"color": "red"}}
    result = run([row])
    assert (result["added"], result["retried"], result["resent"], result["failed"]) == (1, 0, 0, 0), result
    assert [r["status"] for r in add_requests(emulator)] == [200]
    assert _ledger(sqlite_ledger, row["path"])["outcome"] == "added"
    assert set(library(emulator, INSTANCE)) == {row["path"]}


def test_each_resend_after_an_ambiguous_answer_is_counted(run: RunImport, emulator: Emulator) -> None:
    emulator.set_faults(sequence=["500_json", "500_json"])
    result = run([{"path": obs("k6e/twice.jpg")}])
    assert (result["retried"], result["resent"]) == (1, 2), result
    assert [r["status"] for r in add_requests(emulator)] == [500, 500, 200]


def test_the_resends_of_every_row_add_up(run: RunImport, emulator: Emulator) -> None:
    emulator.set_faults(sequence=["500_json", "ok", "500_json", "ok"])
    result = run([{"path": obs(f"k6e/each{i}.jpg")} for i in range(2)], max_concurrency=1)
    assert (result["retried"], result["resent"]) == (2, 2), result


def test_v2_the_hooks_own_resends_and_the_engines_add_up(
    import_into: Callable[..., RunImport], emulator: Emulator
) -> None:
    """A v2 add (sent with force) is retried by the hook too: two hook calls of two attempts, three
    resends in all (one by the engine, two by the hook)."""
    run = import_into(SERVICE, v2=True, max_attempts=2, backoff_initial=0.01)
    emulator.set_faults(sequence=["500_json"] * 3)
    result = run([{"item_id": "b", "image_url": "https://cdn.example.com/k6e-b.jpg", "desc": "shoe"}])
    assert (result["retried"], result["resent"]) == (1, 3), result
    assert v2_routes(emulator) == ["add"] * 4


def test_v2_a_changed_description_is_an_update_a_new_item_an_add(
    import_into: Callable[..., RunImport], emulator: Emulator
) -> None:
    run = import_into(SERVICE, v2=True)
    row = {"item_id": "a", "image_url": "https://cdn.example.com/k6e-a.jpg", "desc": "one"}
    assert run([row])["added"] == 1
    assert v2_routes(emulator) == ["add"]
    emulator.reset_stats()
    assert run([{**row, "desc": "two"}])["updated"] == 1
    assert v2_routes(emulator) == ["update"]


def test_a_service_error_is_recorded_with_its_code_and_message(
    run: RunImport, emulator: Emulator, sqlite_ledger: Path
) -> None:
    """The failed row's ledger row and the task's failure both carry the service's code and message; the
    library may hold anything at that path now (held unknown), so it is overwritten next time."""
    from airflow_provider_imagesearch.version_compat import AirflowFailException

    emulator.set_faults(sequence=["IS.0005"])
    row = {"path": obs("k6e/refused.jpg"), "tags": {"color": "red"}}
    with pytest.raises(AirflowFailException) as failed:
        run([row])
    assert "IS.0005 The header is missing or empty." in str(failed.value)
    ledger = _ledger(sqlite_ledger, row["path"])
    assert (ledger["outcome"], ledger["error_code"], ledger["error_message"]) == (
        "failed",
        "IS.0005",
        "The header is missing or empty.",
    )
    assert (ledger["held_fingerprint"], ledger["attempts"]) == ("?", 1)


def test_a_file_gone_after_planning_fails_its_row_naming_the_os_error(
    run: RunImport, emulator: Emulator, sqlite_ledger: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The row's file is deleted between planning and sending: the row fails ``FILE_ERROR`` with the OS
    error (cut to 1,000 characters in the ledger), nothing is sent, and the other row is added."""
    from airflow_provider_imagesearch.version_compat import AirflowFailException

    deep = tmp_path
    for part in range(6):  # a path well over 1,000 characters: the OS error repeats it
        deep = deep / (f"d{part}" + "x" * 200)
    deep.mkdir(parents=True)
    image = deep / "gone.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + b"G" * 64)
    intend = Ledger.intend

    def intend_then_delete(self: Ledger, entries: Any) -> None:
        intend(self, entries)
        image.unlink(missing_ok=True)

    monkeypatch.setattr(Ledger, "intend", intend_then_delete)
    kept = {"path": obs("k6e/kept.jpg")}
    with pytest.raises(AirflowFailException) as failed:
        run([{"path": "sku-gone", "file": str(image)}, kept])
    assert "FILE_ERROR FileNotFoundError: [Errno 2]" in str(failed.value)
    ledger = _ledger(sqlite_ledger, "sku-gone")
    assert (ledger["outcome"], ledger["error_code"]) == ("failed", "FILE_ERROR")
    assert ledger["error_message"].startswith("FileNotFoundError: [Errno 2] No such file or directory: ")
    assert len(ledger["error_message"]) == 1000
    assert [r["status"] for r in add_requests(emulator)] == [200]
    assert set(library(emulator, INSTANCE)) == {kept["path"]}


def test_a_row_refused_after_an_ambiguous_answer_may_have_changed_the_library(
    run: RunImport, emulator: Emulator, sqlite_ledger: Path, tmp_path: Path
) -> None:
    """The first send's 500 may have taken effect; the resend is refused (not an image): the row is
    invalid, and the ledger says the library holds unknown content at that path."""
    bad = tmp_path / "bad.png"
    bad.write_bytes(NOT_AN_IMAGE)
    emulator.set_faults(sequence=["500_json"])
    result = run([{"path": "sku-bad", "file": str(bad)}], max_failed=1)
    assert (result["invalid"], result["resent"]) == (1, 1), result
    ledger = _ledger(sqlite_ledger, "sku-bad")
    assert (ledger["outcome"], ledger["error_code"], ledger["held_fingerprint"]) == (
        "invalid",
        "IS.0002",
        "?",
    )


def test_a_row_refused_without_doubt_keeps_what_the_library_held_and_is_pruned_later(
    run: RunImport, emulator: Emulator, sqlite_ledger: Path
) -> None:
    """A path imported, then listed with a tag the checks refuse: nothing was sent, so the ledger still
    says the library holds the first content, and a later prune deletes that image."""
    path = obs("k6e/held.jpg")
    run([{"path": path, "tags": {"color": "red"}}])
    held = _ledger(sqlite_ledger, path)["held_fingerprint"]
    assert held not in (None, "?")
    emulator.reset_stats()
    result = run([{"path": path, "tag.color": "r\udcffd"}], max_failed=1)
    assert result["invalid"] == 1, result
    assert add_requests(emulator) == []
    ledger = _ledger(sqlite_ledger, path)
    assert (ledger["outcome"], ledger["held_fingerprint"]) == ("invalid", held)
    other = obs("k6e/other.jpg")
    assert run([{"path": other}], prune=True)["pruned"] == 1
    assert set(library(emulator, INSTANCE)) == {other}


def test_every_failed_prune_is_counted(run: RunImport, emulator: Emulator) -> None:
    kept, *gone = [{"path": obs(f"k6e/p{i}.jpg")} for i in range(3)]
    run([kept, *gone])
    emulator.set_faults(sequence=["500_json", "500_json"])
    result = run([kept], prune=True, max_failed=5)
    assert (result["pruned"], result["failed"]) == (0, 2), result
    assert set(library(emulator, INSTANCE)) == {r["path"] for r in (kept, *gone)}


def test_rows_refused_before_and_unchanged_since_are_counted_by_that_reason(run: RunImport) -> None:
    from airflow_provider_imagesearch.version_compat import AirflowFailException

    outside = [{"path": f"https://elsewhere.example.com/k6e-{i}.jpg"} for i in range(2)]
    assert run(outside, max_failed=2)["invalid"] == 2
    with pytest.raises(AirflowFailException) as failed:
        run(outside, max_failed=1)
    assert "By reason: known invalid (unchanged since refused) x2" in str(failed.value)


def test_the_send_phase_lasts_no_longer_than_the_whole_import(run: RunImport) -> None:
    result = run([{"path": obs("k6e/phase.jpg")}])
    assert 0 <= result["phases"]["send"] <= result["seconds"], result
