"""`runbook sandbox ...`: start, a second start, status, reset to the same IDs, scenarios, stop."""

from __future__ import annotations

import configparser
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from runbook_sandbox import process
from runbook_sandbox.accounts import ACCOUNTS

RUNBOOK = Path(sys.executable).parent / "runbook"


def runbook(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(RUNBOOK), *args], capture_output=True, text=True, timeout=120)


def running(pid: int) -> bool:
    """True while the process exists and is not merely waiting for init to reap it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def ids_of(endpoint: str) -> tuple[list[str], list[str]]:
    account = ACCOUNTS[1]
    session = boto3.Session(
        aws_access_key_id=account.access_key_id,
        aws_secret_access_key=account.secret_access_key,
        region_name="us-east-1",
    )
    keys = sorted(k["KeyId"] for k in session.client("kms", endpoint_url=endpoint).list_keys()["Keys"])
    volumes = sorted(v["VolumeId"] for v in session.client("ec2", endpoint_url=endpoint).describe_volumes()["Volumes"])
    return keys, volumes


def test_start_status_reset_stop(tmp_path):
    folder = tmp_path / "sb"
    started = runbook("sandbox", "start", "--dir", str(folder))
    assert started.returncode == 0, started.stderr
    assert "Sandbox started at http://127.0.0.1:" in started.stdout
    sandbox = process.find(folder)
    assert sandbox is not None
    try:
        again = runbook("sandbox", "start", "--dir", str(folder))
        assert again.returncode == 0 and "already running" in again.stdout

        config = configparser.ConfigParser()
        config.read(folder / "aws-config")
        assert sorted(config.sections()) == sorted(f"profile {a.profile}" for a in ACCOUNTS)
        assert all(config[s]["endpoint_url"] == sandbox.endpoint for s in config.sections())
        env_lines = (folder / "sandbox.env").read_text().splitlines()
        assert f"export AWS_CONFIG_FILE={(folder / 'aws-config').resolve()}" in env_lines
        assert any(line.startswith("export AWS_SHARED_CREDENTIALS_FILE=") for line in env_lines)

        status = runbook("sandbox", "status", "--dir", str(folder))
        assert status.returncode == 0 and "scenario walkthrough" in status.stdout

        first = ids_of(sandbox.endpoint)
        boto3.client(
            "kms",
            endpoint_url=sandbox.endpoint,
            region_name="us-east-1",
            aws_access_key_id=ACCOUNTS[1].access_key_id,
            aws_secret_access_key="x",
        ).create_key()
        assert ids_of(sandbox.endpoint) != first
        assert runbook("sandbox", "reset", "--dir", str(folder)).returncode == 0
        assert ids_of(sandbox.endpoint) == first
        assert runbook("sandbox", "reset", "--dir", str(folder)).returncode == 0
        assert ids_of(sandbox.endpoint) == first
    finally:
        stopped = runbook("sandbox", "stop", "--dir", str(folder))
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert not running(sandbox.pid), "stop must leave no process behind"
    assert runbook("sandbox", "status", "--dir", str(folder)).returncode == 1


def test_scenarios_are_listed_with_their_story():
    listed = runbook("sandbox", "scenarios")
    assert listed.returncode == 0
    names = [line.split()[0] for line in listed.stdout.splitlines()]
    assert {"walkthrough", "outside-organization", "cross-account-locked", "default-key-target-vault"} <= set(names)


def test_reset_to_an_unknown_scenario_is_refused(sandbox):
    result = runbook("sandbox", "reset", "--dir", str(sandbox.directory), "--scenario", "nope")
    assert result.returncode == 2
    assert "argument --scenario: unknown scenario 'nope'; choose one of cross-account-locked, " in result.stderr


def test_commands_without_a_running_sandbox_say_so(tmp_path):
    result = runbook("sandbox", "reset", "--dir", str(tmp_path))
    assert result.returncode == 1
    expected = f"runbook: no sandbox is running in {tmp_path}; start one with: runbook sandbox start"
    assert result.stderr.strip() == expected


def test_job_seconds_is_applied_at_start(tmp_path):
    sandbox, _ = process.start(tmp_path / "slow", job_seconds=5)
    try:
        assert sandbox.status()["settings"]["job_seconds"] == 5
    finally:
        process.stop(tmp_path / "slow")
    assert os.path.exists(tmp_path / "slow" / "server.log")


PRIVATE_FILES = ("aws-config", "credentials", "sandbox.env", "server.json", "server.log")


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """Files and folders made as with most systems' umask (022: 0644 and 0755), whatever the runner's."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def listed_mode(path: Path) -> str:
    """The mode as `ls -l` shows it."""
    return stat.filemode(path.stat().st_mode)


@pytest.mark.parametrize("made_before", [False, True], ids=["new folder", "folder made before"])
def test_the_folder_and_its_files_are_the_owners_only(tmp_path, usual_umask, made_before):
    """aws-config holds the profiles' access keys, sandbox.env and server.json the control token: nobody else
    on the machine may list the folder or read them. A folder made before (with mkdir, or by an older
    runbook that wrote its files 0644) is tightened, and so are the files in it."""
    folder = tmp_path / "sb"
    if made_before:
        folder.mkdir()
        for name in ("aws-config", "credentials", "sandbox.env", "server.log"):
            (folder / name).write_text("written before\n")
        assert (listed_mode(folder), listed_mode(folder / "aws-config")) == ("drwxr-xr-x", "-rw-r--r--")
    process.start(folder)
    try:
        modes = {name: listed_mode(folder / name) for name in (".", *PRIVATE_FILES)}
        assert modes == {".": "drwx------", **dict.fromkeys(PRIVATE_FILES, "-rw-------")}
    finally:
        process.stop(folder)


def test_a_folder_that_no_sandbox_used_keeps_its_mode(tmp_path, usual_umask):
    """`--dir` naming a folder of other things (a project folder, `.`) does not close it to others: only the
    sandbox's own files in it are the owner's only."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine\n")
    process.start(folder)
    try:
        assert listed_mode(folder) == "drwxr-xr-x"
        modes = {name: listed_mode(folder / name) for name in PRIVATE_FILES}
        assert modes == dict.fromkeys(PRIVATE_FILES, "-rw-------")
    finally:
        process.stop(folder)
