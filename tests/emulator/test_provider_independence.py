"""No provider logic depends on a code the docs do not give, and the documented ones keep their meaning.

Each scenario below meets the emulator's own codes (:data:`~airflow_provider_imagesearch.emulator.
constants.EMULATOR_OWN_CODES`: an instance or item that exists, an image or item that does not, an undefined
tag). It runs twice: once as the emulator answers, once with every own code answered as an unknown code
(``own_codes_as``). The provider's outcome must be the same: it can only have relied on the status and on
documented codes. The run with the unknown code must really have met it (no vacuous pass).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, DEFAULT_REGION, Emulator
from tests.support.connections import set_connection

UNKNOWN = "UNKNOWN.0000"
INSTANCE = "catalog"
SERVICE = "shop"
OBS = f"https://shop.obs.{DEFAULT_REGION}.myhuaweicloud.com"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
LEDGER_CONN = "imagesearch_archive_db"


@pytest.fixture
def sql_conns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ledger's and the results table's SQL connection: SQLite in the test's directory."""
    set_connection(monkeypatch, LEDGER_CONN, conn_type="sqlite", host=str(tmp_path / "db.sqlite"))


def _own_codes(emulator: Emulator) -> set[str]:
    return {r["error_code"] for r in emulator.requests_log() if r["error_code"]}


def _scenario_v1_import(emulator: Emulator, conn_id: str, run: str) -> dict[str, Any]:
    """Rows with an undefined tag fail (IS.9003) but are not fatal; a pruned image already gone is pruned."""
    from airflow_provider_imagesearch.operators.import_images import ImageSearchImportImagesOperator

    instance = f"{INSTANCE}-{run}"  # each run its own instance, so their ledger rows stay apart
    emulator.upsert_instance(instance, project_id=DEFAULT_PROJECT_ID, tags=["color"], images={})
    rows = [{"path": f"{OBS}/{run}/{i}.jpg", "tag.color": "red"} for i in range(3)]
    bad = {"path": f"{OBS}/{run}/bad.jpg", "tag.size": "L"}  # "size" is not a tag of the instance

    def execute(manifest: list[dict[str, Any]], n: int, **kwargs: Any) -> dict[str, Any]:
        op = ImageSearchImportImagesOperator(
            task_id=f"import_{run}_{n}",
            instance_name=instance,
            manifest=manifest,
            imagesearch_conn_id=conn_id,
            **kwargs,
        )
        result: dict[str, Any] = op.execute({"run_id": f"{run}-{n}"})  # type: ignore[arg-type]
        return result

    first = execute([*rows, bad], 1, max_failed=1)
    # Someone deletes an image behind the ledger's back: the prune's delete is refused (IS.9002) and the
    # image is checked: gone, so it counts as pruned.
    state = emulator.control.state()["images"][f"{DEFAULT_PROJECT_ID}/{instance}"]
    state.pop(rows[0]["path"])
    emulator.upsert_instance(instance, project_id=DEFAULT_PROJECT_ID, tags=["color"], images=state)
    second = execute(rows[1:], 2, prune=True)
    keep = ("added", "failed", "invalid", "pruned", "reconciled", "unchanged", "updated")
    return {"first": {k: first[k] for k in keep}, "second": {k: second[k] for k in keep}}


def _scenario_v2_add_retried_try(emulator: Emulator, conn_id: str, run: str) -> dict[str, Any]:
    """Try 2 of an add whose try 1 took effect but lost its answer: refused as existing (MMS.9001), read
    back, adopted. (The v2 bulk import adds with ``force``, so it never meets that refusal: the add
    operator does.)
    """
    from types import SimpleNamespace

    from airflow_provider_imagesearch.operators.imagesearch_v2 import ImageSearchV2AddDataOperator

    service = f"{SERVICE}-{run}"  # each run its own service
    asked = {"image_url": "https://cdn.example/new.jpg", "desc": "fresh"}
    emulator.upsert_v2_service(service, items={"sku-1": dict(asked)})  # try 1's effect
    op = ImageSearchV2AddDataOperator(
        task_id=f"v2_add_{run}", service_name=service, item_id="sku-1", imagesearch_conn_id=conn_id, **asked
    )
    context = {"run_id": f"v2-{run}", "ti": SimpleNamespace(try_number=2)}
    result: dict[str, Any] = op.execute(context)  # type: ignore[arg-type]
    items = {s["name"]: s for s in emulator.control.state()["v2_services"]}[service]["items"]
    return {"item_id": result["item_id"], "desc": items["sku-1"].get("desc"), "items": sorted(items)}


def _scenario_batch_search(emulator: Emulator, conn_id: str, run: str) -> dict[str, Any]:
    """A query by a path not in the library fails alone (IS.9002); the others are stored."""
    from airflow_provider_imagesearch.operators.imagesearch import ImageSearchSearchImagesOperator

    images = {f"{OBS}/lib/{i}.jpg": {"tags": {}} for i in range(4)}
    emulator.upsert_instance(INSTANCE, project_id=DEFAULT_PROJECT_ID, images=images)
    queries = [{"query_id": f"q{i}", "path": f"{OBS}/lib/{i}.jpg"} for i in range(3)]
    queries.insert(1, {"query_id": "missing", "path": f"{OBS}/not/there.jpg"})
    op = ImageSearchSearchImagesOperator(
        task_id=f"search_{run}",
        instance_name=INSTANCE,
        queries=queries,
        imagesearch_conn_id=conn_id,
        results_conn_id=LEDGER_CONN,
        max_failed=1,
    )
    result: dict[str, Any] = op.execute({"run_id": f"search-{run}"})  # type: ignore[arg-type]
    return {k: result[k] for k in ("queries", "succeeded", "failed", "hits")}


def _scenario_lost_deletes(emulator: Emulator, conn_id: str, run: str) -> dict[str, Any]:
    """A delete whose answer was lost is retried, refused (IS.9002 / MMS.9002), read back, adopted."""
    from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchHook

    emulator.upsert_instance(INSTANCE, project_id=DEFAULT_PROJECT_ID, images={"p": {"tags": {}}})
    emulator.upsert_v2_service(SERVICE, items={"i": {"image_url": "https://cdn.example/i.jpg"}})
    hook = ImageSearchHook(conn_id)
    emulator.set_faults(sequence=["drop_after"])
    v1 = hook.delete_image(INSTANCE, path="p")
    emulator.set_faults(sequence=["drop_after"])
    v2 = hook.delete_data(SERVICE, item_id="i").deleted_ids
    return {"v1": v1, "v2": list(v2)}


SCENARIOS: dict[str, Callable[[Emulator, str, str], dict[str, Any]]] = {
    "v1_import": _scenario_v1_import,
    "v2_add_retried_try": _scenario_v2_add_retried_try,
    "batch_search": _scenario_batch_search,
    "lost_deletes": _scenario_lost_deletes,
}
#: The own codes each scenario must meet (so the run with them replaced is not vacuous).
MEETS = {
    "v1_import": {"IS.9002", "IS.9003"},
    "v2_add_retried_try": {"MMS.9001"},
    "batch_search": {"IS.9002"},
    "lost_deletes": {"IS.9002", "MMS.9002"},
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_the_provider_does_not_depend_on_the_emulators_own_codes(
    name: str, emulator: Emulator, imagesearch_conn: Callable[..., str], sql_conns: None
) -> None:
    conn_id = imagesearch_conn("token")
    scenario = SCENARIOS[name]
    as_answered = scenario(emulator, conn_id, "a")
    assert MEETS[name] <= _own_codes(emulator), _own_codes(emulator)

    emulator.control.reset_faults()
    emulator.reset_stats()
    emulator.control.set_config(own_codes_as=UNKNOWN)
    replaced = scenario(emulator, conn_id, "b")
    met = _own_codes(emulator)
    assert UNKNOWN in met, met
    assert not met & set(MEETS[name]), met  # every own code was answered as the unknown one
    assert json.dumps(replaced, sort_keys=True) == json.dumps(as_answered, sort_keys=True)


# --- documented codes keep their documented meaning in the provider ------------------------------------------
def test_a_batch_search_on_an_instance_that_is_not_normal_stops_at_once(
    emulator: Emulator, imagesearch_conn: Callable[..., str], sql_conns: None
) -> None:
    """IS.0014 "Instance status is abnormal." dooms every query: the batch stops, it does not fail each."""
    from airflow_provider_imagesearch.operators.imagesearch import ImageSearchSearchImagesOperator
    from airflow_provider_imagesearch.version_compat import AirflowFailException

    emulator.upsert_instance(INSTANCE, project_id=DEFAULT_PROJECT_ID, status="ARREARAGE")
    op = ImageSearchSearchImagesOperator(
        task_id="search_abnormal",
        instance_name=INSTANCE,
        queries=[{"query_id": f"q{i}", "path": f"{OBS}/{i}.jpg"} for i in range(20)],
        imagesearch_conn_id=imagesearch_conn("token"),
        results_conn_id=LEDGER_CONN,
        max_concurrency=1,
        max_failed=100,
    )
    with pytest.raises(AirflowFailException, match=r"IS\.0014"):
        op.execute({"run_id": "abnormal"})  # type: ignore[arg-type]
    searches = [r for r in emulator.requests_log() if r["route"].endswith("/image/search")]
    assert len(searches) < 20  # stopped, not one refusal per query


def test_an_import_into_an_instance_whose_model_is_missing_stops_at_once(
    emulator: Emulator, imagesearch_conn: Callable[..., str], sql_conns: None
) -> None:
    """IS.0015 "The model file does not exist." dooms every row: the import stops."""
    from airflow_provider_imagesearch.operators.import_images import ImageSearchImportImagesOperator

    emulator.upsert_instance(INSTANCE, project_id=DEFAULT_PROJECT_ID, model="retired-model")
    op = ImageSearchImportImagesOperator(
        task_id="import_no_model",
        instance_name=INSTANCE,
        manifest=[{"path": f"{OBS}/{i}.jpg"} for i in range(20)],
        imagesearch_conn_id=imagesearch_conn("token"),
        max_concurrency=1,
        max_failed=100,
    )
    with pytest.raises(Exception, match=r"IS\.0015"):
        op.execute({"run_id": "no-model"})  # type: ignore[arg-type]
    adds = [r for r in emulator.requests_log() if r["route"] == "POST /v1/{project_id}/{instance_name}/image"]
    assert len(adds) < 20


def test_a_v1_add_whose_path_the_service_refuses_is_an_invalid_row(
    emulator: Emulator, imagesearch_conn: Callable[..., str], sql_conns: None
) -> None:
    """IS.0016 "The path is invalid." refuses the row (``invalid``, not sent again), not the import."""
    from airflow_provider_imagesearch.operators.import_images import ImageSearchImportImagesOperator

    emulator.upsert_instance(INSTANCE, project_id=DEFAULT_PROJECT_ID, images={})
    # A bucket name OBS does not allow (it must end in a letter or digit): the provider's manifest check
    # lets it through, the service cannot fetch it.
    bad_bucket = f"https://shop-.obs.{DEFAULT_REGION}.myhuaweicloud.com/a.jpg"
    manifest = [{"path": bad_bucket}, {"path": f"{OBS}/ok.jpg"}]

    def run(n: int) -> dict[str, Any]:
        op = ImageSearchImportImagesOperator(
            task_id=f"import_path_{n}",
            instance_name=INSTANCE,
            manifest=manifest,
            imagesearch_conn_id=imagesearch_conn("token"),
            max_failed=1,
        )
        result: dict[str, Any] = op.execute({"run_id": f"path-{n}"})  # type: ignore[arg-type]
        return result

    first = run(1)
    assert (first["added"], first["invalid"], first["failed"]) == (1, 1, 0)
    refused = [r for r in emulator.requests_log() if r["error_code"]]
    assert [r["error_code"] for r in refused] == ["IS.0016"]  # sent, and refused by the service
    emulator.reset_stats()
    second = run(2)
    assert second["invalid"] == 1
    assert not [r for r in emulator.requests_log() if r["route"].endswith("/image")]  # not sent again


@pytest.mark.parametrize(("kind", "expected"), [("MMS.1015", "added"), ("MMS.0002", "raises")])
def test_v2_transient_codes_are_retried_and_refusals_of_the_caller_are_not(
    emulator: Emulator, imagesearch_conn: Callable[..., str], kind: str, expected: str
) -> None:
    """MMS.1015 "Process BIZ failed." is "try again later": retried. MMS.0002 refuses the caller: not."""
    from airflow_provider_imagesearch.errors import ImageSearchAuthError
    from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchHook

    emulator.upsert_v2_service(SERVICE, items={})
    hook = ImageSearchHook(imagesearch_conn("token"))
    emulator.set_faults(sequence=[kind])
    if expected == "added":
        assert hook.add_data(SERVICE, item_id="a", image_base64=_png(), force=True).result == "success"
        assert hook.retry_stats["5xx"] == 1
    else:
        with pytest.raises(ImageSearchAuthError):
            hook.add_data(SERVICE, item_id="a", image_base64=_png(), force=True)
    adds = [r for r in emulator.requests_log() if r["route"].endswith("/data/add")]
    assert len(adds) == (2 if expected == "added" else 1)


def _png() -> str:
    import base64

    return base64.b64encode(PNG).decode()
