"""What ``ImageSearchCreateInstanceOperator`` sends when it creates an instance, and what it tells a user
when another writer creates an instance of the same name between the task's existence check and its create.

A rewriting proxy between the task and the emulator sees the create request as the service receives it,
and plays the other writer: right after the task's existence check is answered "not found", it creates the
instance through the emulator's control API. The task's create is then refused (the name is taken), and the
task reads the instance back: it fails unless what is there is its own instance, as asked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from airflow_provider_imagesearch.operators.imagesearch import (
    ImageSearchCreateInstanceOperator,
    creation_marker,
)
from airflow_provider_imagesearch.version_compat import AirflowFailException
from tests.support.connections import connection_fields, set_connection
from tests.support.emulator_instances import remove_instance
from tests.support.rewriting_proxy import RewritingProxy

#: This task instance in its DAG run, as the operator sees it in its context (its first try).
TI = SimpleNamespace(try_number=1, dag_id="k4a_dag", run_id="k4a_run", task_id="create", map_index=-1)
CONTEXT: Any = {"ti": TI}


def _held(emulator: Emulator, name: str) -> list[dict[str, Any]]:
    return [
        i
        for i in emulator.control.state()["instances"]
        if i["name"] == name and i.get("project_id", DEFAULT_PROJECT_ID) == DEFAULT_PROJECT_ID
    ]


class _Service:
    """The proxy's view: the create bodies sent, and another writer that takes the name once."""

    def __init__(self, emulator: Emulator, name: str, **other_writer: Any) -> None:
        self.emulator = emulator
        self.name = name
        self.other_writer = other_writer
        self.creates: list[dict[str, Any]] = []
        self.raced = False

    def __call__(self, path: str, body: dict[str, Any], status: int, answer: Any) -> Any:
        if path.endswith("/service") and body:
            self.creates.append(body)
        elif (
            self.other_writer and path.endswith(f"/service/{self.name}") and status != 200 and not self.raced
        ):
            self.raced = True
            self.emulator.upsert_instance(self.name, **self.other_writer)
        return answer


@pytest.fixture
def through_proxy(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator
) -> Iterator[Callable[..., tuple[_Service, str]]]:
    proxies: list[RewritingProxy] = []

    def start(name: str, **other_writer: Any) -> tuple[_Service, str]:
        remove_instance(emulator, name)
        service = _Service(emulator, name, **other_writer)
        proxy = RewritingProxy(emulator.url, service).__enter__()
        proxies.append(proxy)
        fields = connection_fields(emulator.url, "token")
        fields["host"] = proxy.url
        return service, set_connection(monkeypatch, "k4a_through_proxy", **fields)

    yield start
    for proxy in proxies:
        proxy.__exit__(None, None, None)


def _create(conn_id: str, name: str, **kwargs: Any) -> ImageSearchCreateInstanceOperator:
    kwargs.setdefault("wait_for_completion", False)
    return ImageSearchCreateInstanceOperator(
        task_id="create", instance_name=name, imagesearch_conn_id=conn_id, **kwargs
    )


def test_the_create_request_carries_the_asked_model_level_description_and_tags(
    emulator: Emulator, through_proxy: Callable[..., tuple[_Service, str]]
) -> None:
    """The service receives the model and the capacity level the user set, not its defaults."""
    service, conn_id = through_proxy("k4a-asked")
    result = _create(
        conn_id,
        "k4a-asked",
        model="image-recommend",
        level=30000000,
        description="spring",
        tags=["color", "size"],
        if_exists="reuse",
    ).execute({})

    assert result["instance_name"] == "k4a-asked"
    assert service.creates == [
        {
            "name": "k4a-asked",
            "model": "image-recommend",
            "description": "spring",
            "level": 30000000,
            "tags": ["color", "size"],
        }
    ]
    [held] = _held(emulator, "k4a-asked")
    assert (held["model"], held["level"]) == ("image-recommend", 30000000)


def test_a_create_refused_because_another_writer_took_the_name_tells_to_set_reuse(
    emulator: Emulator, through_proxy: Callable[..., tuple[_Service, str]]
) -> None:
    """if_exists='fail': an instance another writer created after the task's check is not adopted; the
    failure says so and tells the user how to adopt it."""
    service, conn_id = through_proxy("k4a-taken", description="theirs", tags=["color"])
    with pytest.raises(AirflowFailException) as failed:
        _create(conn_id, "k4a-taken", description="ours", tags=["color"]).execute(CONTEXT)

    assert service.raced
    message = str(failed.value)
    assert message.startswith("Creating instance k4a-taken was refused (")
    assert message.endswith(
        "and what is there is not what was asked: instance 'k4a-taken' (NORMAL) was not created by this task; "
        "set if_exists='reuse' to adopt it"
    )
    assert [h["description"] for h in _held(emulator, "k4a-taken")] == ["theirs"]


def test_a_refused_create_whose_own_instance_differs_fails_naming_every_difference(
    emulator: Emulator, through_proxy: Callable[..., tuple[_Service, str]]
) -> None:
    """if_exists='fail': the instance that took the name carries this task instance's marker (another try
    of it, from an older DAG version) but differs. The task fails naming each difference, separated by
    "; ", the description compared as the task would create it, marker included."""
    marker = creation_marker(CONTEXT)
    assert marker is not None
    service, conn_id = through_proxy("k4a-own", description=f"winter {marker}", tags=["size"])
    with pytest.raises(AirflowFailException) as failed:
        _create(conn_id, "k4a-own", description="spring", tags=["color"]).execute(CONTEXT)

    assert service.raced
    assert str(failed.value).endswith(
        f"and what is there is not what was asked: tags are ['size'], wanted ['color']; "
        f"description is 'winter {marker}', wanted 'spring {marker}'"
    )
    assert [(h["description"], h["tags"]) for h in _held(emulator, "k4a-own")] == [
        (f"winter {marker}", ["size"])
    ]
