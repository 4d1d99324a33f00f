"""Bulk import into a v2 (MMS) service on the v1 engine, against the emulator, ledgers on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from tests.imports.conftest import (
    SERVICE,
    api_requests,
    ledger_rows,
    ledger_rows_v2,
    library,
    obs,
    v2_items,
    v2_routes,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
CDN = "https://cdn.example.com/img"

RunImport = Callable[..., dict[str, Any]]


def _manifest(count: int) -> list[dict[str, Any]]:
    return [
        {
            "item_id": f"sku-{i:03d}",
            "image_url": f"{CDN}/{i:03d}.jpg",
            "desc": f"item {i}",
            "custom_tags": {"color": "red"},
            "custom_num_tags": {"price": 10 + i},
            "keywords": ["shirt", f"k{i}"],
        }
        for i in range(count)
    ]


def test_import_every_column_form_then_unchanged_rerun_sends_nothing(
    run_v2_import: RunImport, emulator: Emulator, ledger_conn: dict[str, Any], tmp_path: Path
) -> None:
    image = tmp_path / "a.png"
    image.write_bytes(PNG)
    manifest = [
        *_manifest(20),
        # CSV-style: tag./num. columns (the number as text), comma-separated keywords, a local file.
        {
            "item_id": "csv-1",
            "file": str(image),
            "tag.color": "blue",
            "num.price": "19.9",
            "keywords": "a, b",
        },
        {"item_id": "b64-1", "image_base64": base64.b64encode(PNG).decode(), "desc": "inline"},
    ]
    first = run_v2_import(manifest, max_concurrency=4)
    assert (first["added"], first["failed"], first["invalid"]) == (22, 0, 0)
    items = v2_items(emulator)
    assert set(items) == {row["item_id"] for row in manifest}
    assert items["sku-003"]["desc"] == "item 3"
    assert items["sku-003"]["custom_num_tags"] == {"price": 13.0}
    assert items["sku-003"]["keywords"] == ["shirt", "k3"]
    assert items["csv-1"]["custom_tags"] == {"color": "blue"}
    assert items["csv-1"]["custom_num_tags"] == {"price": 19.9}
    assert items["csv-1"]["keywords"] == ["a", "b"]
    assert items["csv-1"]["digest"] == items["b64-1"]["digest"]  # the file's bytes were sent
    assert v2_routes(emulator).count("add") == 22
    rows = ledger_rows_v2(ledger_conn["engine"])
    assert {r["outcome"] for r in rows.values()} == {"added"}
    assert {r["api"] for r in rows.values()} == {"v2"}

    emulator.reset_stats()
    second = run_v2_import(manifest)
    assert second["unchanged"] == 22
    assert second["added"] == second["updated"] == 0
    assert api_requests(emulator) == []


def test_changed_rows_update_or_overwrite_by_what_changed(
    run_v2_import: RunImport, emulator: Emulator, ledger_conn: dict[str, Any]
) -> None:
    manifest = _manifest(6)
    run_v2_import(manifest)
    emulator.reset_stats()
    manifest[1]["desc"] = "a new description"  # data/update can change it
    manifest[2]["custom_tags"] = {"color": "green"}  # and a tag value
    result = run_v2_import(manifest)
    assert (result["updated"], result["added"], result["unchanged"]) == (2, 0, 4)
    assert sorted(v2_routes(emulator)) == ["update", "update"]
    items = v2_items(emulator)
    assert items["sku-001"]["desc"] == "a new description"
    assert items["sku-002"]["custom_tags"] == {"color": "green"}

    emulator.reset_stats()
    manifest[3]["keywords"] = ["dress"]  # update cannot change keywords: an add with force
    manifest[4]["image_url"] = f"{CDN}/new.jpg"  # nor the image
    manifest[5]["custom_tags"] = {"color": "red", "size": "L"}  # nor add a tag key safely
    result = run_v2_import(manifest)
    assert (result["updated"], result["failed"]) == (3, 0)
    log = [r for r in emulator.requests_log() if r["route"].endswith("/data/add")]
    assert [r["status"] for r in log] == [200, 200, 200]  # an add without force would be refused
    items = v2_items(emulator)
    assert items["sku-003"]["keywords"] == ["dress"]
    assert items["sku-005"]["custom_tags"] == {"color": "red", "size": "L"}
    rows = ledger_rows_v2(ledger_conn["engine"])
    assert rows["sku-004"]["outcome"] == "updated"


@pytest.mark.parametrize("fault", ["503_after", "drop_after", "503_json"])
def test_an_ambiguous_add_is_sent_again_with_force(
    run_v2_import: RunImport, emulator: Emulator, ledger_conn: dict[str, Any], fault: str
) -> None:
    """Every import add carries ``force``: sending it again after an ambiguous answer is an overwrite
    (the hook's own retry, as for any idempotent call), never a check that trusts the fields alone. The
    hook's resend is counted like the engine's (v1's): ``resent`` 1, the row ``retried``."""
    emulator.set_faults(sequence=[fault])
    result = run_v2_import(_manifest(1), max_concurrency=1)
    assert (result["retried"], result["added"], result["failed"], result["resent"]) == (1, 0, 0, 1)
    assert v2_routes(emulator) == ["add", "add"]
    assert list(v2_items(emulator)) == ["sku-000"]
    row = ledger_rows_v2(ledger_conn["engine"])["sku-000"]
    assert (row["outcome"], row["attempts"]) == ("retried", 2)


def test_an_item_already_there_is_overwritten_not_failed(
    run_v2_import: RunImport, emulator: Emulator, ledger_conn: dict[str, Any]
) -> None:
    # What a run killed between its add and its ledger write leaves behind: the item, no ledger row.
    emulator.upsert_v2_service(
        SERVICE, items={"sku-000": {"image_url": f"{CDN}/old.jpg", "desc": "stale", "custom_tags": {}}}
    )
    result = run_v2_import(_manifest(1))
    assert (result["added"], result["failed"]) == (1, 0)
    assert v2_routes(emulator) == ["add"]  # with force: overwritten at once
    assert v2_items(emulator)["sku-000"]["desc"] == "item 0"


def test_prune_deletes_with_data_delete(
    run_v2_import: RunImport, emulator: Emulator, ledger_conn: dict[str, Any]
) -> None:
    manifest = _manifest(5)
    run_v2_import(manifest)
    kept = manifest[:3]
    assert run_v2_import(kept)["pruned"] == 0  # off by default
    emulator.reset_stats()
    result = run_v2_import(kept, prune=True)
    assert (result["pruned"], result["unchanged"]) == (2, 3)
    assert v2_routes(emulator) == ["delete", "delete"]
    assert set(v2_items(emulator)) == {"sku-000", "sku-001", "sku-002"}
    assert set(ledger_rows_v2(ledger_conn["engine"])) == {"sku-000", "sku-001", "sku-002"}


def test_invalid_rows_are_recorded_naming_the_field_and_never_sent(
    run_v2_import: RunImport, emulator: Emulator, ledger_conn: dict[str, Any]
) -> None:
    from airflow_provider_imagesearch.version_compat import AirflowFailException

    long_id = "x" * 257
    manifest: list[Any] = [
        {"item_id": "ok", "image_url": f"{CDN}/ok.jpg"},
        {"item_id": long_id, "image_url": f"{CDN}/1.jpg"},
        {"item_id": "both", "image_url": f"{CDN}/2.jpg", "image_base64": base64.b64encode(PNG).decode()},
        {"item_id": "neither", "desc": "no image"},
        {"item_id": "long-tag", "image_url": f"{CDN}/3.jpg", "custom_tags": {"color": "r" * 65}},
        {"item_id": "num-text", "image_url": f"{CDN}/4.jpg", "custom_num_tags": '{"price": "cheap"}'},
        {"item_id": "kw", "image_url": f"{CDN}/5.jpg", "keywords": [f"k{i}" for i in range(101)]},
        {"image_url": f"{CDN}/6.jpg"},  # no item_id
    ]
    with pytest.raises(AirflowFailException) as failure:
        run_v2_import(manifest)
    message = str(failure.value)
    assert "7 rows failed or were invalid" in message
    assert v2_routes(emulator) == ["add"]  # only the good row reached the service
    assert list(v2_items(emulator)) == ["ok"]
    rows = ledger_rows_v2(ledger_conn["engine"])
    expected = {
        long_id: "Invalid item_id",
        "both": "Invalid image_url/image_base64",
        "neither": "Invalid image_url/image_base64",
        "long-tag": "Invalid custom_tags['color']",
        "num-text": "Invalid custom_num_tags['price']",
        "kw": "Invalid keywords",
    }
    for item, reason in expected.items():
        assert rows[item]["outcome"] == "invalid"
        assert rows[item]["error_message"].startswith(reason), rows[item]["error_message"]
    assert "row 8" in message
    assert "item_id" in message

    emulator.reset_stats()
    result = run_v2_import(manifest, max_failed=7)
    assert (result["invalid"], result["unchanged"]) == (7, 1)
    assert api_requests(emulator) == []


def test_v1_instance_and_v2_service_of_the_same_name_keep_their_own_rows(
    run_import: RunImport, run_v2_import: RunImport, emulator: Emulator, ledger_conn: dict[str, Any]
) -> None:
    v1_manifest = [{"path": obs(f"v1/{i}.jpg"), "tags": {"color": "red"}} for i in range(3)]
    run_import(v1_manifest)
    run_v2_import(_manifest(2), prune=True)
    engine = ledger_conn["engine"]
    assert set(ledger_rows_v2(engine, api="v1")) == {row["path"] for row in v1_manifest}
    assert set(ledger_rows_v2(engine)) == {"sku-000", "sku-001"}
    # The v2 prune saw only v2 rows: the v1 images and their rows are untouched.
    assert set(library(emulator)) == {row["path"] for row in v1_manifest}
    assert len(ledger_rows(engine)) == 5

    emulator.reset_stats()
    assert run_import(v1_manifest, prune=True)["unchanged"] == 3
    assert run_v2_import(_manifest(1), prune=True)["pruned"] == 1
    assert v2_routes(emulator) == ["delete"]
    assert set(library(emulator)) == {row["path"] for row in v1_manifest}
    assert set(v2_items(emulator)) == {"sku-000"}


def test_a_ledger_table_without_the_api_column_is_refused_naming_it(
    run_v2_import: RunImport, emulator: Emulator, ledger_conn: dict[str, Any]
) -> None:
    import sqlalchemy as sa

    from airflow_provider_imagesearch.version_compat import AirflowFailException

    if ledger_conn["name"] != "sqlite":
        pytest.skip("one backend is enough")
    with ledger_conn["engine"].begin() as connection:
        connection.execute(
            sa.text(
                "CREATE TABLE imagesearch_import_ledger (instance_name VARCHAR(64), path_key VARCHAR(32))"
            )
        )
    with pytest.raises(AirflowFailException, match=r"ledger_table.*'api' column"):
        run_v2_import(_manifest(1))
    assert api_requests(emulator) == []


def test_v2_row_checks_and_fingerprint_halves() -> None:
    from airflow_provider_imagesearch.imports.manifest_v2 import check_row, split_fingerprint

    base = {"item_id": "a", "image_url": f"{CDN}/a.jpg", "desc": "d", "tag.color": "red", "num.price": "2"}
    row = check_row(base, 1)
    assert row.invalid is None
    assert row.tags == {
        "image_url": f"{CDN}/a.jpg",
        "desc": "d",
        "custom_tags": {"color": "red"},
        "custom_num_tags": {"price": 2.0},
    }
    add_only, updatable = split_fingerprint(row.fingerprint)
    desc_changed = split_fingerprint(check_row({**base, "desc": "e"}, 1).fingerprint)
    assert desc_changed[0] == add_only
    assert desc_changed[1] != updatable
    for change in ({"keywords": "x"}, {"image_url": f"{CDN}/b.jpg"}, {"tag.size": "L"}):
        assert split_fingerprint(check_row({**base, **change}, 1).fingerprint)[0] != add_only
    assert check_row({**base, "num.price": 2}, 1).fingerprint == row.fingerprint  # "2" and 2 alike
    assert "JSON list" in (check_row({**base, "keywords": "[broken"}, 1).invalid or "")
    assert "quote numeric ids" in (check_row({**base, "item_id": 7}, 1).invalid or "")
    assert "image_base64" in (check_row({"item_id": "b", "image_base64": "not base64!"}, 1).invalid or "")


def test_an_item_id_with_control_characters_is_invalid_naming_item_id(
    run_v2_import: RunImport, emulator: Emulator, ledger_conn: dict[str, Any]
) -> None:
    """A NUL in one id (PostgreSQL text cannot hold it) must not fail the ledger write of every row."""
    from airflow_provider_imagesearch.version_compat import AirflowFailException

    manifest = [
        *_manifest(3),
        {"item_id": "sku\x00evil", "image_url": f"{CDN}/x.jpg"},
        {"item_id": "sku\ttab", "image_url": f"{CDN}/y.jpg"},
    ]
    with pytest.raises(AirflowFailException) as failure:
        run_v2_import(manifest)
    message = str(failure.value)
    assert "\x00" not in message
    assert "row 4 " in message
    assert "row 5 " in message
    assert "Invalid item_id" in message
    assert "control characters" in message
    assert set(v2_items(emulator)) == {"sku-000", "sku-001", "sku-002"}
    rows = ledger_rows_v2(ledger_conn["engine"])
    assert set(rows) == {"sku-000", "sku-001", "sku-002", "sku\ttab"}  # a NUL id has no ledger row
    assert rows["sku\ttab"]["outcome"] == "invalid"
    assert "\\t" in rows["sku\ttab"]["error_message"]  # shown escaped


def test_a_bad_ledger_table_is_refused_naming_ledger_table_before_any_request(
    run_v2_import: RunImport, emulator: Emulator
) -> None:
    from airflow_provider_imagesearch.version_compat import AirflowFailException

    with pytest.raises(AirflowFailException, match=r"Invalid ledger_table 'ledger; DROP TABLE x'"):
        run_v2_import(_manifest(1), ledger_table="ledger; DROP TABLE x")
    assert api_requests(emulator) == []
