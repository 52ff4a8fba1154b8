"""Identity policies the sandbox enforces when set: allowed calls pass, others get AWS's refusal in the
service's protocol, a policy taken off restores access, and a role passed to AWS Backup needs iam:PassRole
with iam:PassedToService."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aws_errors import assert_error
from botocore.exceptions import ClientError
from policy_sentry.querying import actions as iam_actions

from runbook_lib.core import permissions
from runbook_sandbox import identity_policies, process
from runbook_sandbox.accounts import ACCOUNTS, SOURCE, SOURCE_REGION, TARGET
from runbook_sandbox.testing.walkthrough import ROLE_ARN, SOURCE_VAULT, create_source_vault, key_arn, volume_arn

USER = f"arn:aws:iam::{SOURCE.account_id}:user/sandbox-source"
SOURCE_VAULT_ARN = f"arn:aws:backup:{SOURCE_REGION}:{SOURCE.account_id}:backup-vault:{SOURCE_VAULT}"
PASS_TO_BACKUP = {"StringEquals": {"iam:PassedToService": "backup.amazonaws.com"}}


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(actions: str | list[str], resource: str | list[str] = "*", **condition: Any) -> dict[str, Any]:
    statement = {"Effect": "Allow", "Action": actions, "Resource": resource}
    return {**statement, "Condition": condition} if condition else statement


def not_allowed(action: str, resource: str = "") -> str:
    on = f" on resource: {resource}" if resource else ""
    why = f"because no identity-based policy allows the {action} action"
    return f"User: {USER} is not authorized to perform: {action}{on} {why}"


@pytest.fixture
def enforce(world: process.Sandbox) -> Iterator[Any]:
    """Attach an identity policy to an account (the source's unless named); every policy is taken off after."""

    def attach(document: dict[str, Any] | None, account: str = SOURCE.account_id) -> dict[str, Any]:
        return world.set_identity_policy(account, document)

    yield attach
    for account in ACCOUNTS:
        world.set_identity_policy(account.account_id, None)


def test_a_call_the_policy_allows_passes(aws, enforce):
    create_source_vault(aws)
    enforce(policy(allow("backup:ListBackupVaults"), allow("backup:DescribeBackupVault", SOURCE_VAULT_ARN)))
    assert [v["BackupVaultName"] for v in aws.source("backup").list_backup_vaults()["BackupVaultList"]] == [
        SOURCE_VAULT
    ]
    assert (
        aws.source("backup").describe_backup_vault(BackupVaultName=SOURCE_VAULT)["BackupVaultArn"] == SOURCE_VAULT_ARN
    )


def test_a_call_outside_the_policy_gets_the_services_access_denied(aws, enforce):
    create_source_vault(aws)
    enforce(policy(allow("backup:DescribeBackupVault", SOURCE_VAULT_ARN)))
    with pytest.raises(ClientError) as excinfo:
        aws.source("backup").describe_backup_vault(BackupVaultName="OtherVault")
    other = SOURCE_VAULT_ARN.replace(SOURCE_VAULT, "OtherVault")
    assert_error(excinfo, "AccessDeniedException", not_allowed("backup:DescribeBackupVault", other))
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError) as excinfo:
        aws.source("ec2").describe_volumes()
    assert_error(
        excinfo,
        "UnauthorizedOperation",
        f"You are not authorized to perform this operation. {not_allowed('ec2:DescribeVolumes')}",
    )
    with pytest.raises(ClientError) as excinfo:
        aws.source("iam").get_role(RoleName="AWSBackupDefaultServiceRole")
    assert_error(excinfo, "AccessDenied", not_allowed("iam:GetRole", ROLE_ARN))
    kms = aws.source("kms")
    with pytest.raises(ClientError) as excinfo:
        kms.describe_key(KeyId="alias/cmkSource")
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400  # KMS refuses with 400
    key = excinfo.value.response["Error"]["Message"].split("on resource: ", 1)[1].split(" ", 1)[0]
    assert_error(excinfo, "AccessDeniedException", not_allowed("kms:DescribeKey", key))


def test_an_explicit_deny_wins_and_says_so(aws, enforce):
    enforce(policy(allow("backup:*"), {"Effect": "Deny", "Action": "backup:ListBackupVaults", "Resource": "*"}))
    with pytest.raises(ClientError) as excinfo:
        aws.source("backup").list_backup_vaults()
    assert_error(
        excinfo,
        "AccessDeniedException",
        f"User: {USER} is not authorized to perform: backup:ListBackupVaults with an explicit deny in an "
        "identity-based policy",
    )


def test_taking_the_policy_off_restores_access(aws, enforce):
    enforce(policy(allow("backup:ListBackupVaults")))
    with pytest.raises(ClientError):
        aws.source("ec2").describe_volumes()
    assert enforce(None) == {"identity_policies": {}}
    assert aws.source("ec2").describe_volumes()["Volumes"]


def test_only_the_account_with_a_policy_is_held_to_it(aws, enforce):
    enforce(policy(allow("backup:ListBackupVaults")))
    assert aws.target("ec2").describe_volumes()["Volumes"] == []
    assert aws.source("sts").get_caller_identity()["Account"] == SOURCE.account_id, "needs no permission, as on AWS"


def test_passing_the_role_to_aws_backup_needs_iam_pass_role_for_backup(aws, enforce):
    create_source_vault(aws)
    volume = volume_arn(aws)
    backup = aws.source("backup")

    def start() -> str:
        job = backup.start_backup_job(BackupVaultName=SOURCE_VAULT, ResourceArn=volume, IamRoleArn=ROLE_ARN)
        return str(job["BackupJobId"])

    enforce(policy(allow("backup:StartBackupJob", SOURCE_VAULT_ARN)))
    with pytest.raises(ClientError) as excinfo:
        start()
    assert_error(excinfo, "AccessDeniedException", not_allowed("iam:PassRole", ROLE_ARN))
    to_ec2 = {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}
    enforce(policy(allow("backup:StartBackupJob", SOURCE_VAULT_ARN), allow("iam:PassRole", ROLE_ARN, **to_ec2)))
    with pytest.raises(ClientError) as excinfo:
        start()
    assert_error(excinfo, "AccessDeniedException", not_allowed("iam:PassRole", ROLE_ARN))
    enforce(policy(allow("backup:StartBackupJob", SOURCE_VAULT_ARN), allow("iam:PassRole", ROLE_ARN, **PASS_TO_BACKUP)))
    assert start()


def test_tagging_a_volume_as_it_is_made_needs_ec2_create_tags_for_that_action(aws, enforce):
    volumes = f"arn:aws:ec2:{SOURCE_REGION}:{SOURCE.account_id}:volume/*"
    tags = [{"ResourceType": "volume", "Tags": [{"Key": "Name", "Value": "tagged"}]}]
    enforce(policy(allow("ec2:CreateVolume", volumes)))
    with pytest.raises(ClientError) as excinfo:
        aws.source("ec2").create_volume(AvailabilityZone=f"{SOURCE_REGION}a", Size=1, TagSpecifications=tags)
    assert_error(
        excinfo,
        "UnauthorizedOperation",
        f"You are not authorized to perform this operation. {not_allowed('ec2:CreateTags', volumes)}",
    )
    on_create = {"StringEquals": {"ec2:CreateAction": "CreateVolume"}}
    enforce(policy(allow("ec2:CreateVolume", volumes), allow("ec2:CreateTags", volumes, **on_create)))
    assert aws.source("ec2").create_volume(AvailabilityZone=f"{SOURCE_REGION}a", Size=1, TagSpecifications=tags)
    with pytest.raises(ClientError, match="ec2:CreateTags"):
        aws.source("ec2").create_tags(Resources=["vol-0123456789abcdef0"], Tags=[{"Key": "Name", "Value": "later"}])


def test_a_key_named_by_alias_in_a_condition(aws, enforce):
    keys = f"arn:aws:kms:{SOURCE_REGION}:{SOURCE.account_id}:key/*"
    aliases = {"ForAnyValue:StringEquals": {"kms:ResourceAliases": ["alias/cmkSource"]}}
    enforce(policy(allow("kms:DescribeKey", keys, **aliases)))
    kms = aws.source("kms")
    assert kms.describe_key(KeyId="alias/cmkSource")["KeyMetadata"]["KeyManager"] == "CUSTOMER"
    with pytest.raises(ClientError) as excinfo:
        kms.describe_key(KeyId="alias/cmkSourceVault")
    enforce(None)
    assert_error(excinfo, "AccessDeniedException", not_allowed("kms:DescribeKey", key_arn(kms, "alias/cmkSourceVault")))


def test_the_control_api_refuses_what_iam_would(world, enforce):
    with pytest.raises(process.SandboxRefused, match="should not specify a principal"):
        enforce(policy({**allow("backup:*"), "Principal": {"AWS": "*"}}))
    with pytest.raises(process.SandboxRefused, match="unknown account '999999999999'"):
        enforce(policy(allow("backup:*")), account="999999999999")
    with pytest.raises(process.SandboxRefused, match="Effect Allow or Deny"):
        enforce(policy({"Action": "backup:*", "Resource": "*"}))
    with pytest.raises(process.SandboxRefused, match="over 6144 characters"):
        enforce(policy(*[allow(f"backup:Action{n:04d}", f"arn:aws:backup:*:*:backup-vault:V{n}") for n in range(100)]))
    assert enforce(policy(allow("backup:*")), account="target") == {
        "identity_policies": {TARGET.account_id: policy(allow("backup:*"))}
    }


def test_every_operation_the_runbook_calls_has_the_resources_iam_authorizes_it_on():
    """An operation the sandbox reads no resource of is authorized on "*": right only where IAM defines none.
    iam:PassRole is no operation: it is evaluated on the role an operation passes (PASSED_ROLES)."""
    declared = {a for accounts in permissions.STEP_PERMISSIONS.values() for found in accounts.values() for a in found}
    read = {*identity_policies.READ_RESOURCES, "iam:PassRole"}
    unread = sorted(
        action
        for action in declared - read
        if any(
            row["resource_arn_format"] != "*"
            for row in iam_actions.get_action_data(*action.split(":"))[action.split(":")[0]]
        )
    )
    assert unread == []


@pytest.mark.parametrize(
    ("backend", "signed_for", "prefix"),
    [("efs", "elasticfilesystem", "elasticfilesystem"), ("backup", "backup", "backup"), ("ec2", "ec2", "ec2")],
)
def test_an_action_takes_the_services_iam_prefix(backend, signed_for, prefix):
    assert identity_policies.iam_prefix(backend, signed_for) == prefix
    assert prefix in iam_actions.get_all_service_prefixes()
