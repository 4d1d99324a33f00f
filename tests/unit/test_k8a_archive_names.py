"""The shortened name of a constraint or index of a long table: as long as PostgreSQL allows (63
characters), the table's start then ``_`` and 8 hex digits of its SHA-256. The name is stored in the
database: tables made by earlier versions keep matching only while it stays exactly this."""

from __future__ import annotations

import hashlib

from airflow_provider_imagesearch.archive import MAX_IDENTIFIER_LENGTH, derived_identifier


def test_a_shortened_name_fills_the_63_characters_and_ends_in_the_tables_digest() -> None:
    table = "reporting_" + "x" * 60
    digest = hashlib.sha256(table.encode()).hexdigest()[:8]
    name = derived_identifier("pk", table)
    assert name == f"pk_{table}"[: MAX_IDENTIFIER_LENGTH - 9] + "_" + digest
    assert len(name) == MAX_IDENTIFIER_LENGTH == 63
