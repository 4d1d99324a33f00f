"""Child process of the review's killed-prune reproduction: one import with ``prune=True``.

Configured by ``IMPORT_MANIFEST``, ``IMPORT_INSTANCE`` and ``IMPORT_RUN_ID``; the connections come from
``AIRFLOW_CONN_*`` variables. The parent SIGKILLs it once the emulator has deleted one image.
"""

from __future__ import annotations

import os


def main() -> None:
    from airflow_provider_imagesearch.operators.import_images import ImageSearchImportImagesOperator

    op = ImageSearchImportImagesOperator(
        task_id="prune",
        instance_name=os.environ["IMPORT_INSTANCE"],
        manifest=os.environ["IMPORT_MANIFEST"],
        imagesearch_conn_id="imagesearch_default",
        max_concurrency=1,
        prune=True,
    )
    op.execute({"run_id": os.environ["IMPORT_RUN_ID"]})  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
