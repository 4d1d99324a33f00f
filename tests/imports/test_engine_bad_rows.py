"""How a sharded import's failure counts its bad rows: this shard's failed and invalid rows, and the
invalid rows of the other shards' slices (every shard checks the whole manifest)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from tests.imports.conftest import ledger_rows, obs

RunImport = Callable[..., dict[str, Any]]


def _paths_of_shard(shard: int, count: int, make: Callable[[int], str]) -> list[str]:
    from airflow_provider_imagesearch.imports.manifest import path_key
    from airflow_provider_imagesearch.imports.plan import shard_of

    paths = [make(i) for i in range(200)]
    return [path for path in paths if shard_of(path_key(path), 2) == shard][:count]


def test_a_shards_failure_counts_its_failed_rows_beside_the_other_shards_invalid_ones(
    run_import: RunImport, emulator: Emulator, ledger_conn: dict[str, Any]
) -> None:
    """Shard 0 has one row the service fails (a tag the instance does not define) and one good row; two
    rows of shard 1's slice are invalid (not an OBS URL of the region)."""
    from airflow_provider_imagesearch.version_compat import AirflowFailException

    if ledger_conn["name"] != "sqlite":
        pytest.skip("the count does not depend on the ledger's database")
    failing, good = _paths_of_shard(0, 2, lambda i: obs(f"s0/{i}.jpg"))
    invalid = _paths_of_shard(1, 2, lambda i: f"https://elsewhere.example.com/{i}.jpg")
    manifest = [{"path": failing, "tags": {"weight": "heavy"}}, {"path": good, "tags": {"color": "red"}}]
    manifest += [{"path": path} for path in invalid]

    with pytest.raises(AirflowFailException) as failure:
        run_import(manifest, shard=(0, 2), max_failed=2)

    assert ledger_rows(ledger_conn["engine"])[failing]["outcome"] == "failed"
    assert (
        "3 rows failed or were invalid (1 in this shard, 2 invalid in the other shards' slices) "
        "(max_failed=2" in str(failure.value)
    )
