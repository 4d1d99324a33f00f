"""Review of issue 19, round 2 (the fixes of the first review): reproductions of what still goes wrong.

Each test is marked ``xfail(strict=True)`` (it fails on the code under review); the commit that fixes its
defect removes the mark. Against the emulator over loopback HTTP, ledgers on real SQLite / PostgreSQL.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from tests.imports.conftest import INSTANCE, LEDGER_CONN, library, obs
from tests.support.connections import set_connection

TABLE = "imagesearch_import_ledger"


def _sqlite_ledger(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    import sqlalchemy as sa

    path = tmp_path / "ledger.db"
    set_connection(monkeypatch, LEDGER_CONN, conn_type="sqlite", host=str(path))
    return sa.create_engine(f"sqlite:///{path}")


# --- (e) JSON lines: a broken line and prune ------------------------------------------------------------


BROKEN_LINES = {
    # an exporter that does not escape a quote in a tag
    "unescaped quote": lambda path: '{"path": "' + path + '", "tags": {"color": "12" red"}}',
    # ``cat day2a.jsonl day2b.jsonl``: the second file written by a Windows tool, with its UTF-8 BOM
    "concatenated file's BOM": lambda path: "\ufeff" + json.dumps({"path": path, "tags": {"color": "red"}}),
    # a number of 5,000 digits: beyond Python's int-from-text limit (4,300 digits), json.loads refuses the
    # whole line (the docs: "an integer of any size reaches the row check with its value")
    "5000-digit integer": lambda path: '{"path": "' + path + '", "tags": {"color": ' + "9" * 5000 + "}}",
}


@pytest.mark.parametrize("broken_line", BROKEN_LINES)
def test_a_broken_json_line_does_not_get_its_image_pruned(
    broken_line: str,
    run_import: Callable[..., dict[str, Any]],
    emulator: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A daily JSON-lines export with ``prune=True, max_failed=1`` (one bad row tolerated). One day one
    line is broken (an unescaped quote in a tag, a second file's BOM after ``cat``, a 5,000-digit number):
    the line is now an invalid row *without a path* (the fix reads it as ``not a JSON object``), so the
    image it lists is "no longer in the manifest" and the prune DELETES it from the library, although the
    line names it in plain text. With pandas (before the fix) the file was refused whole and nothing was
    deleted; a CSV or JSON row with a bad tag value keeps its path and is never pruned. The user loses a
    live image to one bad line, and XCom says ``invalid: 1, pruned: 1``."""
    _sqlite_ledger(monkeypatch, tmp_path)
    paths = [obs(f"jl/{i}.jpg") for i in range(3)]
    good = tmp_path / "day1.jsonl"
    good.write_text("".join(json.dumps({"path": p, "tags": {"color": "red"}}) + "\n" for p in paths), "utf-8")
    run_import(str(good))
    assert set(library(emulator)) == set(paths)
    broken = tmp_path / "day2.jsonl"
    lines = [json.dumps({"path": p, "tags": {"color": "red"}}) for p in paths[:2]]
    lines.append(BROKEN_LINES[broken_line](paths[2]))
    broken.write_text("\n".join(lines) + "\n", "utf-8")
    result = run_import(str(broken), prune=True, max_failed=1)
    assert paths[2] in library(emulator), f"the broken line's image was pruned: {result}"


def test_a_utf16_json_lines_manifest_is_refused_naming_its_encoding(
    run_import: Callable[..., dict[str, Any]],
    emulator: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PowerShell 5's ``Out-File`` / ``>`` writes UTF-16 LE (with a BOM) by default. Such a manifest is
    read as UTF-8 with ``surrogateescape``: every line becomes an invalid row "not a JSON object
    (JSONDecodeError: Expecting value ...)" (the NUL bytes of UTF-16), and the task fails with "N rows
    failed or were invalid" listing JSON syntax errors, never saying the file is UTF-16 and must be
    UTF-8 (the guide: a clear error naming the field and the allowed form). A UTF-16 BOM is as
    recognisable as the UTF-8 one the fix drops."""
    _sqlite_ledger(monkeypatch, tmp_path)
    manifest = tmp_path / "ps.jsonl"
    text = "".join(json.dumps({"path": obs(f"u16/{i}.jpg")}) + "\r\n" for i in range(3))
    manifest.write_bytes(text.encode("utf-16"))
    from airflow_provider_imagesearch.errors import ImageSearchValidationError
    from airflow_provider_imagesearch.version_compat import AirflowFailException

    with pytest.raises((AirflowFailException, ImageSearchValidationError)) as raised:
        run_import(str(manifest))
    message = str(raised.value)
    assert "UTF-16" in message or "encod" in message.lower(), message[:600]


# --- (a) SQLite holder identity when the PID namespace cannot be read ----------------------------------


def test_sqlite_holder_in_another_container_is_not_taken_over_when_namespaces_are_unreadable(
    emulator: Emulator, catalog: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The round-1 fix keys "same host" by host name, boot id and PID namespace, and its doc says "where
    either cannot be read, it is left out, and holders that differ in it are not probed by pid". But an
    unreadable namespace is written as ``pid:unknown`` by *every* container: two containers of one host
    (``--network host``: same name, same boot id) where ``/proc/self/ns/pid`` cannot be read (a hardened
    runtime, gVisor, a seccomp/AppArmor profile denying it) write the same identity, and each probes the
    other's pid in its own namespace: the live holder (pid 4194300 in its container, absent here) is
    declared dead, its row deleted, and the second run imports beside it."""
    from airflow_provider_imagesearch.imports import lock as lock_module
    from airflow_provider_imagesearch.imports.lock import ImportLock, ImportLockedError

    def denied(path: Any, *args: Any, **kwargs: Any) -> str:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(lock_module.os, "readlink", denied)
    engine = _sqlite_ledger(monkeypatch, tmp_path)
    import sqlalchemy as sa

    other_container = ImportLock(engine, TABLE, "v1", INSTANCE, "scheduled__other-container")
    assert "pid:unknown" in other_container.host
    other_container.acquire(0)
    try:
        # The other container's worker: the same identity string, its own pid (none such here).
        with engine.begin() as connection:
            connection.execute(sa.text(f"UPDATE {TABLE}_lock SET pid = 4194300"))
        assert not os.path.exists("/proc/4194300")
        this_container = ImportLock(engine, TABLE, "v1", INSTANCE, "manual__this-container")
        try:
            with pytest.raises(ImportLockedError):
                this_container.acquire(0)
        finally:
            this_container.release()
    finally:
        other_container._held = False  # its row may be gone; only stop its heartbeat
        other_container.release()
        engine.dispose()


# --- (d) legacy ``reconciled`` rows on the UI page -----------------------------------------------------


def test_the_page_counts_a_legacy_reconciled_row_as_content_unknown(
    run_import: Callable[..., dict[str, Any]],
    emulator: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fix reads a ``reconciled`` row of the previous build as "the library holds this path with
    content of unknown fingerprint" (the ledger's ``stream`` maps it to ``?``; the docs: "like an intent a
    killed run left"), and the next import overwrites it. The UI page (``plugins/queries.py``) lists
    ``reconciled`` among its SUCCESS_OUTCOMES and counts it in ``held`` (content known), not in
    ``held_unknown``: after the upgrade the page shows the library fully in sync while the import itself
    considers those images possibly stale and is about to resend them."""
    from airflow_provider_imagesearch.plugins.queries import libraries

    engine = _sqlite_ledger(monkeypatch, tmp_path)
    run_import([{"path": obs("legacy/a.jpg")}, {"path": obs("legacy/b.jpg")}])
    import sqlalchemy as sa

    with engine.begin() as connection:  # what the previous build wrote: reconciled, held = fingerprint
        connection.execute(
            sa.text(f"UPDATE {TABLE} SET outcome = 'reconciled' WHERE path = :p"), {"p": obs("legacy/a.jpg")}
        )
    (lib,) = libraries(engine, TABLE)
    engine.dispose()
    assert lib.held_unknown == 1, f"held={lib.held}, held_unknown={lib.held_unknown}, outcomes={lib.outcomes}"
