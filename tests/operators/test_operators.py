"""Every ImageSearch operator in real Airflow (dag.test()) against the emulator: results, waits, bad input."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from airflow.sdk import DAG

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from airflow_provider_imagesearch.operators.imagesearch import (
    ImageSearchAddImageOperator,
    ImageSearchCheckImageOperator,
    ImageSearchCreateInstanceOperator,
    ImageSearchDeleteImageOperator,
    ImageSearchDeleteInstanceOperator,
    ImageSearchSearchImagesOperator,
    ImageSearchUpdateImageTagsOperator,
    InstanceDetailOperator,
)
from airflow_provider_imagesearch.sensors.imagesearch import ImageSearchInstanceDeletedSensor
from tests.support.airflow_version import PARTIAL_TAKES_OPERATOR_DEFAULTS
from tests.support.dagrun import run_dag, states, task_instances, xcom

pytestmark = pytest.mark.usefixtures("airflow_db")

BUCKET = "https://shop-images.obs.cn-north-4.myhuaweicloud.com"
LINK_KEY = "_link_ImageSearchConsoleLink"
WAIT_MODES = {"worker": {"deferrable": False}, "deferred": {"deferrable": True}}


def image(name: str) -> str:
    return f"{BUCKET}/{name}.jpg"


def _run(dag_id: str, operator: type, **kwargs: Any) -> Any:
    kwargs.setdefault("retries", 2)
    kwargs.setdefault("retry_delay", timedelta(seconds=0))
    with DAG(dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
        operator(task_id="op", **kwargs)
    return run_dag(dag)


def _api_requests(emulator: Emulator) -> list[dict[str, Any]]:
    return [r for r in emulator.requests_log() if r["path"].startswith("/v1/")]


# --- the image library ---------------------------------------------------------------------------------


def test_image_library_operators_end_to_end(imagesearch_conn: Callable[..., str], emulator: Emulator) -> None:
    emulator.upsert_instance("lib", tags=["color"], images={})  # the session emulator: start empty
    conn_id = imagesearch_conn("aksk")
    paths = [image(f"shirt-{i}") for i in range(3)]
    with DAG("ops_library", schedule=None, start_date=datetime(2026, 1, 1), params={"conn": conn_id}) as dag:
        added = ImageSearchAddImageOperator.partial(
            task_id="add",
            instance_name="lib",
            imagesearch_conn_id="{{ params.conn }}",
            tags={"color": "red"},
            # Before Airflow 3.3, partial() drops the operator's default label (see the README).
            **({} if PARTIAL_TAKES_OPERATOR_DEFAULTS else {"map_index_template": "{{ task.instance_name }}"}),
        ).expand(path=paths)
        check = ImageSearchCheckImageOperator(
            task_id="check", instance_name="lib", path=paths[0], imagesearch_conn_id=conn_id
        )
        check_missing = ImageSearchCheckImageOperator(
            task_id="check_missing", instance_name="lib", path=image("nope"), imagesearch_conn_id=conn_id
        )
        search = ImageSearchSearchImagesOperator(
            task_id="search",
            instance_name="lib",
            path=paths[1],
            limit=1,
            fetch_all=True,
            imagesearch_conn_id=conn_id,
        )
        update = ImageSearchUpdateImageTagsOperator(
            task_id="update",
            instance_name="lib",
            path=paths[2],
            tags={"color": "blue"},
            imagesearch_conn_id=conn_id,
        )
        delete = ImageSearchDeleteImageOperator(
            task_id="delete", instance_name="lib", path=paths[0], imagesearch_conn_id=conn_id
        )
        delete_again = ImageSearchDeleteImageOperator(
            task_id="delete_again", instance_name="lib", path=paths[0], imagesearch_conn_id=conn_id
        )
        added >> [check, check_missing, search, update] >> delete >> delete_again
    dr = run_dag(dag)
    assert {key: state for key, (state, _) in states(dr).items()} == {
        **{("add", i): "success" for i in range(3)},
        **{
            (task, -1): "success"
            for task in ("check", "check_missing", "search", "update", "delete", "delete_again")
        },
    }
    # Mapped adds are labelled by instance name, results name the path.
    tis = task_instances(dr)
    assert [tis[("add", i)].rendered_map_index for i in range(3)] == ["lib"] * 3
    assert [xcom(dr, "add", i)["path"] for i in range(3)] == paths
    assert xcom(dr, "check") is True
    assert xcom(dr, "check_missing") is False
    hits = xcom(dr, "search")
    assert hits[0]["path"] == paths[1]  # the query image itself ranks first
    assert sorted(hit["path"] for hit in hits) == sorted(paths)  # fetch_all paged past limit=1
    assert [hit["similarity"] for hit in hits] == sorted((hit["similarity"] for hit in hits), reverse=True)
    assert xcom(dr, "update")["tags"] == {"color": "blue"}
    assert xcom(dr, "delete") is True
    assert xcom(dr, "delete_again") is False  # missing_ok: nothing to delete
    library = emulator.control.state()["images"][f"{DEFAULT_PROJECT_ID}/lib"]
    assert sorted(library) == sorted(paths[1:])
    assert library[paths[2]]["tags"] == {"color": "blue"}
    search_requests = [r for r in _api_requests(emulator) if r["path"].endswith("/image/search")]
    assert len(search_requests) == 3  # one page per hit at limit=1, then count reached


def test_delete_image_without_missing_ok_fails_at_once(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    emulator.upsert_instance("lib-strict")
    dr = _run(
        "ops_delete_image_strict",
        ImageSearchDeleteImageOperator,
        instance_name="lib-strict",
        path=image("ghost"),
        missing_ok=False,
        imagesearch_conn_id=imagesearch_conn("token"),
    )
    assert states(dr) == {("op", -1): ("failed", 1)}


def test_search_min_similarity_filters_hits(imagesearch_conn: Callable[..., str], emulator: Emulator) -> None:
    paths = [image(f"sim-{i}") for i in range(6)]
    emulator.upsert_instance("lib-sim", images={p: {"tags": {}} for p in paths})
    dr = _run(
        "ops_search_min",
        ImageSearchSearchImagesOperator,
        instance_name="lib-sim",
        path=paths[0],
        limit=100,
        min_similarity=0.99,
        imagesearch_conn_id=imagesearch_conn("token"),
    )
    assert [hit["path"] for hit in xcom(dr, "op")] == [paths[0]]


# --- instance lifecycle --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", WAIT_MODES)
def test_create_waits_until_normal(
    mode: str, imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    name = f"new-{mode}"
    dr = _run(
        f"ops_create_{mode}",
        ImageSearchCreateInstanceOperator,
        instance_name=name,
        description="catalogue",
        tags=["color"],
        poke_interval=0.5,
        timeout=60,
        imagesearch_conn_id=imagesearch_conn(),
        **WAIT_MODES[mode],
    )
    assert states(dr) == {("op", -1): ("success", 1)}
    detail = xcom(dr, "op")
    assert (detail["instance_name"], detail["status"], detail["tags"]) == (name, "NORMAL", ["color"])
    creates = [r for r in _api_requests(emulator) if r["method"] == "POST" and r["path"].endswith("/service")]
    assert len(creates) == 1
    link = xcom(dr, "op", key=LINK_KEY)
    assert name in link
    assert link.startswith("https://console.huaweicloud.com/imagesearch/")


def test_create_without_waiting_returns_creation(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    dr = _run(
        "ops_create_nowait",
        ImageSearchCreateInstanceOperator,
        instance_name="new-nowait",
        wait_for_completion=False,
        imagesearch_conn_id=imagesearch_conn(),
    )
    assert xcom(dr, "op")["status"] == "CREATION"


@pytest.mark.parametrize("mode", WAIT_MODES)
def test_creation_failed_fails_the_create_on_its_first_try(
    mode: str, imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    dr = _run(
        f"ops_create_fail_{mode}",
        ImageSearchCreateInstanceOperator,
        instance_name=f"doomed-{mode}",
        description="[emulator:fail]",
        poke_interval=0.5,
        timeout=60,
        imagesearch_conn_id=imagesearch_conn(),
        **WAIT_MODES[mode],
    )
    assert states(dr) == {("op", -1): ("failed", 1)}


@pytest.mark.parametrize(
    ("if_exists", "tags", "expected"),
    [("fail", ["color"], "failed"), ("reuse", ["color"], "success"), ("reuse", ["size"], "failed")],
)
def test_create_on_an_existing_instance(
    if_exists: str, tags: list[str], expected: str, imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    emulator.upsert_instance("taken", tags=["color"])
    dr = _run(
        f"ops_exists_{if_exists}_{tags[0]}",
        ImageSearchCreateInstanceOperator,
        instance_name="taken",
        tags=tags,
        if_exists=if_exists,
        imagesearch_conn_id=imagesearch_conn(),
    )
    assert states(dr) == {("op", -1): (expected, 1)}
    assert not [r for r in _api_requests(emulator) if r["method"] == "POST"], "nothing may be created"
    if expected == "success":
        assert xcom(dr, "op")["instance_name"] == "taken"


def test_reuse_names_the_difference(imagesearch_conn: Callable[..., str], emulator: Emulator) -> None:
    from airflow_provider_imagesearch.version_compat import AirflowFailException

    emulator.upsert_instance("taken-2", tags=["color"])
    op = ImageSearchCreateInstanceOperator(
        task_id="x",
        instance_name="taken-2",
        tags=["size"],
        if_exists="reuse",
        imagesearch_conn_id=imagesearch_conn(),
    )
    with pytest.raises(AirflowFailException, match=r"tags are \['color'\], wanted \['size'\]"):
        op.execute({})  # type: ignore[arg-type]


def test_a_create_whose_connection_dropped_creates_exactly_one_instance(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    # The existence check passes, then the create's connection drops: ambiguous. The read-back finds
    # nothing, so the create is sent once more.
    emulator.set_faults(sequence=["ok", "drop"])
    dr = _run(
        "ops_create_dropped",
        ImageSearchCreateInstanceOperator,
        instance_name="once",
        wait_for_completion=False,
        imagesearch_conn_id=imagesearch_conn("token"),
    )
    assert states(dr) == {("op", -1): ("success", 1)}
    instances = [i for i in emulator.control.state()["instances"] if i["name"] == "once"]
    assert len(instances) == 1


@pytest.mark.parametrize("fault", ["503_after", "drop_after"])
def test_a_create_that_reached_the_server_but_failed_is_adopted_not_repeated(
    fault: str, imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    # The existence check passes; the create is processed, then answered 503 (or its answer is lost).
    emulator.set_faults(sequence=["ok", fault])
    dr = _run(
        f"ops_create_{fault}",
        ImageSearchCreateInstanceOperator,
        instance_name=f"once-{fault[:4]}",
        poke_interval=0.5,
        timeout=60,
        imagesearch_conn_id=imagesearch_conn("token"),
    )
    assert states(dr) == {("op", -1): ("success", 1)}
    assert xcom(dr, "op")["status"] == "NORMAL"
    creates = [r for r in _api_requests(emulator) if r["method"] == "POST" and r["path"].endswith("/service")]
    assert len(creates) == 1
    assert len([i for i in emulator.control.state()["instances"] if i["name"] == f"once-{fault[:4]}"]) == 1


def test_a_retry_adopts_the_instance_its_earlier_try_created(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    # Try 1: existence check, create, then every status read of the wait fails (5 attempts): the try
    # fails as transient. Try 2 finds the instance try 1 created and adopts it instead of failing.
    emulator.set_faults(sequence=["ok", "ok", *["503_json"] * 5])
    dr = _run(
        "ops_create_retry",
        ImageSearchCreateInstanceOperator,
        instance_name="retried",
        tags=["color"],
        poke_interval=0.2,
        timeout=60,
        retries=1,
        imagesearch_conn_id=imagesearch_conn("token", max_attempts=5),
    )
    assert states(dr) == {("op", -1): ("success", 2)}
    creates = [r for r in _api_requests(emulator) if r["method"] == "POST" and r["path"].endswith("/service")]
    assert len(creates) == 1


@pytest.mark.parametrize("mode", WAIT_MODES)
def test_delete_waits_until_gone(mode: str, imagesearch_conn: Callable[..., str], emulator: Emulator) -> None:
    name = f"bye-{mode}"
    emulator.upsert_instance(name)
    dr = _run(
        f"ops_delete_{mode}",
        ImageSearchDeleteInstanceOperator,
        instance_name=name,
        poke_interval=0.5,
        timeout=60,
        imagesearch_conn_id=imagesearch_conn(),
        **WAIT_MODES[mode],
    )
    assert states(dr) == {("op", -1): ("success", 1)}
    assert not [i for i in emulator.control.state()["instances"] if i["name"] == name]
    deletes = [r for r in _api_requests(emulator) if r["method"] == "DELETE"]
    assert len(deletes) == 1


@pytest.mark.parametrize(("missing_ok", "expected"), [(True, "success"), (False, "failed")])
def test_delete_of_a_missing_instance(
    missing_ok: bool, expected: str, imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    dr = _run(
        f"ops_delete_missing_{missing_ok}",
        ImageSearchDeleteInstanceOperator,
        instance_name="never-was",
        missing_ok=missing_ok,
        imagesearch_conn_id=imagesearch_conn(),
    )
    assert states(dr) == {("op", -1): (expected, 1)}
    assert not [r for r in _api_requests(emulator) if r["method"] == "DELETE"]


@pytest.mark.parametrize("mode", WAIT_MODES)
def test_deleting_failed_fails_at_once(
    mode: str, imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    name = f"stuck-{mode}"
    emulator.upsert_instance(name)
    emulator.control.set_config(deletion_seconds=0.5)
    try:
        with DAG(f"ops_delete_stuck_{mode}", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
            ImageSearchDeleteInstanceOperator(
                task_id="op",
                instance_name=name,
                wait_for_completion=False,
                imagesearch_conn_id=imagesearch_conn(),
            ) >> ImageSearchInstanceDeletedSensor(
                task_id="gone",
                instance_name=name,
                poke_interval=0.5,
                timeout=60,
                retries=2,
                imagesearch_conn_id=imagesearch_conn(),
                **({"deferrable": True} if mode == "deferred" else {"mode": "poke"}),
            )
        # The deletion gets stuck: DELETING turns into DELETING_FAILED instead of disappearing.
        from tests.support.waiting import after_first_poll

        def stick() -> None:
            emulator.upsert_instance(
                name, status="DELETING", transition_after_s=0.5, next_status="DELETING_FAILED"
            )

        with after_first_poll(emulator, name, stick):
            dr = run_dag(dag)
    finally:
        emulator.control.set_config(deletion_seconds=1.0)
    assert states(dr)[("gone", -1)] == ("failed", 1)


# --- bad input: refused before any request, naming the field -------------------------------------------


@pytest.mark.parametrize(
    ("operator", "kwargs"),
    [
        (InstanceDetailOperator, {"instance_name": "Bad Name"}),
        (ImageSearchCreateInstanceOperator, {"instance_name": "x" * 17}),
        (ImageSearchCreateInstanceOperator, {"instance_name": "ok", "if_exists": "maybe"}),
        (ImageSearchCreateInstanceOperator, {"instance_name": "ok", "tags": ["Color"]}),
        (ImageSearchAddImageOperator, {"instance_name": "lib", "path": "  "}),
        (ImageSearchAddImageOperator, {"instance_name": "lib", "path": image("a"), "tags": {"color": 1}}),
        (ImageSearchUpdateImageTagsOperator, {"instance_name": "lib", "path": image("a"), "tags": "red"}),
        (ImageSearchSearchImagesOperator, {"instance_name": "lib", "path": image("a"), "limit": 101}),
        (ImageSearchSearchImagesOperator, {"instance_name": "lib", "path": image("a"), "offset": -1}),
        (ImageSearchSearchImagesOperator, {"instance_name": "lib"}),
        (ImageSearchSearchImagesOperator, {"instance_name": "lib", "path": image("a"), "min_similarity": 2}),
        (ImageSearchCheckImageOperator, {"instance_name": "lib", "path": ""}),
    ],
)
def test_bad_input_fails_at_once_without_a_request(
    operator: type, kwargs: dict[str, Any], imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    dr = _run(
        f"ops_bad_{operator.__name__}_{abs(hash(repr(kwargs)))}",
        operator,
        imagesearch_conn_id=imagesearch_conn(),
        **kwargs,
    )
    assert states(dr) == {("op", -1): ("failed", 1)}
    assert _api_requests(emulator) == []


def test_templated_fields_render_from_params(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    emulator.upsert_instance("tmpl", tags=["color"])
    conn_id = imagesearch_conn("token")
    params = {"conn": conn_id, "name": "tmpl", "path": image("t"), "color": "green"}
    with DAG("ops_templated", schedule=None, start_date=datetime(2026, 1, 1), params=params) as dag:
        ImageSearchAddImageOperator(
            task_id="op",
            instance_name="{{ params.name }}",
            path="{{ params.path }}",
            tags={"color": "{{ params.color }}"},
            imagesearch_conn_id="{{ params.conn }}",
            project_id="{{ '" + DEFAULT_PROJECT_ID + "' }}",
        )
    dr = run_dag(dag)
    assert states(dr) == {("op", -1): ("success", 1)}
    library = emulator.control.state()["images"][f"{DEFAULT_PROJECT_ID}/tmpl"]
    assert library == {image("t"): {"tags": {"color": "green"}, "digest": library[image("t")]["digest"]}}


def test_every_operator_and_sensor_shows_the_console_link() -> None:
    import inspect

    from airflow_provider_imagesearch.links import ImageSearchConsoleLink
    from airflow_provider_imagesearch.mixins import ImageSearchHookMixin
    from airflow_provider_imagesearch.operators import imagesearch as operators
    from airflow_provider_imagesearch.sensors import imagesearch as sensors

    classes = [
        cls
        for module in (operators, sensors)
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, ImageSearchHookMixin)
        and not inspect.isabstract(cls)
        and cls.__module__ == module.__name__
    ]
    assert len(classes) >= 10
    for cls in classes:
        assert any(isinstance(link, ImageSearchConsoleLink) for link in cls.operator_extra_links), cls
        assert {"imagesearch_conn_id", "project_id", "region"} <= set(cls.template_fields), cls
