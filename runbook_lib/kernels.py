"""The step kernels of a run, each started while the step before it runs.

A kernel's start and the imports of a step notebook (botocore, pandas, ipywidgets, the library) take
seconds: most of a headless run's time when paid between steps. Here the next step's kernel starts, and
imports what its notebook imports, while a step runs. Each step still has a kernel of its own, started
for that step (its RUNBOOK_STEP, the run folder as its working directory, its output to kernels.log),
having run nothing but its notebook's import statements, and ended with the step. At most one kernel
waits ahead, and none outlives the run, however the run ends.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from papermill.exceptions import PapermillExecutionError
from traitlets import Unicode

from .aws import clients

log = logging.getLogger(__name__)
KERNEL_NAME = "python3"
# IPython's history in memory, not in the user's profile: as nbclient starts the kernels it starts itself.
KERNEL_ARGUMENTS = ("--HistoryManager.hist_file=:memory:",)


class StepKernelManager(AsyncKernelManager):
    """A step's kernel: its own output (transport warnings, shutdown noise) goes to the run's kernels.log,
    so that the console shows the run's lines only; it keeps the clients made for it, to close them with it."""

    output_file = Unicode(help="the file the kernel's stdout and stderr are appended to")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.made_clients: list[AsyncKernelClient] = []
        self.process_id: int | None = None

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
        with open(self.output_file, "ab") as handle:
            await super()._async_launch_kernel(kernel_cmd, **{**kw, "stdout": handle, "stderr": handle})
        self.process_id = getattr(getattr(self.provisioner, "process", None), "pid", None)

    # AsyncKernelManager's own client() declares an async client over KernelManager's blocking one, the same way.
    def client(self, **kwargs: Any) -> AsyncKernelClient:  # type: ignore[override]
        made = super().client(**kwargs)
        self.made_clients.append(made)
        return made


def imports(notebook: Path) -> str:
    """The import statements at the top level of a notebook's code cells: what a kernel can load ahead of
    the step exactly as the step would load it."""
    statements = []
    for cell in json.loads(notebook.read_text())["cells"]:
        if cell["cell_type"] != "code":
            continue
        try:
            tree = ast.parse("".join(cell["source"]))
        except SyntaxError:  # IPython's own syntax (magics, shell escapes): no import to read
            continue
        statements += [ast.unparse(node) for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    return "\n".join(statements)


def preload_arguments(notebook: Path) -> list[str]:
    """Kernel arguments that run the notebook's imports at kernel start, in a namespace of their own: the
    modules are loaded, the step's namespace stays that of a fresh kernel."""
    statements = imports(notebook)
    if not statements:
        return []
    return [f"--IPKernelApp.exec_lines=exec({statements!r}, {{}})"]


class StepKernels:
    """The kernels of a run's steps, in the runbook's order."""

    def __init__(self, steps: Sequence[str], notebook: Callable[[str], Path], folder: Path, output: Path) -> None:
        self.steps = tuple(steps)
        self.notebook = notebook
        self.folder = folder
        self.output = output
        self.waiting: dict[str, StepKernelManager] = {}
        self.unended: list[StepKernelManager] = []  # every kernel started and not yet ended, whatever its state

    def _start(self, step: str) -> StepKernelManager:
        """A fresh kernel for this step, its environment that of the run with RUNBOOK_STEP set to the step
        (passed, not inherited: the kernel starts while another step holds the run's RUNBOOK_STEP)."""
        kernel = StepKernelManager(kernel_name=KERNEL_NAME, output_file=str(self.output))
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


@contextmanager
def ahead(steps: Sequence[str], notebook: Callable[[str], Path], folder: Path, output: Path) -> Iterator[StepKernels]:
    """Step kernels for one run (notebook: a step's notebook file), none left running when it ends,
    however it ends."""
    kernels = StepKernels(steps, notebook, folder, output)
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
