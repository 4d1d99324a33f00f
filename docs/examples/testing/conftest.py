from __future__ import annotations

pytest_plugins = ["airflow_provider_imagesearch.testing"]
