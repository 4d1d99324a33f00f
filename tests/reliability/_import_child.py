"""Child process of the killed-import test: imports a manifest, printing each ledger flush.

Configured by environment variables: ``IMPORT_MANIFEST`` (a CSV path), ``IMPORT_INSTANCE``,
``IMPORT_RUN_ID``, optionally ``IMPORT_CONCURRENCY`` (default 4), ``IMPORT_LOCK_TIMEOUT`` and
``IMPORT_MAX_FAILED`` (the operator's ``max_failed``, default 0); the
connections come from ``AIRFLOW_CONN_*`` variables. Prints ``FLUSHED <rows>``
after each ledger batch of outcomes (the parent kills it about half-way) and ``DONE <json>``. With
``IMPORT_KILL_BEFORE_OUTCOME=1`` it SIGKILLs itself as it is about to record its first outcomes (the
requests of that batch have been answered: a worker killed between the service and the ledger).
"""

from __future__ import annotations

import json
import os
import signal
import sys


def main() -> None:
    from airflow_provider_imagesearch.imports import engine
    from airflow_provider_imagesearch.imports.ledger import Ledger
    from airflow_provider_imagesearch.operators.import_images import ImageSearchImportImagesOperator

    written = {"rows": 0}
    original = Ledger.record

    def record(self: Ledger, entries: list[engine.LedgerEntry]) -> None:
        if os.environ.get("IMPORT_KILL_BEFORE_OUTCOME") == "1":
            os.kill(os.getpid(), signal.SIGKILL)
        original(self, entries)
        written["rows"] += len(entries)
        sys.stdout.write(f"FLUSHED {written['rows']}\n")
        sys.stdout.flush()

    Ledger.record = record  # type: ignore[method-assign]
    engine.FLUSH_ROWS = 20
    op = ImageSearchImportImagesOperator(
        task_id="import",
        instance_name=os.environ["IMPORT_INSTANCE"],
        manifest=os.environ["IMPORT_MANIFEST"],
        imagesearch_conn_id="imagesearch_default",
        max_concurrency=int(os.environ.get("IMPORT_CONCURRENCY", "4")),
        max_failed=int(os.environ.get("IMPORT_MAX_FAILED", "0")),
        **(
            {"lock_timeout": float(os.environ["IMPORT_LOCK_TIMEOUT"])}
            if "IMPORT_LOCK_TIMEOUT" in os.environ
            else {}
        ),
    )
    result = op.execute({"run_id": os.environ["IMPORT_RUN_ID"]})  # type: ignore[arg-type]
    sys.stdout.write(f"DONE {json.dumps(result)}\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
