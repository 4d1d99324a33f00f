"""Child process of the review's throttling reproduction: one import of ``IMPORT_ROWS`` path-only rows.

Configured by ``IMPORT_INSTANCE``, ``IMPORT_ROWS`` and ``IMPORT_CONCURRENCY``; the connections come from
``AIRFLOW_CONN_*`` variables. Prints ``DONE <json>`` when the import returns.
"""

from __future__ import annotations

import json
import os
import sys

BUCKET = "https://shop.obs.cn-north-4.myhuaweicloud.com"


def main() -> None:
    from airflow_provider_imagesearch.operators.import_images import ImageSearchImportImagesOperator

    rows = int(os.environ["IMPORT_ROWS"])
    op = ImageSearchImportImagesOperator(
        task_id="throttled",
        instance_name=os.environ["IMPORT_INSTANCE"],
        manifest=[{"path": f"{BUCKET}/t/{i}.jpg"} for i in range(rows)],
        imagesearch_conn_id="imagesearch_default",
        max_concurrency=int(os.environ["IMPORT_CONCURRENCY"]),
    )
    result = op.execute({"run_id": "throttled"})  # type: ignore[arg-type]
    sys.stdout.write(f"DONE {json.dumps(result)}\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
