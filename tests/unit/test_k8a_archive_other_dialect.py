"""``create_table_if_missing`` on a database other than SQLite and PostgreSQL (a SQLite file under a
dialect of another name, so that the general branch runs): a CREATE that fails while the table is not
there fails the write with the CREATE's own error, not a later "no such table"."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite


class OtherDialect(SQLiteDialect_pysqlite):
    name = "k8aother"
    supports_statement_cache = True


def test_a_create_refused_by_the_database_fails_the_write_with_its_error(tmp_path: Path) -> None:
    import sqlalchemy as sa
    from sqlalchemy.dialects import registry

    from airflow_provider_imagesearch.archive import details_frame, write_frame

    registry.register("k8aother", __name__, "OtherDialect")
    path = tmp_path / "archive.db"
    sa.create_engine(f"sqlite:///{path}").dispose()
    sqlite = sa.create_engine(f"sqlite:///{path}")
    with sqlite.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE other (x INTEGER)")
    sqlite.dispose()
    engine = sa.create_engine(f"k8aother:///file:{path}?mode=ro&uri=true")
    assert engine.dialect.name == "k8aother"
    frame = details_frame([{"instance_name": "a"}], run_id="r1", logical_date=None)
    try:
        with pytest.raises(sa.exc.DBAPIError, match="readonly"):
            write_frame(engine, "details", frame, "r1")
    finally:
        engine.dispose()
