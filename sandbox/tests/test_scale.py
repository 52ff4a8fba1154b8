"""Worlds at size: a fleet of 200 volumes, a vault of 10,000 recovery points, and hundreds of jobs,
listed, filtered and paged as a run lists them."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from aws_errors import assert_error
from botocore.exceptions import ClientError

from runbook_sandbox import process
from runbook_sandbox.accounts import SOURCE, SOURCE_REGION, TARGET_REGION
from runbook_sandbox.backup.responses import INVALID_NEXT_TOKEN
from runbook_sandbox.testing import Accounts
from runbook_sandbox.testing.walkthrough import (
    ROLE_ARN,
    SOURCE_VAULT,
    TARGET_VAULT_ARN,
    add_key_statements,
    create_source_vault,
    create_target_vault,
    enable_cross_account,
    key_arn,
    share_statements,
    volume_arn,
)

FLEET_KEYS = ["alias/cmkSource", "alias/cmkFleetB", "alias/cmkFleetC"]
FLEET_FILTER = [{"Name": "tag:Fleet", "Values": ["demo"]}]
OTHER_VAULT = "OtherVault"
COPIES_VAULT = "SourceCopies"  # in the source account's other Region
COPIES_VAULT_ARN = f"arn:aws:backup:{TARGET_REGION}:{SOURCE.account_id}:backup-vault:{COPIES_VAULT}"


def reset_to(sandbox: process.Sandbox, scenario: str) -> Accounts:
    sandbox.configure(job_seconds=0, throttle_rate=0)
    sandbox.reset(scenario)
    return Accounts()


def name_of(volume: dict) -> str:
    return next(tag["Value"] for tag in volume["Tags"] if tag["Key"] == "Name")


# ----- fleet ------------------------------------------------------------------------------------


def test_the_fleet_is_200_volumes_under_three_customer_managed_keys_in_turn(sandbox):
    aws = reset_to(sandbox, "fleet")
    ec2, kms = aws.source("ec2"), aws.source("kms")
    volumes = sorted(ec2.describe_volumes(Filters=FLEET_FILTER)["Volumes"], key=name_of)
    assert [name_of(v) for v in volumes] == [f"fleet-{number:03d}" for number in range(1, 201)]
    assert all(v["Encrypted"] and v["AvailabilityZone"] == f"{SOURCE_REGION}a" for v in volumes)
    keys = [key_arn(kms, alias) for alias in FLEET_KEYS]
    assert [v["KmsKeyId"] for v in volumes] == [keys[index % 3] for index in range(200)]
    assert Counter(v["KmsKeyId"] for v in volumes) == {keys[0]: 67, keys[1]: 67, keys[2]: 66}
    described = [kms.describe_key(KeyId=key)["KeyMetadata"] for key in keys]
    assert {(m["KeyManager"], m["KeyState"]) for m in described} == {("CUSTOMER", "Enabled")}
    policies = [json.loads(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"]) for key in keys]
    assert policies[1] == policies[2] == policies[0]
    assert volume_arn(aws).startswith(f"arn:aws:ec2:{SOURCE_REGION}:{SOURCE.account_id}:volume/vol-")

    sandbox.reset("fleet")
    again = sorted(ec2.describe_volumes(Filters=FLEET_FILTER)["Volumes"], key=name_of)
    assert [(v["VolumeId"], v["KmsKeyId"]) for v in again] == [(v["VolumeId"], v["KmsKeyId"]) for v in volumes]


# ----- a vault of 10,000 recovery points --------------------------------------------------------


def test_10000_recovery_points_list_in_10_pages_of_1000(sandbox):
    aws = reset_to(sandbox, "many-recovery-points")
    backup = aws.source("backup")
    paginator = backup.get_paginator("list_recovery_points_by_backup_vault")
    pages = list(paginator.paginate(BackupVaultName=SOURCE_VAULT))
    assert [len(page["RecoveryPoints"]) for page in pages] == [1000] * 10
    points = [point for page in pages for point in page["RecoveryPoints"]]
    assert len({point["RecoveryPointArn"] for point in points}) == 10_000
    cmk_source = key_arn(aws.source("kms"), "alias/cmkSource")
    assert {
        (p["Status"], p["ResourceType"], p["ResourceArn"], p["EncryptionKeyArn"], p["IsEncrypted"]) for p in points
    } == {("COMPLETED", "EBS", volume_arn(aws), cmk_source, True)}
    created = [point["CreationDate"] for point in points]
    assert all(later - earlier == timedelta(hours=1) for earlier, later in zip(created, created[1:]))
    assert timedelta(0) <= datetime.now(timezone.utc) - created[-1] < timedelta(hours=1)
    assert {point["Lifecycle"]["DeleteAfterDays"] for point in points} == {500}
    plan = backup.get_backup_plan(BackupPlanId=points[0]["CreatedBy"]["BackupPlanId"])
    assert plan["BackupPlan"]["Rules"][0]["TargetBackupVaultName"] == SOURCE_VAULT
    assert backup.describe_backup_vault(BackupVaultName=SOURCE_VAULT)["NumberOfRecoveryPoints"] == 10_000


def test_a_next_token_outlives_a_deletion_before_its_page_and_not_a_change_of_filters(sandbox):
    aws = reset_to(sandbox, "many-recovery-points")
    backup = aws.source("backup")
    first = backup.list_recovery_points_by_backup_vault(BackupVaultName=SOURCE_VAULT)
    token = first["NextToken"]
    second = backup.list_recovery_points_by_backup_vault(BackupVaultName=SOURCE_VAULT, NextToken=token)
    oldest = first["RecoveryPoints"][0]
    snapshot_id = oldest["RecoveryPointArn"].rsplit("/", 1)[1]
    snapshot = aws.source("ec2").describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]
    assert snapshot["KmsKeyId"] == oldest["EncryptionKeyArn"]
    backup.delete_recovery_point(BackupVaultName=SOURCE_VAULT, RecoveryPointArn=oldest["RecoveryPointArn"])
    again = backup.list_recovery_points_by_backup_vault(BackupVaultName=SOURCE_VAULT, NextToken=token)
    assert again["RecoveryPoints"] == second["RecoveryPoints"]
    assert backup.describe_backup_vault(BackupVaultName=SOURCE_VAULT)["NumberOfRecoveryPoints"] == 9_999
    with pytest.raises(ClientError) as excinfo:
        backup.list_recovery_points_by_backup_vault(BackupVaultName=SOURCE_VAULT, NextToken=token, ByResourceType="EBS")
    assert_error(excinfo, "InvalidParameterValueException", INVALID_NEXT_TOKEN)
    with pytest.raises(ClientError) as excinfo:
        backup.describe_recovery_point(BackupVaultName=SOURCE_VAULT, RecoveryPointArn=oldest["RecoveryPointArn"])
    assert_error(
        excinfo,
        "ResourceNotFoundException",
        f"Recovery point {oldest['RecoveryPointArn']} not found in backup vault {SOURCE_VAULT}.",
    )


# ----- hundreds of jobs -------------------------------------------------------------------------


def back_up_and_copy_the_fleet(sandbox: process.Sandbox, aws: Accounts) -> None:
    """A backup of each fleet volume, alternately into SourceVault and OtherVault (the first one
    failing), then a copy of each recovery point: SourceVault's to the target account, OtherVault's
    to the source account's other Region."""
    enable_cross_account(aws)
    create_source_vault(aws)
    backup = aws.source("backup")
    backup.create_backup_vault(BackupVaultName=OTHER_VAULT)
    aws.source("backup", TARGET_REGION).create_backup_vault(BackupVaultName=COPIES_VAULT)
    create_target_vault(aws)
    for alias in FLEET_KEYS:
        add_key_statements(aws, alias, share_statements())
    sandbox.configure(fail_next_backup="Injected failure")
    volumes = sorted(aws.source("ec2").describe_volumes(Filters=FLEET_FILTER)["Volumes"], key=name_of)
    for index, volume in enumerate(volumes):
        backup.start_backup_job(
            BackupVaultName=(SOURCE_VAULT, OTHER_VAULT)[index % 2],
            ResourceArn=f"arn:aws:ec2:{SOURCE_REGION}:{SOURCE.account_id}:volume/{volume['VolumeId']}",
            IamRoleArn=ROLE_ARN,
        )
    for job in backup.list_backup_jobs(ByState="COMPLETED", MaxResults=1000)["BackupJobs"]:
        backup.start_copy_job(
            RecoveryPointArn=job["RecoveryPointArn"],
            SourceBackupVaultName=job["BackupVaultName"],
            DestinationBackupVaultArn=TARGET_VAULT_ARN if job["BackupVaultName"] == SOURCE_VAULT else COPIES_VAULT_ARN,
            IamRoleArn=ROLE_ARN,
        )


def ids(jobs: list[dict], key: str) -> list[str]:
    return [job[key] for job in jobs]


def test_hundreds_of_jobs_filter_and_page(sandbox):
    aws = reset_to(sandbox, "fleet")
    started = datetime.now(timezone.utc) - timedelta(seconds=1)
    back_up_and_copy_the_fleet(sandbox, aws)
    backup = aws.source("backup")

    everything = backup.list_backup_jobs(MaxResults=1000)
    jobs = everything["BackupJobs"]
    assert len(jobs) == 200 and "NextToken" not in everything
    in_vaults = [backup.list_backup_jobs(ByBackupVaultName=name)["BackupJobs"] for name in (SOURCE_VAULT, OTHER_VAULT)]
    assert [len(listed) for listed in in_vaults] == [100, 100]
    failed = backup.list_backup_jobs(ByState="FAILED")["BackupJobs"]
    assert [(j["BackupJobId"], j["StatusMessage"]) for j in failed] == [(jobs[0]["BackupJobId"], "Injected failure")]
    assert len(backup.list_backup_jobs(ByState="COMPLETED", MaxResults=1000)["BackupJobs"]) == 199
    middle = jobs[100]["CreationDate"]
    later = backup.list_backup_jobs(ByCreatedAfter=middle, MaxResults=1000)["BackupJobs"]
    assert ids(later, "BackupJobId") == [j["BackupJobId"] for j in jobs if j["CreationDate"] >= middle]
    pages = list(backup.get_paginator("list_backup_jobs").paginate(PaginationConfig={"PageSize": 70}))
    assert [len(page["BackupJobs"]) for page in pages] == [70, 70, 60]
    assert [job for page in pages for job in page["BackupJobs"]] == jobs

    copies = backup.list_copy_jobs(MaxResults=1000)
    assert len(copies["CopyJobs"]) == 199 and "NextToken" not in copies
    to_target = backup.list_copy_jobs(
        ByCreatedAfter=started, ByDestinationVaultArn=TARGET_VAULT_ARN, ByState="COMPLETED", MaxResults=1000
    )["CopyJobs"]
    assert len(to_target) == 99 and {j["DestinationBackupVaultArn"] for j in to_target} == {TARGET_VAULT_ARN}
    assert len(backup.list_copy_jobs(ByDestinationVaultArn=COPIES_VAULT_ARN)["CopyJobs"]) == 100
    assert backup.list_copy_jobs(ByCreatedAfter=datetime.now(timezone.utc) + timedelta(hours=1))["CopyJobs"] == []
    pages = list(
        backup.get_paginator("list_copy_jobs").paginate(
            ByDestinationVaultArn=TARGET_VAULT_ARN, PaginationConfig={"PageSize": 50}
        )
    )
    assert [len(page["CopyJobs"]) for page in pages] == [50, 49]
    assert [job for page in pages for job in page["CopyJobs"]] == to_target
    token = backup.list_copy_jobs(ByDestinationVaultArn=TARGET_VAULT_ARN, MaxResults=50)["NextToken"]
    with pytest.raises(ClientError) as excinfo:
        backup.list_copy_jobs(ByDestinationVaultArn=COPIES_VAULT_ARN, MaxResults=50, NextToken=token)
    assert_error(excinfo, "InvalidParameterValueException", INVALID_NEXT_TOKEN)
