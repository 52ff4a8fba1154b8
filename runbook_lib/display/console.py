"""Where the library's messages go. The library logs (changes planned and made, what force_copy let
through); a notebook shows them in the output of the cell that runs, the command line on stdout."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

LOGGER = "runbook_lib"


class _CurrentStdout(logging.StreamHandler):
    """Writes to sys.stdout as it is when a message comes: the running cell's output in Jupyter."""

    def emit(self, record: logging.LogRecord) -> None:
        self.setStream(sys.stdout)
        super().emit(record)


def show_messages() -> None:
    """Show the runbook's messages as plain lines in the output (once per process, however often called)."""
    logger = logging.getLogger(LOGGER)
    if not any(isinstance(handler, _CurrentStdout) for handler in logger.handlers):
        handler = _CurrentStdout()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)


@contextmanager
def messages_on_stdout() -> Iterator[None]:
    """The runbook's messages on stdout for as long as a command runs."""
    logger = logging.getLogger(LOGGER)
    handler = _CurrentStdout()
    handler.setFormatter(logging.Formatter("%(message)s"))
    before = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(before)
