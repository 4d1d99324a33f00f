"""Bulk import into an ImageSearch v1 instance or v2 (MMS) service: manifest, ledger, engine, API adapters.

Nothing here is imported when a DAG file is parsed: the operators import the engine when their task runs.
"""
