"""The mutation run's PostgreSQL: one server, a database per pytest session, and the tests that need it
kept in the run only when such a server is named."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.postgres import SHARED_SERVER_ENV, private_database, running_postgres

if TYPE_CHECKING:
    import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[2]


def _engine(uri: str) -> sa.engine.Engine:
    import sqlalchemy as sa

    return sa.create_engine(uri.replace("postgres://", "postgresql+psycopg2://"), poolclass=sa.pool.NullPool)


def test_sessions_on_one_server_share_no_table_and_no_advisory_lock() -> None:
    import sqlalchemy as sa

    with running_postgres() as server, private_database(server.uri) as first:
        with private_database(server.uri) as second:
            one, two = _engine(first), _engine(second)
            with one.begin() as connection:
                connection.execute(sa.text("CREATE TABLE imagesearch_import_ledger (id int)"))
            with one.connect() as holder, two.connect() as other:
                assert holder.execute(sa.text("SELECT pg_try_advisory_lock(42)")).scalar_one()
                # The same key in the other session's database is free: the two runs never block.
                assert other.execute(sa.text("SELECT pg_try_advisory_lock(42)")).scalar_one()
                assert (
                    other.execute(sa.text("SELECT to_regclass('imagesearch_import_ledger')")).scalar() is None
                )
            one.dispose()
            two.dispose()
        with _engine(server.uri).connect() as admin:
            names = admin.execute(sa.text("SELECT datname FROM pg_database")).scalars().all()
        assert second.rsplit("/", 1)[1] not in names  # dropped when its session ended
        assert first.rsplit("/", 1)[1] in names


def _collected(env: dict[str, str]) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "-p", "tests.mutation.plugin", "tests/imports/test_concurrency.py"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return [line for line in result.stdout.splitlines() if "::" in line]


@pytest.mark.not_in_mutation_run
def test_postgres_tests_run_for_mutants_only_where_a_shared_server_is_named() -> None:
    env = {k: v for k, v in os.environ.items() if k not in (SHARED_SERVER_ENV, "MUTANT_UNDER_TEST")}
    without = _collected(env)
    with_server = _collected({**env, SHARED_SERVER_ENV: "postgres://airflow@127.0.0.1:1/postgres"})
    assert without
    assert not any("postgres" in nodeid for nodeid in without)
    assert {n for n in with_server if "postgres" in n} == set(with_server) - set(without)
    assert any("postgres" in nodeid for nodeid in with_server)
