"""``ImageSearchCreateInstanceOperator`` checks every argument before its first request, in a task run
(whose create carries the task's marker) as anywhere else; ``if_exists="reuse"`` creates without a
marker; and ``wait_for_completion=False`` returns the instance as the create left it, reading nothing more.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_imagesearch import mixins
from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from airflow_provider_imagesearch.emulator.routes import R_CREATE, R_QUERY
from airflow_provider_imagesearch.operators.imagesearch import ImageSearchCreateInstanceOperator
from airflow_provider_imagesearch.version_compat import AirflowFailException, AirflowSensorTimeout
from tests.support.emulator_instances import remove_instance

#: The instances these tests create.
NAMES = (
    "k4-copied",
    "k4-nodesc",
    "k4-nowait",
    "k4-retags",
    "k4-retry",
    "k4-reuse",
    "k4-shop",
    "k4-slow",
    "k4-unlisted",
    "k4-vanished",
)
#: The context of a task run: its task instance gives the create its marker.
RUN = {"ti": SimpleNamespace(dag_id="shop", run_id="manual__1", task_id="create", map_index=-1, try_number=1)}


@pytest.fixture(autouse=True)
def _no_instances_of_these_tests(emulator: Emulator) -> None:
    """The session's emulator keeps instances from test to test: each test here starts without its own."""
    for name in NAMES:
        remove_instance(emulator, name)


def _create(conn_id: str, **kwargs: Any) -> Any:
    kwargs.setdefault("instance_name", "k4-shop")
    kwargs.setdefault("tags", ["color"])
    return ImageSearchCreateInstanceOperator(
        task_id="create", imagesearch_conn_id=conn_id, wait_for_completion=False, **kwargs
    ).execute(RUN)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("argument", "field"),
    [({"description": 123}, "description"), ({"level": 7}, "level"), ({"model": "fancy-search"}, "model")],
    ids=["description-not-text", "level", "model"],
)
def test_a_bad_argument_is_refused_before_any_request_in_a_task_run(
    emulator: Emulator, imagesearch_conn: Callable[..., str], argument: dict[str, Any], field: str
) -> None:
    with pytest.raises(AirflowFailException, match=f"Invalid {field} "):
        _create(imagesearch_conn("aksk"), **argument)
    assert emulator.requests_log() == []


def test_a_reuse_create_sends_the_description_without_a_marker(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    _create(imagesearch_conn("aksk"), instance_name="k4-reuse", description="spring", if_exists="reuse")
    (state,) = [i for i in emulator.control.state()["instances"] if i["name"] == "k4-reuse"]
    assert state["description"] == "spring"


def test_without_waiting_the_instance_is_returned_as_created(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    detail = _create(imagesearch_conn("aksk"), instance_name="k4-nowait")
    assert (detail["instance_name"], detail["status"]) == ("k4-nowait", "CREATION")
    # The existence check, the create, and no read after it.
    assert [r["route"] for r in emulator.requests_log()] == [R_QUERY, R_CREATE]


def test_a_wait_for_the_created_instance_ends_at_wait_timeout(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    """The emulator's instance becomes NORMAL 5 s after its create: a 0.3 s wait times out first."""
    with pytest.raises(AirflowSensorTimeout, match="k4-slow"):
        ImageSearchCreateInstanceOperator(
            task_id="create",
            instance_name="k4-slow",
            tags=["color"],
            imagesearch_conn_id=imagesearch_conn("aksk"),
            wait_for_completion=True,
            deferrable=False,
            poke_interval=0.1,
            timeout=0.3,
        ).execute(RUN)  # type: ignore[arg-type]


def test_a_retry_adopts_the_instance_its_earlier_try_created(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    conn_id = imagesearch_conn("aksk")
    first = _create(conn_id, instance_name="k4-retry", description="spring")
    again = _create(conn_id, instance_name="k4-retry", description="spring")
    assert again["instance_name"] == first["instance_name"] == "k4-retry"
    assert again["description"] == first["description"]
    assert first["description"].startswith("spring [airflow:")
    assert [r["route"] for r in emulator.requests_log()].count(R_CREATE) == 1


def test_a_retry_asking_for_other_tags_fails_naming_them(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    conn_id = imagesearch_conn("aksk")
    _create(conn_id, instance_name="k4-retags", tags=["color"])
    with pytest.raises(
        AirflowFailException, match="created by an earlier try of this task but differs"
    ) as failed:
        _create(conn_id, instance_name="k4-retags", tags=["color", "size"])
    assert "tags" in str(failed.value)


def test_a_retry_compares_exactly_what_it_sends_even_a_description_ending_with_a_marker(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    """docs/operators-reliability.rst: a retry of a ``fail`` create compares the asked description plus its
    own marker, even when the asked one already ends with a marker (copied from the first try's XCom)."""
    conn_id = imagesearch_conn("aksk")
    first = _create(conn_id, instance_name="k4-copied", description="spring")
    with pytest.raises(AirflowFailException, match="differs from what this task creates now: description is"):
        _create(conn_id, instance_name="k4-copied", description=first["description"])


def test_without_a_description_the_marker_is_the_whole_description(
    emulator: Emulator, imagesearch_conn: Callable[..., str]
) -> None:
    detail = _create(imagesearch_conn("aksk"), instance_name="k4-nodesc")
    assert detail["description"].startswith("[airflow:")


class _CreatedThenGone:
    """The wait's clock (``mixins.time``): 0 s until its first sleep, ``elapsed`` after; the first sleep
    removes the created instance from the emulator (as an eventually consistent listing may not show it
    yet), the second puts it back ready; a fourth means the wait would go on for ever."""

    def __init__(self, emulator: Emulator, name: str, elapsed: float) -> None:
        self.emulator, self.name, self.elapsed, self.sleeps = emulator, name, elapsed, 0

    def monotonic(self) -> float:
        return self.elapsed if self.sleeps else 0.0

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        if self.sleeps == 1:
            self.emulator.control.delete_instance(DEFAULT_PROJECT_ID, self.name)
        elif self.sleeps == 2:
            self.emulator.upsert_instance(self.name, status="NORMAL", tags=["color"])
        else:
            raise RuntimeError("the wait went on")


def _create_and_wait(conn_id: str, name: str) -> Any:
    return ImageSearchCreateInstanceOperator(
        task_id="create",
        instance_name=name,
        tags=["color"],
        imagesearch_conn_id=conn_id,
        wait_for_completion=True,
        deferrable=False,
        poke_interval=0.1,
    ).execute(RUN)  # type: ignore[arg-type]


def test_a_created_instance_not_listed_yet_is_waited_for_during_its_first_minute(
    emulator: Emulator, imagesearch_conn: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mixins, "time", _CreatedThenGone(emulator, "k4-unlisted", elapsed=59.9))
    assert _create_and_wait(imagesearch_conn("aksk"), "k4-unlisted")["status"] == "NORMAL"


def test_a_created_instance_missing_for_a_minute_fails_the_task(
    emulator: Emulator, imagesearch_conn: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mixins, "time", _CreatedThenGone(emulator, "k4-vanished", elapsed=60.0))
    with pytest.raises(AirflowFailException, match="k4-vanished"):
        _create_and_wait(imagesearch_conn("aksk"), "k4-vanished")
