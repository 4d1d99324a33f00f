"""What an import has to do: the manifest diffed against the ledger, on disk, in bounded memory.

The manifest's checked rows and the ledger's ``(path_key, fingerprint, outcome)`` are streamed into a
temporary SQLite file (a staging area of the worker, whatever database the ledger lives in), and the
diff is a join there: duplicates (the last row of a path wins), new and changed rows, unchanged rows,
paths that left the manifest. Neither side is ever held in memory whole, so diffing a manifest of a
million rows against a full ledger costs a few tens of MB.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from airflow_provider_imagesearch.imports.ledger import SUCCESS_OUTCOMES, Ledger
from airflow_provider_imagesearch.imports.manifest import ManifestRow, check_row, path_key

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
    duplicates: int = 0
    duplicate_examples: list[str] | None = None
    to_send: int = 0
    to_prune: int = 0


class Plan:
    """The staging area of one import run (a temporary SQLite file, removed by :meth:`close`)."""

    def __init__(self) -> None:
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

    def load_manifest(
        self,
        chunks: Iterable[list[dict[str, Any]]],
        *,
        region: str | None,
        check: Callable[..., ManifestRow] = check_row,
    ) -> None:
        """Check and stage the manifest's rows; ``check(raw, number, region=...)`` is the API's row check."""
        number = 0
        for chunk in chunks:
            records = []
            for raw in chunk:
                number += 1
                row = check(raw, number, region=region)
                records.append(
                    (
                        row.row,
                        path_key(row.path) if row.path else None,
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
        self.summary.rows = number
        self.db.execute("CREATE INDEX rows_key ON rows (key, row)")
        # The last row of each path wins.
        self.db.execute(
            "CREATE TABLE winners AS SELECT key, MAX(row) AS row FROM rows WHERE key IS NOT NULL GROUP BY key"
        )
        self.db.execute("CREATE UNIQUE INDEX winners_key ON winners (key)")
        self.summary.paths = self._scalar("SELECT COUNT(*) FROM winners")
        self.summary.duplicates = (
            self._scalar("SELECT COUNT(*) FROM rows WHERE key IS NOT NULL") - self.summary.paths
        )
        self.summary.duplicate_examples = [
            f"{path} (rows {rows})"
            for path, rows in self.db.execute(
                "SELECT MIN(path), GROUP_CONCAT(row) FROM rows WHERE key IS NOT NULL "
                "GROUP BY key HAVING COUNT(*) > 1 ORDER BY MIN(row) LIMIT 10"
            )
        ]

    def load_ledger(self, ledger: Ledger) -> None:
        for chunk in ledger.stream():
            self.db.execute("BEGIN")
            self.db.executemany("INSERT OR REPLACE INTO ledger VALUES (?, ?, ?, ?, ?)", chunk)
            self.db.execute("COMMIT")
        success = ", ".join(f"'{o}'" for o in sorted(SUCCESS_OUTCOMES))
        self.summary.unchanged = self._scalar(
            "SELECT COUNT(*) FROM winners w JOIN rows r ON r.row = w.row JOIN ledger l ON l.key = w.key "
            f"WHERE r.invalid IS NULL AND l.fp = r.fp AND l.outcome IN ({success})"
        )
        self.summary.known_invalid = self._scalar(
            "SELECT COUNT(*) FROM winners w JOIN rows r ON r.row = w.row JOIN ledger l ON l.key = w.key "
            "WHERE l.fp = r.fp AND l.outcome = 'invalid'"
        )

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
        if not prune:
            return
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
