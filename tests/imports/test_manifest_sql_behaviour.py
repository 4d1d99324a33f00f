"""A SQL manifest (``manifest_sql`` on ``manifest_conn_id``) arrives ``chunk_rows`` rows at a time, from a
server-side cursor where the database has one: on PostgreSQL the first chunk is in hand while the server
has not yet computed the rows after it, so a query of millions of rows never sits whole in the worker's
memory (nor in the driver's buffer)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from airflow_provider_imagesearch.imports.manifest import read_chunks
from tests.support.connections import set_connection

CATALOG_CONN = "catalog_db"


def test_a_sql_manifest_arrives_chunk_rows_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "catalog.db"
    with sqlite3.connect(db) as connection:
        connection.execute("CREATE TABLE products (image TEXT, color TEXT)")
        connection.executemany("INSERT INTO products VALUES (?, ?)", [(f"i{n}", "red") for n in range(7)])
    set_connection(monkeypatch, CATALOG_CONN, conn_type="sqlite", host=str(db))
    chunks = list(
        read_chunks(
            manifest_sql='SELECT image AS path, color AS "tag.color" FROM products ORDER BY image',
            manifest_conn_id=CATALOG_CONN,
            chunk_rows=3,
        )
    )
    assert [len(chunk) for chunk in chunks] == [3, 3, 1]
    assert chunks[0][0] == {"path": "i0", "tag.color": "red"}
    assert [row["path"] for chunk in chunks for row in chunk] == [f"i{n}" for n in range(7)]


def test_a_postgresql_manifest_streams_from_a_server_side_cursor(
    postgres_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Row 5,000 of the query fails when the server computes it (a division by zero): the first chunk of
    10 rows arrives before, since the server computes rows as the cursor fetches them. A client-side
    cursor would have the server compute the whole result first, and fail before any row arrives."""
    monkeypatch.setenv("AIRFLOW_CONN_" + CATALOG_CONN.upper(), postgres_uri)
    chunks = read_chunks(
        manifest_sql="SELECT 'i' || n AS path, (1 / (5000 - n))::text AS \"tag.x\" FROM generate_series(1, 10000) n",
        manifest_conn_id=CATALOG_CONN,
        chunk_rows=10,
    )
    first = next(chunks)
    assert [row["path"] for row in first] == [f"i{n}" for n in range(1, 11)]
    with pytest.raises(Exception, match="division by zero"):
        list(chunks)
