"""The bulk import against the emulator over loopback, with its ledger on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from tests.imports.conftest import add_requests, api_requests, ledger_rows, library, obs

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64

RunImport = Callable[..., dict[str, Any]]


def _manifest(count: int, color: str = "red") -> list[dict[str, Any]]:
    return [{"path": obs(f"p/{i:04d}.jpg"), "tags": {"color": color}} for i in range(count)]


def test_import_then_unchanged_rerun_sends_nothing(
    run_import: RunImport, emulator: Emulator, ledger_conn: dict[str, Any]
) -> None:
    manifest = _manifest(40)
    first = run_import(manifest, max_concurrency=4)
    assert first["added"] == 40
    assert first["failed"] == first["invalid"] == 0
    assert library(emulator) == {row["path"]: {"color": "red"} for row in manifest}
    rows = ledger_rows(ledger_conn["engine"])
    assert {r["outcome"] for r in rows.values()} == {"added"}
    assert {r["run_id"] for r in rows.values()} == {"run-1"}
    assert all(r["attempts"] == 1 and r["fingerprint"] for r in rows.values())

    emulator.reset_stats()
    second = run_import(manifest)
    assert second["unchanged"] == 40
    assert second["added"] == second["updated"] == 0
    assert api_requests(emulator) == []


def test_changed_and_new_rows_only_are_sent(
    run_import: RunImport, emulator: Emulator, ledger_conn: dict[str, Any]
) -> None:
    manifest = _manifest(10)
    run_import(manifest)
    emulator.reset_stats()
    manifest[3]["tags"] = {"color": "blue"}
    manifest.append({"path": obs("p/new.jpg"), "tag.color": "green", "tag.size": "XL"})
    result = run_import(manifest)
    assert (result["added"], result["updated"], result["unchanged"]) == (1, 1, 9)
    assert len(add_requests(emulator)) == 2
    assert library(emulator)[obs("p/0003.jpg")] == {"color": "blue"}
    assert library(emulator)[obs("p/new.jpg")] == {"color": "green", "size": "XL"}
    assert ledger_rows(ledger_conn["engine"])[obs("p/0003.jpg")]["outcome"] == "updated"


def test_bad_rows_never_block_good_ones(
    run_import: RunImport, emulator: Emulator, ledger_conn: dict[str, Any], tmp_path: Path
) -> None:
    from airflow_provider_imagesearch.version_compat import AirflowFailException

    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "notimage.png").write_bytes(b"hello, not an image")
    manifest: list[Any] = [
        {"path": obs("ok/1.jpg"), "tags": {"color": "red"}},
        {"tags": {"color": "red"}},  # no path
        {"path": obs("ok/2.jpg"), "tags": {"color": 5}},  # not a string
        {"path": "obs://bucket/x.jpg"},  # not an OBS HTTPS URL
        {"path": "id-1", "file": str(tmp_path / "missing.png")},
        {"path": "id-2", "file": str(tmp_path / "empty.png")},
        {"path": "id-3", "file": str(tmp_path / "notimage.png")},  # refused by the API: IS.0002
        {"path": obs("ok/3.jpg"), "tags": {f"k{i}": "v" for i in range(11)}},
        "not a mapping",
        {"path": obs("ok/4.jpg")},
    ]
    with pytest.raises(AirflowFailException) as failure:
        run_import(manifest)
    message = str(failure.value)
    assert "8 rows failed or were invalid" in message
    for row in (2, 3, 4, 5, 6, 7, 8, 9):
        assert f"row {row} " in message
    assert "IS.0002" in message
    assert set(library(emulator)) == {obs("ok/1.jpg"), obs("ok/4.jpg")}
    rows = ledger_rows(ledger_conn["engine"])
    assert rows["id-3"]["outcome"] == "invalid"
    assert rows["id-3"]["error_code"] == "IS.0002"
    assert rows["id-3"]["row_number"] == 7
    assert rows[obs("ok/2.jpg")]["outcome"] == "invalid"
    assert "color" in rows[obs("ok/2.jpg")]["error_message"]

    # Unchanged invalid rows are not sent again; max_failed lets the task pass.
    emulator.reset_stats()
    result = run_import(manifest, max_failed=8)
    assert result["invalid"] == 8
    assert result["unchanged"] == 2
    assert api_requests(emulator) == []


def test_duplicate_paths_last_one_wins_and_unicode_paths(
    run_import: RunImport, emulator: Emulator, ledger_conn: dict[str, Any], capfd: pytest.CaptureFixture[str]
) -> None:
    manifest = [
        {"path": obs("dup.jpg"), "tags": {"color": "red"}},
        {"path": obs("商品/红色 鞋子 é.jpg"), "tags": {"color": "红"}},
        {"path": obs("dup.jpg"), "tags": {"color": "blue"}},
    ]
    result = run_import(manifest)
    assert result["duplicates"] == 1
    assert result["added"] == 2
    assert library(emulator) == {
        obs("dup.jpg"): {"color": "blue"},
        obs("商品/红色 鞋子 é.jpg"): {"color": "红"},
    }
    assert len(add_requests(emulator)) == 2
    out = capfd.readouterr().out
    assert "1 manifest rows repeat an earlier path (the last row wins)" in out
    assert "dup.jpg (rows 1, 3)" in out
    assert ledger_rows(ledger_conn["engine"])[obs("dup.jpg")]["row_number"] == 3


def test_prune_deletes_what_left_the_manifest(
    run_import: RunImport, emulator: Emulator, ledger_conn: dict[str, Any]
) -> None:
    manifest = _manifest(6)
    run_import(manifest)
    kept = manifest[:4]
    assert run_import(kept)["pruned"] == 0  # off by default
    assert len(library(emulator)) == 6
    result = run_import(kept, prune=True)
    assert result["pruned"] == 2
    assert result["unchanged"] == 4
    assert set(library(emulator)) == {row["path"] for row in kept}
    assert set(ledger_rows(ledger_conn["engine"])) == {row["path"] for row in kept}


def test_an_empty_manifest_with_prune_is_refused_and_deletes_nothing(
    run_import: RunImport, emulator: Emulator, ledger_conn: dict[str, Any], tmp_path: Path
) -> None:
    # An empty file (or a query that matched nothing) is an upstream failure far more often than a wish
    # to empty the library: prune must not delete every image the ledger knows.
    from airflow_provider_imagesearch.version_compat import AirflowFailException

    manifest = _manifest(3)
    run_import(manifest)
    empty = tmp_path / "empty.csv"
    empty.write_text("path\n")
    emulator.reset_stats()
    with pytest.raises(AirflowFailException, match="no usable path, and prune=True"):
        run_import(str(empty), prune=True)
    assert api_requests(emulator) == []
    assert len(library(emulator)) == 3
    assert len(ledger_rows(ledger_conn["engine"])) == 3


def test_a_file_row_whose_base64_body_would_exceed_the_gateway_limit_is_invalid_before_sending(
    tmp_path: Path,
) -> None:
    """The file cap alone does not bound the body: a long path beside a file at the cap is refused here,
    naming the file and the documented limit, rather than sent (and refused 413) on every run."""
    from airflow_provider_imagesearch.imports.manifest import (
        MAX_BODY_BYTES,
        MAX_FILE_BYTES,
        base64_size,
        check_row,
    )

    assert base64_size(MAX_FILE_BYTES) < MAX_BODY_BYTES
    image = tmp_path / "at-the-cap.png"
    image.write_bytes(PNG + b"\x00" * (MAX_FILE_BYTES - len(PNG)))
    ok = check_row({"path": "sku-1", "file": str(image), "tags": {"color": "red"}}, 1, region=None)
    assert ok.invalid is None
    room = MAX_BODY_BYTES - base64_size(MAX_FILE_BYTES)
    long_path = "sku-" + "x" * room
    bad = check_row({"path": long_path, "file": str(image)}, 2, region=None)
    assert bad.invalid is not None
    assert str(image) in bad.invalid
    assert str(MAX_BODY_BYTES) in bad.invalid
    assert bad.path == long_path  # kept in the ledger: not checked again until it changes


def test_a_path_with_control_characters_is_invalid_naming_path() -> None:
    from airflow_provider_imagesearch.imports.manifest import check_row

    for path, key in ((obs("a\nb.jpg"), obs("a\nb.jpg")), ("sku\x00evil", None), ("sku\x7f", "sku\x7f")):
        row = check_row({"path": path}, 3, region=None)
        assert row.invalid is not None
        assert row.invalid.startswith("Invalid path "), row.invalid
        assert "control characters" in row.invalid
        assert "\x00" not in row.invalid
        assert row.path == key  # a NUL cannot be stored in the ledger: reported by its row number only
    assert check_row({"path": "  sku-1\n"}, 1, region=None).invalid is None  # edges are stripped


def test_a_ledger_table_without_held_fingerprint_is_refused_naming_it(
    run_import: RunImport, emulator: Emulator, ledger_conn: dict[str, Any]
) -> None:
    """A ledger of an earlier build cannot say what its failed or invalid rows left in the library."""
    import sqlalchemy as sa

    from airflow_provider_imagesearch.version_compat import AirflowFailException

    with ledger_conn["engine"].begin() as connection:
        connection.execute(
            sa.text(
                "CREATE TABLE imagesearch_import_ledger (instance_name VARCHAR(64), api VARCHAR(8), "
                "path_key VARCHAR(32))"
            )
        )
    with pytest.raises(AirflowFailException, match=r"ledger_table.*'held_fingerprint' column") as error:
        run_import(_manifest(1))
    assert "'api' column" not in str(error.value)
    assert api_requests(emulator) == []


def test_a_rerun_failing_on_known_invalid_rows_names_ten_with_their_stored_reasons(
    run_import: RunImport, emulator: Emulator, ledger_conn: dict[str, Any]
) -> None:
    """Rows refused by an earlier run and unchanged since are named like new ones: row, path, reason."""
    from airflow_provider_imagesearch.version_compat import AirflowFailException

    manifest: list[dict[str, Any]] = [{"path": obs("ok.jpg")}]
    manifest += [{"path": obs(f"bad/{i:02d}.jpg"), "tags": {"color": i}} for i in range(12)]
    manifest.append({"path": "id-1", "file": "/nonexistent/missing.png"})
    with pytest.raises(AirflowFailException):
        run_import(manifest)
    stored = ledger_rows(ledger_conn["engine"])
    emulator.reset_stats()
    with pytest.raises(AirflowFailException) as rerun:
        run_import(manifest)
    message = str(rerun.value)
    assert api_requests(emulator) == []
    assert "13 rows failed or were invalid" in message
    assert "First 10:" in message
    for i in range(10):  # rows 2..11, in manifest order, each with the reason stored by the first run
        path = obs(f"bad/{i:02d}.jpg")
        assert f"row {i + 2} ({path!r}, unchanged since refused): INVALID_ROW" in message
        assert stored[path]["error_message"][:60] in message
    assert obs("bad/10.jpg") not in message
    assert "'id-1'" not in message
