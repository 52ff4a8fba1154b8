"""Start, find, control and stop a sandbox server process, and write the files that reach it.

A sandbox is a folder: `server.json` (pid, endpoint, control token), `aws-config` (the four
profiles, with their access keys), `credentials` (empty on purpose, so that no real credentials file
is read for sandbox profiles), `sandbox.env` (the exports that point the AWS SDKs and CLI at both,
and the control token) and `server.log`. The folder is its owner's only (0700), and so is each of
these files (0600): they hold keys, the token, or a log of the requests that failed.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from runbook_lib.core import guard

from .accounts import ACCOUNTS
from .accounts import CONTROL_TOKEN_HEADER as TOKEN_HEADER
from .accounts import CONTROL_TOKEN_VARIABLE as TOKEN_VARIABLE

DEFAULT_DIR = ".sandbox"
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0


class SandboxError(Exception):
    """A sandbox could not be started, reached or stopped; the message says which and why."""


class SandboxRefused(SandboxError):
    """The sandbox answered, and refused what was asked (an unknown name, a value out of range)."""


@dataclass(frozen=True)
class Sandbox:
    """A running sandbox, as its folder describes it."""

    directory: Path
    pid: int
    endpoint: str
    token: str = field(default="", repr=False)

    @property
    def config_file(self) -> Path:
        return self.directory / "aws-config"

    @property
    def credentials_file(self) -> Path:
        return self.directory / "credentials"

    @property
    def env_file(self) -> Path:
        return self.directory / "sandbox.env"

    def environment(self) -> dict[str, str]:
        """The variables that make boto3 and the AWS CLI use this sandbox's profiles."""
        return {"AWS_CONFIG_FILE": str(self.config_file), "AWS_SHARED_CREDENTIALS_FILE": str(self.credentials_file)}

    def control(self, action: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(
            f"{self.endpoint}/_sandbox/{action}",
            data=data,
            method="GET" if payload is None else "POST",
            headers={"Content-Type": "application/json", TOKEN_HEADER: self.token},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            try:
                detail = json.loads(error.read() or b"{}").get("error", error.reason)
            except ValueError:
                detail = f"HTTP {error.code} {error.reason} (see server.log)"
            raise SandboxRefused(f"sandbox refused {action}: {detail}") from None
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as error:
            raise SandboxError(f"sandbox at {self.endpoint} does not answer: {error}") from None

    def status(self) -> dict[str, Any]:
        return self.control("status")

    def reset(self, scenario: str | None = None) -> dict[str, Any]:
        return self.control("reset", {"scenario": scenario} if scenario else {})

    def configure(self, **knobs: Any) -> dict[str, Any]:
        return self.control("configure", {k: v for k, v in knobs.items() if v is not None})

    def join(self, account_id: str) -> dict[str, Any]:
        return self.control("join", {"account": account_id})

    def state(self) -> dict[str, Any]:
        return self.control("state")

    def run_plan(self, plan: str, account_id: str | None = None, region: str | None = None) -> dict[str, Any]:
        """Start every rule of a backup plan now (see control.py); the answer lists the backup job IDs."""
        knobs = {"plan": plan, "account": account_id, "region": region}
        return self.control("run-plan", {k: v for k, v in knobs.items() if v is not None})

    def set_identity_policy(self, account: str, policy: dict[str, Any] | None) -> dict[str, Any]:
        """Attach an identity policy to an account (ID or role) that the sandbox then enforces on every request
        signed with its key; None takes it off. Answers every account's policy (see identity_policies.py)."""
        return self.control("identity-policies", {"account": account, "policy": policy})

    def stats(self) -> dict[str, Any]:
        """AWS requests answered per operation since the last reset or clear (see stats.py)."""
        return self.control("stats")

    def clear_stats(self) -> dict[str, Any]:
        """Start the counts again; returns the counts cleared."""
        return self.control("stats/clear", {})


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def find(directory: str | os.PathLike[str] = DEFAULT_DIR) -> Sandbox | None:
    """The sandbox whose folder this is, if its process is still alive."""
    record = Path(directory) / "server.json"
    if not record.exists():
        return None
    info = json.loads(record.read_text())
    if not _pid_alive(info["pid"]):
        return None
    return Sandbox(Path(directory).resolve(), info["pid"], info["endpoint"], info.get("token", ""))


SANDBOX_FILES = ("aws-config", "credentials", "sandbox.env", "server.json", "server.log")


def _private_folder(folder: Path) -> None:
    """Make the sandbox's folder, only its owner's (0700); tighten one of the user's that a sandbox used before
    (it holds a sandbox's files): made by an older runbook, or by `mkdir` (0755 with the usual umask), it would
    let anyone on the machine list the files and read those written before, keys and the token among them.
    Any other existing folder (`--dir .`, a shared one) keeps its mode: the files in it are 0600 all the same."""
    if not folder.exists():
        folder.mkdir(mode=0o700, parents=True)
        folder.chmod(0o700)  # whatever the umask
        return
    used_before = any((folder / name).exists() for name in SANDBOX_FILES)
    if used_before and folder.stat().st_uid == os.getuid():
        folder.chmod(0o700)


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read or write (0600), even one that existed with a wider mode: it
    holds a key or the control token."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)


def _open_private_log(path: Path) -> BinaryIO:
    """The server's log, appended to and only its owner's (0600): failed requests are logged with their path
    and query, which may carry a presigned URL's credential."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(descriptor, 0o600)
    return os.fdopen(descriptor, "ab")


def write_profiles(directory: Path, endpoint: str, token: str = "") -> None:
    """aws-config with one profile per sandbox account, credentials empty, and sandbox.env."""
    lines = ["# Profiles of the local sandbox. Sandbox-only keys: AWS never accepts them.", ""]
    for account in ACCOUNTS:
        lines += [
            f"[profile {account.profile}]",
            f"region = {account.default_region}",
            f"endpoint_url = {endpoint}",
            f"aws_access_key_id = {account.access_key_id}",
            f"aws_secret_access_key = {account.secret_access_key}",
            "retry_mode = adaptive",
            "max_attempts = 15",
            "",
        ]
    _write_private(directory / "aws-config", "\n".join(lines))
    _write_private(  # no key, but AWS_SHARED_CREDENTIALS_FILE points here: private, as the AWS CLI makes its own
        directory / "credentials",
        "# Empty on purpose: sandbox profiles take their keys from aws-config, never from real credentials.\n",
    )
    config, credentials = (directory / "aws-config").resolve(), (directory / "credentials").resolve()
    _write_private(
        directory / "sandbox.env",
        f"export AWS_CONFIG_FILE={config}\nexport AWS_SHARED_CREDENTIALS_FILE={credentials}\n"
        f"export {TOKEN_VARIABLE}={token}\n",
    )


def start(
    directory: str | os.PathLike[str] = DEFAULT_DIR,
    port: int = 0,
    scenario: str = "walkthrough",
    job_seconds: float = 0.0,
    unmarked: bool = False,
) -> tuple[Sandbox, bool]:
    """Start a sandbox in the background and return once it answers; (sandbox, started_now). An `unmarked`
    sandbox answers without the header that names the sandbox, as real AWS does: the runbook's guard then
    takes it for real accounts (to rehearse or teach the confirmation)."""
    folder = Path(directory)
    running = find(folder)
    if running is not None:
        return running, False
    _private_folder(folder)
    ready = folder / "server.ready"
    ready.unlink(missing_ok=True)
    log = _open_private_log(folder / "server.log")
    command = [
        sys.executable,
        "-m",
        "runbook_sandbox.server",
        "--port",
        str(port),
        "--scenario",
        scenario,
        "--job-seconds",
        str(job_seconds),
        "--ready-file",
        str(ready),
    ]
    token = secrets.token_urlsafe(32)
    environment = {**os.environ, TOKEN_VARIABLE: token}
    environment.pop(guard.UNMARKED_ENV, None)
    if unmarked:
        environment[guard.UNMARKED_ENV] = "1"
    process = subprocess.Popen(
        command, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True, env=environment
    )
    log.close()
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not ready.exists():
        if process.poll() is not None:
            raise SandboxError(f"sandbox server exited with code {process.returncode}; see {folder / 'server.log'}")
        if time.monotonic() > deadline:
            process.kill()
            raise SandboxError(f"sandbox server did not start within {START_TIMEOUT_SECONDS:.0f} s")
        time.sleep(0.02)
    info = json.loads(ready.read_text())
    ready.unlink()
    endpoint = f"http://127.0.0.1:{info['port']}"
    sandbox = Sandbox(folder.resolve(), process.pid, endpoint, token)
    sandbox.status()
    write_profiles(folder, endpoint, token)
    _write_private(folder / "server.json", json.dumps({"pid": process.pid, "endpoint": endpoint, "token": token}))
    return sandbox, True


def stop(directory: str | os.PathLike[str] = DEFAULT_DIR) -> bool:
    """Stop the folder's sandbox and wait until its process is gone; False if none was running."""
    folder = Path(directory)
    sandbox = find(folder)
    (folder / "server.json").unlink(missing_ok=True)
    if sandbox is None:
        return False
    try:
        sandbox.control("shutdown", {})
    except SandboxError:
        os.kill(sandbox.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while _pid_alive(sandbox.pid):
        _reap(sandbox.pid)
        if time.monotonic() > deadline:
            os.kill(sandbox.pid, signal.SIGKILL)
            deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        time.sleep(0.02)
    return True


def _reap(pid: int) -> None:
    """Collect the exit status when this process started the server (else it lingers as a zombie)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
