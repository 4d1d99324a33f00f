"""The lock and ledger tables' columns are NOT NULL on every database the ledger may live on, SQL Server too
(found by review 9a).

The ledger lives on any common-sql database (imports/ledger.py). SQLAlchemy writes ``NOT NULL`` on SQL
Server only for ``nullable=False``: a column left at ``nullable=None`` gets no NULL clause there, and SQL
Server then makes it nullable (ANSI_NULL_DFLT_ON, on for ODBC connections), so a row missing its run id or
outcome would be stored rather than refused. The CREATE TABLE is compiled for SQL Server, without a server.
"""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mssql
from sqlalchemy.schema import CreateTable

from airflow_provider_imagesearch.imports.ledger import ledger_table
from airflow_provider_imagesearch.imports.lock import lock_table

LOCK_COLUMNS = [
    "instance_name",
    "api",
    "shard_index",
    "shard_count",
    "token",
    "run_id",
    "host",
    "pid",
    "acquired_at",
    "heartbeat_at",
]
LEDGER_COLUMNS = [
    "instance_name",
    "api",
    "path_key",
    "path",
    "fingerprint",
    "outcome",
    "attempts",
    "run_id",
    "updated_at",
]


def _sql_server_columns(table: sa.Table) -> dict[str, str]:
    """Each column's definition in the table's SQL Server CREATE TABLE."""
    ddl = str(CreateTable(table).compile(dialect=mssql.dialect()))
    columns = {}
    for line in ddl.splitlines():
        match = re.match(r"\s+(\w+) (.*?),?\s*$", line)
        if match and match.group(1) != "CONSTRAINT":
            columns[match.group(1)] = match.group(2)
    return columns


@pytest.mark.parametrize("column", LOCK_COLUMNS)
def test_every_lock_table_column_is_not_null_on_sql_server(column: str) -> None:
    columns = _sql_server_columns(lock_table("imagesearch_import_ledger_lock", sa.MetaData()))
    assert columns[column].endswith("NOT NULL"), columns[column]


@pytest.mark.parametrize("column", LEDGER_COLUMNS)
def test_every_ledger_column_is_not_null_on_sql_server(column: str) -> None:
    columns = _sql_server_columns(ledger_table("imagesearch_import_ledger", sa.MetaData()))
    assert columns[column].endswith("NOT NULL"), columns[column]
