"""The seven known copy failures, produced by plain API calls, in AWS's words."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from runbook_sandbox.accounts import SOURCE_REGION, TARGET_REGION
from runbook_sandbox.testing.walkthrough import (
    TARGET_VAULT,
    add_key_statements,
    copy,
    database_arn,
    enable_cross_account,
    prepare_everything,
    share_statements,
    vault_policy,
)


def target_recovery_points(aws) -> list:  # type: ignore[no-untyped-def]
    return aws.target("backup").list_recovery_points_by_backup_vault(BackupVaultName=TARGET_VAULT)["RecoveryPoints"]


def assert_failed_copy(aws, point: str, message: str) -> None:  # type: ignore[no-untyped-def]
    job = copy(aws, point)
    assert job["State"] == "FAILED"
    assert job["StatusMessage"] == message
    assert "DestinationRecoveryPointArn" not in job
    assert target_recovery_points(aws) == [], "a failed copy must leave no destination recovery point"


def test_failure_1_accounts_not_in_one_organization(world, aws):
    world.reset("outside-organization")
    assert_failed_copy(
        aws,
        prepare_everything(aws),
        "Copy job failed. Both source and destination account must be a member of the same organization.",
    )


def test_failure_2_source_key_not_shared(aws):
    assert_failed_copy(
        aws,
        prepare_everything(aws, share_key=False),
        "EBS snapshot copy failed with error: Given key ID is not accessible. "
        "You must have DescribeKey permissions on the default CMK.",
    )


def test_failure_3_vault_policy_does_not_let_the_source_in(aws):
    point = prepare_everything(aws, target_vault_policy=False)
    assert_failed_copy(aws, point, "Access Denied trying to call AWS Backup service")


def test_failure_4_snapshot_encrypted_with_aws_managed_key(aws):
    job = copy(aws, prepare_everything(aws, volume="default-key-volume"))
    assert job["State"] == "FAILED"
    assert job["StatusMessage"].startswith(
        "Snapshots encrypted with the AWS Managed CMK can't be shared. Specify another snapshot. "
        "(Service: AmazonEC2; Status Code: 400; Error Code: InvalidParameter; Request ID: "
    )
    assert job["StatusMessage"].endswith("; Proxy: null)")
    assert target_recovery_points(aws) == []


def test_failure_5_destination_vault_uses_the_default_backup_key(world, aws):
    world.reset("default-key-target-vault")
    point = prepare_everything(aws, target_vault=False)
    aws.target("backup").put_backup_vault_access_policy(BackupVaultName=TARGET_VAULT, Policy=vault_policy())
    assert_failed_copy(
        aws,
        point,
        "Copy job failed because the destination Backup vault is encrypted with the default Backup service "
        "managed key. The contents of this vault cannot be copied. Only the contents of a Backup vault "
        "encrypted by a customer master key (CMK) may be copied.",
    )


def test_failure_6_rds_cross_region_and_cross_account_is_refused_at_once(world, aws):
    """AWS copies a database across account and Region in one job since October 2025; where it still refuses
    (the sandbox set to), StartCopyJob refuses at once."""
    point = prepare_everything(aws, resource_arn=database_arn())
    world.configure(refuse_one_action_types=["RDS"])
    with pytest.raises(ClientError) as excinfo:
        copy(aws, point)
    assert excinfo.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert excinfo.value.response["Error"]["Message"] == (
        f"Copy job from {SOURCE_REGION} to {TARGET_REGION} cannot be initiated for RDS resources. "
        "Feature is not supported for provided resource type."
    )
    assert aws.source("backup").list_copy_jobs()["CopyJobs"] == []


def test_failure_7_cross_account_backup_not_enabled(aws):
    assert_failed_copy(
        aws,
        prepare_everything(aws, cross_account=False),
        "Copy job failed. Cross-account copy feature is not enabled for the current organization.",
    )


def test_failure_7_scenario_management_cannot_turn_it_on(world, aws):
    world.reset("cross-account-locked")
    with pytest.raises(ClientError) as excinfo:
        enable_cross_account(aws)
    assert excinfo.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "backup:UpdateGlobalSettings" in excinfo.value.response["Error"]["Message"]


def test_failure_2_explicit_deny_beats_sharing(world, aws):
    world.reset("key-policy-denies-target")
    assert_failed_copy(
        aws,
        prepare_everything(aws),
        "EBS snapshot copy failed with error: Given key ID is not accessible. "
        "You must have DescribeKey permissions on the default CMK.",
    )


def test_sharing_with_the_wrong_account_does_not_share(aws):
    point = prepare_everything(aws, share_key=False)
    add_key_statements(aws, "alias/cmkSource", share_statements(target_account="444444444444"))
    job = copy(aws, point)
    assert job["State"] == "FAILED" and "Given key ID is not accessible" in job["StatusMessage"]
