"""The import tests' fixtures, for the review's reproductions."""

from __future__ import annotations

from tests.imports.conftest import catalog, ledger_conn, run_import, run_v2_import, service

__all__ = ["catalog", "ledger_conn", "run_import", "run_v2_import", "service"]
