"""The import lock on SQLite: the refusal names the refused run's shard only when its import is split.
Direct calls on a ledger file, as in test_killb_lock_holder.py (whose fixtures these reuse); each test
well under a second."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_imagesearch.imports.lock import ImportLock, ImportLockedError
from tests.imports.test_killb_lock_holder import (  # noqa: F401 (engine, held: fixtures)
    _lock,
    engine,
    held,
)


@pytest.mark.parametrize(
    ("shard", "prefix"),
    [((0, 1), "Import into catalog: "), ((1, 2), "Import into catalog (shard 1/2): ")],
    ids=["unsharded", "shard-of-two"],
)
def test_the_refusal_names_the_refused_runs_shard_only_when_its_import_is_split(
    engine: Any,  # noqa: F811 (the fixture imported above)
    held: Callable[..., ImportLock],  # noqa: F811 (the fixture imported above)
    shard: tuple[int, int],
    prefix: str,
) -> None:
    held("scheduled__holder", shard)
    with pytest.raises(ImportLockedError) as refused:
        _lock(engine, "manual__second", shard).acquire(0)
    assert str(refused.value).startswith(prefix + "another import of it holds the lock: "), refused.value
