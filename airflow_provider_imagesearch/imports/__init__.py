"""Bulk import of images into an ImageSearch instance: manifest, ledger, engine.

Nothing here is imported when a DAG file is parsed: the operator imports the engine when its task runs.
"""
