"""Every SQL statement of the ImageSearch page: the archive, the import ledger, and Airflow's DAG runs.

Read-only and parameterised (SQLAlchemy Core; table names are checked identifiers). The page reads the
archive and the ledger through their documented columns only, so columns added later change nothing:

* archive (``archive.py``): ``instance_name``, ``run_id``, ``project_id``, ``status``, ``domain``,
  ``description``, ``level``, ``tags``, ``registered_at``, ``expires_at``, ``never_expires``,
  ``fetched_at`` (one value per archive run);
* ledger (``imports/ledger.py``): ``instance_name``, ``api``, ``path_key``, ``path``, ``outcome``,
  ``held_fingerprint``, ``error_code``, ``error_message``, ``row_number``, ``run_id``, ``updated_at``.

Outcomes, as the import reads them (the ledger's own sets, ``imports/ledger.py``): ``added``,
``updated`` and ``retried`` are successes, and a success holds what it sent (the ledger writes
``held_fingerprint = fingerprint`` for them); ``reconciled``, which only earlier releases wrote, means the
path is there with content of unknown fingerprint (the import overwrites it), whatever its
``held_fingerprint`` says; ``invalid`` and ``failed`` are the problem rows the page lists; every other
value (``sending``, ``pruning``, or one a later ledger adds) is counted under its own name, and what such
rows hold is read from ``held_fingerprint``, never assumed.

Indexes: the archive's primary key ``(instance_name, run_id)`` cannot find an instance's newest snapshot
without reading all of them, and the ledger's ``(instance_name, api, path_key)`` cannot count a library's
rows by outcome and run without reading every row (5 s for a million rows on SQLite). :data:`ARCHIVE_INDEX`
and :data:`LEDGER_INDEX` make both index-only; they are created with the tables (``archive.py``,
``imports/ledger.py``), never by the page, which only reads: a ``CREATE INDEX`` on a page view waited for
the ledger's lock, and every import writing the ledger queued behind it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_imagesearch.archive import READ_INDEX as ARCHIVE_READ_INDEX
from airflow_provider_imagesearch.archive import validate_table_name
from airflow_provider_imagesearch.imports.ledger import LEGACY_RECONCILED, UNKNOWN_HELD
from airflow_provider_imagesearch.imports.ledger import READ_INDEX as LEDGER_READ_INDEX
from airflow_provider_imagesearch.imports.ledger import SUCCESS_OUTCOMES as LEDGER_SUCCESS_OUTCOMES

if TYPE_CHECKING:
    import sqlalchemy as sa

#: The import's successes: the library holds what the row sent (``legacy reconciled`` is not one).
SUCCESS_OUTCOMES = tuple(sorted(LEDGER_SUCCESS_OUTCOMES))
PROBLEM_OUTCOMES = ("invalid", "failed")
ARCHIVE_INDEX = ARCHIVE_READ_INDEX
LEDGER_INDEX = LEDGER_READ_INDEX


class TableMissing(LookupError):
    """The table does not exist (yet): nothing was archived or imported on this connection."""


def archive_table(table: str, metadata: sa.MetaData) -> sa.Table:
    """The archive's documented columns (types as ``archive.py`` creates them)."""
    import sqlalchemy as sa

    validate_table_name(table, "archive_table")
    schema, _, name = table.rpartition(".")
    return sa.Table(
        name,
        metadata,
        sa.Column("instance_name", sa.String(255)),
        sa.Column("run_id", sa.String(255)),
        sa.Column("project_id", sa.Text()),
        sa.Column("status", sa.Text()),
        sa.Column("domain", sa.Text()),
        sa.Column("description", sa.Text()),
        sa.Column("level", sa.BigInteger()),
        sa.Column("tags", sa.Text()),
        sa.Column("registered_at", sa.DateTime(timezone=True)),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("never_expires", sa.Boolean()),
        sa.Column("fetched_at", sa.DateTime(timezone=True)),
        schema=schema or None,
    )


def ledger_table(table: str, metadata: sa.MetaData) -> sa.Table:
    """The ledger's documented columns (types as ``imports/ledger.py`` creates them)."""
    import sqlalchemy as sa

    validate_table_name(table, "ledger_table")
    schema, _, name = table.rpartition(".")
    return sa.Table(
        name,
        metadata,
        sa.Column("instance_name", sa.String(64)),
        sa.Column("api", sa.String(8)),
        sa.Column("path_key", sa.String(32)),
        sa.Column("path", sa.Text()),
        sa.Column("held_fingerprint", sa.String(32)),
        sa.Column("outcome", sa.String(16)),
        sa.Column("error_code", sa.String(64)),
        sa.Column("error_message", sa.Text()),
        sa.Column("row_number", sa.BigInteger()),
        sa.Column("run_id", sa.String(255)),
        sa.Column("updated_at", sa.DateTime(timezone=True)),
        schema=schema or None,
    )


def utc(value: datetime | None) -> datetime | None:
    """A stored time as an aware UTC datetime (SQLite hands back the stored UTC value without a zone)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _require_table(connection: sa.engine.Connection, table: sa.Table) -> None:
    import sqlalchemy as sa

    if not sa.inspect(connection).has_table(table.name, schema=table.schema):
        raise TableMissing(table.fullname)


# --- the archive -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """One archived row of an instance (what one archive run saw)."""

    instance_name: str
    run_id: str
    project_id: str | None
    status: str
    domain: str | None
    description: str | None
    level: int | None
    tags: str | None
    registered_at: datetime | None
    expires_at: datetime | None
    never_expires: bool
    fetched_at: datetime


@dataclass(frozen=True)
class FleetPage:
    """A page of the fleet: each instance's newest snapshot.

    :param rows: the page's instances, by name.
    :param status_counts: how many instances (matching the name filter) are in each newest status.
    :param has_next: whether another page follows.
    """

    rows: list[Snapshot]
    status_counts: dict[str, int]
    has_next: bool

    @property
    def instances(self) -> int:
        return sum(self.status_counts.values())


def _snapshot(row: Any) -> Snapshot:
    return Snapshot(
        instance_name=row.instance_name,
        run_id=row.run_id,
        project_id=row.project_id,
        status=row.status or "",
        domain=row.domain,
        description=row.description,
        level=row.level,
        tags=row.tags,
        registered_at=utc(row.registered_at),
        expires_at=utc(row.expires_at),
        never_expires=bool(row.never_expires),
        fetched_at=utc(row.fetched_at) or datetime.min.replace(tzinfo=UTC),
    )


def fleet(
    engine: sa.engine.Engine,
    table_name: str,
    *,
    status: str | None = None,
    name_contains: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> FleetPage:
    """The newest snapshot of each instance, ``limit`` of them from ``offset``, by name.

    :param status: only instances whose newest status is this one.
    :param name_contains: only instances whose name contains this text (``%`` and ``_`` are literal).
    """
    import sqlalchemy as sa

    t = archive_table(table_name, sa.MetaData())
    newest = sa.select(t.c.instance_name, sa.func.max(t.c.fetched_at).label("newest"))
    if name_contains:
        newest = newest.where(t.c.instance_name.contains(name_contains, autoescape=True))
    newest_sub = newest.group_by(t.c.instance_name).subquery("newest")
    # Two archive runs with the same fetched_at: the instance's row is its greatest run id's, chosen
    # here, before the counts and the page, so an instance is counted once and takes one row of a page.
    chosen = (
        sa.select(t.c.instance_name, sa.func.max(t.c.run_id).label("run_id"))
        .join(
            newest_sub,
            (t.c.instance_name == newest_sub.c.instance_name) & (t.c.fetched_at == newest_sub.c.newest),
        )
        .group_by(t.c.instance_name)
        .subquery("chosen")
    )
    latest = (
        sa.select(t)
        .join(chosen, (t.c.instance_name == chosen.c.instance_name) & (t.c.run_id == chosen.c.run_id))
        .subquery("latest")
    )
    counts_query = sa.select(latest.c.status, sa.func.count()).group_by(latest.c.status)
    page_query = sa.select(latest).order_by(latest.c.instance_name)
    if status:
        page_query = page_query.where(latest.c.status == status)
    page_query = page_query.limit(limit + 1).offset(offset)
    with engine.connect() as connection:
        _require_table(connection, t)
        counts = {row[0] or "": int(row[1]) for row in connection.execute(counts_query)}
        rows = [_snapshot(row) for row in connection.execute(page_query)]
    return FleetPage(rows=rows[:limit], status_counts=counts, has_next=len(rows) > limit)


@dataclass(frozen=True)
class StatusPoint:
    """An instance's status as one archive run saw it."""

    run_id: str
    status: str
    fetched_at: datetime


def history(
    engine: sa.engine.Engine, table_name: str, names: Sequence[str], since: datetime
) -> dict[str, list[StatusPoint]]:
    """The snapshots of ``names`` fetched at or after ``since``, oldest first, per instance."""
    import sqlalchemy as sa

    t = archive_table(table_name, sa.MetaData())
    points: dict[str, list[StatusPoint]] = {name: [] for name in names}
    if not names:
        return points
    query = (
        sa.select(t.c.instance_name, t.c.run_id, t.c.status, t.c.fetched_at)
        .where(t.c.instance_name.in_(list(names)), t.c.fetched_at >= since)
        .order_by(t.c.instance_name, t.c.fetched_at, t.c.run_id)
    )
    with engine.connect() as connection:
        for row in connection.execute(query):
            moment = utc(row.fetched_at)
            if moment is not None:
                points[row.instance_name].append(StatusPoint(row.run_id, row.status or "", moment))
    return points


# --- the import ledger -------------------------------------------------------------------------------


@dataclass
class RunCounts:
    """What one run wrote to one library's ledger rows (those it still owns)."""

    run_id: str
    updated_at: datetime
    outcomes: dict[str, int] = field(default_factory=dict)


@dataclass
class Library:
    """One library (a v1 instance or a v2 service) as its ledger rows describe it.

    :param instance_name: the instance (v1) or service (v2).
    :param api: ``v1`` or ``v2``.
    :param rows: ledger rows of the library.
    :param outcomes: rows per latest outcome, over every run.
    :param held: rows whose content the library holds (a success, or an earlier version of a row that
        failed since).
    :param held_unknown: rows the library may hold with content of unknown fingerprint.
    :param last_run: the run that wrote the newest row, and what it wrote (rows a later run rewrote
        count for that later run; unchanged rows are not rewritten; pruned rows are gone).
    """

    instance_name: str
    api: str
    rows: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    held: int = 0
    held_unknown: int = 0
    last_run: RunCounts | None = None
    runs: int = 0

    @property
    def problems(self) -> int:
        return sum(self.outcomes.get(outcome, 0) for outcome in PROBLEM_OUTCOMES)

    @property
    def last_run_problems(self) -> int:
        """Problem rows the last run wrote (the page highlights those libraries)."""
        if self.last_run is None:
            return 0
        return sum(self.last_run.outcomes.get(outcome, 0) for outcome in PROBLEM_OUTCOMES)


def _known_held(t: sa.Table) -> Any:
    return (
        t.c.held_fingerprint.is_not(None)
        & (t.c.held_fingerprint != UNKNOWN_HELD)
        & (t.c.outcome != LEGACY_RECONCILED)
    )


def _unknown_held(t: sa.Table) -> Any:
    """Content of unknown fingerprint: ``?``, or an earlier release's ``reconciled`` row (as the import
    reads it, ``Ledger.stream``), whatever fingerprint that release wrote."""
    return (t.c.held_fingerprint == UNKNOWN_HELD) | (t.c.outcome == LEGACY_RECONCILED)


def libraries(engine: sa.engine.Engine, table_name: str) -> list[Library]:
    """Every library of the ledger, by name then API, with its counts (two aggregate queries)."""
    import sqlalchemy as sa

    t = ledger_table(table_name, sa.MetaData())
    by_run = sa.select(
        t.c.instance_name,
        t.c.api,
        t.c.outcome,
        t.c.run_id,
        sa.func.count().label("rows"),
        sa.func.max(t.c.updated_at).label("newest"),
    ).group_by(t.c.instance_name, t.c.api, t.c.outcome, t.c.run_id)
    found: dict[tuple[str, str], Library] = {}
    runs: dict[tuple[str, str], dict[str, RunCounts]] = {}
    with engine.connect() as connection:
        _require_table(connection, t)
        for row in connection.execute(by_run):
            key = (row.instance_name, row.api)
            library = found.setdefault(key, Library(row.instance_name, row.api))
            count = int(row.rows)
            outcome = row.outcome or ""
            library.rows += count
            library.outcomes[outcome] = library.outcomes.get(outcome, 0) + count
            if outcome in SUCCESS_OUTCOMES:
                library.held += count
            newest = utc(row.newest) or datetime.min.replace(tzinfo=UTC)
            run = runs.setdefault(key, {}).setdefault(row.run_id, RunCounts(row.run_id, newest))
            run.updated_at = max(run.updated_at, newest)
            run.outcomes[outcome] = run.outcomes.get(outcome, 0) + count
        # What rows that are not successes hold: read, not assumed (a failed overwrite keeps the
        # earlier version, a prune in progress may or may not have happened). IN lists rather than
        # (name AND api AND outcome) ORs: both databases seek the index with them (ORs: a full scan).
        others = sorted({o for library in found.values() for o in library.outcomes} - set(SUCCESS_OUTCOMES))
        apis = sorted({api for _, api in found})
        names = sorted({name for name, _ in found})
        for start in range(0, len(names) if others else 0, 500):
            held_query = (
                sa.select(
                    t.c.instance_name,
                    t.c.api,
                    sa.func.sum(sa.case((_known_held(t), 1), else_=0)),
                    sa.func.sum(sa.case((_unknown_held(t), 1), else_=0)),
                )
                .where(
                    t.c.instance_name.in_(names[start : start + 500]),
                    t.c.api.in_(apis),
                    t.c.outcome.in_(others),
                )
                .group_by(t.c.instance_name, t.c.api)
            )
            for row in connection.execute(held_query):
                library = found[(row[0], row[1])]
                library.held += int(row[2] or 0)
                library.held_unknown += int(row[3] or 0)
    for key, library in found.items():
        library_runs = runs.get(key, {})
        library.runs = len(library_runs)
        if library_runs:
            library.last_run = max(library_runs.values(), key=lambda run: (run.updated_at, run.run_id))
    return [found[key] for key in sorted(found)]


@dataclass(frozen=True)
class ProblemRow:
    """A ledger row whose latest attempt was refused (``invalid``) or failed."""

    path: str
    outcome: str
    error_code: str | None
    error_message: str | None
    row_number: int | None
    run_id: str
    updated_at: datetime | None


def _problems_query(t: sa.Table, instance_name: str, api: str) -> Any:
    """The library's problem rows by manifest row number (rows without one last), then key."""
    import sqlalchemy as sa

    return (
        sa.select(
            t.c.path,
            t.c.outcome,
            t.c.error_code,
            t.c.error_message,
            t.c.row_number,
            t.c.run_id,
            t.c.updated_at,
            t.c.path_key,
        )
        .where(
            t.c.instance_name == instance_name,
            t.c.api == api,
            t.c.outcome.in_(PROBLEM_OUTCOMES),
        )
        .order_by(t.c.row_number.is_(None), t.c.row_number, t.c.path_key)
    )


def _problem(row: Any) -> ProblemRow:
    return ProblemRow(
        path=row.path or "",
        outcome=row.outcome or "",
        error_code=row.error_code,
        error_message=row.error_message,
        row_number=row.row_number,
        run_id=row.run_id or "",
        updated_at=utc(row.updated_at),
    )


def problems(
    engine: sa.engine.Engine, table_name: str, instance_name: str, api: str, *, offset: int, limit: int
) -> tuple[list[ProblemRow], bool]:
    """A page of the library's problem rows by manifest row number, and whether more follow."""
    import sqlalchemy as sa

    t = ledger_table(table_name, sa.MetaData())
    query = _problems_query(t, instance_name, api).limit(limit + 1).offset(offset)
    with engine.connect() as connection:
        _require_table(connection, t)
        rows = [_problem(row) for row in connection.execute(query)]
    return rows[:limit], len(rows) > limit


def all_problems(
    engine: sa.engine.Engine, table_name: str, instance_name: str, api: str, chunk_rows: int = 10_000
) -> Iterator[ProblemRow]:
    """Every problem row of the library in :func:`problems`' order, read in keyed pages.

    Each page is its own short read, finished before its rows are handed on: a client downloading
    slowly holds no cursor, transaction or lock open between two pages (on SQLite an open read kept
    every import from writing the ledger for as long as the download lasted). Keyed on (row number,
    ``path_key``), unique per library, rather than an offset, so rows written meanwhile shift nothing.
    A page finds its rows among the library's problem rows (the ledger's index has them together), so
    a download reads them once per page: ``chunk_rows`` keeps the pages few.
    """
    import sqlalchemy as sa

    t = ledger_table(table_name, sa.MetaData())
    query = _problems_query(t, instance_name, api).limit(chunk_rows)
    with engine.connect() as connection:
        _require_table(connection, t)
    numbered: tuple[int, str] | None = None  # the last (row_number, path_key) of a numbered row
    unnumbered: str | None = None  # the last path_key of a row without a row number
    while True:
        page = query
        if unnumbered is not None:
            page = page.where(t.c.row_number.is_(None), t.c.path_key > unnumbered)
        elif numbered is not None:
            number, key = numbered
            page = page.where(
                (t.c.row_number > number)
                | ((t.c.row_number == number) & (t.c.path_key > key))
                | t.c.row_number.is_(None)
            )
        with engine.connect() as connection:
            rows = connection.execute(page).all()
        yield from (_problem(row) for row in rows)
        if len(rows) < chunk_rows:
            return
        last = rows[-1]
        if last.row_number is None:
            unnumbered = last.path_key
        else:
            numbered = (last.row_number, last.path_key)


# --- Airflow's DAG runs ----------------------------------------------------------------------------


def dag_ids_of_runs(run_ids: Sequence[str]) -> dict[str, list[str]]:
    """``{run_id: [dag_id, ...]}`` from Airflow's metadata database (a run id is unique per DAG only).

    Run ids with no DAG run (an archive written by ``dag.test()`` elsewhere, a deleted run) are absent.
    """
    import sqlalchemy as sa
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    wanted = sorted({run_id for run_id in run_ids if run_id})
    found: dict[str, list[str]] = {}
    with create_session() as session:
        for start in range(0, len(wanted), 500):
            query = (
                sa.select(DagRun.run_id, DagRun.dag_id)
                .where(DagRun.run_id.in_(wanted[start : start + 500]))
                .order_by(DagRun.dag_id)
            )
            for run_id, dag_id in session.execute(query):
                found.setdefault(run_id, []).append(dag_id)
    return found
