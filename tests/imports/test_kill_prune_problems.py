"""How a failed prune is named in the failed import's summary: it has no manifest row (the path is
known only from the ledger), so its line says ``ledger``, never a row number."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.emulator.routes import R_DELETE_IMAGE
from tests.imports.conftest import library, obs

RunImport = Callable[..., dict[str, Any]]


def test_a_prune_the_service_refuses_is_named_from_the_ledger_in_the_failure(
    run_import: RunImport, emulator: Emulator, ledger_conn: dict[str, Any]
) -> None:
    from airflow_provider_imagesearch.version_compat import AirflowFailException

    if ledger_conn["name"] != "sqlite":
        pytest.skip("the summary does not depend on the ledger's database")
    kept = {"path": obs("kept.jpg"), "tags": {"color": "red"}}
    gone = {"path": obs("gone.jpg"), "tags": {"color": "blue"}}
    run_import([kept, gone])
    # The prune's delete is refused (IS.0005) without being processed: the image stays, the prune fails.
    emulator.set_faults(sequence=["IS.0005"])

    with pytest.raises(AirflowFailException) as failure:
        run_import([kept], prune=True)

    message = str(failure.value)
    assert f"First 1: ledger ({obs('gone.jpg')!r}): IS.0005 " in message
    assert "row None" not in message
    assert [r["fault"] for r in emulator.requests_log() if r["route"] == R_DELETE_IMAGE] == ["IS.0005"]
    assert set(library(emulator)) == {obs("kept.jpg"), obs("gone.jpg")}
