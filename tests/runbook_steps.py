"""The runbook's steps as library calls, shared by the tests that need a run part-way done."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import psutil
import yaml

from runbook_lib.app import cli, kernel_forks
from runbook_lib.core import params
from runbook_lib.steps.walkthrough import (
    Run,
    prerequisites,
    share_source_key,
    start_backup,
    start_copy,
    verify_source_key,
    wait_for_backup,
    wait_for_copy,
)

ROOT = Path(__file__).resolve().parents[1]
RUNBOOK = Path(sys.executable).parent / "runbook"
SANDBOX_PARAMETERS = ROOT / "parameters" / "sandbox.yaml"


def values(run_dir: Path, **overrides: Any) -> dict[str, Any]:
    """Validated parameters for a run in run_dir: apply true, jobs followed every second."""
    return params.validate({"run_dir": str(run_dir), "apply": True, "poll_seconds": 1, **overrides}).as_dict()


def prepare(run_values: dict[str, Any], share: bool = True) -> None:
    """Steps 00 to 03 as a run with these values does them."""
    run = Run("00_prerequisites", run_values)
    run.carry_out(prerequisites(run))
    run = Run("01_create_backup", run_values)
    run.carry_out([start_backup(run)])
    wait_for_backup(run, delay=1)
    verify_source_key(Run("02_verify_source_key", run_values))
    if share:
        run = Run("03_share_source_key", run_values)
        run.carry_out([share_source_key(run)])


def copy(run_values: dict[str, Any]) -> dict[str, Any]:
    """Step 04: start the copy (once per run) and follow it; the job as AWS last described it."""
    run = Run("04_copy_to_target", run_values)
    run.carry_out([start_copy(run)])
    return wait_for_copy(run, delay=1).job  # type: ignore[return-value]


def is_kernel(process: psutil.Process) -> bool:
    """A Jupyter kernel process: started by ipykernel's launcher, or forked by a run's fork server, whose
    command line it keeps; a forked kernel leads a session of its own, the fork server does not."""
    try:
        command = process.cmdline()
        if "ipykernel_launcher" in command:
            return True
        return kernel_forks.__name__ in command and os.getsid(process.pid) == process.pid
    except (psutil.Error, ProcessLookupError):
        return False


def fork_servers(run: psutil.Process) -> list[psutil.Process]:
    """The fork server a `runbook run` process started (a list: none, or one)."""
    return [
        child
        for child in run.children()
        if kernel_forks.__name__ in child.cmdline() and os.getsid(child.pid) != child.pid
    ]


def kernels_left(folder: Path) -> list[int]:
    """Kernel processes still working in this run folder, wherever they hang now (orphans are reparented)."""
    left = []
    for process in psutil.process_iter():
        try:
            if is_kernel(process) and process.cwd() == str(folder) and process.status() != psutil.STATUS_ZOMBIE:
                left.append(process.pid)
        except psutil.Error:
            continue
    return left


def parameter_file(folder: Path, **overrides: Any) -> Path:
    """parameters/sandbox.yaml with overrides, written into folder."""
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump({**yaml.safe_load(SANDBOX_PARAMETERS.read_text()), **overrides}))
    return path


def runbook(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(RUNBOOK), *args], capture_output=True, text=True, timeout=900, env=env, cwd=cwd)


def command(capsys: Any, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`runbook ARGS` run in this process (as cli.main), with what it printed; for the commands whose
    point is not the process itself (start-up, signals, tracebacks), which real processes test."""
    before = os.getcwd()
    capsys.readouterr()
    try:
        if cwd is not None:
            os.chdir(cwd)
        code = cli.main(list(args))
    finally:
        os.chdir(before)
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(["runbook", *args], code, out, err)


def notebook_outputs(notebook: Path) -> tuple[str, list[str]]:
    """All text a notebook shows (streams and plain-text results), and the names of its errors."""
    text, errors = [], []
    for cell in json.loads(notebook.read_text())["cells"]:
        for output in cell.get("outputs", []):
            if output["output_type"] == "error":
                errors.append(f"{output['ename']}: {output['evalue']}")
            text.append("".join(output.get("text", "")))
            text.append("".join(output.get("data", {}).get("text/plain", "")))
    return "\n".join(text), errors


class _SectionRows(HTMLParser):
    """The table rows (cell texts) of one section of report.html: from its <h2 id=...> to the next <h2>."""

    def __init__(self, anchor: str):
        super().__init__()
        self.anchor, self.inside, self.rows = anchor, False, []  # type: ignore[var-annotated]
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "h2":
            self.inside = dict(attrs).get("id") == self.anchor
        elif self.inside and tag == "tr":
            self.rows.append([])
        elif self.inside and tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if self.inside and tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append("".join(self.cell).strip())
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def report_rows(report: Path, anchor: str) -> list[list[str]]:
    """The rows of a table in report.html's section `anchor` (the heading row first)."""
    parser = _SectionRows(anchor)
    parser.feed(report.read_text())
    return parser.rows


def at_a_terminal(
    args: list[str], answer: bytes, timeout: float = 300, env: dict[str, str] | None = None
) -> tuple[int, str]:
    """`runbook ARGS` on a pseudo-terminal, as a person runs it: its exit code and all it wrote; `answer` is
    typed once the run asks its question."""
    leader, follower = pty.openpty()
    running = subprocess.Popen([str(RUNBOOK), *args], stdin=follower, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    written, asked = b"", False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 1)
            if not ready:
                if running.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closed: the command ended
                break
            if not chunk:
                break
            written += chunk
            if not asked and b"[y/N]" in written:
                os.write(leader, answer)
                asked = True
        return running.wait(timeout=60), written.decode(errors="replace")
    finally:
        os.close(leader)
