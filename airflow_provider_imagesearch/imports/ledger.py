"""The import ledger: one row per (API, instance, key) recording what was last sent and how it went.

It lives on any SQL connection (SQLite by default, PostgreSQL, any common-sql ``DbApiHook``), through
the archive's SQL layer (:func:`~airflow_provider_imagesearch.archive.sql_engine`, checked table names,
safe concurrent creation). Columns:

====================  ===========================================================================
``instance_name``     the v1 instance or the v2 service (key)
``api``               ``v1`` (images of an instance) or ``v2`` (data items of an MMS service) (key): a v1
                      instance and a v2 service of the same name never share rows
``path_key``          32 hex digits of the key's SHA-256 (key: paths can be longer than an index)
``path``              the entry's id in the library: the image's path (v1) or the item id (v2)
``fingerprint``       digest of what was sent: v1 tags + the file's SHA-256; v2 every sent field
``outcome``           ``added``, ``updated``, ``retried`` (success; ``retried``: sent again, as an
                      overwrite, after an ambiguous answer), ``invalid``, ``failed``, ``sending`` (the
                      write-ahead intent: a request for the row was about to be sent; a run killed before
                      its answer leaves it) or ``pruning`` (a delete was about to be sent: the row is
                      forgotten once it is done). ``reconciled`` is never written: see below
``held_fingerprint``  what the library may hold for the key: the fingerprint of the content last sent
                      (on success, ``fingerprint``); ``?`` when it may hold content of unknown fingerprint
                      (a failed overwrite, an intent, a prune in progress); NULL when it holds nothing this import
                      sent. Kept apart from ``outcome``, which says how the latest attempt went: a row
                      ``failed`` or ``invalid`` may still be in the library with an earlier version.
``error_code``        the API's error code (``IS.0002``...) or ``INVALID_ROW``; NULL on success
``error_message``     why the row was refused or failed; NULL on success
``row_number``        the row's number in the manifest of the run that wrote it
``attempts``          requests sent for the row in that run
``run_id``            the run that wrote the row
``updated_at``        when (UTC)
====================  ===========================================================================

Write-ahead: before a batch of requests is sent, its rows are written as ``sending`` intents (one
transaction per batch, not a round trip per row) with ``held_fingerprint`` unknown; each answer then
replaces its intent with the outcome. A run killed between the two leaves intents, and an intent means
"the library may hold this path with content of unknown fingerprint": the next run overwrites the path
(or prunes it), never trusts it.

Rows of earlier releases: up to 0.1.0's pre-releases (8752aac), an add whose answer was ambiguous was
followed by a check, and a path found present was recorded ``reconciled`` with the row's fingerprint,
although the library may have kept an OLD image there (the check answers no digest). So ``reconciled``
is read as "the library may hold this path with content of unknown fingerprint" (``held_fingerprint``
``?``), like an intent: the next run overwrites the path once (or prunes it), and records its own
outcome. This release never writes ``reconciled``: its rows mean what they say to every reader.

Reads are keyed chunks, each its own short transaction, so an import
loading a large ledger never holds a read transaction that would block another target's writes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_imagesearch.archive import (
    create_table_if_missing,
    derived_identifier,
    validate_table_name,
)
from airflow_provider_imagesearch.errors import ImageSearchValidationError

if TYPE_CHECKING:
    import sqlalchemy as sa

DEFAULT_LEDGER_TABLE = "imagesearch_import_ledger"
#: ``retried``: sent again (an overwrite) after an ambiguous answer, then answered: the library holds it.
RETRIED = "retried"
SUCCESS_OUTCOMES = frozenset({"added", "updated", RETRIED})
#: Written by earlier releases after a check found the path present: what the library holds is unknown
#: (possibly an older image), so it is read as ``held_fingerprint`` unknown and never written again.
LEGACY_RECONCILED = "reconciled"
#: Written before a prune's delete is sent: a run killed after the delete leaves no row claiming the
#: image, and the next run deletes it again (or, listed again, sends it).
PRUNING = "pruning"
#: The write-ahead intent of an add or update (see the module doc).
SENDING = "sending"
OUTCOMES = (*sorted(SUCCESS_OUTCOMES), "invalid", "failed", SENDING, PRUNING)
#: Keys per statement (an ``IN`` list) and rows per keyed read.
KEYS_PER_STATEMENT = 500
READ_CHUNK_ROWS = 10_000
#: ``held_fingerprint`` of a path the library may hold with content of unknown fingerprint.
UNKNOWN_HELD = "?"
#: Columns added by pre-release builds after a ledger table could already exist, with why they matter.
REQUIRED_COLUMNS = {
    "api": "its key cannot keep a v1 instance and a v2 service apart",
    "held_fingerprint": "it cannot say what the library may hold after a failed or invalid row",
}
#: The ``api`` column's values.
APIS = ("v1", "v2")


@dataclass(frozen=True)
class LedgerEntry:
    """One outcome to record."""

    path_key: str
    path: str
    fingerprint: str
    outcome: str
    error_code: str | None
    error_message: str | None
    row_number: int | None
    attempts: int
    #: What the library may hold for the path after this outcome (see the module doc); a success's is
    #: always its ``fingerprint``, whatever is given here.
    held: str | None = None


#: The index the ImageSearch page counts a library's rows by outcome and run with (index-only), created
#: with the table: each ledger write updates one more index entry per row.
READ_INDEX = ("instance_name", "api", "outcome", "run_id", "updated_at")


def ledger_table(table: str, metadata: sa.MetaData) -> sa.Table:
    import sqlalchemy as sa

    validate_table_name(table)
    schema, _, name = table.rpartition(".")
    return sa.Table(
        name,
        metadata,
        sa.Column("instance_name", sa.String(64), nullable=False),
        sa.Column("api", sa.String(8), nullable=False),
        sa.Column("path_key", sa.String(32), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.String(32), nullable=False),
        sa.Column("held_fingerprint", sa.String(32)),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("error_code", sa.String(64)),
        sa.Column("error_message", sa.Text()),
        sa.Column("row_number", sa.BigInteger()),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(255), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("instance_name", "api", "path_key", name=derived_identifier("pk", name)),
        sa.Index(derived_identifier("ix_isui", name), *READ_INDEX),
        schema=schema or None,
    )


class Ledger:
    """The ledger of one instance (v1) or service (v2) in one table.

    :param engine: SQLAlchemy engine of the ledger's connection.
    :param table: ``[schema.]table``, a checked identifier.
    :param instance_name: the instance or service whose rows this object reads and writes.
    :param run_id: written on every row this run records.
    :param api: ``v1`` or ``v2``: which API's library the rows describe.
    """

    def __init__(
        self, engine: sa.engine.Engine, table: str, instance_name: str, run_id: str, *, api: str = "v1"
    ) -> None:
        import sqlalchemy as sa

        if api not in APIS:
            raise ImageSearchValidationError("api", f"one of {', '.join(APIS)}", api)
        self.engine = engine
        self.table = ledger_table(table, sa.MetaData())
        self.instance_name: str = instance_name
        self.run_id: str = run_id
        self.api: str = api

    def create_if_missing(self) -> None:
        import sqlalchemy as sa

        with self.engine.begin() as connection:
            create_table_if_missing(connection, self.table.fullname, self.table)
            columns = {
                column["name"]
                for column in sa.inspect(connection).get_columns(self.table.name, schema=self.table.schema)
            }
        missing = [name for name in REQUIRED_COLUMNS if name not in columns]
        if missing:
            # Not migrated: what an older ledger's failed and invalid rows leave in the library is
            # unknown, and guessing it (a success's fingerprint, else nothing) is the defect the
            # column fixes.
            why = "; ".join(f"without {name!r} {REQUIRED_COLUMNS[name]}" for name in missing)
            raise ImageSearchValidationError(
                "ledger_table",
                f"a ledger table with {' and '.join(f'the {name!r} column' for name in missing)} ({why}); "
                "this one was created by an earlier pre-release build: rename or drop it (the next "
                "import recreates it and sends every row again)",
                self.table.fullname,
            )

    def _mine(self) -> Any:
        t = self.table
        return (t.c.instance_name == self.instance_name) & (t.c.api == self.api)

    def count(self) -> int:
        """Rows of the instance (the denominator of the ledger's load progress)."""
        import sqlalchemy as sa

        with self.engine.connect() as connection:
            query = sa.select(sa.func.count()).select_from(self.table).where(self._mine())
            return int(connection.execute(query).scalar_one())

    def stream(
        self, chunk_rows: int = READ_CHUNK_ROWS
    ) -> Iterator[list[tuple[str, str, str, str, str | None]]]:
        """``(path_key, fingerprint, outcome, path, held)`` of every row of the instance, in chunks.

        ``held`` is ``held_fingerprint``, or ``=`` when it equals ``fingerprint`` (every success: one
        character instead of 32 per row to move and stage), or ``?`` (unknown) for an earlier release's
        ``reconciled`` row (see the module doc). Keyed chunks in ``path_key`` order, each read
        in its own short transaction: nothing is held open between two chunks (a SQLite read transaction
        held across a large load kept other imports of the same ledger from writing).
        """
        import sqlalchemy as sa

        t = self.table
        held = sa.case(
            (t.c.outcome == LEGACY_RECONCILED, sa.literal(UNKNOWN_HELD)),
            (t.c.held_fingerprint == t.c.fingerprint, sa.literal("=")),
            else_=t.c.held_fingerprint,
        )
        query = (
            sa.select(t.c.path_key, t.c.fingerprint, t.c.outcome, t.c.path, held)
            .where(self._mine())
            .order_by(t.c.path_key)
            .limit(chunk_rows)
        )
        after: str | None = None
        while True:
            page = query if after is None else query.where(t.c.path_key > after)
            with self.engine.connect() as connection:
                rows = [(row[0], row[1], row[2], row[3], row[4]) for row in connection.execute(page)]
            if rows:
                yield rows
            if len(rows) < chunk_rows:
                return
            after = rows[-1][0]

    def record(self, entries: Sequence[LedgerEntry]) -> None:
        """Write outcomes in one transaction (replacing the rows of the same paths)."""
        if not entries:
            return
        now = datetime.now(UTC)
        values = {
            e.path_key: self._values(e, e.fingerprint if e.outcome in SUCCESS_OUTCOMES else e.held, now)
            for e in entries
        }
        with self.engine.begin() as connection:
            self._replace(connection, values)

    def intend(self, entries: Sequence[LedgerEntry]) -> None:
        """Write the intents of a batch of requests about to be sent, in one transaction.

        Each row becomes ``sending`` with the fingerprint about to be sent and ``held_fingerprint``
        unknown: until its answer is recorded, the library may hold the old content, the new, or none.
        """
        if not entries:
            return
        now = datetime.now(UTC)
        values = {
            e.path_key: self._values(
                LedgerEntry(e.path_key, e.path, e.fingerprint, SENDING, None, None, e.row_number, 0),
                UNKNOWN_HELD,
                now,
            )
            for e in entries
        }
        with self.engine.begin() as connection:
            self._replace(connection, values)

    def _values(self, e: LedgerEntry, held: str | None, now: datetime) -> dict[str, Any]:
        return {
            "instance_name": self.instance_name,
            "api": self.api,
            "path_key": e.path_key,
            "path": e.path,
            "fingerprint": e.fingerprint,
            "held_fingerprint": held,
            "outcome": e.outcome,
            "error_code": e.error_code,
            "error_message": e.error_message,
            "row_number": e.row_number,
            "attempts": e.attempts,
            "run_id": self.run_id,
            "updated_at": now,
        }

    def _replace(self, connection: sa.engine.Connection, values: dict[str, dict[str, Any]]) -> None:
        """Insert or replace rows by key: an upsert on SQLite and PostgreSQL, delete + insert elsewhere."""
        import sqlalchemy as sa

        t = self.table
        rows = list(values.values())
        dialect = connection.dialect.name
        if dialect in ("sqlite", "postgresql"):
            if dialect == "sqlite":
                from sqlalchemy.dialects.sqlite import insert
            else:
                from sqlalchemy.dialects.postgresql import insert  # type: ignore[assignment]
            for start in range(0, len(rows), KEYS_PER_STATEMENT):
                statement = insert(t)
                replaced = {
                    c.name: statement.excluded[c.name]
                    for c in t.columns
                    if c.name not in ("instance_name", "api", "path_key")
                }
                connection.execute(
                    statement.on_conflict_do_update(
                        index_elements=["instance_name", "api", "path_key"], set_=replaced
                    ),
                    rows[start : start + KEYS_PER_STATEMENT],
                )
            return
        self._delete(connection, list(values))
        connection.execute(sa.insert(t), rows)

    def mark_pruning(self, path_keys: Sequence[str], *, unknown_content: bool = True) -> None:
        """Mark these rows ``pruning`` for this run (one transaction), before their deletes are sent.

        With ``unknown_content`` their ``held_fingerprint`` becomes unknown: present or not, a path listed
        again is overwritten. Rows the library holds nothing for (forgotten without a delete) keep theirs.
        """
        if not path_keys:
            return
        import sqlalchemy as sa

        t = self.table
        keys = list(path_keys)
        values: dict[str, Any] = {"outcome": PRUNING, "run_id": self.run_id, "updated_at": datetime.now(UTC)}
        if unknown_content:
            values["held_fingerprint"] = UNKNOWN_HELD
        with self.engine.begin() as connection:
            for start in range(0, len(keys), KEYS_PER_STATEMENT):
                part = keys[start : start + KEYS_PER_STATEMENT]
                connection.execute(sa.update(t).where(self._mine(), t.c.path_key.in_(part)).values(**values))

    def forget(self, path_keys: Sequence[str]) -> None:
        """Delete the rows of these paths that this run marked ``pruning`` (pruned or forgotten paths).

        Scoped to this run's marks: a row another run wrote since (the path re-added) is never deleted.
        """
        if not path_keys:
            return
        t = self.table
        with self.engine.begin() as connection:
            self._delete(connection, list(path_keys), (t.c.run_id == self.run_id) & (t.c.outcome == PRUNING))

    def _delete(self, connection: sa.engine.Connection, keys: list[str], scope: Any = None) -> None:
        import sqlalchemy as sa

        t = self.table
        for start in range(0, len(keys), KEYS_PER_STATEMENT):
            part = keys[start : start + KEYS_PER_STATEMENT]
            where = [self._mine(), t.c.path_key.in_(part)]
            if scope is not None:
                where.append(scope)
            connection.execute(sa.delete(t).where(*where))

    def errors(self, path_keys: Sequence[str]) -> dict[str, tuple[str | None, str | None]]:
        """``{path_key: (error_code, error_message)}`` of a few rows (a failure summary's examples)."""
        if not path_keys:
            return {}
        import sqlalchemy as sa

        t = self.table
        query = sa.select(t.c.path_key, t.c.error_code, t.c.error_message).where(
            self._mine(), t.c.path_key.in_(list(path_keys))
        )
        with self.engine.connect() as connection:
            return {row[0]: (row[1], row[2]) for row in connection.execute(query)}

    def rows(self) -> list[dict[str, Any]]:
        """Every row of the instance (tests, small ledgers)."""
        import sqlalchemy as sa

        t = self.table
        with self.engine.connect() as connection:
            query = sa.select(t).where(self._mine())
            return [dict(row._mapping) for row in connection.execute(query)]
