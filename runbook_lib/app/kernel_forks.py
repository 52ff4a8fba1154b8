"""Step kernels forked from one process that has already imported what the notebooks import.

A step kernel's start is mostly imports (ipykernel, IPython, botocore, pandas, ipywidgets, the library):
seconds of CPU for each of a run's kernels. Here one process per run (the fork server, `python -m
runbook_lib.app.kernel_forks`) runs the notebooks' import statements once, then forks each step's kernel
from itself. A forked kernel is a process of its own, new for its step: its own session and process
group, its environment, working directory and output file as the runner gives them, and an IPython
kernel made after the fork, so nothing a step runs is seen by another. What it shares with the fork
server is what was loaded before any step ran.

The runner and the fork server speak JSON lines over a socket pair: the runner asks for a kernel, the
server answers with its process id and, when a kernel ends, says so with its exit code. When the runner
closes the socket (or dies), the fork server kills the kernels it forked and exits. Forking is used on
Linux only, and only while the fork server has one thread; otherwise kernels are started as usual.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..core.errors import RunbookError

log = logging.getLogger(__name__)
LAUNCHER = ("-m", "ipykernel_launcher")  # how a kernelspec starts an IPython kernel, after the interpreter
ANSWER_SECONDS = 120.0  # the first kernel waits for the notebooks' imports: seconds on a loaded machine
CLOSE_SECONDS = 2.0  # an idle fork server ends in milliseconds once its runner closes the channel


class ForkServerError(RunbookError):
    """The fork server cannot fork a kernel (it died, or could not import, or has threads): start it as usual."""


def available() -> bool:
    """Forking a process that has loaded these modules is safe on Linux; elsewhere kernels start as usual."""
    return sys.platform.startswith("linux") and hasattr(os, "fork")


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


@contextmanager
def forked(notebooks: Sequence[Path]) -> Iterator[KernelForks | None]:
    """A fork server for one run's step kernels, importing their notebooks' modules from now on; None where
    kernels cannot be forked. It ends, with any kernel of its, when the run does."""
    if not available():
        yield None
        return
    lines = [line for notebook in notebooks for line in imports(notebook).splitlines()]
    forks = KernelForks("\n".join(dict.fromkeys(lines)))
    try:
        yield forks
    finally:
        forks.close()


class ForkedKernel:
    """A forked kernel as jupyter_client's local provisioner handles a Popen: poll, wait, signal, kill.
    Its exit code comes from the fork server, its parent."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int, server: KernelForks) -> None:
        self.pid = pid
        self.server = server
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.server.exit_code(self.pid)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        code = self.server.wait_for_exit(self.pid, timeout)
        if code is None:
            raise subprocess.TimeoutExpired(f"kernel pid {self.pid}", timeout or 0)
        self.returncode = code
        return code

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class KernelForks:
    """The runner's side: a fork server started now, importing `imports` while the runner goes on."""

    def __init__(self, imports: str) -> None:
        self.exits: dict[int, int] = {}
        self.answers: list[dict[str, Any]] = []
        self.launched = False
        self.changed = threading.Condition()
        self.ended = False
        self.asking = threading.Lock()
        ours, theirs = socket.socketpair()
        self.socket = ours
        self.process = subprocess.Popen(
            [sys.executable, "-m", __name__, str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        theirs.close()
        self.reader = threading.Thread(target=self._read, name="kernel-forks", daemon=True)
        self.reader.start()
        self._send({"imports": imports})

    def _send(self, message: dict[str, Any]) -> None:
        try:
            self.socket.sendall(json.dumps(message).encode() + b"\n")
        except OSError as error:
            raise ForkServerError(f"the fork server is gone: {error}") from error

    def _read(self) -> None:
        try:
            with self.socket.makefile("rb") as lines:
                for line in lines:
                    message = json.loads(line)
                    with self.changed:
                        if "exited" in message:
                            self.exits[message["exited"]] = message["code"]
                        else:
                            self.answers.append(message)
                        self.changed.notify_all()
        except OSError as error:  # the fork server died with our request unread
            log.debug("the kernel fork server's channel broke: %s", error)
        with self.changed:
            self.ended = True
            self.changed.notify_all()

    def _answer(self) -> dict[str, Any]:
        deadline = time.monotonic() + ANSWER_SECONDS
        with self.changed:
            while not self.answers:
                if self.ended or not self.changed.wait(timeout=max(0.0, deadline - time.monotonic())):
                    raise ForkServerError("the fork server did not answer")
            return self.answers.pop(0)

    def launch(self, command: list[str], env: dict[str, str], cwd: str, output: str) -> ForkedKernel:
        """A kernel forked for `command` (a kernelspec's `python -m ipykernel_launcher ...`)."""
        if command[1:3] != list(LAUNCHER):
            raise ForkServerError(f"not an IPython kernel's command: {command[:3]}")
        if os.path.realpath(command[0]) != os.path.realpath(sys.executable):
            raise ForkServerError(f"the kernel's interpreter is {command[0]}, not the fork server's {sys.executable}")
        with self.asking:
            self.launched = True
            self._send({"argv": command[3:], "env": env, "cwd": cwd, "output": output})
            answer = self._answer()
        if "pid" not in answer:
            raise ForkServerError(answer.get("error", "no kernel forked"))
        return ForkedKernel(answer["pid"], self)

    def exit_code(self, pid: int) -> int | None:
        with self.changed:
            if pid not in self.exits and self.ended:
                return -signal.SIGKILL  # the fork server killed its kernels as it ended
            return self.exits.get(pid)

    def wait_for_exit(self, pid: int, timeout: float | None) -> int | None:
        with self.changed:
            self.changed.wait_for(lambda: pid in self.exits or self.ended, timeout=timeout)
        return self.exit_code(pid)

    def close(self) -> None:
        """The fork server ends, and with it any kernel of its still running. One that was never asked for a
        kernel (a run refused before its first step) has nothing to end: it is killed at once, rather than
        left to finish the imports no step will use. One that does not end at once is still importing: it
        has forked nothing yet, and is killed."""
        try:
            self.socket.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        if not self.launched:
            self.process.kill()
        try:
            self.process.wait(timeout=CLOSE_SECONDS)
        except subprocess.TimeoutExpired:
            log.debug("the kernel fork server (pid %s) is still importing; killing it", self.process.pid)
            self.process.kill()
            self.process.wait()
        self.reader.join(timeout=10)
        self.socket.close()


def _serve(channel: socket.socket) -> None:
    """The fork server's loop: fork a kernel for each request, report each kernel's end, and end (killing
    what it forked) when the runner closes the channel."""
    wakeup_read, wakeup_write = os.pipe()
    os.set_blocking(wakeup_write, False)
    signal.set_wakeup_fd(wakeup_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    forked: set[int] = set()
    pending = b""
    try:
        while True:
            readable, _, _ = select.select([channel.fileno(), wakeup_read], [], [])
            if wakeup_read in readable:
                os.read(wakeup_read, 512)
            _report_exits(channel, forked)
            if channel.fileno() not in readable:
                continue
            received = channel.recv(1 << 20)
            if not received:
                return
            pending += received
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                request = json.loads(line)
                if "imports" in request:
                    _import(request["imports"])
                    continue
                answer = _fork(request, keep_closed=(channel.fileno(), wakeup_read, wakeup_write))
                if "pid" in answer:
                    forked.add(answer["pid"])
                channel.sendall(json.dumps(answer).encode() + b"\n")
    finally:
        for pid in forked:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass


def _import(statements: str) -> None:
    """The notebooks' imports, in a namespace of their own, botocore's data for the services the steps
    call, and pandas' Styler (with jinja2), which a notebook's first table loads (a tenth of a second in each
    kernel); what fails here is the kernel's to report, as it would without a fork server."""
    try:
        exec(statements, {})
        import pandas.io.formats.style  # noqa: F401

        from ..core import botocore_data

        botocore_data.read_ahead()
    except Exception:
        traceback.print_exc()


def _report_exits(channel: socket.socket, forked: set[int]) -> None:
    while forked:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        forked.discard(pid)
        channel.sendall(json.dumps({"exited": pid, "code": os.waitstatus_to_exitcode(status)}).encode() + b"\n")


def _fork(request: dict[str, Any], keep_closed: tuple[int, ...]) -> dict[str, Any]:
    if threading.active_count() > 1:
        return {"error": f"the fork server has {threading.active_count()} threads; forking it is unsafe"}
    pid = os.fork()
    if pid == 0:
        _become_kernel(request, keep_closed)
    return {"pid": pid}


def _become_kernel(request: dict[str, Any], inherited: tuple[int, ...]) -> None:
    """In the forked child: a new session, the kernel's own files and environment, then IPython's kernel
    as `python -m ipykernel_launcher` would start it. Never returns."""
    status = 1
    try:
        os.chdir(request["cwd"])  # first: once it leads a session of its own, it is seen as the step's kernel
        os.setsid()
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for descriptor in inherited:
            os.close(descriptor)
        null = os.open(os.devnull, os.O_RDONLY)
        output = os.open(request["output"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.dup2(null, 0)
        os.dup2(output, 1)
        os.dup2(output, 2)
        os.close(null)
        os.close(output)
        os.environ.clear()
        os.environ.update(request["env"])
        # The kernel ends if its parent, the fork server, ends. Given as an argument: IPKernelApp read
        # JPY_PARENT_PID when the fork server imported it.
        os.environ["JPY_PARENT_PID"] = str(os.getppid())
        argv = [*request["argv"], f"--IPKernelApp.parent_handle={os.getppid()}"]
        sys.argv = ["ipykernel_launcher", *argv]
        from ipykernel import kernelapp

        kernelapp.launch_new_instance(argv=argv)
        status = 0
    except SystemExit as stop:
        status = stop.code if isinstance(stop.code, int) else 0 if stop.code is None else 1
    except BaseException:
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(status)


def main(argv: list[str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the runner's to handle; it closes the channel
    # As ipykernel_launcher: the start folder off sys.path while loading; the kernel puts its own back.
    if sys.path and (sys.path[0] == "" or Path(sys.path[0]) == Path.cwd()):
        del sys.path[0]
    # What every kernel imports as it starts: its application, and its debugger (debugpy, a hundred modules).
    import ipykernel.debugger  # noqa: F401
    import ipykernel.kernelapp  # noqa: F401

    with socket.socket(fileno=int(argv[0])) as channel:
        _serve(channel)
    os._exit(0)  # nothing to tear down: the interpreter's teardown of what it loaded would only take time


if __name__ == "__main__":
    main(sys.argv[1:])
