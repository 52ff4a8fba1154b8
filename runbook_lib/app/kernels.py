"""The step kernels of a run, each started while the step before it runs.

A kernel's start and the imports of a step notebook (botocore, pandas, ipywidgets, the library) take
seconds: most of a headless run's time when paid between steps. Here the next step's kernel starts, and
imports what its notebook imports, while a step runs. Each step still has a kernel of its own, started
for that step (its RUNBOOK_STEP, the run folder as its working directory, its output to kernels.log),
having run nothing but its notebook's import statements, and ended with the step. At most one kernel
waits ahead, and none outlives the run, however the run ends.

On Linux the kernels are forked from one process that imported the notebooks' modules once, at the
run's start (kernel_forks.py): a kernel then starts in a fraction of a second and of the CPU. Where
forking is not available, or the fork server fails, kernels start as usual.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from queue import Empty
from typing import Any

from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning import LocalProvisioner
from jupyter_core.utils import run_sync
from papermill.exceptions import PapermillExecutionError
from traitlets import Any as AnyTrait
from traitlets import Type, Unicode

from ..aws import clients
from .kernel_forks import ForkServerError, KernelForks, imports

log = logging.getLogger(__name__)
KERNEL_NAME = "python3"
# IPython's history in memory, not in the user's profile: as nbclient starts the kernels it starts itself.
KERNEL_ARGUMENTS = ("--HistoryManager.hist_file=:memory:",)
READY_SECONDS = 60.0  # nbclient's startup_timeout, for a client asked without one


class StepKernelClient(AsyncKernelClient):
    """A step's client, ready as soon as its kernel is: jupyter_client's wait for a kernel ends with 0.2 s
    of IOPub silence, every step; this one takes what has arrived and goes on. An IOPub message of the
    readiness check arriving later is harmless: nbclient reads only the messages of the cell it runs."""

    async def wait_for_ready(self, timeout: float | None = None) -> None:
        timeout = READY_SECONDS if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            self.kernel_info()
            try:
                reply = await self.shell_channel.get_msg(timeout=1)
            except Empty:
                reply = None
            if reply is not None and reply["msg_type"] == "kernel_info_reply":
                try:
                    await self.iopub_channel.get_msg(timeout=0.2)  # IOPub connected: the kernel's status came
                except Empty:
                    pass
                else:
                    self._handle_kernel_info_reply(reply)
                    break
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout} seconds")
        while True:
            try:
                await self.iopub_channel.get_msg(timeout=0)
            except Empty:
                return


class StepKernelManager(AsyncKernelManager):
    """A step's kernel: its own output (transport warnings, shutdown noise) goes to the run's kernels.log,
    so that the console shows the run's lines only; it keeps the clients made for it, to close them with it."""

    output_file = Unicode(help="the file the kernel's stdout and stderr are appended to")
    client_factory = Type(StepKernelClient, klass=AsyncKernelClient)
    forks = AnyTrait(None, allow_none=True, help="the run's KernelForks, or None to start kernels as usual")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.made_clients: list[AsyncKernelClient] = []
        self.process_id: int | None = None

    async def _async_pre_start_kernel(self, **kw: Any) -> tuple[list[str], dict[str, Any]]:
        if self.provisioner is None and self.forks is not None:
            self.kernel_id = self.kernel_id or kw.pop("kernel_id", None) or str(uuid.uuid4())
            self.provisioner = ForkingProvisioner(kernel_id=self.kernel_id, kernel_spec=self.kernel_spec, parent=self)
        return await super()._async_pre_start_kernel(**kw)

    async def _async_wait(self, pollinterval: float = 0.01) -> None:
        """Wait for a killed kernel to end, checking every 10 ms: it ends in milliseconds, and jupyter_client's
        100 ms checks would add most of 0.1 s to every step."""
        await super()._async_wait(pollinterval)

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
        with open(self.output_file, "ab") as handle:
            await super()._async_launch_kernel(kernel_cmd, **{**kw, "stdout": handle, "stderr": handle})
        self.process_id = getattr(getattr(self.provisioner, "process", None), "pid", None)

    # AsyncKernelManager's own client() declares an async client over KernelManager's blocking one, the same way.
    def client(self, **kwargs: Any) -> AsyncKernelClient:  # type: ignore[override]
        made = super().client(**kwargs)
        self.made_clients.append(made)
        return made


class ForkingProvisioner(LocalProvisioner):
    """jupyter_client's local provisioner, its kernel forked by the run's fork server when there is one.
    A forked kernel is a ForkedKernel, handled through the Popen interface the local provisioner uses."""

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> Any:
        manager = self.parent
        assert isinstance(manager, StepKernelManager)
        if manager.forks is not None:
            cwd = str(kwargs.get("cwd") or os.getcwd())
            try:
                forked = manager.forks.launch(cmd, env=kwargs["env"], cwd=cwd, output=manager.output_file)
            except ForkServerError as error:
                log.debug("kernel not forked (%s); starting it as usual", error)
            else:
                self.process = forked
                self.pid = self.pgid = forked.pid
                self.cwd = cwd
                return self.connection_info
        return await super().launch_kernel(cmd, **kwargs)


def preload_arguments(notebook: Path) -> list[str]:
    """Kernel arguments that run the notebook's imports at kernel start, in a namespace of their own: the
    modules are loaded, the step's namespace stays that of a fresh kernel."""
    statements = imports(notebook)
    if not statements:
        return []
    return [f"--IPKernelApp.exec_lines=exec({statements!r}, {{}})"]


class StepKernels:
    """The kernels of a run's steps, in the runbook's order."""

    def __init__(
        self,
        steps: Sequence[str],
        notebook: Callable[[str], Path],
        folder: Path,
        output: Path,
        forks: KernelForks | None = None,
    ) -> None:
        self.steps = tuple(steps)
        self.notebook = notebook
        self.folder = folder
        self.output = output
        self.forks = forks
        self.waiting: dict[str, StepKernelManager] = {}
        self.unended: list[StepKernelManager] = []  # every kernel started and not yet ended, whatever its state
        # The kernels' channels are Unix sockets in a folder of the run's own, where there are any: TCP ports
        # are chosen before a kernel binds them, and another process can take one meanwhile.
        self.sockets = tempfile.mkdtemp(prefix="runbook-kernels-") if os.name == "posix" else None

    def _transport(self, step: str) -> dict[str, str]:
        if self.sockets is None:
            return {}
        return {"transport": "ipc", "ip": os.path.join(self.sockets, str(self.steps.index(step)))}

    def _start(self, step: str) -> StepKernelManager:
        """A fresh kernel for this step, its environment that of the run with RUNBOOK_STEP set to the step
        (passed, not inherited: the kernel starts while another step holds the run's RUNBOOK_STEP)."""
        kernel = StepKernelManager(
            kernel_name=KERNEL_NAME, output_file=str(self.output), forks=self.forks, **self._transport(step)
        )
        self.unended.append(kernel)
        arguments = [*KERNEL_ARGUMENTS, *preload_arguments(self.notebook(step))]
        environment = {**os.environ, clients.STEP_ENV: step}
        run_sync(kernel.start_kernel)(extra_arguments=arguments, env=environment, cwd=str(self.folder))
        log.debug("[%s] kernel pid %s started", step, kernel.process_id)
        return kernel

    def _end(self, kernel: StepKernelManager, idle: bool = True) -> None:
        """End the kernel (stop it, when it may be running a cell); forgotten only once it has ended."""
        if idle:
            _end(kernel)
        else:
            _stop(kernel)
        self.unended.remove(kernel)

    def start(self, step: str) -> None:
        """Start the step's kernel now, ahead of it (the run's first step, while the preflight runs)."""
        if step not in self.waiting:
            self.waiting[step] = self._start(step)

    @contextmanager
    def running(self, step: str) -> Iterator[StepKernelManager]:
        """The step's kernel, started ahead or now, while the next step's kernel starts; ended with the step."""
        kernel = self.waiting.pop(step, None)
        if kernel is not None and not run_sync(kernel.is_alive)():
            log.warning("[%s] its kernel (pid %s) ended before the step; starting another", step, kernel.process_id)
            self._end(kernel)
            kernel = None
        if kernel is None:
            kernel = self._start(step)
        finished = False
        try:
            index = self.steps.index(step) + 1
            if index < len(self.steps):
                self.waiting[self.steps[index]] = self._start(self.steps[index])
            yield kernel
            finished = True
        except PapermillExecutionError:
            finished = True  # a cell failed: the notebook ran to its end, and the kernel waits idle
            raise
        finally:
            self._end(kernel, idle=finished)

    def close(self) -> None:
        """End the kernels no step took (the run stopped before their steps), and any a stop left behind."""
        self.waiting.clear()
        while self.unended:
            self._end(self.unended[-1])
        if self.sockets is not None:
            shutil.rmtree(self.sockets, ignore_errors=True)


@contextmanager
def ahead(
    steps: Sequence[str],
    notebook: Callable[[str], Path],
    folder: Path,
    output: Path,
    forks: KernelForks | None = None,
) -> Iterator[StepKernels]:
    """Step kernels for one run (notebook: a step's notebook file; forks: where to fork them from), none
    left running when it ends, however it ends."""
    kernels = StepKernels(steps, notebook, folder, output, forks)
    try:
        yield kernels
    finally:
        kernels.close()


def _end(kernel: StepKernelManager) -> None:
    """End an idle kernel (its notebook ran to its end, or it never got one): its process group killed at once.
    Nothing runs in it and every output is in the record; a shutdown request would only add the interpreter's
    teardown, most of a second of CPU with the notebook's imports loaded."""
    began = time.monotonic()
    try:
        run_sync(kernel.shutdown_kernel)(now=True)
    except Exception:
        log.warning("kernel pid %s could not be ended; killing it", kernel.process_id, exc_info=True)
        _kill(kernel)
    _close_clients(kernel)
    log.debug("kernel pid %s ended in %.2f s", kernel.process_id, time.monotonic() - began)


def _stop(kernel: StepKernelManager) -> None:
    """Stop a kernel that may be running a cell (step timeout, Ctrl-C) as nbclient stops the kernels it starts:
    interrupted, asked to shut down, killed if it lingers past the kernel manager's shutdown_wait_time."""
    try:
        run_sync(kernel.shutdown_kernel)(now=False)
    except Exception:
        log.warning("kernel pid %s did not shut down; killing it", kernel.process_id, exc_info=True)
        _kill(kernel)
    _close_clients(kernel)


def _kill(kernel: StepKernelManager) -> None:
    """The last resort, when the kernel manager fails: its process killed, as jupyter_client would."""
    process = getattr(kernel.provisioner, "process", None)
    if process is not None and process.poll() is None:
        process.kill()
        process.wait(timeout=10)


def _close_clients(kernel: StepKernelManager) -> None:
    for made in kernel.made_clients:
        made.stop_channels()
    kernel.made_clients.clear()
