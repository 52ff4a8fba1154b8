"""Each step in a fresh kernel of its own, though started while the step before runs; none outlives a run."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import threading
import time
from pathlib import Path

import psutil
import pytest
from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync

from runbook_lib.app import kernel_forks, kernels, runner
from runbook_lib.aws import clients
from tests.runbook_steps import RUNBOOK, SANDBOX_PARAMETERS, is_kernel, kernels_left

pytestmark = pytest.mark.own_fork_server  # the subject: each run's kernels, from its own fork server
STEPS = ("00_prerequisites", "01_create_backup", "02_verify_source_key")


class KernelWatch:
    """The kernels a running `runbook run` starts, seen from outside: each one's process id, parent, working
    directory and start time, and how many were alive at once."""

    def __init__(self, running: subprocess.Popen[str]) -> None:
        self.run = psutil.Process(running.pid)
        self.seen: dict[int, dict[str, object]] = {}
        self.most_at_once = 0
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        while self.run.is_running() and self.run.status() != psutil.STATUS_ZOMBIE:
            try:
                alive = [child for child in self.run.children(recursive=True) if is_kernel(child)]
            except psutil.Error:
                break
            self.most_at_once = max(self.most_at_once, len(alive))
            for kernel in alive:
                if kernel.pid not in self.seen:
                    try:
                        self.seen[kernel.pid] = {
                            "parent": kernel.ppid(),
                            "cwd": kernel.cwd(),
                            "started": kernel.create_time(),
                        }
                    except psutil.Error:
                        continue
            time.sleep(0.05)

    def kernels(self) -> list[dict[str, object]]:
        """The kernels seen, in the order they started."""
        self.thread.join(timeout=30)
        return sorted(self.seen.values(), key=lambda seen: seen["started"])  # type: ignore[arg-type, return-value]


def watched_run(
    out: Path, *extra: str, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], KernelWatch]:
    command = [str(RUNBOOK), "run", str(SANDBOX_PARAMETERS), "--out", str(out), *extra]
    running = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    watch = KernelWatch(running)
    stdout, stderr = running.communicate(timeout=600)
    watch.kernels()
    return subprocess.CompletedProcess(command, running.returncode, stdout, stderr), watch


def test_each_step_runs_in_a_fresh_kernel_of_its_own_with_its_step_and_none_outlives_the_run(world, tmp_path):
    out = tmp_path / "run"
    call_log = tmp_path / "calls.jsonl"
    done, watch = watched_run(out, "--steps", ",".join(STEPS), env={**os.environ, clients.CALL_LOG_ENV: str(call_log)})
    assert done.returncode == 0, done.stderr
    started = watch.kernels()
    assert len(started) == len(STEPS), "one kernel per step"
    assert {seen["cwd"] for seen in started} == {str(out)}
    assert len({seen["parent"] for seen in started}) == 1, "every kernel forked by the run's fork server"
    assert started[0]["parent"] != watch.run.pid, "the fork server, not the runner, is the kernels' parent"
    assert watch.most_at_once == 2, "the step's kernel and the next step's, started ahead"
    assert kernels_left(out) == []
    assert "WARNING" not in done.stdout + done.stderr, "the kernels' own output goes to kernels.log"
    calls = [json.loads(line) for line in call_log.read_text().splitlines()]
    made = {
        (call["action"], call["step"]) for call in calls if call["action"].split(":")[1].startswith(("Create", "Start"))
    }
    assert made == {("backup:CreateBackupVault", "00_prerequisites"), ("backup:StartBackupJob", "01_create_backup")}


def test_a_failing_step_ends_the_kernel_started_for_the_next(world, tmp_path):
    world.reset("outside-organization")
    out = tmp_path / "run"
    done, watch = watched_run(out, "--steps", ",".join(STEPS))
    assert done.returncode == runner.EXIT_FAILED
    assert len(watch.kernels()) == 2, "01's kernel was started while 00 ran"
    assert kernels_left(out) == []


PROBE = (
    "import os, sys; "
    "print(sorted(name for name in globals() if not name.startswith('_')), "
    "os.environ.get('RUNBOOK_STEP'), os.getcwd(), 'runbook_lib.display.widgets' in sys.modules, "
    "os.environ.get('PROBE_SET_LATER'), 'PROBE_UNSET_LATER' in os.environ)"
)


def probed(client: AsyncKernelClient) -> str:
    """What PROBE prints: the kernel's namespace, RUNBOOK_STEP, working directory, the notebook's modules loaded,
    and the two variables the run's environment changed after the fork server started."""
    printed: list[str] = []
    client.start_channels()
    run_sync(client.wait_for_ready)(timeout=60)
    reply = run_sync(client.execute_interactive)(
        PROBE, timeout=60, output_hook=lambda msg: printed.append(msg["content"].get("text", ""))
    )
    assert reply["content"]["status"] == "ok", reply["content"]
    return "".join(printed)


def fresh_kernel_names() -> str:
    """The names a kernel that nobody touched has in its namespace, as PROBE prints them."""
    fresh = AsyncKernelManager(kernel_name=kernels.KERNEL_NAME)
    run_sync(fresh.start_kernel)(extra_arguments=list(kernels.KERNEL_ARGUMENTS))
    fresh_client = fresh.client()
    try:
        return probed(fresh_client).split("]")[0] + "]"
    finally:
        fresh_client.stop_channels()
        run_sync(fresh.shutdown_kernel)(now=True)


@pytest.mark.parametrize("forked", [True, False], ids=["forked", "started"])
def test_a_kernel_started_ahead_has_only_its_notebooks_imports_its_step_and_the_run_folder(
    forked, tmp_path, monkeypatch
):
    """No step code ran in it: its namespace is that of a fresh kernel, with the notebook's modules loaded, and
    its environment is the run's as it is when the kernel starts, not as it was when the fork server started."""
    fresh_names = fresh_kernel_names()
    monkeypatch.setenv("PROBE_UNSET_LATER", "1")
    notebooks = [runner.notebook_path(step) for step in STEPS[:2]]
    with kernel_forks.forked(notebooks) if forked else contextlib.nullcontext() as forks:
        monkeypatch.setenv("PROBE_SET_LATER", "set")
        monkeypatch.delenv("PROBE_UNSET_LATER")
        monkeypatch.setenv(clients.STEP_ENV, "00_prerequisites")  # what the run's environment says meanwhile
        with kernels.ahead(STEPS[:2], runner.notebook_path, tmp_path, tmp_path / "kernels.log", forks) as ahead_of:
            with ahead_of.running("00_prerequisites"):
                ahead = ahead_of.waiting["01_create_backup"]
                seen = probed(ahead.client())
                parent = psutil.Process(ahead.process_id).ppid()
            pid = ahead.process_id
            assert seen == f"{fresh_names} 01_create_backup {tmp_path} True set False\n"
            assert (parent == forks.process.pid) if forks else (parent == os.getpid())
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert kernels_left(tmp_path) == []
