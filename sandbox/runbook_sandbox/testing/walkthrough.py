"""The walkthrough's steps as plain boto3 calls, shared by the tests that need a world part-way done."""

from __future__ import annotations

import json
from typing import Any

from runbook_sandbox.accounts import SOURCE, SOURCE_REGION, TARGET, TARGET_REGION

SOURCE_VAULT = "SourceVault"
TARGET_VAULT = "CABTargetVault"
ROLE_ARN = f"arn:aws:iam::{SOURCE.account_id}:role/service-role/AWSBackupDefaultServiceRole"
TARGET_VAULT_ARN = f"arn:aws:backup:{TARGET_REGION}:{TARGET.account_id}:backup-vault:{TARGET_VAULT}"


def key_arn(kms: Any, alias: str) -> str:
    return kms.describe_key(KeyId=alias)["KeyMetadata"]["Arn"]


def volume_arn(aws: Any, name: str = "walkthrough-volume") -> str:
    ec2 = aws.source("ec2")
    volumes = ec2.describe_volumes(Filters=[{"Name": "tag:Name", "Values": [name]}])["Volumes"]
    return f"arn:aws:ec2:{SOURCE_REGION}:{SOURCE.account_id}:volume/{volumes[0]['VolumeId']}"


def database_arn(name: str = "walkthrough-db") -> str:
    return f"arn:aws:rds:{SOURCE_REGION}:{SOURCE.account_id}:db:{name}"


def enable_cross_account(aws: Any) -> None:
    aws.management("backup").update_global_settings(GlobalSettings={"isCrossAccountBackupEnabled": "true"})


def create_source_vault(aws: Any) -> None:
    aws.source("backup").create_backup_vault(
        BackupVaultName=SOURCE_VAULT, EncryptionKeyArn=key_arn(aws.source("kms"), "alias/cmkSourceVault")
    )


def vault_policy(source_account: str = SOURCE.account_id, effect: str = "Allow") -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AllowSourceAccountToCopyIn",
                    "Effect": effect,
                    "Principal": {"AWS": f"arn:aws:iam::{source_account}:root"},
                    "Action": "backup:CopyIntoBackupVault",
                    "Resource": "*",
                }
            ],
        }
    )


def create_target_vault(aws: Any, with_policy: bool = True, key_alias: str | None = "alias/cmkTarget") -> None:
    backup = aws.target("backup")
    arguments = {"BackupVaultName": TARGET_VAULT}
    if key_alias:
        arguments["EncryptionKeyArn"] = key_arn(aws.target("kms"), key_alias)
    backup.create_backup_vault(**arguments)
    if with_policy:
        backup.put_backup_vault_access_policy(BackupVaultName=TARGET_VAULT, Policy=vault_policy())


def share_statements(target_account: str = TARGET.account_id) -> list[dict[str, Any]]:
    principal = {"AWS": f"arn:aws:iam::{target_account}:root"}
    return [
        {
            "Sid": "Allow use of the key",
            "Effect": "Allow",
            "Principal": principal,
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
            "Resource": "*",
        },
        {
            "Sid": "Allow attachment of persistent resources",
            "Effect": "Allow",
            "Principal": principal,
            "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
            "Resource": "*",
            "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
        },
    ]


def add_key_statements(aws: Any, alias: str, statements: list[dict[str, Any]], region: str = SOURCE_REGION) -> None:
    kms = aws.source("kms", region)
    key_id = key_arn(kms, alias)
    policy = json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
    policy["Statement"].extend(statements)
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(policy))


def share_source_key(aws: Any, alias: str = "alias/cmkSource") -> None:
    add_key_statements(aws, alias, share_statements())


def back_up(aws: Any, resource_arn: str, vault: str = SOURCE_VAULT) -> str:
    """Back up a resource and return its recovery point ARN (jobs are instant in tests)."""
    backup = aws.source("backup")
    job = backup.start_backup_job(
        BackupVaultName=vault,
        ResourceArn=resource_arn,
        IamRoleArn=ROLE_ARN,
        Lifecycle={"DeleteAfterDays": 35},
        RecoveryPointTags={"runbook": "walkthrough"},
    )
    described = backup.describe_backup_job(BackupJobId=job["BackupJobId"])
    assert described["State"] == "COMPLETED", described
    return described["RecoveryPointArn"]


def prepare_everything(
    aws: Any,
    volume: str = "walkthrough-volume",
    cross_account: bool = True,
    target_vault: bool = True,
    target_vault_policy: bool = True,
    share_key: bool = True,
    resource_arn: str | None = None,
) -> str:
    """Steps 00 to 02 done, less what a test leaves out; returns the recovery point ARN of the volume (or
    of the resource_arn given)."""
    if cross_account:
        enable_cross_account(aws)
    create_source_vault(aws)
    if target_vault:
        create_target_vault(aws, with_policy=target_vault_policy)
    if share_key:
        share_source_key(aws)
    return back_up(aws, resource_arn or volume_arn(aws, volume))


def copy(
    aws: Any, recovery_point_arn: str, destination_vault_arn: str = TARGET_VAULT_ARN, region: str = SOURCE_REGION
) -> dict[str, Any]:
    """A copy the source account starts in `region` from its SourceVault there; the job as it ended."""
    backup = aws.source("backup", region)
    job = backup.start_copy_job(
        RecoveryPointArn=recovery_point_arn,
        SourceBackupVaultName=SOURCE_VAULT,
        DestinationBackupVaultArn=destination_vault_arn,
        IamRoleArn=ROLE_ARN,
    )
    return backup.describe_copy_job(CopyJobId=job["CopyJobId"])["CopyJob"]
