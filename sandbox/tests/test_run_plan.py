"""Running a backup plan now (`runbook sandbox run-plan`, the control API's run-plan): each resource its
selections take is backed up by each rule, and each completed backup starts the rule's copy actions under
the rules of any copy, sending their events."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from event_alerts import alert_queue, events_in_queue

from runbook_sandbox import process
from runbook_sandbox.accounts import SOURCE, SOURCE_REGION, TARGET_REGION
from runbook_sandbox.backup.copy_rules import MSG_KEY_NOT_ACCESSIBLE
from runbook_sandbox.testing.walkthrough import (
    ROLE_ARN,
    SOURCE_VAULT,
    TARGET_VAULT,
    TARGET_VAULT_ARN,
    add_key_statements,
    create_source_vault,
    create_target_vault,
    enable_cross_account,
    share_source_key,
    share_statements,
    volume_arn,
)

RUNBOOK = Path(sys.executable).parent / "runbook"
PLAN_NAME = "DailyToTarget"


def create_plan(aws: Any, resources: list[str] | None = None) -> dict[str, Any]:
    """A plan whose one rule backs up into SourceVault (35 days) and copies into CABTargetVault (30 days),
    selecting walkthrough-volume by its Name tag, and the resources given by ARN; the plan as created."""
    backup = aws.source("backup")
    plan = backup.create_backup_plan(
        BackupPlan={
            "BackupPlanName": PLAN_NAME,
            "Rules": [
                {
                    "RuleName": "Daily",
                    "TargetBackupVaultName": SOURCE_VAULT,
                    "Lifecycle": {"DeleteAfterDays": 35},
                    "CopyActions": [
                        {"DestinationBackupVaultArn": TARGET_VAULT_ARN, "Lifecycle": {"DeleteAfterDays": 30}}
                    ],
                }
            ],
        }
    )
    tag = {"ConditionType": "STRINGEQUALS", "ConditionKey": "Name", "ConditionValue": "walkthrough-volume"}
    selection = {"SelectionName": "by-tag", "IamRoleArn": ROLE_ARN, "ListOfTags": [tag]}
    backup.create_backup_selection(BackupPlanId=plan["BackupPlanId"], BackupSelection=selection)
    if resources:
        by_arn = {"SelectionName": "by-arn", "IamRoleArn": ROLE_ARN, "Resources": resources}
        backup.create_backup_selection(BackupPlanId=plan["BackupPlanId"], BackupSelection=by_arn)
    return plan


def prepared(aws: Any, share_key: bool = True) -> None:
    enable_cross_account(aws)
    create_source_vault(aws)
    create_target_vault(aws)
    if share_key:
        share_source_key(aws)


def file_system_arn(aws: Any) -> str:
    systems = aws.source("efs").describe_file_systems()["FileSystems"]
    file_system_id = next(fs["FileSystemId"] for fs in systems if fs["Name"] == "walkthrough-efs")
    return f"arn:aws:elasticfilesystem:{SOURCE_REGION}:{SOURCE.account_id}:file-system/{file_system_id}"


def runbook(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(RUNBOOK), *args], capture_output=True, text=True, timeout=120)


def test_run_plan_backs_up_what_its_selections_take_and_copies_it(world, aws):
    prepared(aws)
    add_key_statements(aws, "alias/cmkSourceVault", share_statements())  # the key of the EFS recovery point
    efs = file_system_arn(aws)
    plan = create_plan(aws, resources=[efs])
    answer = world.run_plan(PLAN_NAME)
    assert (answer["plan_id"], answer["account"], answer["region"]) == (
        plan["BackupPlanId"],
        SOURCE.account_id,
        SOURCE_REGION,
    )
    backup = aws.source("backup")
    jobs = [backup.describe_backup_job(BackupJobId=job_id) for job_id in answer["backup_job_ids"]]
    assert sorted(job["ResourceArn"] for job in jobs) == sorted([volume_arn(aws), efs])
    rule_id = backup.get_backup_plan(BackupPlanId=plan["BackupPlanId"])["BackupPlan"]["Rules"][0]["RuleId"]
    for job in jobs:
        assert (job["State"], job["IamRoleArn"], job["RecoveryPointLifecycle"]) == (
            "COMPLETED",
            ROLE_ARN,
            {"DeleteAfterDays": 35},
        )
        created_by = job["CreatedBy"]
        assert (created_by["BackupPlanId"], created_by["BackupPlanArn"]) == (
            plan["BackupPlanId"],
            plan["BackupPlanArn"],
        )
        assert (created_by["BackupPlanVersion"], created_by["BackupRuleId"]) == (plan["VersionId"], rule_id)
    copies = backup.list_copy_jobs()["CopyJobs"]
    assert sorted(c["CreatedByBackupJobId"] for c in copies) == sorted(answer["backup_job_ids"])
    assert {(c["State"], c["DestinationBackupVaultArn"]) for c in copies} == {("COMPLETED", TARGET_VAULT_ARN)}
    assert all(c["CreatedBy"]["BackupPlanId"] == plan["BackupPlanId"] for c in copies)
    arrived = aws.target("backup").list_recovery_points_by_backup_vault(BackupVaultName=TARGET_VAULT)
    points = arrived["RecoveryPoints"]
    assert sorted(p["ResourceType"] for p in points) == ["EBS", "EFS"]
    assert {p["Lifecycle"]["DeleteAfterDays"] for p in points} == {30}


def test_a_plan_copy_under_an_unshared_key_fails_and_its_event_reaches_the_queue(world, aws):
    prepared(aws, share_key=False)
    queue_url = alert_queue(aws)
    plan = create_plan(aws)
    [job_id] = world.run_plan(PLAN_NAME, SOURCE.account_id, SOURCE_REGION)["backup_job_ids"]
    [copy] = aws.source("backup").list_copy_jobs()["CopyJobs"]
    assert (copy["State"], copy["StatusMessage"]) == ("FAILED", MSG_KEY_NOT_ACCESSIBLE.format(kind="EBS"))
    [event] = events_in_queue(aws, queue_url)
    detail = event["detail"]
    assert (detail["copyJobId"], detail["state"], detail["statusMessage"]) == (
        copy["CopyJobId"],
        "FAILED",
        copy["StatusMessage"],
    )
    assert (detail["destinationBackupVaultArn"], detail["resourceType"]) == (TARGET_VAULT_ARN, "EBS")
    assert detail["createdBy"]["backupPlanId"] == plan["BackupPlanId"]
    assert copy["CreatedByBackupJobId"] == job_id


def test_with_slow_jobs_the_copies_start_when_the_backups_end(world, aws):
    prepared(aws)
    create_plan(aws)
    world.configure(job_seconds=1)
    [job_id] = world.run_plan(PLAN_NAME)["backup_job_ids"]
    backup = aws.source("backup")
    assert backup.describe_backup_job(BackupJobId=job_id)["State"] in ("CREATED", "RUNNING")
    assert backup.list_copy_jobs()["CopyJobs"] == []
    deadline = time.monotonic() + 30
    while backup.describe_backup_job(BackupJobId=job_id)["State"] != "COMPLETED":
        assert time.monotonic() < deadline, "the backup never completed"
        time.sleep(0.1)
    ended = backup.describe_backup_job(BackupJobId=job_id)["CompletionDate"]
    [copy] = backup.list_copy_jobs()["CopyJobs"]
    assert copy["CreationDate"] == ended
    while backup.describe_copy_job(CopyJobId=copy["CopyJobId"])["CopyJob"]["State"] != "COMPLETED":
        assert time.monotonic() < deadline, "the copy never completed"
        time.sleep(0.1)


def test_a_plan_whose_vault_is_gone_starts_a_backup_job_that_fails(world, aws):
    create_plan(aws)
    [job_id] = world.run_plan(PLAN_NAME)["backup_job_ids"]
    job = aws.source("backup").describe_backup_job(BackupJobId=job_id)
    vault_arn = f"arn:aws:backup:{SOURCE_REGION}:{SOURCE.account_id}:backup-vault:{SOURCE_VAULT}"
    assert (job["State"], job["StatusMessage"]) == (
        "FAILED",
        f"Backup job failed because backup vault {vault_arn} does not exist.",
    )
    assert "RecoveryPointArn" not in job and aws.source("backup").list_copy_jobs()["CopyJobs"] == []


def test_run_plan_of_an_unknown_plan_is_refused(world):
    with pytest.raises(process.SandboxRefused) as excinfo:
        world.run_plan("Nope", region=TARGET_REGION)
    assert str(excinfo.value) == (
        f"sandbox refused run-plan: no backup plan named 'Nope' in account {SOURCE.account_id} "
        f"in {TARGET_REGION} (plans there: none)"
    )


def test_runbook_sandbox_run_plan(world, aws):
    prepared(aws)
    create_plan(aws)
    folder = str(world.directory)
    started = runbook("sandbox", "run-plan", PLAN_NAME, "--dir", folder)
    assert started.returncode == 0, started.stderr
    heading, job_id = started.stdout.splitlines()
    assert heading.startswith(f"Started 1 backup job of plan {PLAN_NAME} (")
    assert heading.endswith(f") in account {SOURCE.account_id}, {SOURCE_REGION}:")
    assert aws.source("backup").describe_backup_job(BackupJobId=job_id)["State"] == "COMPLETED"
    unknown = runbook("sandbox", "run-plan", "Nope", "--dir", folder)
    assert (unknown.returncode, unknown.stdout) == (2, "")
    assert unknown.stderr.splitlines() == [
        f"runbook: sandbox refused run-plan: no backup plan named 'Nope' in account {SOURCE.account_id} "
        f"in {SOURCE_REGION} (plans there: {PLAN_NAME})"
    ]
