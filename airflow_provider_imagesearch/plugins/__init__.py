"""Airflow plugins shipped with the provider: the ImageSearch page of the Airflow UI (``plugin.py``)."""
