"""Step kernels forked from a fork server: none outlives it or the run, and kernels start as usual without it."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest
from jupyter_core.utils import run_sync

from runbook_lib.app import kernel_forks, kernels, runner
from tests.runbook_steps import RUNBOOK, SANDBOX_PARAMETERS, fork_servers, is_kernel, kernels_left

pytestmark = pytest.mark.own_fork_server
STEPS = ("00_prerequisites", "01_create_backup")
NOTEBOOKS = [runner.notebook_path(step) for step in STEPS]


def ended_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.05)
    return False


@contextmanager
def forked_step_kernels(folder: Path) -> Iterator[tuple[kernel_forks.KernelForks, kernels.StepKernels]]:
    """A run's fork server and its step kernels, in `folder` (output to k.log)."""
    with kernel_forks.forked(NOTEBOOKS) as forks:
        assert forks is not None, "kernels are forked on Linux"
        with kernels.ahead(STEPS, runner.notebook_path, folder, folder / "k.log", forks) as ahead:
            yield forks, ahead


def test_a_forked_kernel_answers_and_ends_when_its_step_does(tmp_path):
    with forked_step_kernels(tmp_path) as (forks, ahead):
        with ahead.running(STEPS[0]) as kernel:
            process = psutil.Process(kernel.process_id)
            assert process.ppid() == forks.process.pid and is_kernel(process)
            assert {connection.type for connection in process.net_connections("all")} <= {socket.AF_UNIX}
            client = kernel.client()
            client.start_channels()
            run_sync(client.wait_for_ready)(timeout=60)  # as nbclient does: IOPub subscribed before executing
            reply = run_sync(client.execute_interactive)("import os; os.write(2, b'said on stderr')", timeout=60)
            assert reply["content"]["status"] == "ok"
        assert ended_within(process.pid, 5)
    logged = (tmp_path / "k.log").read_text()
    assert "said on stderr" in logged, "the kernel's own output goes to the run's kernels.log"
    assert "Ctrl-C will not work" not in logged, "the kernel watches its parent"
    assert not Path(ahead.sockets or "").exists(), "the kernels' Unix sockets are removed with them"


def test_a_forked_kernel_ends_when_its_fork_server_dies(tmp_path):
    with forked_step_kernels(tmp_path) as (forks, ahead):
        with ahead.running(STEPS[0]) as kernel:
            client = kernel.client()
            client.start_channels()
            run_sync(client.wait_for_ready)(timeout=60)
            forks.process.kill()
            assert ended_within(kernel.process_id, 10), "the kernel's parent poller ended it"
            client.stop_channels()
    assert kernels_left(tmp_path) == []


def test_closing_the_fork_server_ends_the_kernels_it_forked(tmp_path):
    with kernel_forks.forked(NOTEBOOKS) as forks:
        assert forks is not None
        manager = kernels.StepKernelManager(
            kernel_name=kernels.KERNEL_NAME, output_file=str(tmp_path / "k.log"), forks=forks
        )
        run_sync(manager.start_kernel)(extra_arguments=list(kernels.KERNEL_ARGUMENTS), cwd=str(tmp_path))
        forked = manager.provisioner.process
        assert isinstance(forked, kernel_forks.ForkedKernel) and forked.poll() is None
    assert forked.poll() == -signal.SIGKILL
    assert ended_within(forked.pid, 5)
    assert forks.process.poll() == 0


def test_kernels_start_as_usual_when_the_fork_server_is_gone(tmp_path):
    with forked_step_kernels(tmp_path) as (forks, ahead):
        forks.process.kill()
        forks.process.wait()
        with ahead.running(STEPS[0]) as kernel:
            process = psutil.Process(kernel.process_id)
            assert "ipykernel_launcher" in process.cmdline() and process.ppid() != forks.process.pid
            client = kernel.client()
            client.start_channels()
            assert run_sync(client.execute_interactive)("1 + 1", timeout=60)["content"]["status"] == "ok"
            client.stop_channels()
    assert kernels_left(tmp_path) == []


def test_the_fork_server_forks_ipython_kernels_of_its_own_interpreter_only(tmp_path):
    """Another command, or a kernelspec's other Python, starts as usual."""
    output = str(tmp_path / "k.log")
    with kernel_forks.forked(NOTEBOOKS) as forks:
        assert forks is not None
        with pytest.raises(kernel_forks.ForkServerError, match="not an IPython kernel's command"):
            forks.launch([sys.executable, "-c", "print(1)"], env={}, cwd=str(tmp_path), output=output)
        with pytest.raises(kernel_forks.ForkServerError, match="not the fork server's"):
            forks.launch(["/usr/bin/python3", "-m", "ipykernel_launcher"], env={}, cwd=str(tmp_path), output=output)


def test_a_process_with_threads_is_not_forked():
    """Forking copies one thread: a lock another thread held stays held in the child forever."""
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        answer = kernel_forks._fork({}, keep_closed=())
    finally:
        release.set()
        other.join()
    assert "pid" not in answer and answer["error"].endswith("threads; forking it is unsafe")


def test_a_run_killed_outright_leaves_neither_kernels_nor_its_fork_server(world, tmp_path):
    out = tmp_path / "run"
    running = subprocess.Popen(
        [str(RUNBOOK), "run", str(SANDBOX_PARAMETERS), "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    run = psutil.Process(running.pid)
    deadline = time.monotonic() + 120
    while not any(is_kernel(child) for child in run.children(recursive=True)) and time.monotonic() < deadline:
        time.sleep(0.05)
    servers = fork_servers(run)
    assert len(servers) == 1
    running.kill()
    running.wait()
    assert ended_within(servers[0].pid, 10), "the fork server ends when its runner does"
    deadline = time.monotonic() + 10
    while kernels_left(out) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert kernels_left(out) == []


def test_the_fork_server_imports_the_notebooks_modules_once(tmp_path):
    """What the steps import, read from their notebooks, each statement once."""
    statements = [kernel_forks.imports(notebook) for notebook in NOTEBOOKS]
    assert statements[0] == statements[1] and "from runbook_lib.steps import walkthrough as rb" in statements[0]
    notebook = Path(tmp_path / "magic.ipynb")
    notebook.write_text(
        '{"cells": [{"cell_type": "code", "source": ["%%time\\n", "import os"]},'
        '{"cell_type": "code", "source": ["import json\\n", "x = 1"]}]}'
    )
    assert kernel_forks.imports(notebook) == "import json"


def test_a_run_refused_at_once_does_not_wait_for_its_fork_server_to_finish_importing():
    """Never asked for a kernel, the fork server is killed as the run ends, whatever its imports have reached:
    the imports no step will use are not finished (a second of CPU for each refused run)."""
    with kernel_forks.forked(NOTEBOOKS) as forks:
        assert forks is not None
    assert forks.process.returncode == -signal.SIGKILL, "killed, not left to end by itself"


def test_a_fork_server_that_forked_a_kernel_ends_by_itself(tmp_path):
    """Asked for a kernel, it is left to end its kernels itself when the runner closes the channel."""
    with forked_step_kernels(tmp_path) as (forks, ahead):
        with ahead.running(STEPS[0]) as kernel:
            process = psutil.Process(kernel.process_id)
    assert forks.process.returncode == 0
    assert ended_within(process.pid, 5)
