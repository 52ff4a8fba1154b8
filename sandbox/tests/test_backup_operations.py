"""One test per AWS Backup operation the sandbox adds: what works, and AWS's error when it does not."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest
from aws_errors import assert_error
from botocore.exceptions import ClientError

from runbook_sandbox.accounts import SOURCE, SOURCE_REGION, TARGET, TARGET_REGION
from runbook_sandbox.backup.responses import INVALID_NEXT_TOKEN
from runbook_sandbox.testing.walkthrough import (
    ROLE_ARN,
    SOURCE_VAULT,
    TARGET_VAULT,
    TARGET_VAULT_ARN,
    back_up,
    copy,
    create_source_vault,
    create_target_vault,
    database_arn,
    key_arn,
    prepare_everything,
    vault_policy,
    volume_arn,
)


@pytest.fixture
def backup(aws):
    return aws.source("backup")


@pytest.fixture
def vault(aws):
    create_source_vault(aws)
    return SOURCE_VAULT


# ----- vaults -----------------------------------------------------------------------------------


def test_create_backup_vault_without_key_uses_aws_managed_backup_key(aws, backup):
    backup.create_backup_vault(BackupVaultName="DefaultKeyVault")
    described = backup.describe_backup_vault(BackupVaultName="DefaultKeyVault")
    managed = aws.source("kms").describe_key(KeyId=described["EncryptionKeyArn"])["KeyMetadata"]
    assert managed["KeyManager"] == "AWS"
    assert managed["Arn"] == key_arn(aws.source("kms"), "alias/aws/backup")


def test_create_backup_vault_without_key_where_no_service_used_the_backup_key_yet(aws):
    """The AWS managed key is created on first use in a Region, as AWS does (moto knew no aws/backup)."""
    backup = aws.source("backup", TARGET_REGION)
    backup.create_backup_vault(BackupVaultName="FirstInRegion")
    described = backup.describe_backup_vault(BackupVaultName="FirstInRegion")
    managed = aws.source("kms", TARGET_REGION).describe_key(KeyId="alias/aws/backup")["KeyMetadata"]
    assert (described["EncryptionKeyArn"], managed["KeyManager"]) == (managed["Arn"], "AWS")


def test_describe_backup_vault_counts_its_recovery_points(aws, backup, vault):
    assert backup.describe_backup_vault(BackupVaultName=vault)["NumberOfRecoveryPoints"] == 0
    back_up(aws, volume_arn(aws))
    described = backup.describe_backup_vault(BackupVaultName=vault)
    assert (described["NumberOfRecoveryPoints"], described["VaultType"]) == (1, "BACKUP_VAULT")


def test_create_backup_vault_refuses_a_key_of_another_account(aws, backup):
    foreign = key_arn(aws.target("kms"), "alias/cmkTarget")
    with pytest.raises(ClientError) as excinfo:
        backup.create_backup_vault(BackupVaultName="Foreign", EncryptionKeyArn=foreign)
    assert_error(
        excinfo,
        "InvalidParameterValueException",
        f"Invalid EncryptionKeyArn: {foreign} is not a KMS key of account {SOURCE.account_id} in {SOURCE_REGION}.",
    )


def test_delete_backup_vault_refuses_a_vault_with_recovery_points(aws, backup, vault):
    back_up(aws, volume_arn(aws))
    with pytest.raises(ClientError) as excinfo:
        backup.delete_backup_vault(BackupVaultName=vault)
    assert_error(
        excinfo,
        "InvalidRequestException",
        f"Backup vault {vault} cannot be deleted because it contains recovery points.",
    )


# ----- backup jobs ------------------------------------------------------------------------------


def test_start_backup_job_keeps_the_volume_key_not_the_vault_key(aws, backup, vault):
    job = backup.start_backup_job(
        BackupVaultName=vault, ResourceArn=volume_arn(aws), IamRoleArn=ROLE_ARN, Lifecycle={"DeleteAfterDays": 35}
    )
    assert "RecoveryPointArn" not in job, "for EBS, StartBackupJob does not return the recovery point ARN"
    described = backup.describe_backup_job(BackupJobId=job["BackupJobId"])
    assert described["EncryptionKeyArn"] == key_arn(aws.source("kms"), "alias/cmkSource")
    assert described["RecoveryPointArn"].startswith(f"arn:aws:ec2:{SOURCE_REGION}::snapshot/snap-")


def test_start_backup_job_unknown_vault(aws, backup):
    with pytest.raises(ClientError) as excinfo:
        backup.start_backup_job(BackupVaultName="Nope", ResourceArn=volume_arn(aws), IamRoleArn=ROLE_ARN)
    assert_error(
        excinfo,
        "ResourceNotFoundException",
        f"Backup vault Nope does not exist in account {SOURCE.account_id} in {SOURCE_REGION}.",
    )


def test_start_backup_job_refuses_retention_aws_refuses(aws, backup, vault):
    with pytest.raises(ClientError) as excinfo:
        backup.start_backup_job(
            BackupVaultName=vault,
            ResourceArn=volume_arn(aws),
            IamRoleArn=ROLE_ARN,
            Lifecycle={"MoveToColdStorageAfterDays": 30, "DeleteAfterDays": 60},
        )
    assert_error(
        excinfo,
        "InvalidParameterValueException",
        "Invalid lifecycle. DeleteAfterDays (60) must be at least 90 days greater than "
        "MoveToColdStorageAfterDays (30).",
    )


@pytest.mark.parametrize(
    "tags, message",
    [
        ({"Owner": "a\x00b"}, "Invalid tag value for key 'Owner'."),
        ({"Owner": "ring\x07"}, "Invalid tag value for key 'Owner'."),
        ({"Owner": "<script>alert(1)</script>"}, "Invalid tag value for key 'Owner'."),
        ({"aws:owner": "me"}, "Invalid tag key: 'aws:owner'."),
        ({"k" * 129: "v"}, f"Invalid tag key: {'k' * 129!r}."),
        ({f"k{index}": "v" for index in range(51)}, "Too many tags: 51; at most 50 are allowed."),
    ],
)
def test_start_backup_job_refuses_tags_aws_refuses_and_snapshots_stay_readable(aws, backup, vault, tags, message):
    with pytest.raises(ClientError) as excinfo:
        backup.start_backup_job(
            BackupVaultName=vault, ResourceArn=volume_arn(aws), IamRoleArn=ROLE_ARN, RecoveryPointTags=tags
        )
    assert_error(excinfo, "InvalidParameterValueException", message)
    assert aws.source("ec2").describe_snapshots(OwnerIds=["self"])["Snapshots"] == []


def test_tags_in_any_script_within_aws_limits_are_accepted(aws, backup, vault):
    tags = {"Projekt": "Sicherung für Daten", "番号": "٣ 三", "k" * 128: "v" * 256, "path": "a/b:c=d+e-f@g_h.i"}
    job = backup.start_backup_job(
        BackupVaultName=vault, ResourceArn=volume_arn(aws), IamRoleArn=ROLE_ARN, RecoveryPointTags=tags
    )
    assert backup.describe_backup_job(BackupJobId=job["BackupJobId"])["State"] in ("CREATED", "RUNNING", "COMPLETED")


def test_create_backup_vault_and_tag_resource_refuse_bad_tags(aws, backup, vault):
    with pytest.raises(ClientError) as excinfo:
        backup.create_backup_vault(BackupVaultName="Tagged", BackupVaultTags={"Owner": "x\x00"})
    assert_error(excinfo, "InvalidParameterValueException", "Invalid tag value for key 'Owner'.")
    arn = backup.describe_backup_vault(BackupVaultName=vault)["BackupVaultArn"]
    with pytest.raises(ClientError) as excinfo:
        backup.tag_resource(ResourceArn=arn, Tags={"Owner": "<b>"})
    assert_error(excinfo, "InvalidParameterValueException", "Invalid tag value for key 'Owner'.")


def test_start_backup_job_missing_role(aws, backup, vault):
    role = f"arn:aws:iam::{SOURCE.account_id}:role/NoSuchRole"
    with pytest.raises(ClientError) as excinfo:
        backup.start_backup_job(BackupVaultName=vault, ResourceArn=volume_arn(aws), IamRoleArn=role)
    assert_error(excinfo, "InvalidParameterValueException", f"IAM Role {role} does not exist.")


def test_start_backup_job_idempotency_token_returns_the_first_job(aws, backup, vault):
    arguments = dict(BackupVaultName=vault, ResourceArn=volume_arn(aws), IamRoleArn=ROLE_ARN, IdempotencyToken="t-1")
    first = backup.start_backup_job(**arguments)
    second = backup.start_backup_job(**arguments)
    assert first["BackupJobId"] == second["BackupJobId"]
    assert len(backup.list_backup_jobs()["BackupJobs"]) == 1


def test_describe_backup_job_unknown_id(backup):
    with pytest.raises(ClientError) as excinfo:
        backup.describe_backup_job(BackupJobId="NOPE")
    assert_error(excinfo, "ResourceNotFoundException", "Cannot find backup job with id NOPE")


def test_describe_backup_job_moves_through_states(world, aws, backup, vault):
    world.configure(job_seconds=2)
    job = backup.start_backup_job(BackupVaultName=vault, ResourceArn=volume_arn(aws), IamRoleArn=ROLE_ARN)
    early = backup.describe_backup_job(BackupJobId=job["BackupJobId"])
    assert early["State"] in ("CREATED", "RUNNING")
    assert float(early["PercentDone"]) < 100
    done = None
    for _ in range(600):
        described = backup.describe_backup_job(BackupJobId=job["BackupJobId"])
        if described["State"] == "COMPLETED":
            done = described
            break
        time.sleep(0.05)
    assert done is not None and done["PercentDone"] == "100.0"


def test_list_backup_jobs_filters_and_pages(aws, backup, vault):
    volume = volume_arn(aws)
    for _ in range(3):
        back_up(aws, volume)
    back_up(aws, volume_arn(aws, "default-key-volume"))
    assert len(backup.list_backup_jobs(ByResourceArn=volume)["BackupJobs"]) == 3
    assert len(backup.list_backup_jobs(ByState="COMPLETED")["BackupJobs"]) == 4
    assert backup.list_backup_jobs(ByState="FAILED")["BackupJobs"] == []
    first = backup.list_backup_jobs(MaxResults=3)
    rest = backup.list_backup_jobs(MaxResults=3, NextToken=first["NextToken"])
    assert len(first["BackupJobs"]) == 3 and len(rest["BackupJobs"]) == 1 and "NextToken" not in rest
    paginated = backup.get_paginator("list_backup_jobs").paginate(PaginationConfig={"PageSize": 1})
    assert sum(len(page["BackupJobs"]) for page in paginated) == 4


def test_list_backup_jobs_bad_token(backup):
    with pytest.raises(ClientError) as excinfo:
        backup.list_backup_jobs(NextToken="not-a-token")
    assert_error(excinfo, "InvalidParameterValueException", INVALID_NEXT_TOKEN)


# ----- recovery points --------------------------------------------------------------------------


def test_list_recovery_points_by_backup_vault_pages(aws, backup, vault):
    for _ in range(3):
        back_up(aws, volume_arn(aws))
    pages = list(
        backup.get_paginator("list_recovery_points_by_backup_vault").paginate(
            BackupVaultName=vault, PaginationConfig={"PageSize": 2}
        )
    )
    assert [len(p["RecoveryPoints"]) for p in pages] == [2, 1]
    point = pages[0]["RecoveryPoints"][0]
    assert point["Status"] == "COMPLETED" and point["ResourceType"] == "EBS"
    assert point["Lifecycle"] == {"DeleteAfterDays": 35}
    assert point["CalculatedLifecycle"]["DeleteAt"] > point["CreationDate"]


def test_list_recovery_points_by_backup_vault_unknown_vault(backup):
    with pytest.raises(ClientError) as excinfo:
        backup.list_recovery_points_by_backup_vault(BackupVaultName="Nope")
    assert_error(
        excinfo,
        "ResourceNotFoundException",
        f"Backup vault Nope does not exist in account {SOURCE.account_id} in {SOURCE_REGION}.",
    )


def test_list_recovery_points_by_resource(aws, backup, vault):
    volume = volume_arn(aws)
    point = back_up(aws, volume)
    back_up(aws, volume_arn(aws, "default-key-volume"))
    found = backup.list_recovery_points_by_resource(ResourceArn=volume)["RecoveryPoints"]
    assert [p["RecoveryPointArn"] for p in found] == [point]
    assert found[0]["BackupVaultName"] == vault


def test_list_recovery_points_by_resource_malformed_arn(backup):
    with pytest.raises(ClientError) as excinfo:
        backup.list_recovery_points_by_resource(ResourceArn="not-an-arn")
    assert_error(excinfo, "InvalidParameterValueException", "Invalid ARN: not-an-arn")


def test_describe_recovery_point(aws, backup, vault):
    point = back_up(aws, volume_arn(aws))
    described = backup.describe_recovery_point(BackupVaultName=vault, RecoveryPointArn=point)
    assert described["Status"] == "COMPLETED"
    assert described["StorageClass"] == "WARM"
    assert described["EncryptionKeyArn"] == key_arn(aws.source("kms"), "alias/cmkSource")
    assert described["IsEncrypted"] is True
    assert aws.source("backup").list_tags(ResourceArn=point)["Tags"] == {"runbook": "walkthrough"}


def test_describe_recovery_point_unknown(aws, backup, vault):
    arn = f"arn:aws:ec2:{SOURCE_REGION}::snapshot/snap-00000000000000000"
    with pytest.raises(ClientError) as excinfo:
        backup.describe_recovery_point(BackupVaultName=vault, RecoveryPointArn=arn)
    assert_error(excinfo, "ResourceNotFoundException", f"Recovery point {arn} not found in backup vault {vault}.")


def test_delete_recovery_point_removes_its_snapshot(aws, backup, vault):
    point = back_up(aws, volume_arn(aws))
    snapshot_id = point.rsplit("/", 1)[1]
    backup.delete_recovery_point(BackupVaultName=vault, RecoveryPointArn=point)
    assert backup.list_recovery_points_by_backup_vault(BackupVaultName=vault)["RecoveryPoints"] == []
    with pytest.raises(ClientError) as excinfo:
        aws.source("ec2").describe_snapshots(SnapshotIds=[snapshot_id])
    assert excinfo.value.response["Error"]["Code"] == "InvalidSnapshot.NotFound"


def test_delete_recovery_point_in_use_by_a_running_copy(world, aws, backup):
    point = prepare_everything(aws)
    world.configure(job_seconds=60)
    copy(aws, point)
    with pytest.raises(ClientError) as excinfo:
        backup.delete_recovery_point(BackupVaultName=SOURCE_VAULT, RecoveryPointArn=point)
    assert_error(
        excinfo,
        "InvalidResourceStateException",
        f"Recovery point {point} is being used by a running job and cannot be deleted.",
    )


# ----- vault access policies --------------------------------------------------------------------


def test_put_and_get_backup_vault_access_policy(aws):
    create_target_vault(aws, with_policy=False)
    backup = aws.target("backup")
    backup.put_backup_vault_access_policy(BackupVaultName=TARGET_VAULT, Policy=vault_policy())
    got = backup.get_backup_vault_access_policy(BackupVaultName=TARGET_VAULT)
    assert json.loads(got["Policy"]) == json.loads(vault_policy())
    assert got["BackupVaultArn"] == TARGET_VAULT_ARN


def test_put_backup_vault_access_policy_malformed(aws):
    create_target_vault(aws, with_policy=False)
    with pytest.raises(ClientError) as excinfo:
        aws.target("backup").put_backup_vault_access_policy(BackupVaultName=TARGET_VAULT, Policy="{not json")
    assert_error(excinfo, "InvalidParameterValueException", "Policy is not a valid JSON document.")


def test_get_backup_vault_access_policy_when_none(aws):
    create_target_vault(aws, with_policy=False)
    with pytest.raises(ClientError) as excinfo:
        aws.target("backup").get_backup_vault_access_policy(BackupVaultName=TARGET_VAULT)
    assert_error(excinfo, "ResourceNotFoundException", f"Backup vault {TARGET_VAULT} has no access policy.")


def test_delete_backup_vault_access_policy(aws):
    create_target_vault(aws)
    backup = aws.target("backup")
    backup.delete_backup_vault_access_policy(BackupVaultName=TARGET_VAULT)
    with pytest.raises(ClientError):
        backup.get_backup_vault_access_policy(BackupVaultName=TARGET_VAULT)
    with pytest.raises(ClientError) as excinfo:
        backup.delete_backup_vault_access_policy(BackupVaultName="Nope")
    assert_error(
        excinfo,
        "ResourceNotFoundException",
        f"Backup vault Nope does not exist in account {TARGET.account_id} in {TARGET_REGION}.",
    )


# ----- global settings --------------------------------------------------------------------------


def test_update_global_settings_from_management_is_seen_by_members(aws):
    aws.management("backup").update_global_settings(GlobalSettings={"isCrossAccountBackupEnabled": "true"})
    for role in ("source", "target", "management"):
        settings = aws.client(role, "backup", SOURCE_REGION).describe_global_settings()
        assert settings["GlobalSettings"]["isCrossAccountBackupEnabled"] == "true"


def test_update_global_settings_from_a_member_is_refused(aws):
    with pytest.raises(ClientError) as excinfo:
        aws.source("backup").update_global_settings(GlobalSettings={"isCrossAccountBackupEnabled": "true"})
    assert_error(
        excinfo, "InvalidRequestException", "Only the management account of an organization can update global settings."
    )


def test_describe_global_settings_outside_any_organization(aws):
    with pytest.raises(ClientError) as excinfo:
        aws.client("outsider", "backup", SOURCE_REGION).describe_global_settings()
    assert_error(excinfo, "InvalidRequestException", "ERROR_9601: Your account is not a member of an organization.")


def test_update_global_settings_rejects_unknown_values(aws):
    with pytest.raises(ClientError) as excinfo:
        aws.management("backup").update_global_settings(GlobalSettings={"isCrossAccountBackupEnabled": "maybe"})
    assert_error(excinfo, "InvalidParameterValueException", "isCrossAccountBackupEnabled must be true or false.")


# ----- copy jobs --------------------------------------------------------------------------------


def test_start_copy_job_and_describe(aws):
    point = prepare_everything(aws)
    job = copy(aws, point)
    assert job["State"] == "COMPLETED"
    assert job["SourceRecoveryPointArn"] == point
    assert job["DestinationBackupVaultArn"] == TARGET_VAULT_ARN
    assert job["DestinationEncryptionKeyArn"] == key_arn(aws.target("kms"), "alias/cmkTarget")
    assert job["DestinationRecoveryPointArn"].startswith(f"arn:aws:ec2:{TARGET_REGION}::snapshot/snap-")


def test_start_copy_job_recovery_point_not_in_vault(aws):
    prepare_everything(aws)
    arn = f"arn:aws:ec2:{SOURCE_REGION}::snapshot/snap-00000000000000000"
    with pytest.raises(ClientError) as excinfo:
        copy(aws, arn)
    assert_error(
        excinfo, "ResourceNotFoundException", f"Recovery point {arn} not found in backup vault {SOURCE_VAULT}."
    )


def test_start_copy_job_malformed_destination(aws):
    point = prepare_everything(aws)
    with pytest.raises(ClientError) as excinfo:
        copy(aws, point, destination_vault_arn="CABTargetVault")
    assert_error(excinfo, "InvalidParameterValueException", "Invalid ARN: CABTargetVault")


def test_start_copy_job_idempotency_token(aws):
    point = prepare_everything(aws)
    backup = aws.source("backup")
    arguments = dict(
        RecoveryPointArn=point,
        SourceBackupVaultName=SOURCE_VAULT,
        DestinationBackupVaultArn=TARGET_VAULT_ARN,
        IamRoleArn=ROLE_ARN,
        IdempotencyToken="copy-1",
    )
    assert backup.start_copy_job(**arguments)["CopyJobId"] == backup.start_copy_job(**arguments)["CopyJobId"]
    assert len(backup.list_copy_jobs()["CopyJobs"]) == 1


def test_describe_copy_job_unknown(backup):
    with pytest.raises(ClientError) as excinfo:
        backup.describe_copy_job(CopyJobId="NOPE")
    assert_error(excinfo, "ResourceNotFoundException", "Cannot find copy job with id NOPE")


def test_list_copy_jobs_filters_and_pages(world, aws):
    point = prepare_everything(aws)
    backup = aws.source("backup")
    before = datetime.now(timezone.utc) - timedelta(seconds=5)
    copy(aws, point)
    copy(aws, point)
    world.configure(fail_next_copy="Injected failure")
    copy(aws, point)
    assert len(backup.list_copy_jobs(ByState="COMPLETED")["CopyJobs"]) == 2
    assert [j["StatusMessage"] for j in backup.list_copy_jobs(ByState="FAILED")["CopyJobs"]] == ["Injected failure"]
    assert len(backup.list_copy_jobs(ByDestinationVaultArn=TARGET_VAULT_ARN)["CopyJobs"]) == 3
    assert len(backup.list_copy_jobs(ByAccountId=SOURCE.account_id)["CopyJobs"]) == 3
    assert backup.list_copy_jobs(ByAccountId=TARGET.account_id)["CopyJobs"] == []
    assert len(backup.list_copy_jobs(ByCreatedAfter=before)["CopyJobs"]) == 3
    assert backup.list_copy_jobs(ByCreatedAfter=datetime.now(timezone.utc) + timedelta(hours=1))["CopyJobs"] == []
    pages = list(backup.get_paginator("list_copy_jobs").paginate(PaginationConfig={"PageSize": 2}))
    assert [len(p["CopyJobs"]) for p in pages] == [2, 1]


def test_list_copy_jobs_rejects_a_token_from_other_filters(aws):
    point = prepare_everything(aws)
    for _ in range(2):
        copy(aws, point)
    backup = aws.source("backup")
    token = backup.list_copy_jobs(MaxResults=1)["NextToken"]
    with pytest.raises(ClientError) as excinfo:
        backup.list_copy_jobs(MaxResults=1, NextToken=token, ByState="FAILED")
    assert_error(excinfo, "InvalidParameterValueException", INVALID_NEXT_TOKEN)


# ----- restore jobs -----------------------------------------------------------------------------


def test_start_and_describe_restore_job_in_the_target_account(aws):
    point = prepare_everything(aws)
    copied = copy(aws, point)["DestinationRecoveryPointArn"]
    backup = aws.target("backup")
    job = backup.start_restore_job(
        RecoveryPointArn=copied,
        Metadata={"availabilityZone": f"{TARGET_REGION}a"},
        IamRoleArn=f"arn:aws:iam::{TARGET.account_id}:role/service-role/AWSBackupDefaultServiceRole",
    )
    described = backup.describe_restore_job(RestoreJobId=job["RestoreJobId"])
    assert described["Status"] == "COMPLETED"
    volume_id = described["CreatedResourceArn"].rsplit("/", 1)[1]
    volume = aws.target("ec2").describe_volumes(VolumeIds=[volume_id])["Volumes"][0]
    assert volume["KmsKeyId"] == key_arn(aws.target("kms"), "alias/cmkTarget")


def test_start_restore_job_unknown_recovery_point(aws):
    arn = f"arn:aws:ec2:{TARGET_REGION}::snapshot/snap-00000000000000000"
    with pytest.raises(ClientError) as excinfo:
        aws.target("backup").start_restore_job(RecoveryPointArn=arn, Metadata={})
    assert_error(excinfo, "ResourceNotFoundException", f"Recovery point {arn} not found.")


def test_describe_restore_job_unknown(backup):
    with pytest.raises(ClientError) as excinfo:
        backup.describe_restore_job(RestoreJobId="NOPE")
    assert_error(excinfo, "ResourceNotFoundException", "Cannot find restore job with id NOPE")


# ----- RDS ---------------------------------------------------------------------------------------


def test_rds_backup_recovery_point_is_in_the_account(aws, backup, vault):
    job = backup.start_backup_job(BackupVaultName=vault, ResourceArn=database_arn(), IamRoleArn=ROLE_ARN)
    assert "RecoveryPointArn" not in job, "StartBackupJob returns it only for types AWS Backup fully manages"
    point = backup.describe_backup_job(BackupJobId=job["BackupJobId"])["RecoveryPointArn"]
    assert point.startswith(f"arn:aws:rds:{SOURCE_REGION}:{SOURCE.account_id}:snapshot:awsbackup:")
    described = backup.describe_recovery_point(BackupVaultName=vault, RecoveryPointArn=point)
    assert described["ResourceType"] == "RDS"
    assert described["EncryptionKeyArn"] == key_arn(aws.source("kms"), "alias/cmkSource")
