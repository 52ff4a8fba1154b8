"""The guard before a change to accounts that are not the sandbox.

A second server stands in for real AWS: the sandbox started `--unmarked` (the same accounts and world,
without the header only the sandbox sends: the guard cannot tell it by account number), and moto's own
server reached through assume-role profiles, as a person logs in to three accounts from one.
"""

from __future__ import annotations

import configparser
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
import yaml

from runbook_lib.aws import clients
from runbook_lib.aws import world as worlds
from runbook_lib.core import guard
from runbook_lib.core.steps import notebook_path
from runbook_lib.display import plans
from runbook_lib.steps.walkthrough import Run, prerequisites
from runbook_sandbox import process
from runbook_sandbox.accounts import MANAGEMENT, SOURCE, TARGET
from tests.runbook_steps import SANDBOX_PARAMETERS, at_a_terminal, command

ACCOUNTS = (SOURCE.account_id, TARGET.account_id, MANAGEMENT.account_id)


@pytest.fixture(scope="module")
def unmarked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[process.Sandbox]:
    folder = tmp_path_factory.mktemp("unmarked")
    running, _ = process.start(folder, unmarked=True)
    yield running
    process.stop(folder)


@pytest.fixture
def elsewhere(unmarked: process.Sandbox) -> dict[str, str]:
    """The environment of a command that talks to the unmarked server, from its fresh walkthrough world."""
    unmarked.reset("walkthrough")
    environment = {**os.environ, **unmarked.environment()}
    environment.pop(guard.CONFIRMED_ENV, None)
    return environment


def within(monkeypatch: pytest.MonkeyPatch, environment: dict[str, str]) -> None:
    """This process's environment made `environment` (as a `runbook` process given it would have it) until the
    test ends, for a command run in process, without a terminal as CI runs it; guard.CONFIRMED_ENV, which a
    confirmed command sets, as it was after the test too. The test asks for own_clients: the runbook's clients
    are cached per process and profile, and these profiles' names are the sandbox's."""
    monkeypatch.setenv(guard.CONFIRMED_ENV, "")  # recorded as it was: restored after the test
    for name in set(os.environ) - set(environment) - {"PYTEST_CURRENT_TEST"}:  # pytest's own, changed per phase
        monkeypatch.delenv(name)
    for name, value in environment.items():
        if os.environ.get(name) != value and name != "PYTEST_CURRENT_TEST":
            monkeypatch.setenv(name, value)


def names_who_and_where(text: str, endpoint: str) -> bool:
    return (
        all(account in text for account in ACCOUNTS)
        and "us-east-1" in text
        and "eu-west-1" in text
        and (endpoint in text)
    )


def vaults(sandbox: process.Sandbox) -> list[str]:
    return sorted(name for entry in sandbox.state()["backup"].values() for name in entry["vaults"])


def test_the_sandbox_itself_runs_without_a_question(world, tmp_path, capsys, monkeypatch):
    within(monkeypatch, dict(os.environ))
    done = command(
        capsys, "run", str(SANDBOX_PARAMETERS), "--out", str(tmp_path / "run"), "--steps", "00_prerequisites"
    )
    assert done.returncode == 0, done.stderr
    assert "Not the local sandbox" not in done.stdout


def test_without_a_terminal_or_yes_a_run_refuses_in_one_line_and_changes_nothing(
    unmarked, elsewhere, tmp_path, capsys, monkeypatch, own_clients
):
    before = unmarked.state()
    within(monkeypatch, elsewhere)
    done = command(capsys, "run", str(SANDBOX_PARAMETERS), "--out", str(tmp_path / "run"))
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("runbook: not confirmed: the run (apply: true) in real AWS accounts ")
    assert names_who_and_where(lines[0], unmarked.endpoint)
    assert "nothing was changed; confirm it at a terminal, or add --yes" in lines[0]
    assert unmarked.state() == before
    assert not (tmp_path / "run").exists()


def test_at_a_terminal_a_run_shows_its_plan_and_who_and_where_then_asks(unmarked, elsewhere, tmp_path):
    args = ["run", str(SANDBOX_PARAMETERS), "--out", str(tmp_path / "run"), "--steps", "00_prerequisites"]

    code, shown = at_a_terminal(args, b"n\n", env=elsewhere)
    assert code == 1, shown
    asked = shown[: shown.index("[y/N]")]
    assert "Dry run (apply: false): nothing was changed in AWS" in asked
    assert "Not the local sandbox: the run would make 4 change(s) (planned above) in these real AWS accounts:" in asked
    assert re.search(
        rf"source\s+account {SOURCE.account_id}, profile sandbox-source, Region us-east-1, partition aws", asked
    )
    assert names_who_and_where(asked, unmarked.endpoint)
    assert "not confirmed" in shown and "the answer was not yes" in shown
    assert vaults(unmarked) == []

    code, shown = at_a_terminal(args, b"y\n", env=elsewhere)
    assert code == 0, shown
    assert "backup:CreateBackupVault on CABTargetVault: applied" in shown
    assert vaults(unmarked) == ["CABTargetVault", "SourceVault"]


def test_yes_confirms_a_batch_run_once_it_has_shown_who_and_where(
    unmarked, elsewhere, tmp_path, capsys, monkeypatch, own_clients
):
    within(monkeypatch, elsewhere)
    done = command(
        capsys, "run", str(SANDBOX_PARAMETERS), "--out", str(tmp_path / "run"), "--steps", "00_prerequisites", "--yes"
    )
    assert done.returncode == 0, done.stderr
    assert names_who_and_where(done.stdout, unmarked.endpoint)
    assert done.stdout.index("Confirmed by --yes.") < done.stdout.index("Changes made by this run:")
    assert vaults(unmarked) == ["CABTargetVault", "SourceVault"]

    within(monkeypatch, elsewhere)  # as a new process has it: without the confirmation the run above set
    again = command(
        capsys, "run", str(SANDBOX_PARAMETERS), "--out", str(tmp_path / "run"), "--steps", "00_prerequisites", "--yes"
    )
    assert again.returncode == 0, again.stderr
    assert "Nothing needed changing." in again.stdout
    assert "Confirmed by --yes." not in again.stdout, "nothing planned: nothing to confirm"

    before = unmarked.state()
    stale = {**elsewhere, guard.CONFIRMED_ENV: ",".join(ACCOUNTS)}  # left in the shell: the command asks anyway
    within(monkeypatch, stale)
    cleanup = command(capsys, "run", str(SANDBOX_PARAMETERS), "--out", str(tmp_path / "run"), "--steps", "07_cleanup")
    assert cleanup.returncode == 1
    assert cleanup.stderr.startswith("runbook: not confirmed: the run (apply: true) in real AWS accounts ")
    assert unmarked.state() == before, "a cleanup without confirmation deletes nothing"


def test_a_fix_shows_its_diff_with_or_without_apply_and_asks_on_real_accounts(
    unmarked, elsewhere, tmp_path, capsys, monkeypatch, own_clients
):
    dry = tmp_path / "dry.yaml"
    dry.write_text(yaml.safe_dump({"apply": False}))
    before = unmarked.state()

    within(monkeypatch, elsewhere)
    planned = command(capsys, "fix", str(SANDBOX_PARAMETERS), str(dry), "source-key-shared")
    assert planned.returncode == 0, planned.stderr
    assert "kms:PutKeyPolicy" in planned.stdout and "(planned)" in planned.stdout and "\n+" in planned.stdout

    within(monkeypatch, elsewhere)
    refused = command(capsys, "fix", str(SANDBOX_PARAMETERS), "source-key-shared")
    assert refused.returncode == 1
    assert refused.stdout.startswith(planned.stdout.split("\n\n")[0]), "the diff is shown before the refusal"
    assert refused.stderr.startswith("runbook: not confirmed: the fix source-key-shared would make 1 change(s)")
    assert SOURCE.account_id in refused.stderr and unmarked.endpoint in refused.stderr
    assert unmarked.state() == before

    within(monkeypatch, elsewhere)
    made = command(capsys, "fix", str(SANDBOX_PARAMETERS), "source-key-shared", "--yes")
    assert made.returncode == 0, made.stderr
    assert "\n+" in made.stdout and "Confirmed by --yes." in made.stdout
    assert unmarked.state() != before


def test_a_kernel_makes_no_change_on_real_accounts_unless_they_were_confirmed(
    unmarked, elsewhere, tmp_path, monkeypatch, own_clients
):
    for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.setenv(name, elsewhere[name])
    monkeypatch.delenv(guard.CONFIRMED_ENV, raising=False)
    run = Run(
        "00_prerequisites", {"run_dir": str(tmp_path / "run"), "apply": True, "resource_name": "walkthrough-volume"}
    )
    assert run.world().headline().startswith(f"Real AWS accounts: source {SOURCE.account_id} (us-east-1)")

    with pytest.raises(guard.NotConfirmed, match="step 00_prerequisites would make 4 change"):
        run.carry_out(prerequisites(run))
    assert vaults(unmarked) == []

    monkeypatch.setenv(guard.CONFIRMED_ENV, ",".join(ACCOUNTS))
    run.carry_out(prerequisites(run))
    assert vaults(unmarked) == ["CABTargetVault", "SourceVault"]


# ----- moto's own server, three accounts from one login -----------------------------------------------------------

ROLES = {"src": "444455556666", "dst": "777788889999", "mgmt": "121212121212"}


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def assume_role_profiles(folder: Path, endpoint: str) -> dict[str, str]:
    """The documented assume-role profiles (docs/accounts/profiles.md): one login (`login`), one role per account."""
    config = configparser.ConfigParser()
    config["profile login"] = {"region": "us-east-1", "endpoint_url": endpoint}
    for name, account in ROLES.items():
        config[f"profile {name}"] = {
            "role_arn": f"arn:aws:iam::{account}:role/RunbookOperator",
            "source_profile": "login",
            "role_session_name": "runbook",
            "endpoint_url": endpoint,
        }
    with (folder / "config").open("w") as handle:
        config.write(handle)
    (folder / "credentials").write_text(
        "[login]\naws_access_key_id = AKIAEXAMPLELOGIN0001\naws_secret_access_key = example-secret-not-a-real-one\n"
    )
    return {"AWS_CONFIG_FILE": str(folder / "config"), "AWS_SHARED_CREDENTIALS_FILE": str(folder / "credentials")}


def test_moto_s_own_server_is_not_the_sandbox(moto_server, tmp_path, capsys, monkeypatch, own_clients):
    environment: dict[str, Any] = {**os.environ, **assume_role_profiles(tmp_path, moto_server)}
    environment.pop(guard.CONFIRMED_ENV, None)
    chosen = tmp_path / "params.yaml"
    chosen.write_text(
        yaml.safe_dump(
            {
                "source_profile": "src",
                "target_profile": "dst",
                "management_profile": "mgmt",
                "source_region": "us-east-1",
                "target_region": "eu-west-1",
                "resource_name": "app-data",
                "apply": True,
            }
        )
    )
    within(monkeypatch, environment)
    done = command(capsys, "run", str(chosen), "--out", str(tmp_path / "run"))
    assert done.returncode == 1, done.stdout
    assert len(done.stderr.splitlines()) == 1
    for role, account in ROLES.items():
        assert account in done.stderr
    assert moto_server in done.stderr and "nothing was changed" in done.stderr
    assert not (tmp_path / "run").exists()


def plain_papermill(step: str, out: Path, env: dict[str, str], *parameters: str) -> subprocess.CompletedProcess[str]:
    papermill_cli = Path(sys.executable).parent / "papermill"
    command = [str(papermill_cli), str(notebook_path(step)), str(out), "-f", str(SANDBOX_PARAMETERS), *parameters]
    environment = {**env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"}
    return subprocess.run(
        [*command, "--no-progress-bar"], capture_output=True, text=True, timeout=600, cwd=out.parent, env=environment
    )


def test_a_notebook_names_its_world_at_its_top_and_plain_papermill_cannot_change_real_accounts(
    unmarked, elsewhere, tmp_path
):
    done = plain_papermill(
        "00_prerequisites", tmp_path / "out.ipynb", elsewhere, "-p", "run_dir", str(tmp_path / "state")
    )
    assert done.returncode == 1
    assert "NotConfirmed" in done.stderr and "step 00_prerequisites would make 4 change(s)" in done.stderr
    assert vaults(unmarked) == []
    outputs = [o for cell in nbformat.read(tmp_path / "out.ipynb", 4).cells for o in cell.get("outputs", [])]
    first = outputs[0]["data"]
    assert first["text/plain"] == (
        f"Real AWS accounts: source {SOURCE.account_id} (us-east-1), destination {TARGET.account_id} (eu-west-1), "
        f"management {MANAGEMENT.account_id} (us-east-1). A change here changes them."
    )
    assert "#cf222e" in first["text/html"]


def test_an_apply_button_on_a_real_account_names_it_and_pressing_it_confirms(
    unmarked, elsewhere, tmp_path, monkeypatch, own_clients
):
    for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.setenv(name, elsewhere[name])
    monkeypatch.delenv(guard.CONFIRMED_ENV, raising=False)
    run = Run("00_prerequisites", {"run_dir": str(tmp_path / "run"), "resource_name": "walkthrough-volume"})
    shown = plans.plan(run, prerequisites(run))
    labels = {panel.change.target: panel.button.description for panel in shown.panels}
    assert labels["SourceVault"] == f"Apply to real account {SOURCE.account_id}"
    assert labels["CABTargetVault"] == f"Apply to real account {TARGET.account_id}"
    assert labels["organization"] == f"Apply to real account {MANAGEMENT.account_id}"

    source_vault = next(panel for panel in shown.panels if panel.change.target == "SourceVault")
    source_vault.button.click()
    assert source_vault.change.applied, source_vault.view.failure
    assert vaults(unmarked) == ["SourceVault"]


def test_an_apply_button_on_the_sandbox_says_apply(world, tmp_path):
    run = Run("00_prerequisites", {"run_dir": str(tmp_path / "run"), "resource_name": "walkthrough-volume"})
    assert {panel.button.description for panel in plans.plan(run, prerequisites(run)).panels} == {"Apply"}


def test_a_step_names_only_the_accounts_it_uses_and_an_empty_management_profile_is_none(world, tmp_path):
    given = {"run_dir": str(tmp_path / "run"), "resource_name": "walkthrough-volume", "management_profile": ""}
    assert [side.role for side in Run("01_create_backup", given).world().sides] == ["source"]
    assert [side.role for side in Run("05_verify_target_key", given).world().sides] == ["source", "destination"]
    assert [side.role for side in Run("00_prerequisites", given).world().sides] == ["source", "destination"]


def test_a_profile_that_sends_one_service_elsewhere_is_not_all_sandbox(world, monkeypatch, own_clients):
    assert worlds.side("source", SOURCE.profile, "us-east-1").sandbox
    clients.forget()
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", "https://kms.us-east-1.amazonaws.com")
    found = worlds.side("source", SOURCE.profile, "us-east-1")
    assert not found.sandbox, "STS answered from the sandbox, KMS would go to AWS"


CONFIG_WITH_SERVICES = """[profile plain]
region = us-east-1
[profile global]
endpoint_url = http://127.0.0.1:1
[profile sectioned]
services = local
[services local]
kms =
  endpoint_url = http://127.0.0.1:2
"""


@pytest.mark.parametrize(
    "profile, environment, service",
    [
        ("plain", {}, "kms"),
        ("plain", {"AWS_ENDPOINT_URL": "http://127.0.0.1:3"}, "backup"),
        ("plain", {"AWS_ENDPOINT_URL_KMS": "http://127.0.0.1:4"}, "kms"),
        ("plain", {"AWS_ENDPOINT_URL_KMS": "http://127.0.0.1:4"}, "ec2"),
        ("global", {}, "sts"),
        ("sectioned", {}, "kms"),
        ("sectioned", {}, "backup"),
        ("global", {"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}, "sts"),
    ],
)
def test_the_endpoint_a_profile_configures_is_the_one_its_client_uses(
    profile, environment, service, tmp_path, monkeypatch, own_clients
):
    """The sandbox test reads each service's endpoint from the configuration, without making its client."""
    config = tmp_path / "config"
    config.write_text(CONFIG_WITH_SERVICES)
    for name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL") or n == "AWS_PROFILE"]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    made = clients.client(profile, service, "us-east-1").meta.endpoint_url
    configured = clients.configured_endpoint(profile, service)
    assert configured == made if configured else made.endswith(".amazonaws.com")
