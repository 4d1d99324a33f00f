"""Wait for a condition with a deadline, instead of sleeping a fixed time and hoping.

CI machines stall for fractions of a second; a fixed ``sleep`` then an assertion flakes, a poll with a
generous deadline does not (and returns as soon as the condition holds, so it costs no time).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from airflow_provider_imagesearch.emulator import Emulator

T = TypeVar("T")


def wait_until(
    read: Callable[[], T], done: Callable[[T], bool], timeout: float = 10.0, every: float = 0.05
) -> T:
    """Call ``read`` until ``done(value)`` holds or ``timeout`` passes; return the last value read.

    The caller asserts on the returned value, so a timeout fails with the caller's own message.
    """
    deadline = time.monotonic() + timeout
    value = read()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(every)
        value = read()
    return value


@contextlib.contextmanager
def after_first_poll(
    emulator: Emulator, name: str, action: Callable[[], None], timeout: float = 120.0
) -> Iterator[threading.Event]:
    """Run ``action`` in a thread as soon as the emulator has answered a GET of instance ``name``.

    Tests that need "the instance changes *during* the wait" tie the change to the waiter's first poll
    instead of to a wall-clock delay, which a slow DAG start on a stalled machine could overrun. The
    yielded event is set once ``action`` ran; an exception from ``action`` is raised on exit.
    """
    stop = threading.Event()
    done = threading.Event()
    errors: list[BaseException] = []

    def watch() -> None:
        deadline = time.monotonic() + timeout
        while not stop.is_set() and time.monotonic() < deadline:
            if any(
                r.get("instance") == name and r["method"] == "GET" and r["status"] == 200
                for r in emulator.requests_log()
            ):
                try:
                    action()
                except BaseException as error:  # reported on exit, in the test's thread
                    errors.append(error)
                done.set()
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, name=f"after-first-poll-{name}", daemon=True)
    watcher.start()
    try:
        yield done
    finally:
        stop.set()
        watcher.join(timeout=30)
    if errors:
        raise errors[0]


def transition_at(emulator: Emulator, name: str) -> float:
    """When (epoch seconds) the emulator will move instance ``name`` to its next status."""
    instance = next(i for i in emulator.control.state()["instances"] if i["name"] == name)
    return float(instance["transition_at_ms"]) / 1000.0
