"""How a rerun names the rows an earlier run refused and that have not changed since.

Such rows are not sent again; a rerun that fails on them names them in its failure like the rows it
refused itself: row number, path, and the reason the ledger stored (the service's error code, or
``INVALID_ROW`` when none was stored), at most ten problems in all, each cut at 400 characters.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from tests.imports.conftest import api_requests, ledger_rows, obs

RunImport = Callable[..., dict[str, Any]]


def _failure(run_import: RunImport, manifest: list[dict[str, Any]]) -> str:
    from airflow_provider_imagesearch.version_compat import AirflowFailException

    with pytest.raises(AirflowFailException) as failure:
        run_import(manifest)
    return str(failure.value)


def _problem(row: int, path: str, reason: str) -> str:
    return f"row {row} ({path!r}, unchanged since refused): {reason}"


def test_known_invalid_rows_fill_the_ten_problems_left_after_this_runs_own(
    run_import: RunImport, emulator: Emulator, ledger_conn: dict[str, Any]
) -> None:
    """9 rows without a path (reported by every run) leave room for one known-invalid row, not three."""
    pathless = [{"tags": {"color": "red"}} for _ in range(9)]  # rows 1-9: no path
    bad = [{"path": obs(f"bad/{i}.jpg"), "tags": {"color": ["red", 5]}} for i in range(3)]  # rows 10-12
    manifest = pathless + bad
    _failure(run_import, manifest)
    stored = ledger_rows(ledger_conn["engine"])
    emulator.reset_stats()

    message = _failure(run_import, manifest)

    assert api_requests(emulator) == []
    assert "12 rows failed or were invalid" in message
    assert "First 10: " in message
    first = obs("bad/0.jpg")
    reason = f"INVALID_ROW {stored[first]['error_message']}".strip()
    assert message.endswith("; " + _problem(10, first, reason)[:400])
    assert obs("bad/1.jpg") not in message
    assert obs("bad/2.jpg") not in message


def test_a_known_invalid_row_is_named_with_the_code_the_service_refused_it_with(
    run_import: RunImport, emulator: Emulator, ledger_conn: dict[str, Any], tmp_path: Path
) -> None:
    """A file the service refused (IS.0002: not an image) is named with IS.0002 and its message."""
    text = tmp_path / "notes.jpg"
    text.write_bytes(b"not an image at all")
    manifest = [{"path": "sku-1", "file": str(text)}]
    first = _failure(run_import, manifest)
    assert "IS.0002" in first
    assert ledger_rows(ledger_conn["engine"])["sku-1"]["outcome"] == "invalid"
    emulator.reset_stats()

    message = _failure(run_import, manifest)

    assert api_requests(emulator) == []
    assert message.endswith(
        "First 1: " + _problem(1, "sku-1", "IS.0002 The type of the request parameter is not supported.")
    )


@pytest.mark.parametrize(
    ("stored_code", "named"),
    [(None, "INVALID_ROW"), ("IS.0002", "IS.0002")],
    ids=["no-code", "code-only"],
)
def test_a_known_invalid_row_without_a_stored_message_is_named_by_its_code_alone(
    run_import: RunImport,
    emulator: Emulator,
    ledger_conn: dict[str, Any],
    tmp_path: Path,
    stored_code: str | None,
    named: str,
) -> None:
    """A ledger row recorded invalid without a message (and perhaps without a code) is named by its code,
    ``INVALID_ROW`` when it has none, with nothing made up after it."""
    import sqlalchemy as sa

    text = tmp_path / "notes.jpg"
    text.write_bytes(b"not an image at all")
    manifest = [{"path": "sku-1", "file": str(text)}]
    _failure(run_import, manifest)
    with ledger_conn["engine"].begin() as connection:
        connection.execute(
            sa.text("UPDATE imagesearch_import_ledger SET error_code = :code, error_message = NULL"),
            {"code": stored_code},
        )

    message = _failure(run_import, manifest)

    assert message.endswith("First 1: " + _problem(1, "sku-1", named))


def test_a_known_invalid_rows_line_is_cut_at_400_characters(
    run_import: RunImport, ledger_conn: dict[str, Any]
) -> None:
    """A long path and reason make a line of over 400 characters: the failure shows its first 400."""
    path = obs("long/" + "x" * 420 + ".jpg")
    manifest = [{"path": path, "tags": {"color": ["red", 5]}}]
    _failure(run_import, manifest)
    stored = ledger_rows(ledger_conn["engine"])[path]

    message = _failure(run_import, manifest)

    line = _problem(1, path, f"{stored['error_code']} {stored['error_message']}")
    assert len(line) > 401
    assert message.endswith("First 1: " + line[:400])
