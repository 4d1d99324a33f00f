"""Shared pytest fixtures: the emulator over loopback, connections, a clean token cache, PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airflow_provider_imagesearch.auth import TOKEN_CACHE
from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from tests.support.connections import connection_fields, set_connection

PROJECT_ID = DEFAULT_PROJECT_ID
AUTH_TYPES = ("iam_password", "aksk", "token")


@pytest.fixture(scope="session")
def emulator_session() -> Iterator[Emulator]:
    with Emulator(creation_seconds=2.0, deletion_seconds=1.0) as emu:
        yield emu


@pytest.fixture
def emulator(emulator_session: Emulator) -> Iterator[Emulator]:
    """The session's emulator, with faults cleared, stats reset and tokens forgotten for each test."""
    emulator_session.control.reset_faults()
    emulator_session.reset_stats()
    TOKEN_CACHE.clear()
    yield emulator_session
    emulator_session.control.reset_faults()
    TOKEN_CACHE.clear()
    _wait_for_delayed_answers(emulator_session)


def _wait_for_delayed_answers(emu: Emulator, timeout: float = 30.0) -> None:
    """Until no answer held back by latency or a slow fault is pending in the emulator.

    A test that stops its client mid-request (a cancelled trigger) leaves the emulator's delayed answer
    running; it logs that request when its delay ends, which would land in the next test's request log.
    """

    async def pending() -> int:
        current = asyncio.current_task()
        return sum(
            1
            for task in asyncio.all_tasks()
            if task is not current
            and getattr(task.get_coro(), "__qualname__", "").endswith("_Connection._finish")
        )

    loop = emu._loop
    if loop is None:
        return
    deadline = time.monotonic() + timeout
    while still := asyncio.run_coroutine_threadsafe(pending(), loop).result(timeout):
        if time.monotonic() > deadline:
            pytest.fail(
                f"{still} emulator answer(s) still held back {timeout:.0f} s after the test: a latency or slow "
                "fault that long would log its request in the next test's request log"
            )
        time.sleep(0.02)


@pytest.fixture(autouse=True)
def _clean_token_cache() -> Iterator[None]:
    TOKEN_CACHE.clear()
    yield
    TOKEN_CACHE.clear()


@pytest.fixture
def imagesearch_conn(monkeypatch: pytest.MonkeyPatch, emulator: Emulator) -> Callable[..., str]:
    """``imagesearch_conn(auth="iam_password", conn_id="imagesearch_default", **extra)`` -> conn id."""

    def make(auth: str = "iam_password", conn_id: str = "imagesearch_default", **extra: Any) -> str:
        return set_connection(monkeypatch, conn_id, **connection_fields(emulator.url, auth, **extra))

    return make


@pytest.fixture
def instance(emulator: Emulator) -> Callable[..., str]:
    """``instance(name, status="NORMAL", **seed_fields)`` seeds an instance in the emulator."""

    def make(name: str, status: str = "NORMAL", **fields: Any) -> str:
        emulator.upsert_instance(name, project_id=PROJECT_ID, status=status, **fields)
        return name

    return make


@pytest.fixture(scope="session")
def postgres_uri() -> Iterator[str]:
    from tests.support.postgres import SHARED_SERVER_ENV, private_database, running_postgres

    shared = os.environ.get(SHARED_SERVER_ENV)
    if shared:
        with private_database(shared) as uri:
            yield uri
        return
    with running_postgres() as server:
        yield server.uri
