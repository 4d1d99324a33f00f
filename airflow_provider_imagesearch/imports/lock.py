"""One import per target at a time: a lock per (ledger table, API, instance or service, shard).

Two runs of the same import (a manual trigger during a scheduled run, a backfill, a cleared run) must not
plan from the same ledger snapshot and send the same rows, nor prune what the other re-adds. So an import
holds a lock from before it reads the ledger until its last ledger write. The lock is a row of a small
table beside the ledger (``<ledger_table>_lock``, created when missing), one per holder:

==================  ===========================================================================
``instance_name``   the instance (v1) or service (v2) (key)
``api``             ``v1`` or ``v2`` (key)
``shard_index``     the holder's shard, 0 when unsharded (key)
``shard_count``     how many shards the holder's import has, 1 when unsharded (key)
``token``           random, this acquisition's
``run_id``          the DAG run holding it (named by the runs that wait for it)
``host``, ``pid``   where the holder runs: its host name, boot and PID namespace; its pid there
``acquired_at``     since when (UTC)
``heartbeat_at``    refreshed while the holder lives (UTC)
==================  ===========================================================================

Two holders conflict unless both are shards of the same split (same ``shard_count``) with different
indexes: shards own disjoint slices of the keys, anything else may overlap. Taking the lock is one short
transaction, serialized per target (PostgreSQL: a transaction-level advisory lock on the target; SQLite:
``BEGIN IMMEDIATE``), which reads the target's rows, drops those of dead holders and inserts its own.

Whether a holder is alive:

* PostgreSQL: the holder keeps a session-level advisory lock on its row's token for as long as it holds
  the row, on a connection of its own (the keys name the lock table by its oid, so ``ledger_table``
  spelled with or without its schema takes the same locks). A killed worker's connection closes and the server drops its
  locks at once; the next run sees that the advisory lock can be taken, and takes over the row. The
  holder's heartbeat uses that connection every :data:`HEARTBEAT_SECONDS`: when it has been dropped (a
  failover, a pooler restart, ``pg_terminate_backend``: the server has freed the lock, another run may
  hold the target), the holder stops sending. TCP keepalives and ``tcp_user_timeout`` on it
  (:data:`SESSION_TCP_OPTIONS`) bound how long a drop without a reset goes unnoticed to about 30 s.
* SQLite (and other databases): a heartbeat. The holder refreshes ``heartbeat_at`` every
  :data:`HEARTBEAT_SECONDS`; a row whose heartbeat is older than :data:`STALE_SECONDS` is dead, and so is
  a row of this host whose process no longer runs (a SIGKILLed worker on the same machine is taken over
  at once, not after the heartbeat goes stale). "This host" is the same host name, boot and PID
  namespace (:func:`process_space`): containers that share a ledger volume and report one host name
  (``--network host``, ``hostNetwork: true``) each have their own pids, so another container's holder
  is judged by its heartbeat only, never by a pid that means another process here. Where the boot id or
  the namespace cannot be read (a hardened runtime), no holder is judged by its pid: heartbeat only.

A run that finds the target held waits (``lock_timeout`` seconds, logging which run holds it every 30 s),
then fails naming it; ``lock_timeout=0`` fails at once. A holder whose row was taken over (its heartbeat
stopped for longer than :data:`STALE_SECONDS`: a frozen VM) learns it at its next heartbeat and stops
sending.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_imagesearch.archive import (
    MAX_IDENTIFIER_LENGTH,
    create_table_if_missing,
    derived_identifier,
)

if TYPE_CHECKING:
    import sqlalchemy as sa

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 10.0
STALE_SECONDS = 120.0
#: How often a waiting run tries again (jittered), and says whom it waits for.
RETRY_SECONDS = 1.0
WAIT_LOG_SECONDS = 30.0
#: libpq options of the PostgreSQL session that holds the advisory lock (unless the connection's URL
#: sets them): TCP keepalives, and at most 30 s for the server to acknowledge what we send, so a
#: connection dropped without a reset (a failover, a pooler or NAT forgetting it) fails the heartbeat
#: within about that, instead of after the OS's retransmission timeout (about 15 minutes).
SESSION_TCP_OPTIONS = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,
}
#: The first libpq that knows ``tcp_user_timeout`` (12; keepalives are older): an earlier one refuses
#: the whole connection on an option it does not know ("invalid connection option").
TCP_USER_TIMEOUT_LIBPQ = 120_000


def libpq_version(driver: str) -> int | None:
    """The version of the libpq a psycopg driver runs on (``170011`` for 17.11), None if unknown."""
    try:
        if driver == "psycopg2":
            import psycopg2.extensions

            return int(psycopg2.extensions.libpq_version())
        if driver == "psycopg":
            import psycopg

            return int(psycopg.pq.version())
    except Exception:  # an odd build: leave out what an old libpq would refuse
        return None
    return None


def session_tcp_options(driver: str, url_query: Mapping[str, Any], libpq: int | None) -> dict[str, Any]:
    """:data:`SESSION_TCP_OPTIONS` for a psycopg driver (none for another), without those the URL sets
    and, on a libpq older than 12 or of unknown version, without ``tcp_user_timeout``."""
    if driver not in ("psycopg2", "psycopg"):
        return {}
    options = {key: value for key, value in SESSION_TCP_OPTIONS.items() if key not in url_query}
    if libpq is None or libpq < TCP_USER_TIMEOUT_LIBPQ:
        options.pop("tcp_user_timeout", None)
    return options


class ImportLockedError(Exception):
    """The target is held by another run (``holders``) and ``lock_timeout`` ran out."""

    def __init__(self, message: str, holders: list[Holder]) -> None:
        super().__init__(message)
        self.holders: list[Holder] = holders


class ImportLockLostError(Exception):
    """This run's lock was taken over (its heartbeat stopped for too long): it must stop sending."""


@dataclass(frozen=True)
class Holder:
    """Who holds a target (a row of the lock table)."""

    shard_index: int
    shard_count: int
    token: str
    run_id: str
    host: str
    pid: int
    acquired_at: datetime
    heartbeat_at: datetime

    def describe(self) -> str:
        shard = f" shard {self.shard_index}/{self.shard_count}" if self.shard_count > 1 else ""
        since = self.acquired_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        host = self.host.split(" (", 1)[0]
        return f"run {self.run_id!r}{shard} (host {host}, pid {self.pid}, since {since})"


def lock_table_name(ledger_table: str) -> str:
    """``[schema.]<table>_lock``, shortened like every derived identifier when over 63 characters."""
    schema, _, name = ledger_table.rpartition(".")
    lock = f"{name}_lock"
    if len(lock) > MAX_IDENTIFIER_LENGTH:
        lock = derived_identifier("lock", name)
    return f"{schema}.{lock}" if schema else lock


def lock_table(table: str, metadata: sa.MetaData) -> sa.Table:
    import sqlalchemy as sa

    schema, _, name = table.rpartition(".")
    return sa.Table(
        name,
        metadata,
        sa.Column("instance_name", sa.String(64), nullable=False),
        sa.Column("api", sa.String(8), nullable=False),
        sa.Column("shard_index", sa.Integer(), nullable=False),
        sa.Column("shard_count", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(32), nullable=False),
        sa.Column("run_id", sa.String(255), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "instance_name", "api", "shard_index", "shard_count", name=derived_identifier("pk", name)
        ),
        schema=schema or None,
    )


def _key(*parts: object) -> int:
    """A stable signed 64-bit advisory-lock key (the same in every process, unlike ``hash()``)."""
    text = "\x1f".join(str(part) for part in ("airflow_provider_imagesearch.import", *parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big", signed=True)


#: What :func:`process_space` writes for a boot id / PID namespace it cannot read. Every process that
#: cannot read them writes the same text, so two such identities compare equal across containers and
#: machines: they never mean "the same pids" (:func:`pids_comparable`).
UNKNOWN_BOOT = "boot unknown"
UNKNOWN_NAMESPACE = "pid:unknown"


def process_space() -> str:
    """Where a pid names one process: ``<host name> (boot <boot id>, <PID namespace>)``.

    The boot id tells machines and reboots apart (the initial PID namespace has the same inode number on
    every Linux host), the namespace tells containers apart; where either cannot be read it is written
    as unknown (:data:`UNKNOWN_BOOT`, :data:`UNKNOWN_NAMESPACE`), and a process whose identity holds an
    unknown part never judges a holder by its pid (:func:`pids_comparable`), only by its heartbeat.
    """
    host = socket.gethostname()
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as boot_file:
            boot = f"boot {boot_file.read().strip()}"
    except OSError:
        boot = UNKNOWN_BOOT
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = UNKNOWN_NAMESPACE
    return f"{host} ({boot}, {namespace})"[:255]


def pids_comparable(space: str, other: str) -> bool:
    """Whether a pid of ``other`` names a process of ``space``: the same identity, fully known (an
    unreadable boot id or namespace is the same text in every container, not proof of the same pids)."""
    _, parenthesis, boot_and_namespace = space.rpartition(" (")
    if space != other or not parenthesis:  # a bare host name (an earlier release) says nothing of pids
        return False
    return UNKNOWN_BOOT not in boot_and_namespace and UNKNOWN_NAMESPACE not in boot_and_namespace


def _process_gone(pid: int) -> bool:
    """Whether no process ``pid`` runs on this host (an unreaped zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # someone else's process: alive
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rpartition(")")[2].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return False


def _aware(value: datetime) -> datetime:
    """A stored timestamp in UTC: SQLite's come back without a zone (written in UTC), PostgreSQL's in the
    session's time zone (a server's ``timezone`` is often local), which a message saying UTC must undo."""
    return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)


class ImportLock:
    """The lock of one import run (see the module doc).

    :param engine: SQLAlchemy engine of the ledger's connection.
    :param ledger_table: the ledger's ``[schema.]table`` (checked); the lock table sits beside it.
    :param api: ``v1`` or ``v2``.
    :param target: the instance or service.
    :param run_id: the DAG run, named to the runs that wait.
    :param shard: ``(index, count)`` of this import's slice of the keys.
    :param logger: where the waiting lines go (the task's log).
    """

    def __init__(
        self,
        engine: sa.engine.Engine,
        ledger_table: str,
        api: str,
        target: str,
        run_id: str,
        *,
        shard: tuple[int, int] = (0, 1),
        logger: logging.Logger | Any = log,
    ) -> None:
        import sqlalchemy as sa

        self.engine = engine
        self.table = lock_table(lock_table_name(ledger_table), sa.MetaData())
        self.ledger_table = ledger_table
        #: What the advisory-lock keys name the lock table by: on PostgreSQL its oid (see :meth:`acquire`).
        self._table_identity = ledger_table
        self.api = api
        self.target = target
        self.run_id = run_id
        self.shard_index, self.shard_count = shard
        self.log = logger
        self.token = uuid.uuid4().hex
        self.host = process_space()
        self.pid = os.getpid()
        self._session: sa.engine.Connection | None = None  # PostgreSQL: holds the advisory lock
        self._session_engine: sa.engine.Engine | None = None
        self._held = False
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    @property
    def postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    # --- taking and giving back -------------------------------------------------------------------

    def acquire(self, timeout: float) -> float:
        """Take the lock, waiting up to ``timeout`` seconds; returns the seconds waited.

        :raises ImportLockedError: still held by another run after ``timeout``, naming it.
        """
        with self.engine.begin() as connection:
            create_table_if_missing(connection, self.table.fullname, self.table)
            if self.postgres:
                self._table_identity = self._table_oid(connection)
        started = time.monotonic()
        logged_at: float | None = None
        while True:
            holders = self._try()
            if not holders:
                self._start_heartbeat()
                return time.monotonic() - started
            waited = time.monotonic() - started
            names = "; ".join(holder.describe() for holder in holders)
            if waited >= timeout:
                self._close_session()
                raise ImportLockedError(
                    f"Import into {self.target}{self._shard_text()}: another import of it holds the lock: "
                    f"{names} (waited {waited:.0f} s, lock_timeout={timeout:g}). Nothing was sent. "
                    f"Two runs of one import at once would send the same rows twice; a run whose worker "
                    f"died frees the lock at once (PostgreSQL) or within {STALE_SECONDS:.0f} s (elsewhere).",
                    holders,
                )
            if logged_at is None or time.monotonic() - logged_at >= WAIT_LOG_SECONDS:
                self.log.info(
                    "Import into %s%s waits for %s (waited %.0f s of lock_timeout=%g)",
                    self.target,
                    self._shard_text(),
                    names,
                    waited,
                    timeout,
                )
                logged_at = time.monotonic()
            time.sleep(min(RETRY_SECONDS * random.uniform(0.5, 1.5), max(timeout - waited, 0.05)))

    def release(self) -> None:
        """Give the lock back (the row, the heartbeat, the PostgreSQL session); safe to call twice."""
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=HEARTBEAT_SECONDS + 5)
            self._heartbeat = None
        try:
            if self._held:
                with self.engine.begin() as connection:
                    connection.execute(
                        self.table.delete().where(self._mine(), self.table.c.token == self.token)
                    )
        finally:
            self._held = False
            self._close_session()

    def __enter__(self) -> ImportLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _shard_text(self) -> str:
        return f" (shard {self.shard_index}/{self.shard_count})" if self.shard_count > 1 else ""

    def _mine(self) -> Any:
        t = self.table
        return (
            (t.c.instance_name == self.target)
            & (t.c.api == self.api)
            & (t.c.shard_index == self.shard_index)
            & (t.c.shard_count == self.shard_count)
        )

    def _table_oid(self, connection: sa.engine.Connection) -> str:
        """The lock table's oid: the same however ``ledger_table`` is spelled (with or without its
        schema, found through ``search_path``), so every run of one table takes the same advisory keys."""
        import sqlalchemy as sa

        name = connection.dialect.identifier_preparer.format_table(self.table)
        oid = connection.execute(sa.text("SELECT to_regclass(:name)::oid"), {"name": name}).scalar_one()
        return f"oid:{oid}"

    def _row_key(self, token: str) -> int:
        return _key(self._table_identity, self.api, self.target, token)

    def _try(self) -> list[Holder]:
        """One attempt: the live holders that conflict (the lock was taken when there are none)."""
        import sqlalchemy as sa

        if self.postgres and self._session is None:
            # The session advisory lock on our token, taken before our row is visible to anyone.
            self._session = self._open_session()
            self._session.execute(sa.select(sa.func.pg_advisory_lock(self._row_key(self.token))))
            self._session.commit()
        t = self.table
        now = datetime.now(UTC)
        with self.engine.connect() as connection:
            self._serialize(connection)
            rows = connection.execute(
                sa.select(t).where(t.c.instance_name == self.target, t.c.api == self.api)
            ).all()
            holders: list[Holder] = []
            for row in rows:
                holder = Holder(
                    row.shard_index,
                    row.shard_count,
                    row.token,
                    row.run_id,
                    row.host,
                    row.pid,
                    _aware(row.acquired_at),
                    _aware(row.heartbeat_at),
                )
                same_slot = holder.shard_index == self.shard_index and holder.shard_count == self.shard_count
                overlaps = holder.shard_count != self.shard_count or same_slot
                if not overlaps:
                    continue
                if self._alive(connection, holder, now):
                    holders.append(holder)
                else:  # a dead holder's row: taken over
                    connection.execute(t.delete().where(t.c.token == holder.token))
            if not holders:
                connection.execute(
                    sa.insert(t).values(
                        instance_name=self.target,
                        api=self.api,
                        shard_index=self.shard_index,
                        shard_count=self.shard_count,
                        token=self.token,
                        run_id=self.run_id[:255],
                        host=self.host,
                        pid=self.pid,
                        acquired_at=now,
                        heartbeat_at=now,
                    )
                )
                self._held = True
            connection.commit()
        return holders

    def _serialize(self, connection: sa.engine.Connection) -> None:
        """Make this attempt the only one on the target until it commits."""
        import sqlalchemy as sa

        dialect = connection.dialect.name
        if dialect == "postgresql":
            key = _key(self._table_identity, self.api, self.target)
            connection.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))
        elif dialect == "sqlite":
            # The database's write lock from the first statement on (pysqlite would begin a deferred
            # transaction only at the first write, after our read).
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    def _alive(self, connection: sa.engine.Connection, holder: Holder, now: datetime) -> bool:
        import sqlalchemy as sa

        if self.postgres:
            # Its holder's session still has its key. An earlier release keyed by the spelling of
            # ledger_table, not by the table's oid: a holder of that release (running during an upgrade)
            # is found under our spelling of it.
            keys = {self._row_key(holder.token), _key(self.ledger_table, self.api, self.target, holder.token)}
            for key in keys:
                if not connection.execute(sa.select(sa.func.pg_try_advisory_xact_lock(key))).scalar_one():
                    return True
            return False
        # Probed by pid only in our own boot and PID namespace, both known (a row of an earlier release,
        # which wrote the bare host name, and any identity with an unknown part are judged by heartbeat).
        if pids_comparable(self.host, holder.host) and holder.pid != self.pid and _process_gone(holder.pid):
            return False
        return now - holder.heartbeat_at < timedelta(seconds=STALE_SECONDS)

    # --- heartbeat --------------------------------------------------------------------------------

    def _start_heartbeat(self) -> None:
        self._heartbeat = threading.Thread(
            target=self._beat, name=f"imagesearch-import-lock-{self.target}", daemon=True
        )
        self._heartbeat.start()

    def _beat(self) -> None:
        import sqlalchemy as sa

        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                if self._session is not None:
                    self._session.execute(sa.select(1))  # PostgreSQL: the lock lives as long as this
                    self._session.commit()
                with self.engine.begin() as connection:
                    updated = connection.execute(
                        self.table.update()
                        .where(self._mine(), self.table.c.token == self.token)
                        .values(heartbeat_at=datetime.now(UTC))
                    ).rowcount
            except Exception as error:  # a busy database now and then: the next beat tries again
                if self._session is not None and (self._session.closed or self._session.invalidated):
                    # The session went away (the server or the network dropped it; SQLAlchemy then
                    # invalidates the connection): the server has released its advisory lock, so
                    # another run may hold the target already.
                    self.log.error(
                        "Import into %s%s: the database session holding the lock was lost (%s); stopping",
                        self.target,
                        self._shard_text(),
                        error,
                    )
                    self._lost.set()
                    return
                if self._session is not None:
                    with contextlib.suppress(Exception):
                        self._session.rollback()  # a failed transaction would fail every later beat
                self.log.warning("Import lock heartbeat of %s failed (%s); retrying", self.target, error)
                continue
            if updated == 0:
                self.log.error(
                    "Import into %s%s: the lock was taken over by another run (this run's heartbeat was "
                    "late by more than %.0f s); stopping",
                    self.target,
                    self._shard_text(),
                    STALE_SECONDS,
                )
                self._lost.set()
                return

    def _open_session(self) -> sa.engine.Connection:
        """A connection of its own for the advisory lock, unpooled, with :data:`SESSION_TCP_OPTIONS`
        (psycopg drivers) so that a dropped connection is noticed (the URL keeps the connection's other
        settings: the Airflow SQL hooks put them there)."""
        import sqlalchemy as sa

        url = self.engine.url
        driver = self.engine.dialect.driver
        options = session_tcp_options(driver, url.query, libpq_version(driver))
        self._session_engine = sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args=options)
        return self._session_engine.connect()

    def _close_session(self) -> None:
        import sqlalchemy as sa

        session, self._session = self._session, None
        session_engine, self._session_engine = self._session_engine, None
        if session is None:
            if session_engine is not None:
                session_engine.dispose()
            return
        try:
            # Unlocked explicitly, then closed (the session's engine keeps no pool).
            session.execute(sa.select(sa.func.pg_advisory_unlock(self._row_key(self.token))))
            session.commit()
            session.close()
        except Exception:
            with contextlib.suppress(Exception):
                session.invalidate()  # the connection is closed: the server drops its locks
        finally:
            if session_engine is not None:
                session_engine.dispose()
