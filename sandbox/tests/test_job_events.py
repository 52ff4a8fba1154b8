"""AWS Backup's events on EventBridge when a backup or copy job ends, delivered by the rules that match
them: to an SNS topic (and the SQS queue subscribed to it), or to an SQS queue directly."""

from __future__ import annotations

import json
from typing import Any

from event_alerts import alert_queue, events_in_queue

from runbook_sandbox.accounts import SOURCE, SOURCE_REGION
from runbook_sandbox.backup.copy_rules import MSG_KEY_NOT_ACCESSIBLE
from runbook_sandbox.testing.walkthrough import ROLE_ARN, SOURCE_VAULT, TARGET_VAULT_ARN, copy, prepare_everything

SOURCE_VAULT_ARN = f"arn:aws:backup:{SOURCE_REGION}:{SOURCE.account_id}:backup-vault:{SOURCE_VAULT}"


def queue_for_rule(aws: Any, pattern: dict[str, Any]) -> str:
    """An SQS queue as the direct target of a rule on the source account's default bus (moto's own delivery)."""
    sqs, events = aws.source("sqs"), aws.source("events")
    queue_url = sqs.create_queue(QueueName="backup-jobs")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="backup-jobs", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="backup-jobs", Targets=[{"Id": "queue", "Arn": queue_arn}])
    return queue_url


def test_a_failed_copy_event_reaches_the_queue_subscribed_to_the_topic(aws):
    queue_url = alert_queue(aws)
    job = copy(aws, prepare_everything(aws, share_key=False))
    assert job["State"] == "FAILED"
    [event] = events_in_queue(aws, queue_url)
    assert (event["source"], event["detail-type"]) == ("aws.backup", "Copy Job State Change")
    assert (event["account"], event["region"]) == (SOURCE.account_id, SOURCE_REGION)
    assert event["resources"] == [job["SourceRecoveryPointArn"]]
    assert event["time"].endswith("Z")
    detail = event["detail"]
    assert detail == {
        "copyJobId": job["CopyJobId"],
        "backupSizeInBytes": detail["backupSizeInBytes"],
        "creationDate": detail["creationDate"],
        "completionDate": detail["completionDate"],
        "iamRoleArn": ROLE_ARN,
        "resourceArn": job["ResourceArn"],
        "resourceType": "EBS",
        "state": "FAILED",
        "statusMessage": MSG_KEY_NOT_ACCESSIBLE.format(kind="EBS"),
        "sourceBackupVaultArn": SOURCE_VAULT_ARN,
        "destinationBackupVaultArn": TARGET_VAULT_ARN,
        "destinationRecoveryPointArn": {},
    }


def test_a_completed_copy_does_not_match_a_rule_for_failed_copies(aws):
    queue_url = alert_queue(aws)
    assert copy(aws, prepare_everything(aws))["State"] == "COMPLETED"
    assert events_in_queue(aws, queue_url) == []


def test_a_completed_backup_event_reaches_a_queue_that_is_the_rule_target(aws):
    queue_url = queue_for_rule(aws, {"source": ["aws.backup"], "detail-type": ["Backup Job State Change"]})
    point = prepare_everything(aws)
    messages = aws.source("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    [event] = [json.loads(message["Body"]) for message in messages]
    assert event["resources"] == [point]
    detail = event["detail"]
    assert (detail["state"], detail["resourceType"], detail["percentDone"]) == ("COMPLETED", "EBS", 100)
    assert (detail["backupVaultName"], detail["backupVaultArn"]) == (SOURCE_VAULT, SOURCE_VAULT_ARN)
    described = aws.source("backup").list_backup_jobs()["BackupJobs"][0]
    assert detail["backupJobId"] == described["BackupJobId"]
    assert "statusMessage" not in detail and "createdBy" not in detail
