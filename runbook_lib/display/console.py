"""Where the library's messages go. The library logs (changes planned and made, what force_copy let
through); a notebook shows them in the output of the cell that runs, the command line on stdout.

A record logged with `extra={TRANSIENT: True}` says what is going on now ("[04_copy_to_target]
running"): a terminal shows it until the next line replaces it, and a log file or pipe never gets it,
so that the record of a run is one line per step.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

LOGGER = "runbook_lib"
TRANSIENT = "transient"
CLEAR_LINE = "\r\033[K"


class _CurrentStdout(logging.StreamHandler):
    """Writes to sys.stdout as it is when a message comes: the running cell's output in Jupyter."""

    def __init__(self) -> None:
        super().__init__()
        self.showing_transient = False

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout  # not setStream: it flushes the stream before, which may be closed by now
        terminal = self.stream.isatty()
        if getattr(record, TRANSIENT, False):
            if terminal:
                self.stream.write(CLEAR_LINE + self.format(record))
                self.stream.flush()
                self.showing_transient = True
            return
        if self.showing_transient:
            self.stream.write(CLEAR_LINE)
            self.showing_transient = False
        super().emit(record)


def _handler() -> _CurrentStdout:
    handler = _CurrentStdout()
    handler.setFormatter(logging.Formatter("%(message)s"))
    return handler


def show_messages() -> None:
    """Show the runbook's messages as plain lines in the output (once per process, however often called)."""
    logger = logging.getLogger(LOGGER)
    if not any(isinstance(handler, _CurrentStdout) for handler in logger.handlers):
        logger.addHandler(_handler())
    logger.setLevel(logging.INFO)


@contextmanager
def messages_on_stdout() -> Iterator[None]:
    """The runbook's messages on stdout for as long as a command runs."""
    logger = logging.getLogger(LOGGER)
    handler = _handler()
    before = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        if handler.showing_transient:
            handler.stream.write(CLEAR_LINE)
        logger.removeHandler(handler)
        logger.setLevel(before)
