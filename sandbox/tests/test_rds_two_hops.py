"""An RDS database reaches the target account in two hops, as AWS's guide has it: across Regions inside
the source account (into a vault under cmkSourceHop), then across accounts inside the target Region."""

from __future__ import annotations

import json
from typing import Any

from runbook_sandbox.accounts import SOURCE, SOURCE_REGION, TARGET_REGION
from runbook_sandbox.backup.copy_rules import MSG_KEY_NOT_ACCESSIBLE
from runbook_sandbox.testing.walkthrough import (
    ROLE_ARN,
    SOURCE_VAULT,
    TARGET_VAULT,
    TARGET_VAULT_ARN,
    add_key_statements,
    copy,
    create_source_vault,
    create_target_vault,
    database_arn,
    enable_cross_account,
    key_arn,
    share_statements,
)

HOP_VAULT_ARN = f"arn:aws:backup:{TARGET_REGION}:{SOURCE.account_id}:backup-vault:{SOURCE_VAULT}"


def default_policy(kms: Any, alias: str) -> dict[str, Any]:
    return json.loads(kms.get_key_policy(KeyId=key_arn(kms, alias), PolicyName="default")["Policy"])


def test_the_walkthrough_has_the_hop_key_in_the_source_account_in_the_target_region(aws):
    kms = aws.source("kms", TARGET_REGION)
    metadata = kms.describe_key(KeyId="alias/cmkSourceHop")["KeyMetadata"]
    assert (metadata["KeyManager"], metadata["Arn"].split(":")[3:5]) == ("CUSTOMER", [TARGET_REGION, SOURCE.account_id])
    assert default_policy(kms, "alias/cmkSourceHop") == default_policy(aws.source("kms"), "alias/cmkSource")


def test_an_rds_database_reaches_the_target_account_in_two_hops(aws):
    # (a) a backup into the source account's SourceVault, in us-east-1
    enable_cross_account(aws)
    create_source_vault(aws)
    backup = aws.source("backup")
    started = backup.start_backup_job(BackupVaultName=SOURCE_VAULT, ResourceArn=database_arn(), IamRoleArn=ROLE_ARN)
    point = backup.describe_backup_job(BackupJobId=started["BackupJobId"])
    assert (point["State"], point["ResourceType"]) == ("COMPLETED", "RDS")

    # (b) across Regions inside the source account, into SourceVault in eu-west-1 under cmkSourceHop
    hop_key = key_arn(aws.source("kms", TARGET_REGION), "alias/cmkSourceHop")
    hop_backup = aws.source("backup", TARGET_REGION)
    hop_backup.create_backup_vault(BackupVaultName=SOURCE_VAULT, EncryptionKeyArn=hop_key)
    first_hop = copy(aws, point["RecoveryPointArn"], HOP_VAULT_ARN)
    assert first_hop["State"] == "COMPLETED", first_hop
    hop_point = first_hop["DestinationRecoveryPointArn"]
    assert hop_point.startswith(f"arn:aws:rds:{TARGET_REGION}:{SOURCE.account_id}:snapshot:awsbackup:")
    described = hop_backup.describe_recovery_point(BackupVaultName=SOURCE_VAULT, RecoveryPointArn=hop_point)
    assert (described["EncryptionKeyArn"], described["ResourceType"]) == (hop_key, "RDS")
    assert described["SourceBackupVaultArn"].startswith(f"arn:aws:backup:{SOURCE_REGION}:")

    # (c) across accounts inside eu-west-1: refused until cmkSourceHop lets the target account in
    create_target_vault(aws)
    refused = copy(aws, hop_point, TARGET_VAULT_ARN, region=TARGET_REGION)
    assert (refused["State"], refused["StatusMessage"]) == ("FAILED", MSG_KEY_NOT_ACCESSIBLE.format(kind="EBS"))
    add_key_statements(aws, "alias/cmkSourceHop", share_statements(), region=TARGET_REGION)
    second_hop = copy(aws, hop_point, TARGET_VAULT_ARN, region=TARGET_REGION)
    assert second_hop["State"] == "COMPLETED", second_hop
    target_key = key_arn(aws.target("kms"), "alias/cmkTarget")
    assert second_hop["DestinationEncryptionKeyArn"] == target_key
    arrived = aws.target("backup").describe_recovery_point(
        BackupVaultName=TARGET_VAULT, RecoveryPointArn=second_hop["DestinationRecoveryPointArn"]
    )
    assert (arrived["EncryptionKeyArn"], arrived["ResourceType"], arrived["Status"]) == (target_key, "RDS", "COMPLETED")
