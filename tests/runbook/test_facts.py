"""Facts read once per run (aws/facts.py): answered from the run's store, forgotten when the run changes them."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from runbook_lib.aws import clients, facts, keys
from runbook_lib.aws.context import Run
from runbook_lib.core import params


@pytest.fixture
def calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, own_clients: None) -> Path:
    """The call log of clients made for this test."""
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv(clients.CALL_LOG_ENV, str(log))
    log.touch()
    return log


def made(log: Path) -> list[str]:
    return [json.loads(line)["action"] for line in log.read_text().splitlines()]


def a_run(tmp_path: Path) -> Run:
    return Run("00_prerequisites", params.validate({"run_dir": str(tmp_path / "run")}))


def test_a_fact_is_read_once_and_an_alias_a_key_id_and_an_arn_are_the_same_key(world, tmp_path, calls):
    a_run(tmp_path)
    by_alias = keys.describe("sandbox-source", "us-east-1", "alias/cmkSource")
    assert keys.describe("sandbox-source", "us-east-1", by_alias.key_id) == by_alias
    assert keys.describe("sandbox-source", "us-east-1", by_alias.arn) == by_alias
    assert made(calls) == ["kms:ListAliases", "kms:DescribeKey", "kms:GetKeyPolicy"]


def test_without_a_run_every_call_goes_to_aws(world, calls):
    keys.describe("sandbox-source", "us-east-1", "alias/cmkSource")
    keys.describe("sandbox-source", "us-east-1", "alias/cmkSource")
    assert made(calls).count("kms:DescribeKey") == 2


def test_a_change_the_run_makes_forgets_only_what_it_changed(world, aws, tmp_path, calls):
    a_run(tmp_path)
    shared = keys.describe("sandbox-source", "us-east-1", "alias/cmkSource")
    vault_key = keys.describe("sandbox-source", "us-east-1", "alias/cmkSourceVault")
    kms = clients.client("sandbox-source", "kms", "us-east-1")
    policy = json.loads(shared.policy or "{}")
    policy["Statement"].append(
        {"Sid": "Extra", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::333333333333:root"},
         "Action": "kms:DescribeKey", "Resource": "*"}
    )  # fmt: skip
    kms.put_key_policy(KeyId=shared.arn, PolicyName="default", Policy=json.dumps(policy))
    before = len(made(calls))
    assert "333333333333" in keys.describe("sandbox-source", "us-east-1", shared.arn).shared_with
    assert keys.describe("sandbox-source", "us-east-1", vault_key.arn) == vault_key
    assert made(calls)[before:] == ["kms:GetKeyPolicy"], "the changed key's policy alone is read again"


def test_an_absence_is_a_fact_and_raises_as_aws_raised_it(world, tmp_path, calls):
    a_run(tmp_path)
    backup = clients.client("sandbox-target", "backup", "eu-west-1")
    for _ in range(2):
        with pytest.raises(backup.exceptions.ResourceNotFoundException) as raised:
            backup.describe_backup_vault(BackupVaultName="NoSuchVault")
        assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert made(calls) == ["backup:DescribeBackupVault"]
    backup.create_backup_vault(BackupVaultName="NoSuchVault")
    assert backup.describe_backup_vault(BackupVaultName="NoSuchVault")["BackupVaultName"] == "NoSuchVault"
    assert made(calls) == ["backup:DescribeBackupVault", "backup:CreateBackupVault", "backup:DescribeBackupVault"]


def test_a_throttled_read_is_not_kept(world, tmp_path, calls):
    world.configure(throttle_rate=1.0)
    try:
        a_run(tmp_path)
        sts = clients.session("sandbox-source").create_client(
            "sts", region_name="us-east-1", config=clients.Config(retries={"total_max_attempts": 1})
        )
        facts.register(sts.meta.events, "sandbox-source", "us-east-1")
        with pytest.raises(ClientError):
            sts.get_caller_identity()
    finally:
        world.configure(throttle_rate=0)
    assert sts.get_caller_identity()["Account"] == "222222222222"
    store = facts.active()
    assert store is not None and [key.split("|")[2] for key in store.answers] == ["sts:GetCallerIdentity"]


def test_the_steps_kernels_share_one_runs_facts_through_its_file(world, tmp_path, calls, monkeypatch):
    monkeypatch.setenv(facts.FACTS_ENV, str(tmp_path / "facts.jsonl"))
    a_run(tmp_path)
    keys.describe("sandbox-target", "eu-west-1", "alias/cmkTarget")
    facts.activate(facts.for_run())  # what the next step's kernel does
    keys.describe("sandbox-target", "eu-west-1", "alias/cmkTarget")
    assert made(calls) == ["kms:ListAliases", "kms:DescribeKey", "kms:GetKeyPolicy"]
    with facts.fresh():
        keys.describe("sandbox-target", "eu-west-1", "alias/cmkTarget")
    assert len(made(calls)) == 6, "fresh: asked again"
    kept = (tmp_path / "facts.jsonl").read_text()
    config = Path(os.environ["AWS_CONFIG_FILE"]).read_text()
    secrets = re.findall(r"aws_secret_access_key\s*=\s*(\S+)", config)
    assert secrets and not any(secret in kept for secret in secrets), "no credentials in the run folder"


def test_every_change_the_runbook_makes_says_which_facts_it_changes():
    """A new change action that is not in CHANGED_BY would leave the run reading a stale fact."""
    from runbook_lib.core.permissions import STEP_PERMISSIONS

    reads = {f"{service}:{op}" for service, ops in facts.FACT_OPERATIONS.items() for op in ops}
    changing = ("Put", "Create", "Delete", "Update", "Schedule", "Start", "Cancel", "Copy")
    declared = {
        action
        for accounts in STEP_PERMISSIONS.values()
        for actions in accounts.values()
        for action in actions
        if action.split(":")[1].startswith(changing)
    }
    assert declared - set(facts.CHANGED_BY) == set()
    assert all(set(forgotten) <= reads for forgotten in facts.CHANGED_BY.values())
