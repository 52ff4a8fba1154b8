"""What a run refuses, it refuses before its first change: everything its first reads can decide (the
accounts behind the profiles, the resource's key and its manager, every parameter a later step of the run
will use) is decided before step 00 changes anything, in one line naming the parameter."""

from __future__ import annotations

import configparser
import os
from pathlib import Path

import pytest
import yaml

from runbook_lib.app import cli
from runbook_lib.core import guard
from runbook_sandbox.accounts import MANAGEMENT, SOURCE, TARGET
from tests.runbook_steps import SANDBOX_PARAMETERS, command

SANDBOX = yaml.safe_load(SANDBOX_PARAMETERS.read_text())
WITH_THE_DRILL = "00_prerequisites,01_create_backup,02_verify_source_key,03_share_source_key,04_copy_to_target,"


def parameters(tmp_path: Path, **overrides: object) -> str:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({**SANDBOX, **overrides}))
    return str(path)


def refused_before_any_change(world, capsys, argv: list[str], field: str) -> str:  # type: ignore[no-untyped-def]
    """`runbook ARGV` in this process: exit 1, one line naming the field, and AWS as it was (vaults, policies,
    the setting, jobs and recovery points of every account)."""
    before = world.state()
    assert cli.main(argv) == 1
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"runbook: parameter {field}: "), lines[0]
    assert world.state() == before
    return lines[0]


def test_the_same_account_under_another_profile_name_is_refused(world, tmp_path, capsys, monkeypatch, own_clients):
    """Validation sees two profile names; STS says they are one account, and the Regions are one."""
    config = configparser.ConfigParser()
    config.read(os.environ["AWS_CONFIG_FILE"])
    config["profile source-again"] = dict(config["profile sandbox-source"])
    again = tmp_path / "aws-config"
    with again.open("w") as handle:
        config.write(handle)
    chosen = parameters(tmp_path, target_profile="source-again", target_region="us-east-1")
    before = world.state()

    monkeypatch.setenv("AWS_CONFIG_FILE", str(again))  # another config file: own_clients reads it afresh
    monkeypatch.delenv(guard.CONFIRMED_ENV, raising=False)  # the command pops it: back as it was after the test
    done = command(capsys, "run", chosen, "--out", str(tmp_path / "run"))

    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"runbook: parameter target_profile: signs as account {SOURCE.account_id}, as source_profile sandbox-source "
        "does, and target_region is the source's (us-east-1): nothing would cross an account or a Region; allowed: "
        "a profile of another account, or another target_region"
    )
    assert world.state() == before and not (tmp_path / "run").exists()


def test_a_volume_under_an_aws_managed_key_is_refused_before_any_vault_or_backup(world, tmp_path, capsys):
    line = refused_before_any_change(
        world, capsys, ["run", parameters(tmp_path, resource_name="default-key-volume")], "resource_name"
    )
    assert "is encrypted with the AWS managed key alias/aws/ebs, which no other account can use" in line
    assert "runbook fix PARAMS.yaml source-key-customer-managed" in line


def test_the_fix_makes_a_volume_under_a_customer_key_without_a_backup_first(world, aws, tmp_path, capsys):
    """The refusal's fix works before any backup: it snapshots the volume itself."""
    chosen = parameters(tmp_path, resource_name="default-key-volume", run_dir=str(tmp_path / "fix"))
    snapshots_before = aws.source("ec2").describe_snapshots(OwnerIds=["self"])["Snapshots"]
    assert cli.main(["fix", chosen, "source-key-customer-managed"]) == 0
    left = aws.source("ec2").describe_snapshots(OwnerIds=["self"])["Snapshots"]
    assert len(left) == len(snapshots_before) + 1, "the copy under the customer key stays; the one taken to copy goes"
    made = yaml.safe_load((tmp_path / "fix" / "state.json").read_text())["fixes"]["reencrypted_volume_arn"]
    volume = aws.source("ec2").describe_volumes(VolumeIds=[made.rsplit("/", 1)[1]])["Volumes"][0]
    key = aws.source("kms").describe_key(KeyId=volume["KmsKeyId"])["KeyMetadata"]
    assert key["KeyManager"] == "CUSTOMER"
    capsys.readouterr()
    assert cli.main(["check", parameters(tmp_path, resource_arn=made, resource_name="")]) == 1, "not backed up yet"
    table = capsys.readouterr().out
    assert "source-key-customer-managed  pass" in table and "recovery-point-ready         fail" in table


def test_a_management_profile_of_another_account_is_refused_before_step_00_changes_anything(world, tmp_path, capsys):
    line = refused_before_any_change(
        world, capsys, ["run", parameters(tmp_path, management_profile="sandbox-source")], "management_profile"
    )
    assert f"signs as account {SOURCE.account_id}, which is not the management account {MANAGEMENT.account_id}" in line


def test_a_key_the_target_account_cannot_read_is_named(world, aws, tmp_path, capsys):
    """A target_vault_key of another account: AWS answers AccessDenied, the line names the parameter."""
    foreign = aws.source("kms", "eu-west-1").create_key()["KeyMetadata"]["Arn"]
    line = refused_before_any_change(
        world, capsys, ["run", parameters(tmp_path, target_vault_key=foreign)], "target_vault_key"
    )
    assert f"KMS key {foreign} cannot be described by the target account {TARGET.account_id}" in line


@pytest.mark.parametrize(
    "overrides, steps, field, words",
    [
        (
            {"restore_role_name": "NoSuchRestoreRole"},
            WITH_THE_DRILL + "05_verify_target_key,08_restore_drill",
            "restore_role_name",
            "no IAM role NoSuchRestoreRole in the destination account",
        ),
        (
            {"resource_name": "walkthrough-db", "two_hop_types": ["RDS"], "hop_vault_key": "alias/no-such-hop-key"},
            "04_copy_to_target",
            "hop_vault_key",
            "no KMS key alias/no-such-hop-key in the source account",
        ),
        (
            {"resource_name": "default-key-volume", "force_copy": True, "reencrypt_key": "alias/no-such-key"},
            WITH_THE_DRILL + "05_verify_target_key,06_troubleshoot",
            "reencrypt_key",
            "no KMS key alias/no-such-key in the source account",
        ),
    ],
    ids=["restore-role-of-step-08", "hop-key-of-step-04", "reencrypt-key-of-step-06"],
)
def test_a_parameter_only_a_later_step_uses_is_checked_before_the_first(
    world, tmp_path, capsys, overrides, steps, field, words
):
    line = refused_before_any_change(world, capsys, ["run", parameters(tmp_path, **overrides), "--steps", steps], field)
    assert words in line


def test_an_error_line_quotes_at_most_200_characters_of_a_value(world, tmp_path, capsys):
    huge = "a" * 10_000_000
    line = refused_before_any_change(world, capsys, ["run", parameters(tmp_path, resource_name=huge)], "resource_name")
    assert len(line) < 500 and "... (10000002 characters); allowed: up to 256 characters" in line
