"""Fixtures of the import tests: an instance in the emulator, a ledger on SQLite or PostgreSQL."""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, DEFAULT_REGION, Emulator
from airflow_provider_imagesearch.emulator.routes import R_ADD, R_TOKENS
from tests.support.connections import set_connection
from tests.support.import_lock import lock_of, set_holder

INSTANCE = "catalog"
LEDGER_CONN = "imagesearch_archive_db"
BUCKET = f"https://shop.obs.{DEFAULT_REGION}.myhuaweicloud.com"


def obs(key: str) -> str:
    return f"{BUCKET}/{key}"


@pytest.fixture(params=["sqlite", "postgres"])
def ledger_conn(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    """The ledger's connection (``imagesearch_archive_db``) and a SQLAlchemy engine on it."""
    import sqlalchemy as sa

    if request.param == "sqlite":
        path = tmp_path / "ledger.db"
        set_connection(monkeypatch, LEDGER_CONN, conn_type="sqlite", host=str(path))
        engine = sa.create_engine(f"sqlite:///{path}")
    else:
        uri = request.getfixturevalue("postgres_uri")
        monkeypatch.setenv("AIRFLOW_CONN_" + LEDGER_CONN.upper(), uri)
        engine = sa.create_engine(uri.replace("postgres://", "postgresql+psycopg2://"))
        with engine.begin() as connection:
            connection.execute(sa.text("DROP TABLE IF EXISTS imagesearch_import_ledger"))
    yield {"name": request.param, "engine": engine}
    engine.dispose()


@pytest.fixture
def catalog(emulator: Emulator) -> str:
    emulator.upsert_instance(INSTANCE, project_id=DEFAULT_PROJECT_ID, tags=["color", "size"], images={})
    return INSTANCE


def library(emulator: Emulator, instance: str = INSTANCE) -> dict[str, dict[str, Any]]:
    """path -> tags of the instance's images, from the emulator's state."""
    state = emulator.control.state()
    images = state.get("images", {}).get(f"{DEFAULT_PROJECT_ID}/{instance}", {})
    return {path: image.get("tags", {}) for path, image in images.items()}


def add_requests(emulator: Emulator) -> list[dict[str, Any]]:
    return [r for r in emulator.requests_log() if r["route"] == R_ADD]


def api_requests(emulator: Emulator) -> list[dict[str, Any]]:
    return [r for r in emulator.requests_log() if r["route"] != R_TOKENS]


def ledger_rows(engine: Any, instance: str = INSTANCE) -> dict[str, dict[str, Any]]:
    import sqlalchemy as sa

    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT * FROM imagesearch_import_ledger WHERE instance_name = :i"), {"i": instance}
        ).mappings()
        return {row["path"]: dict(row) for row in rows}


@pytest.fixture
def run_import(imagesearch_conn: Callable[..., str], catalog: str) -> Callable[..., dict[str, Any]]:
    """``run_import(manifest, run_id=..., **operator kwargs)`` -> the XCom value (raises like the task)."""
    from airflow_provider_imagesearch.operators.import_images import ImageSearchImportImagesOperator

    conn_id = imagesearch_conn("aksk")
    counter = {"n": 0}

    def run(manifest: Any = None, *, run_id: str | None = None, **kwargs: Any) -> dict[str, Any]:
        counter["n"] += 1
        op = ImageSearchImportImagesOperator(
            task_id=f"import_{counter['n']}",
            instance_name=kwargs.pop("instance_name", catalog),
            manifest=manifest,
            imagesearch_conn_id=conn_id,
            **kwargs,
        )
        result: dict[str, Any] = op.execute({"run_id": run_id or f"run-{counter['n']}"})  # type: ignore[arg-type]
        json.dumps(result)  # XCom-serialisable
        return result

    return run


RunImport = Callable[..., dict[str, Any]]


@pytest.fixture
def sqlite_ledger(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The ledger connection on a SQLite file of this test's own: the file's path."""
    path = tmp_path / "ledger.db"
    set_connection(monkeypatch, LEDGER_CONN, conn_type="sqlite", host=str(path))
    return path


def sqlite_ledger_rows(path: Path, instance: str = INSTANCE) -> dict[str, dict[str, Any]]:
    """The rows of ``instance`` in the SQLite ledger at ``path``, by image path."""
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        return ledger_rows(engine, instance)
    finally:
        engine.dispose()


@pytest.fixture
def import_into(
    imagesearch_conn: Callable[..., str], emulator: Emulator, sqlite_ledger: Path
) -> Callable[..., RunImport]:
    """``import_into(target, v2=False, **connection extras)`` creates an empty v1 instance (tags color
    and size) or v2 service (custom tags color and size, custom number tag price), ledger on SQLite, and
    gives ``run(manifest, context=None, **operator kwargs)`` -> the task's XCom value (raises like the
    task). Each run is a task of its own; without ``context``, run ``<target>-run-<n>``."""
    from airflow_provider_imagesearch.operators.import_images import (
        ImageSearchImportImagesOperator,
        ImageSearchV2ImportDataOperator,
    )

    def into(target: str, *, v2: bool = False, **extra: Any) -> RunImport:
        conn_id = imagesearch_conn("aksk", **extra)
        if v2:
            emulator.upsert_v2_service(
                target, custom_tags=["color", "size"], custom_num_tags=["price"], items={}
            )
        else:
            emulator.upsert_instance(target, project_id=DEFAULT_PROJECT_ID, tags=["color", "size"], images={})
        runs = itertools.count(1)

        def run(manifest: Any, context: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
            n = next(runs)
            target_kwargs = {"service_name": target} if v2 else {"instance_name": target}
            operator = ImageSearchV2ImportDataOperator if v2 else ImageSearchImportImagesOperator
            op = operator(
                task_id=f"import_{n}",
                manifest=manifest,
                imagesearch_conn_id=conn_id,
                **target_kwargs,
                **kwargs,
            )
            given = {"run_id": f"{target}-run-{n}"} if context is None else context
            result: dict[str, Any] = op.execute(given)  # type: ignore[arg-type]
            json.dumps(result)  # XCom-serialisable
            return result

        return run

    return into


# --- v2 (MMS) -------------------------------------------------------------------------------------------

SERVICE = "catalog"  # the same name as the v1 instance: their ledger rows must stay apart


@pytest.fixture
def service(emulator: Emulator) -> str:
    emulator.upsert_v2_service(SERVICE, custom_tags=["color", "size"], custom_num_tags=["price"], items={})
    return SERVICE


def v2_items(emulator: Emulator, name: str = SERVICE) -> dict[str, dict[str, Any]]:
    """item id -> {digest, desc?, custom_tags, custom_num_tags, keywords}, from the emulator's state."""
    for service in emulator.control.state().get("v2_services", []):
        if service["name"] == name and service["project_id"] == DEFAULT_PROJECT_ID:
            return dict(service["items"])
    return {}


def v2_routes(emulator: Emulator) -> list[str]:
    """The v2 verbs the emulator was asked, in order: ``add``, ``check``, ``update``, ``delete``."""
    from airflow_provider_imagesearch.emulator.routes_v2 import V2_ROUTES

    return [r["route"].rsplit("/", 1)[-1] for r in emulator.requests_log() if r["route"] in V2_ROUTES]


def ledger_rows_v2(engine: Any, name: str = SERVICE, api: str = "v2") -> dict[str, dict[str, Any]]:
    import sqlalchemy as sa

    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT * FROM imagesearch_import_ledger WHERE instance_name = :i AND api = :a"),
            {"i": name, "a": api},
        ).mappings()
        return {row["path"]: dict(row) for row in rows}


@pytest.fixture
def run_v2_import(imagesearch_conn: Callable[..., str], service: str) -> Callable[..., dict[str, Any]]:
    """``run_v2_import(manifest, run_id=..., **operator kwargs)`` -> the XCom value (raises like the task)."""
    from airflow_provider_imagesearch.operators.import_images import ImageSearchV2ImportDataOperator

    conn_id = imagesearch_conn("aksk")
    counter = {"n": 0}

    def run(manifest: Any = None, *, run_id: str | None = None, **kwargs: Any) -> dict[str, Any]:
        counter["n"] += 1
        op = ImageSearchV2ImportDataOperator(
            task_id=f"import_v2_{counter['n']}",
            service_name=kwargs.pop("service_name", service),
            manifest=manifest,
            imagesearch_conn_id=conn_id,
            **kwargs,
        )
        result: dict[str, Any] = op.execute({"run_id": run_id or f"v2-run-{counter['n']}"})  # type: ignore[arg-type]
        json.dumps(result)
        return result

    return run


@pytest.fixture
def lock_engine(tmp_path: Path) -> Iterator[Any]:
    """An engine on a SQLite ledger file of this test's own, for tests that call the import lock."""
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield engine
    engine.dispose()


@pytest.fixture
def held(lock_engine: Any) -> Iterator[Callable[..., Any]]:
    """``held(run_id, shard=..., **row)``: a holder of the target's import lock, its row rewritten with
    ``row`` (as another process of this host would have left it); released after the test."""
    holders: list[Any] = []

    def hold(run_id: str, shard: tuple[int, int] = (0, 1), **row: Any) -> Any:
        holder = lock_of(lock_engine, run_id, shard)
        holder.acquire(0)
        holders.append(holder)
        if row:
            set_holder(lock_engine, **row)
        return holder

    yield hold
    for holder in holders:
        holder.release()


class LogLines(logging.Handler):
    """The messages logged to one logger, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def logged(request: pytest.FixtureRequest) -> Iterator[tuple[logging.Logger, LogLines]]:
    """A logger of the test's own, to hand to the code under test, and the messages logged to it."""
    logger = logging.getLogger(f"tests.imports.{request.node.name}")
    lines = LogLines()
    logger.addHandler(lines)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, lines
    logger.removeHandler(lines)
