"""What ``ImageSearchCreateInstanceOperator`` tells a user when the instance it would create already exists
and differs: the failure names the description the service holds as the user would see it (empty when the
instance has none), and what was wanted. Run with ``execute`` against the emulator.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.operators.imagesearch import ImageSearchCreateInstanceOperator
from airflow_provider_imagesearch.version_compat import AirflowFailException


def test_reusing_an_instance_without_a_description_names_its_empty_description(
    emulator: Emulator, imagesearch_conn: Callable[..., str], instance: Callable[..., str]
) -> None:
    instance("shop", tags=["color"])
    op = ImageSearchCreateInstanceOperator(
        task_id="create",
        instance_name="shop",
        description="spring",
        tags=["color"],
        if_exists="reuse",
        wait_for_completion=False,
        imagesearch_conn_id=imagesearch_conn("aksk"),
    )
    with pytest.raises(AirflowFailException) as failed:
        op.execute({})
    assert str(failed.value) == (
        "ImageSearch instance 'shop' exists but differs from what this task would create: "
        "description is '', wanted 'spring'"
    )
    assert not any(r["method"] == "POST" and r["path"].endswith("/service") for r in emulator.requests_log())
