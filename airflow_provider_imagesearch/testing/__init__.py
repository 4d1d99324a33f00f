"""Test your own DAGs against the local ImageSearch emulator: an opt-in pytest plugin and helpers.

Enable the plugin in your ``conftest.py`` (it is never loaded otherwise)::

    pytest_plugins = ["airflow_provider_imagesearch.testing"]

and use the ``imagesearch_emulator`` fixture::

    from airflow_provider_imagesearch.testing import run_dag

    def test_my_dag(imagesearch_emulator):
        imagesearch_emulator.add_instance("shop-main", tags=["color"])
        dag_run = run_dag(my_dag)
        assert dag_run.state == "success"
        assert imagesearch_emulator.requests("/image/search")

What the plugin does:

* ``imagesearch_emulator`` (function scope) yields an :class:`ImageSearchEmulatorKit`. One emulator runs
  per test session (in a background thread, on loopback); each test starts from its state at start-up
  (empty: no instance, no v2 service), with no fault and an empty request log.
* For the test, ``AIRFLOW_CONN_IMAGESEARCH_DEFAULT`` is the emulator (IAM password auth; ``host``,
  ``iam_endpoint`` and ``mms_endpoint`` all the emulator), and looking up a public Huawei Cloud host's
  name fails naming the kit (:mod:`.guard`, which also says what it does not catch).
* If nothing chose an Airflow home (no ``AIRFLOW_HOME``, Airflow not yet imported), the session gets a
  temporary one with a SQLite DB that :func:`run_dag` creates on first use; set
  ``IMAGESEARCH_TESTING_AIRFLOW_HOME=keep`` to opt out. An Airflow home of yours is never touched: migrate
  its DB as you always do (``airflow db migrate``).

Outside pytest, :func:`emulated_imagesearch` is the same as a context manager.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from airflow_provider_imagesearch.auth import TOKEN_CACHE
from airflow_provider_imagesearch.testing.dags import in_sandbox, not_sandboxed, run_dag, sandbox_airflow_home
from airflow_provider_imagesearch.testing.guard import HuaweiCloudGuard, PublicHostBlockedError
from airflow_provider_imagesearch.testing.kit import (
    TEST_RETRY_EXTRAS,
    ImageSearchEmulatorKit,
    emulated_imagesearch,
    image_digest,
)

if TYPE_CHECKING:
    from airflow_provider_imagesearch.emulator import Emulator

__all__ = [
    "TEST_RETRY_EXTRAS",
    "HuaweiCloudGuard",
    "ImageSearchEmulatorKit",
    "PublicHostBlockedError",
    "emulated_imagesearch",
    "image_digest",
    "run_dag",
    "sandbox_airflow_home",
]

try:  # the fixtures need pytest; the rest of the kit does not
    import pytest
except ImportError:  # pragma: no cover - pytest is not installed
    pytest = None  # type: ignore[assignment]


if pytest is not None:

    def pytest_configure(config: pytest.Config) -> None:
        sandbox_airflow_home()

    @pytest.fixture(scope="session")
    def imagesearch_emulator_server() -> Iterator[Emulator]:
        """The session's one emulator (empty, instant status transitions); most tests want
        ``imagesearch_emulator``, which also resets it and exports the connection."""
        from airflow_provider_imagesearch.emulator import Emulator

        with Emulator(creation_seconds=0.0, deletion_seconds=0.0) as emulator:
            yield emulator

    @pytest.fixture
    def imagesearch_emulator(imagesearch_emulator_server: Emulator) -> Iterator[ImageSearchEmulatorKit]:
        """The emulator, reset for this test, with ``AIRFLOW_CONN_IMAGESEARCH_DEFAULT`` pointing at it."""
        kit = ImageSearchEmulatorKit(imagesearch_emulator_server)
        kit.reset()
        guard = HuaweiCloudGuard()
        guard.install()
        kit.guard = guard
        try:
            kit.export_connection()
            yield kit
        finally:
            kit.restore_environment()
            TOKEN_CACHE.clear()
            guard.uninstall()

    def pytest_report_header(config: pytest.Config) -> str | None:
        reason = not_sandboxed()
        if reason is not None:
            return f"imagesearch testing kit: NO sandbox, run_dag will refuse to run: {reason}"
        if in_sandbox():
            return (
                f"imagesearch testing kit: Airflow home is a temporary sandbox ({os.environ['AIRFLOW_HOME']})"
            )
        return None
