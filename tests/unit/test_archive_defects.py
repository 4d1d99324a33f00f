"""Issue #14, items 5 and 7 without a database: derived identifiers and the DAG params' schemas."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_imagesearch.archive import (
    MAX_IDENTIFIER_LENGTH,
    derived_identifier,
    details_frame,
    validate_table_name,
)
from airflow_provider_imagesearch.errors import ImageSearchValidationError

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "imagesearch_instance_archive.py"


def _dag(dag_id: str) -> Any:
    """A fresh DAG object from the example file: its ``@dag`` functions are named after their dag_id."""
    return runpy.run_path(str(DAG_FILE))[dag_id]()


@pytest.mark.parametrize("length", range(1, MAX_IDENTIFIER_LENGTH + 1))
def test_primary_key_name_fits_postgres_for_every_valid_table_length(length: int) -> None:
    table = "t" * length
    name = derived_identifier("pk", table)
    assert len(name) <= MAX_IDENTIFIER_LENGTH
    assert name == derived_identifier("pk", table)  # deterministic: the same table, the same name
    if length <= MAX_IDENTIFIER_LENGTH - 3:
        # Names that always fitted are unchanged, so existing tables keep their constraint's name.
        assert name == f"pk_{table}"


def test_shortened_names_of_different_tables_differ() -> None:
    common = "reporting_" + "x" * 50
    names = {derived_identifier("pk", common + suffix) for suffix in ("abc", "abd", "ab")}
    assert len(names) == 3
    assert all(name.startswith("pk_reporting_") for name in names)


def test_archive_refuses_a_repeated_instance_name_naming_both_positions() -> None:
    details = [{"instance_name": "shop"}, {"instance_name": "mall"}, {"instance_name": "shop"}]
    with pytest.raises(ImageSearchValidationError) as raised:
        details_frame(details, run_id="r", logical_date=None)
    assert raised.value.field == "details[2].instance_name"
    assert "details[0]" in str(raised.value)
    assert "'shop'" in str(raised.value)


TABLE_NAMES = [
    "imagesearch_instance_archive",
    "_",
    "t" * 63,
    "t" * 64,
    "s" * 63 + "." + "t" * 63,
    "s" * 64 + ".t",
    "s.t" + "t" * 63,
    "reporting.archive",
    "abc\n",
    "\nabc",
    "1abc",
    "a-b",
    "a.b.c",
    "",
    "x; DROP TABLE y",
]


@pytest.mark.parametrize("dag_id", ["imagesearch_instance_archive", "imagesearch_archive_report"])
@pytest.mark.parametrize("table", TABLE_NAMES)
def test_dag_table_params_accept_exactly_what_the_archive_accepts(dag_id: str, table: str) -> None:
    from airflow.sdk.definitions.param import ParamValidationError

    try:
        validate_table_name(table)
        archive_accepts = True
    except ImageSearchValidationError:
        archive_accepts = False
    param = _dag(dag_id).params.get_param("table")
    try:
        param.resolve(table)
        param_accepts = True
    except ParamValidationError:
        param_accepts = False
    assert param_accepts == archive_accepts


def test_instance_names_param_refuses_duplicates() -> None:
    from airflow.sdk.definitions.param import ParamValidationError

    param = _dag("imagesearch_instance_archive").params.get_param("instance_names")
    assert param.resolve(["shop", "mall"]) == ["shop", "mall"]
    with pytest.raises(ParamValidationError, match="non-unique"):
        param.resolve(["shop", "mall", "shop"])
