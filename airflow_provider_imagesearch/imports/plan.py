"""What an import has to do: the manifest diffed against the ledger, on disk, in bounded memory.

The manifest's checked rows and the ledger's ``(path_key, fingerprint, outcome)`` are streamed into a
temporary SQLite file (a staging area of the worker, whatever database the ledger lives in), and the
diff is a join there: duplicates (the last row of a path wins), new and changed rows, unchanged rows,
paths that left the manifest. Neither side is ever held in memory whole, so diffing a manifest of a
million rows against a full ledger costs a few tens of MB.

A sharded import (``shard=(index, count)``) stages only its slice: the rows and ledger rows whose key
hashes to ``index`` (:func:`shard_of`, a stable hash of the key, the same in every process). Rows
without a usable key are reported by shard 0 only, so the shards' counts add up to the manifest's.
Every shard still reads and checks the whole manifest, and counts the other slices' invalid rows
(:attr:`PlanSummary.other_shards_invalid`): ``max_failed`` applies to the import, not to each slice.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_imagesearch.imports.ledger import SUCCESS_OUTCOMES, Ledger
from airflow_provider_imagesearch.imports.manifest import ManifestRow, check_row, path_key
from airflow_provider_imagesearch.progress import ProgressPacer

log = logging.getLogger(__name__)
#: Row numbers shown per repeated path, and repeated paths shown, in the duplicates warning.
EXAMPLE_ROWS = 10


def shard_of(key: str, count: int) -> int:
    """The shard of a ledger key (32 hex digits of a SHA-256): stable across processes and runs."""
    return int(key[:8], 16) % count


def row_list(rows: list[int], total: int) -> str:
    """``1, 3, 5`` or ``1, 3, ... 10 (and 49,990 more)``: at most :data:`EXAMPLE_ROWS` row numbers."""
    shown = ", ".join(str(row) for row in rows[:EXAMPLE_ROWS])
    more = total - min(len(rows), EXAMPLE_ROWS)
    return f"{shown} and {more:,} more" if more > 0 else shown


#: Work kinds: send (add), record an invalid row, prune (delete from the library), forget (ledger only).
ADD, UPDATE, INVALID, PRUNE, FORGET = "add", "update", "invalid", "prune", "forget"


@dataclass(frozen=True)
class Work:
    kind: str
    row: ManifestRow
    key: str
    #: The ledger's outcome for this path before this run (None: unknown path).
    previous: str | None = None
    #: The ledger's fingerprint for this path before this run (what was last sent, not necessarily held).
    previous_fingerprint: str | None = None
    #: What the library may hold for this path before this run (the ledger's ``held_fingerprint``: a
    #: fingerprint, ``?`` for unknown content, None for nothing); an update depends on it.
    held: str | None = None


@dataclass
class PlanSummary:
    rows: int = 0
    paths: int = 0
    unchanged: int = 0
    known_invalid: int = 0
    #: Rows of this run's slice that failed the row checks (with or without a key).
    invalid: int = 0
    duplicates: int = 0
    duplicate_examples: list[str] | None = None
    to_send: int = 0
    to_prune: int = 0
    #: Usable keys in the whole manifest (every shard's), for the empty-manifest prune refusal.
    manifest_paths: int = 0
    #: Rows of the other shards' slices that failed the row checks (every shard reads and checks the
    #: whole manifest): ``max_failed`` and the prune refusal count them, so they apply to the import.
    other_shards_invalid: int = 0
    #: Rows of the whole manifest (every shard's) whose key could not be read: a line that does not
    #: parse, a row without a usable path / item_id. A path such a row names may be in the library, so
    #: ``prune`` is refused whenever there is one. Their count, and the first :data:`EXAMPLE_ROWS` numbers.
    keyless: int = 0
    keyless_rows: list[int] = field(default_factory=list)
    #: Seconds spent: reading and checking the manifest, loading the ledger, diffing.
    phases: dict[str, float] = field(default_factory=dict)


class Plan:
    """The staging area of one import run (a temporary SQLite file, removed by :meth:`close`)."""

    def __init__(self, *, shard: tuple[int, int] = (0, 1), logger: logging.Logger | Any = log) -> None:
        self.shard_index, self.shard_count = shard
        self.log = logger
        self._dir = tempfile.TemporaryDirectory(prefix="imagesearch-import-")
        self.db = sqlite3.connect(os.path.join(self._dir.name, "plan.db"), isolation_level=None)
        self.db.executescript(
            """
            PRAGMA journal_mode = OFF;
            PRAGMA synchronous = OFF;
            PRAGMA temp_store = FILE;
            PRAGMA cache_size = -16000;
            CREATE TABLE rows (row INTEGER PRIMARY KEY, key TEXT, path TEXT, tags TEXT, file TEXT,
                               fp TEXT NOT NULL, invalid TEXT);
            CREATE TABLE ledger (key TEXT PRIMARY KEY, fp TEXT NOT NULL, outcome TEXT NOT NULL, path TEXT,
                                 held TEXT) WITHOUT ROWID;
            """
        )
        self.summary = PlanSummary()

    def close(self) -> None:
        self.db.close()
        self._dir.cleanup()

    def __enter__(self) -> Plan:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- loading --------------------------------------------------------------------------------

    def _mine(self, key: str | None) -> bool:
        if self.shard_count == 1:
            return True
        if key is None:
            return self.shard_index == 0
        return shard_of(key, self.shard_count) == self.shard_index

    def load_manifest(
        self,
        chunks: Iterable[list[dict[str, Any]]],
        *,
        region: str | None,
        check: Callable[..., ManifestRow] = check_row,
        position: Callable[[], tuple[int, int] | None] | None = None,
    ) -> None:
        """Check and stage the manifest's rows; ``check(raw, number, region=...)`` is the API's row check.

        ``position()``, asked after each chunk, gives ``(units read, units in all)`` (rows or bytes) when
        the source knows its size: a progress line every 5% of it, else every 30 s.
        """
        started = time.monotonic()
        pacer: ProgressPacer | None = None
        number = 0
        keys = 0
        elsewhere = 0
        for chunk in chunks:
            records = []
            for raw in chunk:
                number += 1
                row = check(raw, number, region=region)
                key = path_key(row.path) if row.path else None
                keys += key is not None
                if key is None:
                    self.summary.keyless += 1
                    if len(self.summary.keyless_rows) < EXAMPLE_ROWS:
                        self.summary.keyless_rows.append(row.row)
                if not self._mine(key):
                    elsewhere += row.invalid is not None
                    continue
                records.append(
                    (
                        row.row,
                        key,
                        row.path,
                        json.dumps(row.tags, ensure_ascii=False) if row.tags else None,
                        row.file,
                        row.fingerprint,
                        row.invalid,
                    )
                )
            self.db.execute("BEGIN")
            self.db.executemany("INSERT INTO rows VALUES (?, ?, ?, ?, ?, ?, ?)", records)
            self.db.execute("COMMIT")
            size = position() if position is not None else None
            if pacer is None:
                pacer = ProgressPacer(size[1] if size else None)
            line = pacer.due(size[0] if size else number)
            if line is not None:
                self.log.info(
                    "Reading manifest: %s rows read and checked%s, %.0f rows/s",
                    f"{number:,}",
                    f" ({line.percent}%, ETA {line.eta})" if size else "",
                    number / max(time.monotonic() - started, 1e-9),
                )
        self.summary.rows = self._scalar("SELECT COUNT(*) FROM rows")
        self.summary.manifest_paths = keys
        self.summary.other_shards_invalid = elsewhere
        self.summary.invalid = self._scalar("SELECT COUNT(*) FROM rows WHERE invalid IS NOT NULL")
        self.summary.phases["read"] = time.monotonic() - started
        self.log.info(
            "Read the manifest: %s rows%s in %.1f s",
            f"{number:,}",
            f" ({self.summary.rows:,} in shard {self.shard_index}/{self.shard_count})"
            if self.shard_count > 1
            else "",
            self.summary.phases["read"],
        )

    def load_ledger(self, ledger: Ledger) -> None:
        """Stage the ledger's rows (this shard's), then diff; progress every 5% of the rows or 30 s."""
        started = time.monotonic()
        total = ledger.count()
        pacer = ProgressPacer(total)
        done = 0
        for chunk in ledger.stream():
            done += len(chunk)
            if self.shard_count > 1:
                chunk = [row for row in chunk if self._mine(row[0])]
            self.db.execute("BEGIN")
            self.db.executemany("INSERT OR REPLACE INTO ledger VALUES (?, ?, ?, ?, ?)", chunk)
            self.db.execute("COMMIT")
            line = pacer.due(done)
            if line is not None and total:
                self.log.info(
                    "Loading the ledger: %s/%s rows (%d%%), ETA %s",
                    f"{done:,}",
                    f"{total:,}",
                    line.percent,
                    line.eta,
                )
        self.summary.phases["ledger"] = time.monotonic() - started
        self._diff()

    def _diff(self) -> None:
        started = time.monotonic()
        last = [started]

        def still_diffing() -> int:
            now = time.monotonic()
            if now - last[0] >= 30.0:
                self.log.info("Diffing the manifest against the ledger: %.0f s so far", now - started)
                last[0] = now
            return 0  # go on

        self.db.set_progress_handler(still_diffing, 1_000_000)
        try:
            self.db.execute("CREATE INDEX rows_key ON rows (key, row)")
            # The last row of each path wins.
            self.db.execute(
                "CREATE TABLE winners AS SELECT key, MAX(row) AS row FROM rows WHERE key IS NOT NULL "
                "GROUP BY key"
            )
            self.db.execute("CREATE UNIQUE INDEX winners_key ON winners (key)")
            self.summary.paths = self._scalar("SELECT COUNT(*) FROM winners")
            self.summary.duplicates = (
                self._scalar("SELECT COUNT(*) FROM rows WHERE key IS NOT NULL") - self.summary.paths
            )
            self.summary.duplicate_examples = self._duplicate_examples()
            success = ", ".join(f"'{o}'" for o in sorted(SUCCESS_OUTCOMES))
            self.summary.unchanged = self._scalar(
                "SELECT COUNT(*) FROM winners w JOIN rows r ON r.row = w.row JOIN ledger l ON l.key = w.key "
                f"WHERE r.invalid IS NULL AND l.fp = r.fp AND l.outcome IN ({success})"
            )
            self.summary.known_invalid = self._scalar(
                "SELECT COUNT(*) FROM winners w JOIN rows r ON r.row = w.row JOIN ledger l ON l.key = w.key "
                "WHERE l.fp = r.fp AND l.outcome = 'invalid'"
            )
        finally:
            self.db.set_progress_handler(None, 0)
        self.summary.phases["diff"] = time.monotonic() - started

    def _duplicate_examples(self) -> list[str]:
        """The first :data:`EXAMPLE_ROWS` repeated paths, each with at most that many row numbers."""
        examples = []
        for key, path, count in self.db.execute(
            "SELECT key, MIN(path), COUNT(*) FROM rows WHERE key IS NOT NULL GROUP BY key HAVING COUNT(*) > 1 "
            "ORDER BY MIN(row) LIMIT ?",
            (EXAMPLE_ROWS,),
        ).fetchall():
            rows = [
                int(r)
                for (r,) in self.db.execute(
                    "SELECT row FROM rows WHERE key = ? ORDER BY row LIMIT ?", (key, EXAMPLE_ROWS)
                )
            ]
            examples.append(f"{path} (rows {row_list(rows, int(count))})")
        return examples

    def known_invalid_examples(self, limit: int) -> list[tuple[int, str, str]]:
        """``(row, path, key)`` of the first ``limit`` rows refused before and unchanged since."""
        return [
            (int(row), str(path), str(key))
            for row, path, key in self.db.execute(
                "SELECT r.row, r.path, w.key FROM winners w JOIN rows r ON r.row = w.row "
                "JOIN ledger l ON l.key = w.key WHERE l.fp = r.fp AND l.outcome = 'invalid' "
                "ORDER BY r.row LIMIT ?",
                (limit,),
            )
        ]

    def _scalar(self, sql: str) -> int:
        return int(self.db.execute(sql).fetchone()[0])

    # --- the work -------------------------------------------------------------------------------

    def pathless_invalid(self) -> Iterator[ManifestRow]:
        """Rows without a usable path: invalid, reported, but with no ledger row to key them."""
        for row, fp, invalid in self.db.execute(
            "SELECT row, fp, invalid FROM rows WHERE key IS NULL ORDER BY row"
        ):
            yield ManifestRow(row, None, {}, None, fp, invalid)

    def work(self, *, prune: bool) -> Iterator[Work]:
        """Rows to send or record, in manifest order, then the paths to prune."""
        yield from self.sends()
        if prune:
            yield from self.prunes()

    def sends(self) -> Iterator[Work]:
        """Rows to send (add, update) or record (invalid), in manifest order."""
        success = ", ".join(f"'{o}'" for o in sorted(SUCCESS_OUTCOMES))
        query = (
            "SELECT w.key, r.row, r.path, r.tags, r.file, r.fp, r.invalid, l.outcome, l.fp, "
            "CASE l.held WHEN '=' THEN l.fp ELSE l.held END "
            "FROM winners w JOIN rows r ON r.row = w.row LEFT JOIN ledger l ON l.key = w.key "
            "WHERE l.key IS NULL OR l.fp <> r.fp "
            f"OR (l.outcome NOT IN ({success}) AND l.outcome <> 'invalid') "
            "ORDER BY r.row"
        )
        cursor = self.db.cursor()
        cursor.execute(query)
        while batch := cursor.fetchmany(1000):
            for key, row, path, tags, file, fp, invalid, previous, previous_fp, held in batch:
                item = ManifestRow(row, path, json.loads(tags) if tags else {}, file, fp, invalid)
                if invalid is not None:
                    kind = INVALID
                elif held is not None and held != fp:
                    # The library may hold the path with other content (an earlier success, whatever
                    # the latest outcome): an overwrite, never an add an old version could "reconcile".
                    kind = UPDATE
                else:
                    kind = ADD
                yield Work(kind, item, key, previous, previous_fp, held)

    def prunes(self) -> Iterator[Work]:
        """Ledger paths the manifest no longer has: to delete from the library (prune) or forget."""
        cursor = self.db.cursor()
        cursor.execute(
            "SELECT l.key, l.outcome, l.path, l.held FROM ledger l LEFT JOIN winners w ON w.key = l.key "
            "WHERE w.key IS NULL"
        )
        while batch := cursor.fetchmany(1000):
            for key, outcome, path, held in batch:
                # Whatever the library may hold, not only a success: an image added by an earlier run
                # whose row later turned invalid or failed, a ``pruning`` row whose delete a kill cut
                # short, a failed add that may have taken effect (deleting an absent path costs a check).
                kind = PRUNE if held is not None else FORGET
                yield Work(kind, ManifestRow(0, path, {}, None, ""), key, outcome, held=held)

    def count_work(self, *, prune: bool) -> tuple[int, int]:
        """(rows to send or record, ledger paths to prune or forget)."""
        send = self.summary.paths - self.summary.unchanged - self.summary.known_invalid
        gone = 0
        if prune:
            gone = self._scalar(
                "SELECT COUNT(*) FROM ledger l LEFT JOIN winners w ON w.key = l.key WHERE w.key IS NULL"
            )
        return send, gone
