"""EFS, fully managed by AWS Backup: its backups are AWS Backup's own recovery points under the vault's key,
and their copies may go into a vault under any key (the AWS managed aws/backup key included)."""

from __future__ import annotations

from typing import Any

import pytest

from runbook_sandbox.accounts import SOURCE, SOURCE_REGION, TARGET, TARGET_REGION
from runbook_sandbox.backup.copy_rules import MSG_DEFAULT_KEY_VAULT, MSG_KEY_NOT_ACCESSIBLE
from runbook_sandbox.testing.walkthrough import (
    ROLE_ARN,
    SOURCE_VAULT,
    TARGET_VAULT_ARN,
    add_key_statements,
    back_up,
    copy,
    create_source_vault,
    create_target_vault,
    enable_cross_account,
    key_arn,
    share_statements,
    volume_arn,
)

RECOVERY_POINT_PREFIX = f"arn:aws:backup:{SOURCE_REGION}:{SOURCE.account_id}:recovery-point:"
TARGET_RECOVERY_POINT_PREFIX = f"arn:aws:backup:{TARGET_REGION}:{TARGET.account_id}:recovery-point:"
FILE_SYSTEM_PREFIX = f"arn:aws:elasticfilesystem:{SOURCE_REGION}:{SOURCE.account_id}:file-system/"


def file_system(aws: Any) -> dict[str, Any]:
    systems = aws.source("efs").describe_file_systems()["FileSystems"]
    return next(fs for fs in systems if fs["Name"] == "walkthrough-efs")


def file_system_arn(aws: Any) -> str:
    return f"{FILE_SYSTEM_PREFIX}{file_system(aws)['FileSystemId']}"


@pytest.fixture
def vault(aws: Any) -> str:
    create_source_vault(aws)
    return SOURCE_VAULT


def test_describe_file_systems_answers_through_the_sandbox(aws):
    found = file_system(aws)
    assert found["Encrypted"] is True
    assert found["KmsKeyId"] == key_arn(aws.source("kms"), "alias/cmkSource")
    assert {"Key": "Name", "Value": "walkthrough-efs"} in found["Tags"]
    assert found["FileSystemArn"] == file_system_arn(aws)


def test_an_efs_backup_is_a_backup_recovery_point_under_the_vault_key(aws, vault):
    backup = aws.source("backup")
    arn = file_system_arn(aws)
    job = backup.start_backup_job(BackupVaultName=vault, ResourceArn=arn, IamRoleArn=ROLE_ARN)
    point_arn = job["RecoveryPointArn"]
    assert point_arn.startswith(RECOVERY_POINT_PREFIX)
    point_id = point_arn.removeprefix(RECOVERY_POINT_PREFIX)
    assert len(point_id) == 36 and point_id == point_id.upper()
    vault_key = key_arn(aws.source("kms"), "alias/cmkSourceVault")
    described_job = backup.describe_backup_job(BackupJobId=job["BackupJobId"])
    assert (described_job["State"], described_job["ResourceType"]) == ("COMPLETED", "EFS")
    assert (described_job["RecoveryPointArn"], described_job["EncryptionKeyArn"]) == (point_arn, vault_key)
    point = backup.describe_recovery_point(BackupVaultName=vault, RecoveryPointArn=point_arn)
    assert (point["ResourceType"], point["ResourceName"], point["ResourceArn"]) == ("EFS", "walkthrough-efs", arn)
    assert (point["EncryptionKeyArn"], point["Status"]) == (vault_key, "COMPLETED")
    listed = backup.list_recovery_points_by_backup_vault(BackupVaultName=vault, ByResourceType="EFS")["RecoveryPoints"]
    assert [p["RecoveryPointArn"] for p in listed] == [point_arn]
    by_resource = backup.list_recovery_points_by_resource(ResourceArn=arn)["RecoveryPoints"]
    assert [p["RecoveryPointArn"] for p in by_resource] == [point_arn]


def default_key_target_vault(aws: Any) -> None:
    """Cross-account on, CABTargetVault under aws/backup (allowing the source account in), and
    cmkSourceVault, the key of the EFS recovery points, shared with the target account."""
    enable_cross_account(aws)
    create_target_vault(aws, key_alias=None)
    add_key_statements(aws, "alias/cmkSourceVault", share_statements())


def test_an_efs_copy_may_go_into_a_vault_under_the_aws_managed_key(aws, vault):
    default_key_target_vault(aws)
    efs_point = back_up(aws, file_system_arn(aws))
    job = copy(aws, efs_point)
    assert job["State"] == "COMPLETED", job
    managed = key_arn(aws.target("kms"), "alias/aws/backup")
    assert job["DestinationEncryptionKeyArn"] == managed
    assert job["DestinationRecoveryPointArn"].startswith(TARGET_RECOVERY_POINT_PREFIX)
    ebs = copy(aws, back_up(aws, volume_arn(aws)))
    assert (ebs["State"], ebs["StatusMessage"]) == ("FAILED", MSG_DEFAULT_KEY_VAULT)


def test_an_efs_copy_needs_its_source_vault_key_shared(aws, vault):
    enable_cross_account(aws)
    create_target_vault(aws)
    job = copy(aws, back_up(aws, file_system_arn(aws)))
    assert (job["State"], job["StatusMessage"]) == ("FAILED", MSG_KEY_NOT_ACCESSIBLE.format(kind="EBS"))
    assert TARGET_VAULT_ARN == job["DestinationBackupVaultArn"]
