"""The triggers' preload: the async hook class, and anyio's asyncio backend and TLS streams, which httpcore
would otherwise import on the event loop inside its first request. Loaded once per process, off the loop.

That none of it is imported on the loop is checked in a fresh process, as the triggerer starts
(tests/triggers/test_trigger_loop_imports.py); here, what the preload returns and leaves loaded.
"""

from __future__ import annotations

import sys

from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchAsyncHook
from airflow_provider_imagesearch.triggers.imagesearch import _load_hook_class


def test_the_preload_returns_the_async_hook_and_leaves_anyio_s_backend_loaded() -> None:
    assert _load_hook_class() is ImageSearchAsyncHook
    assert {"anyio._backends._asyncio", "anyio.streams.tls", "anyio.to_thread"} <= set(sys.modules)
