"""Child process of the killed-write test: archive a large batch, pausing inside the INSERT on request.

Run as ``python _archive_child.py``; configured by environment variables:

* ``ARCHIVE_ROWS``: rows to write; ``ARCHIVE_RUN_ID``; ``ARCHIVE_TABLE``; ``ARCHIVE_DB_CONN_ID`` (the
  connection itself comes from an ``AIRFLOW_CONN_*`` variable).
* ``PAUSE_IN_INSERT=1``: once the INSERT has been under way for a while, print ``PAUSED ...`` and sleep
  (the parent SIGKILLs the process then). SQLite: a progress handler fires while ``executemany`` steps
  through the rows; other databases: the driver's ``executemany`` is handed the first 10,000 rows, then
  the process stalls before sending the rest (a client dying half-way through a bulk insert).

Prints ``STARTED``, ``INSERT_BEGIN`` and ``DONE <rows_written>`` on stdout, one line each, flushed.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

PAUSE_SECONDS = 60.0
#: SQLite progress-handler calls (every 1,000 VM instructions) before pausing: well into the rows.
SQLITE_PAUSE_AFTER_CALLS = 400
#: Rows sent to the server (inside the open transaction) before pausing, for client/server databases.
PAUSE_AFTER_ROWS = 10_000


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def make_details(rows: int) -> list[dict[str, Any]]:
    """The batch: ``InstanceDetail.to_dict()``-shaped rows named ``inst-000000`` ..."""
    return [
        {
            "instance_name": f"inst-{i:06d}",
            "project_id": "0b5e4c3a2f1d4e6a8c7b9d0e1f2a3b4c",
            "status": "NORMAL",
            "domain": "General image search",
            "description": f"row {i}",
            "level": 30000000,
            "tags": ["color", "size"],
            "registered_at": "2026-01-01T00:00:00Z",
            "expires_at": None,
            "never_expires": True,
        }
        for i in range(rows)
    ]


def main() -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from airflow_provider_imagesearch.archive import archive_details

    pause = os.environ.get("PAUSE_IN_INSERT") == "1"
    state = {"inserts": 0, "progress": 0, "in_insert": False}

    def progress() -> int:
        if state["in_insert"]:
            state["progress"] += 1
            if pause and state["progress"] == SQLITE_PAUSE_AFTER_CALLS:
                say(f"PAUSED sqlite progress_calls={state['progress']}")
                time.sleep(PAUSE_SECONDS)
        return 0

    @event.listens_for(Engine, "connect")
    def on_connect(dbapi_connection: object, record: object) -> None:
        setter = getattr(dbapi_connection, "set_progress_handler", None)
        if setter is not None:
            setter(progress, 1000)

    @event.listens_for(Engine, "before_cursor_execute")
    def before(
        conn: Any, cursor: object, statement: str, params: object, context: object, many: bool
    ) -> None:
        if not statement.lstrip().upper().startswith("INSERT"):
            return
        state["inserts"] += 1
        state["in_insert"] = True
        if state["inserts"] == 1:
            say(f"INSERT_BEGIN dialect={conn.dialect.name}")

    @event.listens_for(Engine, "do_executemany")
    def executemany(cursor: Any, statement: str, params: Any, context: Any) -> bool | None:
        if (
            not pause
            or context.dialect.name == "sqlite"
            or not statement.lstrip().upper().startswith("INSERT")
        ):
            return None  # the driver's own executemany
        cursor.executemany(statement, params[:PAUSE_AFTER_ROWS])
        say(f"PAUSED {context.dialect.name} rows_sent={PAUSE_AFTER_ROWS} of {len(params)}")
        time.sleep(PAUSE_SECONDS)
        cursor.executemany(statement, params[PAUSE_AFTER_ROWS:])
        return True

    details = make_details(int(os.environ["ARCHIVE_ROWS"]))
    say("STARTED")
    result = archive_details(
        details,
        db_conn_id=os.environ["ARCHIVE_DB_CONN_ID"],
        table=os.environ["ARCHIVE_TABLE"],
        run_id=os.environ["ARCHIVE_RUN_ID"],
    )
    say(f"DONE {result.rows_written} inserts={state['inserts']}")


if __name__ == "__main__":
    main()
