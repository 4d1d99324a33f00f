"""The manifest's source as the import checks it before reading anything: a SQL manifest needs the id of
its connection, a string, however truthy another value may be."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_imagesearch.errors import ImageSearchValidationError
from airflow_provider_imagesearch.imports.manifest import validate_source


@pytest.mark.parametrize("conn_id", [None, "", 123, ["manifest_db"]], ids=["none", "empty", "number", "list"])
def test_a_sql_manifest_without_a_connection_id_string_is_refused_naming_it(conn_id: Any) -> None:
    with pytest.raises(ImageSearchValidationError) as refused:
        validate_source(None, "SELECT path FROM images", conn_id)
    assert "manifest_conn_id" in str(refused.value)
    assert "the id of the SQL connection manifest_sql runs on" in str(refused.value)


def test_a_sql_manifest_with_its_connection_id_is_accepted() -> None:
    validate_source(None, "SELECT path FROM images", "manifest_db")
