"""Reading many instances at once in a worker: one hook (one session, one token), a bounded thread pool.

Used by :class:`~airflow_provider_imagesearch.operators.imagesearch.InstanceDetailOperator` with
``instance_names`` and by the status sensor's fleet mode (poke and reschedule). Why threads over the sync
hook rather than asyncio over the async hook: a task runs in the Task SDK's synchronous world (the
connection is read through the supervisor synchronously, secrets are masked there), and the sync hook
already has the session, the retries and the token renewal every single read uses; a thread pool reuses
all of it unchanged, and needs no event loop inside a task (which fails where one is already running).
The waits are network waits: the GIL is released while a thread waits for its answer.

Kept free of the hook and HTTP clients at import time (operators and sensors import it).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any

from airflow_provider_imagesearch.errors import ImageSearchNotFoundError, ImageSearchValidationError

if TYPE_CHECKING:
    from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchHook
    from airflow_provider_imagesearch.models import InstanceDetail

#: Reads in flight at once, by default.
DEFAULT_MAX_CONCURRENCY = 16
MISSING_CHOICES = ("fail", "skip")


def one_of_names(owner: str, instance_name: Any, instance_names: Any) -> None:
    """Refuse a task given both or neither of ``instance_name`` and ``instance_names`` (at DAG parse)."""
    if (instance_name is None) == (instance_names is None):
        raise ValueError(
            f"{owner}: give exactly one of instance_name (one instance) or instance_names (a list of "
            f"instances), got {'both' if instance_name is not None else 'neither'}"
        )


def checked_names(value: Any, field: str = "instance_names") -> list[str]:
    """The rendered ``instance_names``: a non-empty list of strings, as given (a repeat is kept: results are
    one per position, each name read once)."""
    if isinstance(value, str) or not isinstance(value, Sequence) or not value:
        raise ImageSearchValidationError(
            field,
            "a non-empty list of instance names (a templated string renders as text: use an XComArg, a "
            "list, or render_template_as_native_obj=True)",
            value,
        )
    bad = [name for name in value if not isinstance(name, str) or not name]
    if bad:
        raise ImageSearchValidationError(field, "instance names as non-empty strings", bad[:5])
    return list(value)


def checked_concurrency(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ImageSearchValidationError("max_concurrency", "an integer >= 1", value)
    return value


def read_instances(
    hook: ImageSearchHook, names: Sequence[str], *, max_concurrency: int = DEFAULT_MAX_CONCURRENCY
) -> dict[str, InstanceDetail | None]:
    """Read ``names`` (each once) with at most ``max_concurrency`` requests in flight; a missing instance
    maps to None.

    Any other error (after the hook's own retries) stops the reads not started yet and is raised: a
    permanent one fails the task, a transient one fails the try (Airflow retries it). So does an
    interruption of the task (its ``execution_timeout``, SIGTERM): no read starts after it.
    """
    names = list(dict.fromkeys(names))
    # Everything lazily built is built once, here, before the threads share it.
    hook.reserve_connections(max_concurrency)
    results: dict[str, InstanceDetail | None] = {}
    stop = threading.Event()

    def read(name: str) -> None:
        if stop.is_set():
            return
        try:
            results[name] = hook.get_instance(name)
        except ImageSearchNotFoundError:
            results[name] = None
        except BaseException:
            stop.set()  # the other threads start no new read
            raise

    workers = min(max_concurrency, len(names)) or 1
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="imagesearch-read")
    try:
        futures = [pool.submit(read, name) for name in names]
        wait(futures, return_when=FIRST_EXCEPTION)
        failed = next((f for f in futures if f.done() and f.exception() is not None), None)
        if failed is not None:
            error = failed.exception()
            assert error is not None
            raise error
    finally:
        # Also on an interruption raised in this thread (execution_timeout, SIGTERM): the queued reads
        # are dropped and the ones in flight end with their request.
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
    return {name: results[name] for name in names}
