"""The whole walkthrough with the real AWS CLI against a running sandbox, through its profiles."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runbook_sandbox.accounts import SOURCE, TARGET, TARGET_REGION
from runbook_sandbox.testing.walkthrough import share_statements, vault_policy

AWS = Path(sys.executable).parent / "aws"
ROLE = f"arn:aws:iam::{SOURCE.account_id}:role/service-role/AWSBackupDefaultServiceRole"


@pytest.fixture
def aws_cli(world, tmp_path):  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(world.environment())

    def run(profile: str, *args: str, region: str | None = None) -> Any:
        command = [str(AWS), "--profile", f"sandbox-{profile}", "--output", "json", *args]
        if region:
            command += ["--region", region]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{' '.join(args)} failed: {done.stderr}"
        return json.loads(done.stdout) if done.stdout.strip() else None

    run.tmp = tmp_path  # type: ignore[attr-defined]
    return run


def test_walkthrough_with_the_aws_cli(aws_cli):
    aws_cli("management", "backup", "update-global-settings", "--global-settings", "isCrossAccountBackupEnabled=true")
    settings = aws_cli("source", "backup", "describe-global-settings")["GlobalSettings"]
    assert settings["isCrossAccountBackupEnabled"] == "true"

    vault_key = aws_cli("source", "kms", "describe-key", "--key-id", "alias/cmkSourceVault")["KeyMetadata"]["Arn"]
    volume_key = aws_cli("source", "kms", "describe-key", "--key-id", "alias/cmkSource")["KeyMetadata"]["Arn"]
    target_key = aws_cli("target", "kms", "describe-key", "--key-id", "alias/cmkTarget")["KeyMetadata"]["Arn"]
    aws_cli(
        "source",
        "backup",
        "create-backup-vault",
        "--backup-vault-name",
        "SourceVault",
        "--encryption-key-arn",
        vault_key,
    )
    target_vault = aws_cli(
        "target",
        "backup",
        "create-backup-vault",
        "--backup-vault-name",
        "CABTargetVault",
        "--encryption-key-arn",
        target_key,
    )["BackupVaultArn"]
    assert target_vault == f"arn:aws:backup:{TARGET_REGION}:{TARGET.account_id}:backup-vault:CABTargetVault"
    aws_cli(
        "target",
        "backup",
        "put-backup-vault-access-policy",
        "--backup-vault-name",
        "CABTargetVault",
        "--policy",
        vault_policy(),
    )

    volumes = aws_cli("source", "ec2", "describe-volumes", "--filters", "Name=tag:Name,Values=walkthrough-volume")
    volume_id = volumes["Volumes"][0]["VolumeId"]
    job = aws_cli(
        "source",
        "backup",
        "start-backup-job",
        "--backup-vault-name",
        "SourceVault",
        "--resource-arn",
        f"arn:aws:ec2:us-east-1:{SOURCE.account_id}:volume/{volume_id}",
        "--iam-role-arn",
        ROLE,
        "--lifecycle",
        "DeleteAfterDays=35",
        "--recovery-point-tags",
        "Project=walkthrough",
    )
    described = aws_cli("source", "backup", "describe-backup-job", "--backup-job-id", job["BackupJobId"])
    assert described["State"] == "COMPLETED"
    point = described["RecoveryPointArn"]
    source_point = aws_cli(
        "source",
        "backup",
        "describe-recovery-point",
        "--backup-vault-name",
        "SourceVault",
        "--recovery-point-arn",
        point,
    )
    assert source_point["EncryptionKeyArn"] == volume_key != vault_key
    assert source_point["Lifecycle"] == {"DeleteAfterDays": 35}
    snapshot = aws_cli("source", "ec2", "describe-snapshots", "--snapshot-ids", point.rsplit("/", 1)[1])
    assert snapshot["Snapshots"][0]["KmsKeyId"] == volume_key

    policy = json.loads(
        aws_cli("source", "kms", "get-key-policy", "--key-id", volume_key, "--policy-name", "default")["Policy"]
    )
    policy["Statement"] += share_statements()
    policy_file = aws_cli.tmp / "key-policy.json"
    policy_file.write_text(json.dumps(policy))
    aws_cli(
        "source",
        "kms",
        "put-key-policy",
        "--key-id",
        volume_key,
        "--policy-name",
        "default",
        "--policy",
        f"file://{policy_file}",
    )

    copy = aws_cli(
        "source",
        "backup",
        "start-copy-job",
        "--recovery-point-arn",
        point,
        "--source-backup-vault-name",
        "SourceVault",
        "--destination-backup-vault-arn",
        target_vault,
        "--iam-role-arn",
        ROLE,
    )
    copy_job = aws_cli("source", "backup", "describe-copy-job", "--copy-job-id", copy["CopyJobId"])["CopyJob"]
    assert copy_job["State"] == "COMPLETED", copy_job
    destination = copy_job["DestinationRecoveryPointArn"]

    target_point = aws_cli(
        "target",
        "backup",
        "describe-recovery-point",
        "--backup-vault-name",
        "CABTargetVault",
        "--recovery-point-arn",
        destination,
        region=TARGET_REGION,
    )
    assert target_point["EncryptionKeyArn"] == target_key
    assert target_point["SourceBackupVaultArn"].endswith(":backup-vault:SourceVault")
    target_snapshot = aws_cli(
        "target", "ec2", "describe-snapshots", "--snapshot-ids", destination.rsplit("/", 1)[1], region=TARGET_REGION
    )
    assert target_snapshot["Snapshots"][0]["KmsKeyId"] == target_key
    assert target_snapshot["Snapshots"][0]["Encrypted"] is True
