"""The lines a module logs, read from its logger directly: Airflow's logging set-up may install handlers
or stop propagation so that ``caplog`` does not see them."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator


class LogLines(logging.Handler):
    """Keeps each record's message (``getMessage()``: arguments filled in) in ``lines``."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextlib.contextmanager
def log_lines(logger_name: str, level: int | None = None) -> Iterator[list[str]]:
    """The messages logger ``logger_name`` emits while the block runs, in order.

    ``level``: the logger's level meanwhile (restored after); ``None`` leaves it as configured.
    """
    logger = logging.getLogger(logger_name)
    handler = LogLines()
    logger.addHandler(handler)
    previous = logger.level
    if level is not None:
        logger.setLevel(level)
    try:
        yield handler.lines
    finally:
        logger.removeHandler(handler)
        if level is not None:
            logger.setLevel(previous)
