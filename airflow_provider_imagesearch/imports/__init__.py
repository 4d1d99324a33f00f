"""Bulk import into an ImageSearch v1 instance or v2 (MMS) service: manifest, ledger, engine, API adapters.

Nothing heavy here is imported when a DAG file is parsed: the operators take only the ledger's default
table name (:mod:`.ledger` imports no database library at module level) and import the engine when their
task runs.
"""
