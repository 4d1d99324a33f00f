"""``if_exists="reuse"`` refusing an instance whose description differs names the description it holds.

An instance created by an ``if_exists="fail"`` run carries that run's marker (`` [airflow:<digest>]``) at
the end of its description; the message compares what the user wrote with what the user asked for, so the
held description is shown without the marker.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.operators.imagesearch import ImageSearchCreateInstanceOperator
from airflow_provider_imagesearch.version_compat import AirflowFailException


def _reuse(conn_id: str, description: str) -> None:
    ImageSearchCreateInstanceOperator(
        task_id="create",
        instance_name="k3b-shop",
        description=description,
        tags=["color"],
        if_exists="reuse",
        wait_for_completion=False,
        imagesearch_conn_id=conn_id,
    ).execute({})


@pytest.mark.parametrize(
    "held",
    ["winter catalogue [airflow:0123456789ab]", "winter catalogue"],
    ids=["with-marker", "without-marker"],
)
def test_reusing_an_instance_with_another_description_names_the_held_description_without_marker(
    held: str, emulator: Emulator, imagesearch_conn: Callable[..., str], instance: Callable[..., str]
) -> None:
    instance("k3b-shop", tags=["color"], description=held)
    with pytest.raises(AirflowFailException) as failed:
        _reuse(imagesearch_conn("aksk"), "spring catalogue")
    assert str(failed.value) == (
        "ImageSearch instance 'k3b-shop' exists but differs from what this task would create: "
        "description is 'winter catalogue', wanted 'spring catalogue'"
    )
