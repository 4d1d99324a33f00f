"""How a failed import summarises its bad rows: every row counted by reason, the first ten named (row,
path, code and message), each line cut at 400 characters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.imports.conftest import obs

RunImport = Callable[..., dict[str, Any]]


def test_twelve_bad_rows_are_counted_by_reason_and_the_first_ten_named_cut_at_400_characters(
    run_import: RunImport, ledger_conn: dict[str, Any]
) -> None:
    from airflow_provider_imagesearch.version_compat import AirflowFailException

    if ledger_conn["name"] != "sqlite":
        pytest.skip("the summary does not depend on the ledger's database")
    long_path = obs("long/" + "x" * 300 + ".jpg")  # its line: over 400 characters with the reason
    manifest = [{"path": long_path, "tags": {"color": ["red", 5]}}]
    manifest += [{"path": obs(f"bad/{i:02d}.jpg"), "tags": {"color": ["red", 5]}} for i in range(11)]

    with pytest.raises(AirflowFailException) as failure:
        run_import(manifest)

    message = str(failure.value)
    assert "By reason: INVALID_ROW x12. First 10: " in message
    first = message.split("First 10: ", 1)[1].split("; ")[0]
    assert first.startswith(f"row 1 ({long_path!r}): INVALID_ROW ")
    assert len(first) == 400
    assert obs("bad/08.jpg") in message  # row 10
    assert obs("bad/09.jpg") not in message  # row 11
