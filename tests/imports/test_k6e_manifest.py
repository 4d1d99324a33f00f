"""Which parts of a manifest URL are masked in logs, and rows whose odd values are still good rows.

The masker is Airflow's and process-global: every secret here is new to the process.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from decimal import Decimal

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.imports.manifest import mask_url_secrets
from tests.imports.conftest import RunImport, library, obs, v2_items


def _shown(text: str) -> str:
    from airflow.sdk._shared.secrets_masker import redact

    return str(redact(text))


def _fresh(length: int = 12) -> str:
    return uuid.uuid4().hex[:length]


def test_text_without_a_scheme_has_no_user_info_to_mask() -> None:
    """``sku:...@2024`` is an image id, not a URL: nothing in it is a password."""
    word = _fresh()
    mask_url_secrets(f"sku:{word}@2024")
    assert _shown(f"row sku:{word}@2024") == f"row sku:{word}@2024"


def test_a_password_holding_a_colon_is_masked_whole() -> None:
    password = f"{_fresh(6)}:{_fresh(6)}"
    mask_url_secrets(f"s3://KEY:{password}@bucket/manifest.csv")
    assert _shown(f"secret {password} end") == "secret *** end"


def test_a_five_character_password_is_masked() -> None:
    password = _fresh(5)
    mask_url_secrets(f"s3://KEY:{password}@bucket/manifest.csv")
    assert password not in _shown(f"secret {password} end")


def test_a_signature_padded_with_equals_signs_is_masked_whole() -> None:
    signature = _fresh(10) + "=="
    mask_url_secrets(f"https://acct.blob.core.windows.net/c/m.csv?sv=2024&sig={signature}")
    assert _shown(f"signature {signature} end") == "signature *** end"


def test_an_eight_character_token_is_masked() -> None:
    token = _fresh(8)
    mask_url_secrets(f"https://example.com/m.csv?token={token}")
    assert token not in _shown(f"token {token} end")


def test_every_secret_of_a_query_and_the_password_are_masked_each_on_its_own() -> None:
    password, signature, credential = _fresh(), _fresh(), _fresh()
    mask_url_secrets(
        f"https://user:{password}@bucket.example.com/m.csv"
        f"?X-Amz-Signature={signature}&X-Amz-Credential={credential}"
    )
    for secret in (password, signature, credential):
        assert _shown(f"alone {secret} end") == "alone *** end", secret


def test_query_values_that_are_no_secrets_stay_shown() -> None:
    owner, version = _fresh(), _fresh()
    mask_url_secrets(f"https://example.com/m.csv?owner={owner}&version={version}&sig={_fresh()}")
    assert _shown(f"owner {owner} version {version}") == f"owner {owner} version {version}"


def test_a_row_with_an_empty_file_column_is_a_plain_path_row(
    import_into: Callable[..., RunImport], emulator: Emulator
) -> None:
    """A CSV or DataFrame gives every row the file column: empty, or NaN, means no file."""
    run = import_into("k6e-manifest")
    rows = [{"path": obs("k6e/empty.jpg"), "file": ""}, {"path": obs("k6e/nan.jpg"), "file": float("nan")}]
    assert run(rows)["added"] == 2
    assert set(library(emulator, "k6e-manifest")) == {r["path"] for r in rows}


def test_a_v2_row_with_a_decimal_number_tag_is_imported(
    import_into: Callable[..., RunImport], emulator: Emulator
) -> None:
    """A database's NUMERIC column arrives as Decimal: the row is sent, not refused."""
    run = import_into("k6e-manifest-v2", v2=True)
    row = {"item_id": "dec", "image_url": "https://cdn.example.com/dec.jpg", "num.price": Decimal("9.5")}
    assert run([row])["added"] == 1
    assert v2_items(emulator, "k6e-manifest-v2")["dec"]["custom_num_tags"] == {"price": 9.5}
