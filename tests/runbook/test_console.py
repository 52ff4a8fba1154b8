"""What `runbook run` shows on a terminal and what it leaves in a pipe or a log."""

from __future__ import annotations

import io
import logging

import pytest

from runbook_lib.display.console import CLEAR_LINE, TRANSIENT, messages_on_stdout

log = logging.getLogger("runbook_lib.app.runner")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def steps_logged() -> None:
    log.info("[01_create_backup] running", extra={TRANSIENT: True})
    log.info("[01_create_backup] ok 5.4 s: recovery point arn:aws:ec2:us-east-1::snapshot/snap-1")
    log.info("[02_verify_source_key] running", extra={TRANSIENT: True})


@pytest.mark.parametrize("stream", [io.StringIO(), Terminal()], ids=["pipe", "terminal"])
def test_a_step_in_progress_shows_on_a_terminal_only_and_its_result_replaces_it(stream, monkeypatch):
    monkeypatch.setattr("sys.stdout", stream)
    with messages_on_stdout():
        steps_logged()
    shown = stream.getvalue()
    if isinstance(stream, Terminal):
        assert shown == (
            f"{CLEAR_LINE}[01_create_backup] running{CLEAR_LINE}[01_create_backup] ok 5.4 s: recovery point "
            f"arn:aws:ec2:us-east-1::snapshot/snap-1\n{CLEAR_LINE}[02_verify_source_key] running{CLEAR_LINE}"
        )
    else:
        assert shown == "[01_create_backup] ok 5.4 s: recovery point arn:aws:ec2:us-east-1::snapshot/snap-1\n"
