"""A manifest in an object store, given as a URL: what an error may show of it."""

from __future__ import annotations

import pytest

from airflow_provider_imagesearch.errors import ImageSearchValidationError
from airflow_provider_imagesearch.imports.manifest import read_chunks


def test_a_refused_file_name_does_not_show_the_urls_credential() -> None:
    """Regression: the 'file name ending in' error showed the URL's first 57 characters, query included."""
    url = "https://b.obs.x.com/m.xlsx?AccessKeyId=HPUAOBSKEY0001&Expires=1&Signature=c2lnbmF0dXJl"
    with pytest.raises(ImageSearchValidationError, match="manifest") as raised:
        list(read_chunks(url))
    assert "HPUAOBSKEY0001" not in str(raised.value)
    assert "b.obs.x.com/m.xlsx" in str(raised.value)
