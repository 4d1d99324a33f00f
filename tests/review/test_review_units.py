"""Review reproductions that need no Airflow database. Each test FAILS on the reviewed code."""

from __future__ import annotations

import pytest

from airflow_provider_imagesearch.errors import ImageSearchConfigError
from airflow_provider_imagesearch.settings import settings_from_connection


@pytest.mark.parametrize("host", ["https://alice:s3cr?etpart@imagesearch.example.com"])
def test_endpoint_error_never_echoes_part_of_a_password(host: str) -> None:
    """F3: redact_url cuts at '?' before looking for '@', so a password containing '?' leaks its head."""
    with pytest.raises(ImageSearchConfigError) as caught:
        settings_from_connection(
            host=host,
            port=None,
            login="ak",
            password="sk",
            extras={"region": "cn-north-4", "project_id": "p" * 32},
        )
    message = str(caught.value)
    assert "alice" not in message, message
    assert "s3cr" not in message, message
