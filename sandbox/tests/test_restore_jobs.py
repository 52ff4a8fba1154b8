"""Restores in the destination account: one test per restore operation the sandbox adds, AWS's error
when it refuses, and the restore role's use of the key the restored volume is encrypted with."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from aws_errors import assert_error
from botocore.exceptions import ClientError

from runbook_sandbox.accounts import SOURCE_REGION, TARGET, TARGET_REGION
from runbook_sandbox.backup.restore_rules import MSG_RESTORE_KEY_EXPLICIT_DENY, restore_caller
from runbook_sandbox.testing.walkthrough import (
    SOURCE_VAULT,
    TARGET_VAULT,
    TARGET_VAULT_ARN,
    copy,
    database_arn,
    key_arn,
    prepare_everything,
)

TARGET_ROLE_ARN = f"arn:aws:iam::{TARGET.account_id}:role/service-role/AWSBackupDefaultServiceRole"
BACKUP_ROLE_POLICIES = [
    "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup",
    "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForRestores",
]


def copied_point(aws: Any) -> str:
    """The walkthrough's volume backed up and copied into CABTargetVault: the copy's recovery point ARN."""
    job = copy(aws, prepare_everything(aws))
    assert job["State"] == "COMPLETED", job
    return job["DestinationRecoveryPointArn"]


def restore(aws: Any, point: str, role_arn: str | None = TARGET_ROLE_ARN, **metadata: str) -> dict[str, Any]:
    """Restore a recovery point of the target account; the restore job as DescribeRestoreJob gives it."""
    backup = aws.target("backup")
    arguments: dict[str, Any] = {"RecoveryPointArn": point, "Metadata": {"availabilityZone": f"{TARGET_REGION}a"}}
    arguments["Metadata"].update(metadata)
    if role_arn:
        arguments["IamRoleArn"] = role_arn
    job_id = backup.start_restore_job(**arguments)["RestoreJobId"]
    return backup.describe_restore_job(RestoreJobId=job_id)


def volume_ids(aws: Any) -> set[str]:
    return {v["VolumeId"] for v in aws.target("ec2").describe_volumes()["Volumes"]}


# ----- GetRecoveryPointRestoreMetadata -----------------------------------------------------------


def test_get_recovery_point_restore_metadata(aws):
    point = copied_point(aws)
    answer = aws.target("backup").get_recovery_point_restore_metadata(
        BackupVaultName=TARGET_VAULT, RecoveryPointArn=point
    )
    assert answer["BackupVaultArn"] == TARGET_VAULT_ARN
    assert answer["RecoveryPointArn"] == point
    assert answer["ResourceType"] == "EBS"
    assert answer["RestoreMetadata"] == {
        "availabilityZone": f"{TARGET_REGION}a",
        "encrypted": "true",
        "kmsKeyId": key_arn(aws.target("kms"), "alias/cmkTarget"),
        "volumeSize": "8",
        "volumeType": "gp3",
    }


def test_get_recovery_point_restore_metadata_unknown_vault(aws):
    arn = f"arn:aws:ec2:{TARGET_REGION}::snapshot/snap-00000000000000000"
    with pytest.raises(ClientError) as excinfo:
        aws.target("backup").get_recovery_point_restore_metadata(BackupVaultName="NoSuchVault", RecoveryPointArn=arn)
    assert_error(
        excinfo,
        "ResourceNotFoundException",
        f"Backup vault NoSuchVault does not exist in account {TARGET.account_id} in {TARGET_REGION}.",
    )


def test_get_recovery_point_restore_metadata_unknown_point(aws):
    copied_point(aws)
    arn = f"arn:aws:ec2:{TARGET_REGION}::snapshot/snap-00000000000000000"
    with pytest.raises(ClientError) as excinfo:
        aws.target("backup").get_recovery_point_restore_metadata(BackupVaultName=TARGET_VAULT, RecoveryPointArn=arn)
    message = f"Recovery point {arn} not found in backup vault {TARGET_VAULT}."
    assert_error(excinfo, "ResourceNotFoundException", message)


def test_get_recovery_point_restore_metadata_of_an_rds_point(aws):
    point = prepare_everything(aws, resource_arn=database_arn())
    with pytest.raises(ClientError) as excinfo:
        aws.source("backup").get_recovery_point_restore_metadata(BackupVaultName=SOURCE_VAULT, RecoveryPointArn=point)
    assert_error(
        excinfo, "InvalidParameterValueException", "The sandbox gives restore metadata for EBS recovery points only."
    )


# ----- StartRestoreJob: the restore drill --------------------------------------------------------


def test_restore_of_a_copy_makes_a_volume_under_cmk_target_that_can_be_deleted(aws):
    """The drill: restore the copy with the metadata AWS gives, check the volume, delete it."""
    point = copied_point(aws)
    backup = aws.target("backup")
    metadata = backup.get_recovery_point_restore_metadata(BackupVaultName=TARGET_VAULT, RecoveryPointArn=point)
    job_id = backup.start_restore_job(
        RecoveryPointArn=point, Metadata=metadata["RestoreMetadata"], IamRoleArn=TARGET_ROLE_ARN
    )["RestoreJobId"]
    job = backup.describe_restore_job(RestoreJobId=job_id)
    assert (job["Status"], job["IamRoleArn"], job["BackupVaultArn"]) == ("COMPLETED", TARGET_ROLE_ARN, TARGET_VAULT_ARN)
    volume_id = job["CreatedResourceArn"].rsplit("/", 1)[1]
    assert job["CreatedResourceArn"] == f"arn:aws:ec2:{TARGET_REGION}:{TARGET.account_id}:volume/{volume_id}"
    ec2 = aws.target("ec2")
    volume = ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]
    assert volume["KmsKeyId"] == key_arn(aws.target("kms"), "alias/cmkTarget")
    assert (volume["Encrypted"], volume["Size"], volume["AvailabilityZone"]) == (True, 8, f"{TARGET_REGION}a")
    ec2.delete_volume(VolumeId=volume_id)
    assert volume_id not in volume_ids(aws)


def test_a_repeated_idempotency_token_returns_the_first_restore_job(aws):
    point = copied_point(aws)
    backup = aws.target("backup")
    arguments = {
        "RecoveryPointArn": point,
        "Metadata": {},
        "IamRoleArn": TARGET_ROLE_ARN,
        "IdempotencyToken": "drill-1",
    }
    first = backup.start_restore_job(**arguments)["RestoreJobId"]
    before = volume_ids(aws)
    assert backup.start_restore_job(**arguments)["RestoreJobId"] == first
    assert [job["RestoreJobId"] for job in backup.list_restore_jobs()["RestoreJobs"]] == [first]
    assert volume_ids(aws) == before, "a retried start restores nothing twice"


def test_restore_is_refused_by_an_explicit_deny_in_the_target_key(world, aws):
    """target-key-denies-restore end to end: the copy arrives, the restore fails at kms:Decrypt."""
    world.reset("target-key-denies-restore")
    point = copied_point(aws)
    before = volume_ids(aws)
    job = restore(aws, point)
    cmk_target = key_arn(aws.target("kms"), "alias/cmkTarget")
    assert job["Status"] == "FAILED"
    assert job["StatusMessage"] == (
        f"User: arn:aws:sts::{TARGET.account_id}:assumed-role/AWSBackupDefaultServiceRole/"
        "AWSBackup-AWSBackupDefaultServiceRole is not authorized to perform: kms:Decrypt on resource: "
        f"{cmk_target} with an explicit deny in a resource-based policy"
    )
    assert job["StatusMessage"] == MSG_RESTORE_KEY_EXPLICIT_DENY.format(
        caller=restore_caller(TARGET.account_id, TARGET_ROLE_ARN), action="kms:Decrypt", key_arn=cmk_target
    )
    assert "CreatedResourceArn" not in job
    assert volume_ids(aws) == before, "a refused restore must create no volume"


def test_restore_is_refused_when_no_key_policy_statement_allows_the_role(aws):
    point = copied_point(aws)
    kms = aws.target("kms")
    only_describe = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": TARGET.root_arn}, "Action": "kms:DescribeKey", "Resource": "*"}
        ],
    }
    narrow = kms.create_key(Policy=json.dumps(only_describe))["KeyMetadata"]["Arn"]
    job = restore(aws, point, kmsKeyId=narrow)
    assert job["Status"] == "FAILED"
    assert job["StatusMessage"] == (
        f"User: arn:aws:sts::{TARGET.account_id}:assumed-role/AWSBackupDefaultServiceRole/"
        f"AWSBackup-AWSBackupDefaultServiceRole is not authorized to perform: kms:Decrypt on resource: {narrow} "
        "because no resource-based policy allows the kms:Decrypt action"
    )


def test_restore_without_a_role_is_not_held_to_the_key_policy(world, aws):
    """IamRoleArn is optional in AWS's API model; the sandbox then asks no key policy."""
    world.reset("target-key-denies-restore")
    job = restore(aws, copied_point(aws), role_arn=None)
    assert job["Status"] == "COMPLETED"
    assert "IamRoleArn" not in job


def test_restore_under_a_key_that_does_not_exist_fails(aws):
    job = restore(aws, copied_point(aws), kmsKeyId="alias/noSuchKey")
    assert (job["Status"], job["StatusMessage"]) == (
        "FAILED",
        f"KMS key alias/noSuchKey does not exist in account {TARGET.account_id} in {TARGET_REGION}.",
    )


def test_restore_into_a_zone_of_another_region_fails(aws):
    job = restore(aws, copied_point(aws), availabilityZone=f"{SOURCE_REGION}a")
    assert (job["Status"], job["StatusMessage"]) == ("FAILED", f"Invalid availability zone: [{SOURCE_REGION}a]")


# ----- ListRestoreJobs ---------------------------------------------------------------------------


def test_list_restore_jobs_filters_and_pages(aws):
    point = copied_point(aws)
    before = datetime.now(timezone.utc) - timedelta(seconds=5)
    completed = [restore(aws, point)["RestoreJobId"] for _ in range(2)]
    failed = restore(aws, point, availabilityZone=f"{SOURCE_REGION}a")["RestoreJobId"]
    backup = aws.target("backup")
    listed = backup.list_restore_jobs()["RestoreJobs"]
    assert sorted(j["RestoreJobId"] for j in listed) == sorted([*completed, failed])
    assert sorted(j["RestoreJobId"] for j in backup.list_restore_jobs(ByStatus="COMPLETED")["RestoreJobs"]) == sorted(
        completed
    )
    assert [j["RestoreJobId"] for j in backup.list_restore_jobs(ByStatus="FAILED")["RestoreJobs"]] == [failed]
    assert len(backup.list_restore_jobs(ByAccountId=TARGET.account_id, ByResourceType="EBS")["RestoreJobs"]) == 3
    assert backup.list_restore_jobs(ByResourceType="RDS")["RestoreJobs"] == []
    assert len(backup.list_restore_jobs(ByCreatedAfter=before, ByCompleteAfter=before)["RestoreJobs"]) == 3
    assert backup.list_restore_jobs(ByCreatedBefore=before)["RestoreJobs"] == []
    assert aws.source("backup").list_restore_jobs()["RestoreJobs"] == [], "listed where they were started"
    pages = list(backup.get_paginator("list_restore_jobs").paginate(PaginationConfig={"PageSize": 2}))
    assert [len(p["RestoreJobs"]) for p in pages] == [2, 1]


# ----- PutRestoreValidationResult ----------------------------------------------------------------


def test_put_restore_validation_result_shows_in_describe_and_list(aws):
    job_id = restore(aws, copied_point(aws))["RestoreJobId"]
    backup = aws.target("backup")
    backup.put_restore_validation_result(
        RestoreJobId=job_id, ValidationStatus="SUCCESSFUL", ValidationStatusMessage="Volume mounted and checked."
    )
    described = backup.describe_restore_job(RestoreJobId=job_id)
    assert (described["ValidationStatus"], described["ValidationStatusMessage"]) == (
        "SUCCESSFUL",
        "Volume mounted and checked.",
    )
    listed = backup.list_restore_jobs()["RestoreJobs"][0]
    assert (listed["ValidationStatus"], listed["ValidationStatusMessage"]) == (
        "SUCCESSFUL",
        "Volume mounted and checked.",
    )


def test_put_restore_validation_result_unknown_job(aws):
    with pytest.raises(ClientError) as excinfo:
        aws.target("backup").put_restore_validation_result(RestoreJobId="NOPE", ValidationStatus="SUCCESSFUL")
    assert_error(excinfo, "ResourceNotFoundException", "Cannot find restore job with id NOPE")


def test_put_restore_validation_result_refuses_a_job_that_did_not_complete(world, aws):
    world.reset("target-key-denies-restore")
    job_id = restore(aws, copied_point(aws))["RestoreJobId"]
    with pytest.raises(ClientError) as excinfo:
        aws.target("backup").put_restore_validation_result(RestoreJobId=job_id, ValidationStatus="SUCCESSFUL")
    assert_error(
        excinfo,
        "InvalidRequestException",
        f"Restore job {job_id} is FAILED: a validation result can be put only for a restore job that has COMPLETED.",
    )


def test_put_restore_validation_result_unknown_status(aws):
    job_id = restore(aws, copied_point(aws))["RestoreJobId"]
    with pytest.raises(ClientError) as excinfo:
        aws.target("backup").put_restore_validation_result(RestoreJobId=job_id, ValidationStatus="PASSED")
    assert_error(
        excinfo,
        "InvalidParameterValueException",
        "Invalid ValidationStatus: PASSED. Valid values are FAILED, SUCCESSFUL, TIMED_OUT, VALIDATING.",
    )


# ----- the default role --------------------------------------------------------------------------


@pytest.mark.parametrize("account", ["source", "target"])
def test_the_default_role_has_aws_backups_managed_policies(aws, account):
    iam = aws.client(account, "iam")
    attached = iam.list_attached_role_policies(RoleName="AWSBackupDefaultServiceRole")["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == BACKUP_ROLE_POLICIES
    restores = iam.get_policy(PolicyArn=BACKUP_ROLE_POLICIES[1])["Policy"]
    assert (restores["PolicyName"], restores["Path"], restores["AttachmentCount"]) == (
        "AWSBackupServiceRolePolicyForRestores",
        "/service-role/",
        1,
    )
    version = iam.get_policy_version(PolicyArn=BACKUP_ROLE_POLICIES[1], VersionId=restores["DefaultVersionId"])
    document = version["PolicyVersion"]["Document"]
    statements = document["Statement"] if isinstance(document, dict) else json.loads(document)["Statement"]
    assert any("kms:CreateGrant" in json.dumps(s) for s in statements)
