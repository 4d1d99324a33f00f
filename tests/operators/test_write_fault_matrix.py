"""The fault matrix of issue 20: every write operator, v1 and v2, x three everyday failures.

* ``hook``: the write is processed but its answer is lost (``drop_after``); the hook's retry (or the
  operator's read-back, for writes the hook does not repeat) meets it. Success on the first try.
* ``task-try``: the same, and then the service answers 503 to every attempt (the hook's retries of the write
  and the operator's read-back), so the task try fails; the next try meets the earlier effect. Success on
  the second try.
* ``cleared``: the task succeeds, then it is cleared and runs again in the same DAG run (``try_number`` 2).

Each ends in success with the service holding what was asked, and nothing applied twice where twice would
differ (one create; a conditional delete never touches an item that does not match). Every fault sequence is
used up exactly, so each cell exercises the path it names. Run through ``dag.test()`` against the emulator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from airflow.sdk import DAG

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from airflow_provider_imagesearch.operators.imagesearch import (
    ImageSearchAddImageOperator,
    ImageSearchCreateInstanceOperator,
    ImageSearchDeleteImageOperator,
    ImageSearchDeleteInstanceOperator,
    ImageSearchUpdateImageTagsOperator,
)
from airflow_provider_imagesearch.operators.imagesearch_v2 import (
    ImageSearchV2AddDataOperator,
    ImageSearchV2DeleteDataOperator,
    ImageSearchV2UpdateDataOperator,
)
from tests.support.dagrun import run_dag, states
from tests.support.rerun import clear_and_rerun

pytestmark = pytest.mark.usefixtures("airflow_db")

ATTEMPTS = 5  # the test connection's max_attempts
OBS = "https://shop-images.obs.cn-north-4.myhuaweicloud.com"
SCENARIOS = ("hook", "task-try", "cleared")
FAIL_A_TRY = ["503_json"] * ATTEMPTS  # every attempt of one call


@dataclass
class Case:
    """One write operator: how to seed the service, the faults of each scenario, and what must hold after.

    ``before`` are the requests before the write (answered normally); ``retries_503`` are the 503s the
    hook's own retries of the write meet before it gives up (``ATTEMPTS - 1`` for a write the hook retries,
    0 for one it does not); the operator's read-back then meets ``FAIL_A_TRY``.
    """

    operator: type
    kwargs: Callable[[str], dict[str, Any]]
    seed: Callable[[Emulator, str], None]
    check: Callable[[Emulator, str], None]
    before: int = 0
    retries_503: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def sequence(self, scenario: str) -> list[str]:
        if scenario == "cleared":
            return []
        lost = ["ok"] * self.before + ["drop_after"]
        if scenario == "hook":
            return lost
        return lost + ["503_json"] * self.retries_503 + FAIL_A_TRY


def _instance(emulator: Emulator, name: str) -> dict[str, Any] | None:
    found = [i for i in emulator.control.state()["instances"] if i["name"] == name]
    return found[0] if found else None


def _library(emulator: Emulator, name: str) -> dict[str, Any]:
    images: dict[str, Any] = (
        emulator.control.state().get("images", {}).get(f"{DEFAULT_PROJECT_ID}/{name}", {})
    )
    return images


def _items(emulator: Emulator, service: str) -> dict[str, Any]:
    services = emulator.control.state()["v2_services"]
    (found,) = [s for s in services if s["name"] == service and s["project_id"] == DEFAULT_PROJECT_ID]
    items: dict[str, Any] = found["items"]
    return items


def _creates(emulator: Emulator) -> int:
    return sum(1 for r in emulator.requests_log() if r["method"] == "POST" and r["path"].endswith("/service"))


# --- v1 ---------------------------------------------------------------------------------------------------


def _check_created(emulator: Emulator, name: str) -> None:
    instance = _instance(emulator, name)
    assert instance is not None
    assert instance["tags"] == ["color"]
    assert instance["description"].startswith("spring [airflow:")
    assert _creates(emulator) == 1, "one create reached the service"


def _seed_library(emulator: Emulator, name: str, images: dict[str, Any] | None = None) -> None:
    emulator.upsert_instance(name, tags=["color"], images=images or {})


def _check_added(emulator: Emulator, name: str) -> None:
    assert _library(emulator, name)[f"{OBS}/a.jpg"]["tags"] == {"color": "red"}


def _check_retagged(emulator: Emulator, name: str) -> None:
    assert _library(emulator, name)[f"{OBS}/a.jpg"]["tags"] == {"color": "blue"}


def _check_image_deleted(emulator: Emulator, name: str) -> None:
    assert sorted(_library(emulator, name)) == [f"{OBS}/keep.jpg"]


RED = {f"{OBS}/a.jpg": {"tags": {"color": "red"}}, f"{OBS}/keep.jpg": {"tags": {"color": "red"}}}

# --- v2 ---------------------------------------------------------------------------------------------------

ITEM = {"item_id": "it-1", "image_url": "https://cdn.example/it-1.jpg", "desc": "red shoe"}


def _seed_service(emulator: Emulator, name: str, items: dict[str, Any] | None = None) -> None:
    emulator.upsert_v2_service(name, items=items or {})


def _purge_items() -> dict[str, Any]:
    items = {f"old{n:03d}": {"digest": f"o{n}", "custom_tags": {"season": "old"}} for n in range(150)}
    items.update({f"new{n:02d}": {"digest": f"n{n}", "custom_tags": {"season": "new"}} for n in range(5)})
    return items


CASES: dict[str, Case] = {
    "v1-create": Case(
        ImageSearchCreateInstanceOperator,
        lambda name: {
            "instance_name": name,
            "tags": ["color"],
            "description": "spring",
            "wait_for_completion": False,
        },
        lambda emulator, name: None,
        _check_created,
        before=1,  # the existence check
    ),
    "v1-delete-instance": Case(
        ImageSearchDeleteInstanceOperator,
        lambda name: {"instance_name": name, "missing_ok": False, "poke_interval": 0.2, "timeout": 60},
        lambda emulator, name: emulator.upsert_instance(name),
        lambda emulator, name: _assert_none(_instance(emulator, name)),
        before=1,  # the status read
        retries_503=ATTEMPTS - 1,
    ),
    "v1-add-image": Case(
        ImageSearchAddImageOperator,
        lambda name: {"instance_name": name, "path": f"{OBS}/a.jpg", "tags": {"color": "red"}},
        lambda emulator, name: _seed_library(emulator, name),
        _check_added,
    ),
    "v1-update-tags": Case(
        ImageSearchUpdateImageTagsOperator,
        lambda name: {"instance_name": name, "path": f"{OBS}/a.jpg", "tags": {"color": "blue"}},
        lambda emulator, name: _seed_library(emulator, name, RED),
        _check_retagged,
        retries_503=ATTEMPTS - 1,
    ),
    "v1-delete-image": Case(
        ImageSearchDeleteImageOperator,
        lambda name: {"instance_name": name, "path": f"{OBS}/a.jpg", "missing_ok": False},
        lambda emulator, name: _seed_library(emulator, name, RED),
        _check_image_deleted,
        retries_503=ATTEMPTS - 1,
    ),
    "v2-add": Case(
        ImageSearchV2AddDataOperator,
        lambda name: {"service_name": name, **ITEM},
        _seed_service,
        lambda emulator, name: _assert_equal(_items(emulator, name)["it-1"].get("desc"), "red shoe"),
    ),
    "v2-update": Case(
        ImageSearchV2UpdateDataOperator,
        lambda name: {"service_name": name, "item_id": "it-1", "desc": "blue shoe"},
        lambda emulator, name: _seed_service(emulator, name, {"it-1": {"digest": "x", "desc": "red shoe"}}),
        lambda emulator, name: _assert_equal(_items(emulator, name)["it-1"].get("desc"), "blue shoe"),
        retries_503=ATTEMPTS - 1,
    ),
    "v2-delete-by-id": Case(
        ImageSearchV2DeleteDataOperator,
        lambda name: {"service_name": name, "item_id": "it-1"},
        lambda emulator, name: _seed_service(
            emulator, name, {"it-1": {"digest": "x"}, "it-2": {"digest": "y"}}
        ),
        lambda emulator, name: _assert_equal(sorted(_items(emulator, name)), ["it-2"]),
        retries_503=ATTEMPTS - 1,
    ),
    "v2-delete-matching": Case(
        ImageSearchV2DeleteDataOperator,
        lambda name: {"service_name": name, "custom_tags": {"season": ["old"]}},
        lambda emulator, name: _seed_service(emulator, name, _purge_items()),
        lambda emulator, name: _assert_equal(
            sorted(_items(emulator, name)), [f"new{n:02d}" for n in range(5)]
        ),
        before=1,  # the count of matching items
    ),
}


def _assert_none(value: object) -> None:
    assert value is None


def _assert_equal(value: object, expected: object) -> None:
    assert value == expected


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("case", CASES)
def test_every_write_meets_its_own_earlier_effect(
    case: str, scenario: str, imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    spec = CASES[case]
    # Unique per cell (the emulator lives for the session); v1 names: lowercase, at most 16 characters.
    name = f"mx{list(CASES).index(case)}-{scenario[:4]}"
    spec.seed(emulator, name)
    with DAG(
        f"matrix_{case}_{scenario}", schedule=None, start_date=datetime(2026, 1, 1), catchup=False
    ) as dag:
        spec.operator(
            task_id="op",
            retries=1,
            retry_delay=timedelta(seconds=0),
            imagesearch_conn_id=imagesearch_conn("token", max_attempts=ATTEMPTS),
            **spec.kwargs(name),
        )
    emulator.set_faults(sequence=spec.sequence(scenario))
    dr = run_dag(dag)
    if scenario == "cleared":
        assert states(dr) == {("op", -1): ("success", 1)}
        spec.check(emulator, name)
        dr = clear_and_rerun(dag, dr)
    expected_try = 1 if scenario == "hook" else 2
    assert states(dr) == {("op", -1): ("success", expected_try)}
    assert emulator.control.faults()["sequence"] == [], "every fault was met"
    spec.check(emulator, name)
