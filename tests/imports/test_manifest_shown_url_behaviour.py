"""What an error shows of a manifest URL (``shown_url``): the object it names, never the secrets around it.

The query (a presigned URL's signature, credential and token) is hidden even when it quotes another URL;
user info is hidden up to its last ``@`` (a password may hold one); a path with ``;`` or ``=`` in it is
shown whole when there is no user info to cut at them.
"""

from __future__ import annotations

import pytest

from airflow_provider_imagesearch.errors import ImageSearchValidationError
from airflow_provider_imagesearch.imports.manifest import read_chunks, shown_url

CASES = [
    (
        "https://b.obs.x.com/m.xlsx?next=https://other.example/x&Signature=c2lnbmF0dXJlc2VjcmV0",
        "https://b.obs.x.com/m.xlsx?<query hidden>",
        "c2lnbmF0dXJl",
    ),
    ("https://alice:p@ssw0rd@host.example/m.xlsx", "https://***@host.example/m.xlsx", "ssw0rd"),
    ("https://b.obs.x.com/cat;v=2/m.xlsx", "https://b.obs.x.com/cat;v=2/m.xlsx", None),
]


@pytest.mark.parametrize(("url", "shown", "secret"), CASES)
def test_a_refused_manifest_url_shows_its_object_and_none_of_its_secrets(
    url: str, shown: str, secret: str | None
) -> None:
    assert shown_url(url) == shown
    with pytest.raises(ImageSearchValidationError) as raised:
        list(read_chunks(url))  # .xlsx: refused, naming the manifest as shown
    message = str(raised.value)
    assert message.startswith(f"Invalid manifest {shown!r}: a file name ending in one of "), message
    if secret is not None:
        assert secret not in message
