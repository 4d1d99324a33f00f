"""A deferrable task's hand-over to the triggerer, caught where ``execute`` raises it."""

from __future__ import annotations

from typing import Any

import pytest

try:
    from airflow.sdk.exceptions import TaskDeferred
except ImportError:  # Airflow 3.1 (3.1.8 has no airflow.sdk.exceptions.TaskDeferred): the same class
    from airflow.exceptions import TaskDeferred  # type: ignore[no-redef]

__all__ = ["TaskDeferred", "deferral"]


def deferral(task: Any) -> TaskDeferred:
    """The ``TaskDeferred`` that ``task.execute({})`` raises (its trigger, method name and timeout); the
    test fails if the task does not defer."""
    with pytest.raises(TaskDeferred) as deferred:
        task.execute({})
    return deferred.value
