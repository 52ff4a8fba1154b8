"""Step 09: the AWS Backup plan with its copy action, the selection by tag and the alert on failed copies,
made once and found again; the same checks as the copy before it; the set-up as CloudFormation that
cfn-lint accepts; and, on the sandbox, the plan run on demand: a backup and its copy, or a failed copy
announced on the topic."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from runbook_lib.core.errors import StepFailed
from runbook_lib.steps import automation, cleanup, templates
from runbook_lib.steps.walkthrough import Run
from runbook_sandbox.accounts import SOURCE, TARGET
from tests import runbook_steps
from tests.runbook_steps import prepare

STEP = "09_automate"
CFN_LINT = Path(sys.executable).parent / "cfn-lint"
RUNBOOK = Path(sys.executable).parent / "runbook"
TARGET_VAULT_ARN = f"arn:aws:backup:eu-west-1:{TARGET.account_id}:backup-vault:CABTargetVault"
TOPIC_ARN = f"arn:aws:sns:us-east-1:{SOURCE.account_id}:runbook-copy-failures"
BY_NAME = {"Name": "walkthrough-volume"}


def automated(run_values: dict[str, Any]) -> list[Any]:
    run = Run(STEP, run_values)
    changes = automation.plan_changes(run)
    run.carry_out(changes)
    return changes


def test_step_09_keeps_a_plan_that_copies_a_selection_by_tag_and_an_alert_and_a_rerun_changes_nothing(
    aws, tmp_path, world
):
    run_values = runbook_steps.values(tmp_path, selection_tags=BY_NAME)
    prepare(run_values)
    changes = automated(run_values)
    assert [c.action for c in changes] == [
        "backup:CreateBackupPlan",
        "backup:CreateBackupSelection",
        "sns:CreateTopic",
        "sns:SetTopicAttributes",
        "events:PutRule",
        "events:PutTargets",
    ]
    assert all(c.applied for c in changes)
    backup = aws.source("backup")
    plans = backup.list_backup_plans()["BackupPlansList"]
    assert [p["BackupPlanName"] for p in plans] == ["CrossAccountCopy"]
    rule = backup.get_backup_plan(BackupPlanId=plans[0]["BackupPlanId"])["BackupPlan"]["Rules"][0]
    assert rule["TargetBackupVaultName"] == "SourceVault" and rule["Lifecycle"] == {"DeleteAfterDays": 35}
    assert rule["CopyActions"] == [
        {"DestinationBackupVaultArn": TARGET_VAULT_ARN, "Lifecycle": {"DeleteAfterDays": 35}}
    ]
    selections = backup.list_backup_selections(BackupPlanId=plans[0]["BackupPlanId"])["BackupSelectionsList"]
    chosen = backup.get_backup_selection(
        BackupPlanId=plans[0]["BackupPlanId"], SelectionId=selections[0]["SelectionId"]
    )
    assert chosen["BackupSelection"]["Resources"] == ["*"]
    assert chosen["BackupSelection"]["Conditions"]["StringEquals"] == [
        {"ConditionKey": "aws:ResourceTag/Name", "ConditionValue": "walkthrough-volume"}
    ]
    events = aws.source("events")
    described = events.describe_rule(Name="CrossAccountCopy-copy-failed")
    assert json.loads(described["EventPattern"]) == automation.failed_copy_pattern()
    assert [t["Arn"] for t in events.list_targets_by_rule(Rule="CrossAccountCopy-copy-failed")["Targets"]] == [
        TOPIC_ARN
    ]
    policy = json.loads(aws.source("sns").get_topic_attributes(TopicArn=TOPIC_ARN)["Attributes"]["Policy"])
    assert automation.TOPIC_SID in {s.get("Sid") for s in policy["Statement"]}

    state = world.state()
    again = automated({**run_values, "run_dir": str(tmp_path / "again")})
    assert [c.needed for c in again] == [False] * 6, [c.describe() for c in again if c.needed]
    assert world.state() == state, "a second run changes nothing"

    changed = automated({**run_values, "delete_after_days": 40})
    assert [c.action for c in changed if c.needed] == ["backup:UpdateBackupPlan"]
    assert re.search(r'^-\s+"DeleteAfterDays": 35', changed[0].diff, re.M)
    assert re.search(r'^\+\s+"DeleteAfterDays": 40', changed[0].diff, re.M)


def test_the_plans_copy_action_meets_the_copys_checks_first(aws, tmp_path, world):
    run_values = runbook_steps.values(tmp_path, selection_tags=BY_NAME)
    prepare(run_values, share=False)
    with pytest.raises(StepFailed, match=r"^step 09_automate failed: \[source-key-shared\]"):
        automated(run_values)
    assert aws.source("backup").list_backup_plans()["BackupPlansList"] == []
    db = runbook_steps.values(tmp_path / "db", resource_name="walkthrough-db", two_hop_types=["RDS"])
    with pytest.raises(StepFailed, match=r"\[rds-single-hop\] a plan's copy action is one copy job"):
        automated(db)


def test_a_dry_run_plans_all_of_it_and_changes_nothing(aws, tmp_path, world):
    run_values = runbook_steps.values(tmp_path, apply=False)
    before = world.state()
    changes = automated(run_values)
    assert all(c.needed and not c.applied for c in changes)
    assert changes[0].blocked_by == "step 00_prerequisites creates vault SourceVault"
    assert changes[1].blocked_by == "the backup plan (planned, not made yet)"
    assert world.state() == before


def test_the_exported_templates_pass_cfn_lint(aws, tmp_path, world):
    run_values = runbook_steps.values(tmp_path, selection_tags=BY_NAME)
    written = templates.write(Run(STEP, run_values))
    assert [p.name for p in written] == ["source-account.yaml", "target-account.yaml"]
    source = yaml.safe_load(written[0].read_text())
    assert set(source["Resources"]) == {
        "SourceVault",
        "BackupPlan",
        "Selection",
        "AlertTopic",
        "AlertTopicPolicy",
        "CopyFailedRule",
    }
    copy_action = source["Resources"]["BackupPlan"]["Properties"]["BackupPlan"]["BackupPlanRule"][0]["CopyActions"]
    assert copy_action[0]["DestinationBackupVaultArn"] == TARGET_VAULT_ARN
    assert source["Metadata"]["RunbookKeyPolicyStatements"]["Statements"][0]["Principal"] == {
        "AWS": f"arn:aws:iam::{TARGET.account_id}:root"
    }
    target = yaml.safe_load(written[1].read_text())
    statement = target["Resources"]["DestinationVault"]["Properties"]["AccessPolicy"]["Statement"][0]
    assert statement["Action"] == "backup:CopyIntoBackupVault"
    linted = subprocess.run([str(CFN_LINT), *map(str, written)], capture_output=True, text=True, timeout=300)
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_cleanup_takes_back_what_step_09_made_and_nothing_else(aws, tmp_path, world):
    run_values = runbook_steps.values(tmp_path, selection_tags=BY_NAME)
    prepare(run_values)
    sns = aws.source("sns")
    theirs = sns.create_topic(Name="someone-elses-topic")["TopicArn"]
    automated(run_values)
    tidy = Run("07_cleanup", run_values)
    planned = cleanup.cleanup(tidy)
    taken = [
        c.action for c in planned if c.action in ("backup:DeleteBackupPlan", "events:DeleteRule", "sns:DeleteTopic")
    ]
    assert taken == ["backup:DeleteBackupPlan", "events:DeleteRule", "sns:DeleteTopic"]
    tidy.carry_out(planned)
    assert aws.source("backup").list_backup_plans()["BackupPlansList"] == []
    assert aws.source("events").list_rules()["Rules"] == []
    assert [t["TopicArn"] for t in sns.list_topics()["Topics"]] == [theirs]
    again = cleanup.cleanup(Run("07_cleanup", run_values))
    assert not any(c.needed for c in again), [c.describe() for c in again if c.needed]


def subscribed_queue(aws: Any) -> str:
    """An SQS queue subscribed to the alert topic step 09 made: what a team's on-call reads."""
    sqs = aws.source("sqs")
    queue_url = sqs.create_queue(QueueName="on-call")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws.source("sns").subscribe(TopicArn=TOPIC_ARN, Protocol="sqs", Endpoint=queue_arn)
    return str(queue_url)


def alerts(aws: Any, queue_url: str) -> list[dict[str, Any]]:
    messages = aws.source("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(json.loads(message["Body"])["Message"]) for message in messages]


def test_run_plan_backs_up_and_copies_into_the_destination_vault(aws, tmp_path, world):
    """Must show: --steps 09_automate's plan, run by `runbook sandbox run-plan`, makes a backup and a completed
    copy in the destination vault, and no alert."""
    run_values = runbook_steps.values(tmp_path, selection_tags=BY_NAME)
    prepare(run_values)
    automated(run_values)
    queue = subscribed_queue(aws)
    target = aws.target("backup")
    before = {
        p["RecoveryPointArn"]
        for p in target.list_recovery_points_by_backup_vault(BackupVaultName="CABTargetVault")["RecoveryPoints"]
    }
    done = subprocess.run(
        [str(RUNBOOK), "sandbox", "run-plan", "CrossAccountCopy", "--dir", str(world.directory)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Started 1 backup job of plan CrossAccountCopy (")
    backup_job = done.stdout.strip().splitlines()[-1]
    described = aws.source("backup").describe_backup_job(BackupJobId=backup_job)
    assert described["State"] == "COMPLETED" and described["CreatedBy"]["BackupPlanId"]
    copies = aws.source("backup").list_copy_jobs(ByDestinationVaultArn=TARGET_VAULT_ARN)["CopyJobs"]
    made = [c for c in copies if c["SourceRecoveryPointArn"] == described["RecoveryPointArn"]]
    assert [c["State"] for c in made] == ["COMPLETED"]
    after = target.list_recovery_points_by_backup_vault(BackupVaultName="CABTargetVault")["RecoveryPoints"]
    new = [p for p in after if p["RecoveryPointArn"] not in before]
    assert [p["RecoveryPointArn"] for p in new] == [made[0]["DestinationRecoveryPointArn"]]
    assert new[0]["EncryptionKeyArn"] == aws.target("kms").describe_key(KeyId="alias/cmkTarget")["KeyMetadata"]["Arn"]
    assert alerts(aws, queue) == [], "a completed copy sends no alert"


def test_with_the_key_unshared_the_plans_failed_copy_reaches_the_alert_topic(aws, tmp_path, world):
    """Must show: the failed copy's event reaches the SNS topic (forced past the check that predicts it)."""
    run_values = runbook_steps.values(tmp_path, selection_tags=BY_NAME, force_copy=True)
    prepare(run_values, share=False)
    automated(run_values)
    queue = subscribed_queue(aws)
    answer = world.run_plan("CrossAccountCopy")
    assert len(answer["backup_job_ids"]) == 1
    copies = aws.source("backup").list_copy_jobs(ByState="FAILED")["CopyJobs"]
    assert len(copies) == 1 and "Given key ID is not accessible" in copies[0]["StatusMessage"]
    received = alerts(aws, queue)
    assert [(e["source"], e["detail-type"], e["detail"]["state"]) for e in received] == [
        ("aws.backup", "Copy Job State Change", "FAILED")
    ]
    assert received[0]["detail"]["copyJobId"] == copies[0]["CopyJobId"]
    assert "Given key ID is not accessible" in received[0]["detail"]["statusMessage"]


def test_run_plan_names_an_unknown_plan_in_one_line(world):
    done = subprocess.run(
        [str(RUNBOOK), "sandbox", "run-plan", "NoSuchPlan", "--dir", str(world.directory)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and "NoSuchPlan" in done.stderr


def test_a_selection_by_two_tags_takes_only_resources_carrying_both(aws, tmp_path, world):
    ec2 = aws.source("ec2")
    by_name = {
        tag["Value"]: volume["VolumeId"]
        for volume in ec2.describe_volumes()["Volumes"]
        for tag in volume.get("Tags", [])
        if tag["Key"] == "Name"
    }
    ec2.create_tags(
        Resources=[by_name["walkthrough-volume"], by_name["default-key-volume"]],
        Tags=[{"Key": "Tier", "Value": "gold"}],
    )
    run_values = runbook_steps.values(tmp_path, selection_tags={**BY_NAME, "Tier": "gold"})
    prepare(run_values)
    automated(run_values)
    answer = world.run_plan("CrossAccountCopy")
    backed_up = [
        aws.source("backup").describe_backup_job(BackupJobId=j)["ResourceArn"] for j in answer["backup_job_ids"]
    ]
    assert [arn.rsplit("/", 1)[-1] for arn in backed_up] == [by_name["walkthrough-volume"]]
