"""Reads are pure: a job whose time is up is finished for every operation at once, and no read
changes what the next read returns."""

from __future__ import annotations

import time
from datetime import timedelta

from runbook_sandbox.testing.walkthrough import (
    ROLE_ARN,
    SOURCE_VAULT,
    TARGET_VAULT,
    TARGET_VAULT_ARN,
    prepare_everything,
    volume_arn,
)

JOB_SECONDS = 1.5


def start_copy(aws, recovery_point_arn: str) -> str:  # type: ignore[no-untyped-def]
    return aws.source("backup").start_copy_job(
        RecoveryPointArn=recovery_point_arn,
        SourceBackupVaultName=SOURCE_VAULT,
        DestinationBackupVaultArn=TARGET_VAULT_ARN,
        IamRoleArn=ROLE_ARN,
    )["CopyJobId"]


def target_vault_points(aws) -> int:  # type: ignore[no-untyped-def]
    vaults = aws.target("backup").list_backup_vaults()["BackupVaultList"]
    return next(v["NumberOfRecoveryPoints"] for v in vaults if v["BackupVaultName"] == TARGET_VAULT)


def test_the_first_read_after_a_copy_ends_sees_its_recovery_point(world, aws):
    recovery_point = prepare_everything(aws)
    world.configure(job_seconds=JOB_SECONDS)
    start_copy(aws, recovery_point)
    assert target_vault_points(aws) == 0
    time.sleep(JOB_SECONDS + 0.3)
    assert target_vault_points(aws) == 1, "the first ListBackupVaults after the copy's end must count its point"


def test_every_operation_sees_a_finished_job_alike_and_dates_do_not_depend_on_who_looked(world, aws):
    recovery_point = prepare_everything(aws)
    world.configure(job_seconds=JOB_SECONDS)
    copy_job_id = start_copy(aws, recovery_point)
    time.sleep(JOB_SECONDS + 0.3)
    target = aws.target("backup")
    points = target.list_recovery_points_by_backup_vault(BackupVaultName=TARGET_VAULT)["RecoveryPoints"]
    assert [p["Status"] for p in points] == ["COMPLETED"]
    source = aws.source("backup")
    listed = source.list_copy_jobs()["CopyJobs"]
    first = source.describe_copy_job(CopyJobId=copy_job_id)["CopyJob"]
    time.sleep(0.2)
    second = source.describe_copy_job(CopyJobId=copy_job_id)["CopyJob"]
    assert [j["State"] for j in listed] == ["COMPLETED"] and first["State"] == "COMPLETED"
    assert first == second, "a second read must return what the first returned"
    assert first["CompletionDate"] - first["CreationDate"] == timedelta(seconds=JOB_SECONDS)
    assert points[0]["CompletionDate"] == first["CompletionDate"]
    described = target.describe_recovery_point(
        BackupVaultName=TARGET_VAULT, RecoveryPointArn=first["DestinationRecoveryPointArn"]
    )
    assert described["Status"] == "COMPLETED" and described["CreationDate"] == points[0]["CreationDate"]


def test_a_backup_job_is_finished_for_ec2_too(world, aws):
    prepare_everything(aws, share_key=False)
    world.configure(job_seconds=JOB_SECONDS)
    backup = aws.source("backup")
    job_id = backup.start_backup_job(BackupVaultName=SOURCE_VAULT, ResourceArn=volume_arn(aws), IamRoleArn=ROLE_ARN)[
        "BackupJobId"
    ]
    time.sleep(JOB_SECONDS + 0.3)
    ec2 = aws.source("ec2")
    snapshots = ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
    assert sorted(s["State"] for s in snapshots) == ["completed", "completed"]
    assert backup.describe_backup_job(BackupJobId=job_id)["State"] == "COMPLETED"
