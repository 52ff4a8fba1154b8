"""The control API answers only requests a web page cannot forge: a JSON body and the sandbox's token."""

from __future__ import annotations

import json
import os
import stat
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from runbook_sandbox import process
from runbook_sandbox.accounts import CONTROL_TOKEN_HEADER, CONTROL_TOKEN_VARIABLE


def post(world: process.Sandbox, action: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    request = urllib.request.Request(f"{world.endpoint}/_sandbox/{action}", data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def vault_names(aws) -> list[str]:  # type: ignore[no-untyped-def]
    return [v["BackupVaultName"] for v in aws.source("backup").list_backup_vaults()["BackupVaultList"]]


@pytest.mark.parametrize(
    "headers, status, error",
    [
        (
            {"Content-Type": "text/plain"},
            403,
            "the control API needs the sandbox's token in the X-Sandbox-Token header "
            "(RUNBOOK_SANDBOX_TOKEN in sandbox.env)",
        ),
        (
            {"Content-Type": "application/json"},
            403,
            "the control API needs the sandbox's token in the X-Sandbox-Token "
            "header (RUNBOOK_SANDBOX_TOKEN in sandbox.env)",
        ),
        (
            {"Content-Type": "application/json", CONTROL_TOKEN_HEADER: "guessed"},
            403,
            "the control API needs the "
            "sandbox's token in the X-Sandbox-Token header (RUNBOOK_SANDBOX_TOKEN in sandbox.env)",
        ),
        (
            {"Content-Type": "text/plain", CONTROL_TOKEN_HEADER: "TOKEN"},
            415,
            "control requests must send a JSON body (Content-Type: application/json)",
        ),
    ],
)
def test_a_forgeable_reset_is_refused_and_changes_nothing(world, aws, headers, status, error):
    aws.source("backup").create_backup_vault(BackupVaultName="Survivor")
    headers = {k: (world.token if v == "TOKEN" else v) for k, v in headers.items()}
    answered, body = post(world, "reset", b'{"scenario": "walkthrough"}', headers)
    assert answered == status
    assert body.count(b"\n") == 0 and json.loads(body) == {"error": error}
    assert vault_names(aws) == ["Survivor"]


def test_a_get_without_the_token_is_refused(world):
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(f"{world.endpoint}/_sandbox/state", timeout=30)
    assert excinfo.value.code == 403


def test_the_token_reaches_callers_through_the_sandbox_folder(world):
    assert len(world.token) >= 32
    found = process.find(world.directory)
    assert found is not None and found.token == world.token
    env_lines = (world.directory / "sandbox.env").read_text().splitlines()
    assert f"export {CONTROL_TOKEN_VARIABLE}={world.token}" in env_lines
    assert json.loads((world.directory / "server.json").read_text())["token"] == world.token
    for name in ("sandbox.env", "server.json"):
        assert stat.S_IMODE(os.stat(world.directory / name).st_mode) == 0o600, name


def test_the_token_is_not_on_the_server_command_line(world):
    command_line = Path(f"/proc/{world.pid}/cmdline").read_bytes()
    assert world.token.encode() not in command_line
    assert world.status()["pid"] == world.pid


@pytest.mark.parametrize("scenario", [["walkthrough"], {"name": "walkthrough"}, 7])
def test_a_scenario_that_is_not_a_name_is_refused_in_one_line(world, scenario):
    with pytest.raises(process.SandboxError) as excinfo:
        world.control("reset", {"scenario": scenario})
    assert str(excinfo.value).startswith(f"sandbox refused reset: unknown scenario {scenario!r}; choose one of")
