"""A sharded import (``shard=(index, count)``) takes exactly the paths docs/bulk-import.rst says: those
whose key's stable hash, the first 32 bits of the SHA-256 of the path, modulo ``count``, is ``index``.
A user who splits a catalogue over mapped tasks (or checks which task owns a path) relies on it; it is
the same in every process and run."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from tests.imports.conftest import LEDGER_CONN, library, obs
from tests.support.connections import set_connection

PATHS = [obs(f"shard/{n}.jpg") for n in range(24)]


def _documented_shard(path: str, count: int) -> int:
    return int.from_bytes(hashlib.sha256(path.encode("utf-8")).digest()[:4], "big") % count


@pytest.mark.parametrize("index", [1, 2])
def test_a_shard_imports_the_paths_whose_hash_falls_in_its_slice(
    run_import: Callable[..., dict[str, Any]],
    emulator: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    index: int,
) -> None:
    set_connection(monkeypatch, LEDGER_CONN, conn_type="sqlite", host=str(tmp_path / "ledger.db"))
    mine = {path for path in PATHS if _documented_shard(path, 4) == index}
    assert 0 < len(mine) < len(PATHS)  # the check below tells slices apart
    result = run_import([{"path": path, "tag.color": "red"} for path in PATHS], shard=(index, 4))
    assert result["added"] == len(mine)
    assert set(library(emulator)) == mine
