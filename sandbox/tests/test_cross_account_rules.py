"""Cross-account decisions come from the real policy documents, as AWS evaluates them."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from runbook_sandbox.accounts import SOURCE, TARGET
from runbook_sandbox.testing.walkthrough import (
    TARGET_VAULT,
    add_key_statements,
    back_up,
    copy,
    create_source_vault,
    create_target_vault,
    enable_cross_account,
    key_arn,
    share_statements,
    vault_policy,
    volume_arn,
)

SERVICE_ROLE = f"arn:aws:iam::{TARGET.account_id}:role/aws-service-role/backup.amazonaws.com/AWSServiceRoleForBackup"
ALL_COPY_ACTIONS = ["kms:DescribeKey", "kms:Decrypt", "kms:CreateGrant"]


@pytest.fixture
def ready_but_unshared(aws):
    enable_cross_account(aws)
    create_source_vault(aws)
    create_target_vault(aws)
    return back_up(aws, volume_arn(aws))


def statement(principal, actions=ALL_COPY_ACTIONS, effect="Allow", condition=None):  # type: ignore[no-untyped-def]
    result = {"Effect": effect, "Principal": principal, "Action": actions, "Resource": "*"}
    if condition:
        result["Condition"] = condition
    return result


@pytest.mark.parametrize(
    "principal",
    [{"AWS": TARGET.account_id}, {"AWS": f"arn:aws:iam::{TARGET.account_id}:root"}, {"AWS": SERVICE_ROLE}],
    ids=["account-id", "root-arn", "service-linked-role-arn"],
)
def test_key_policy_principal_forms_share_the_key(aws, ready_but_unshared, principal):
    add_key_statements(aws, "alias/cmkSource", [statement(principal)])
    assert copy(aws, ready_but_unshared)["State"] == "COMPLETED"


def test_key_policy_for_another_role_does_not_share(aws, ready_but_unshared):
    other_role = f"arn:aws:iam::{TARGET.account_id}:role/SomebodyElse"
    add_key_statements(aws, "alias/cmkSource", [statement({"AWS": other_role})])
    assert copy(aws, ready_but_unshared)["State"] == "FAILED"


def test_deny_wins_over_allow(aws, ready_but_unshared):
    add_key_statements(
        aws,
        "alias/cmkSource",
        share_statements() + [statement({"AWS": TARGET.account_id}, ["kms:Decrypt"], effect="Deny")],
    )
    assert copy(aws, ready_but_unshared)["State"] == "FAILED"


def test_use_without_grant_statement_is_not_enough(aws, ready_but_unshared):
    add_key_statements(aws, "alias/cmkSource", share_statements()[:1])
    assert copy(aws, ready_but_unshared)["State"] == "FAILED"


def test_wildcard_principal_with_organization_condition_shares(aws, ready_but_unshared):
    org_id = aws.source("organizations").describe_organization()["Organization"]["Id"]
    add_key_statements(
        aws, "alias/cmkSource", [statement("*", ["kms:*"], condition={"StringEquals": {"aws:PrincipalOrgID": org_id}})]
    )
    assert copy(aws, ready_but_unshared)["State"] == "COMPLETED"


def test_condition_the_sandbox_does_not_understand_does_not_match(aws, ready_but_unshared):
    add_key_statements(
        aws,
        "alias/cmkSource",
        [statement({"AWS": TARGET.account_id}, condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})],
    )
    assert copy(aws, ready_but_unshared)["State"] == "FAILED"


def test_caller_account_condition(aws, ready_but_unshared):
    add_key_statements(
        aws,
        "alias/cmkSource",
        [statement("*", condition={"StringEquals": {"kms:CallerAccount": TARGET.account_id}})],
    )
    assert copy(aws, ready_but_unshared)["State"] == "COMPLETED"


def test_vault_policy_deny_for_the_source_blocks_copies(aws, ready_but_unshared):
    add_key_statements(aws, "alias/cmkSource", share_statements())
    policy = json.loads(vault_policy())
    policy["Statement"] += json.loads(vault_policy(effect="Deny"))["Statement"]
    aws.target("backup").put_backup_vault_access_policy(BackupVaultName=TARGET_VAULT, Policy=json.dumps(policy))
    assert copy(aws, ready_but_unshared)["StatusMessage"] == "Access Denied trying to call AWS Backup service"


def test_vault_policy_for_another_account_blocks_copies(aws, ready_but_unshared):
    add_key_statements(aws, "alias/cmkSource", share_statements())
    aws.target("backup").put_backup_vault_access_policy(
        BackupVaultName=TARGET_VAULT, Policy=vault_policy(source_account="444444444444")
    )
    assert copy(aws, ready_but_unshared)["State"] == "FAILED"


def test_cross_account_describe_key_follows_the_key_policy(aws):
    cmk_source = key_arn(aws.source("kms"), "alias/cmkSource")
    target_kms = aws.target("kms", "us-east-1")
    with pytest.raises(ClientError) as excinfo:
        target_kms.describe_key(KeyId=cmk_source)
    assert excinfo.value.response["Error"]["Code"] == "AccessDeniedException"
    assert excinfo.value.response["Error"]["Message"] == (
        f"User: arn:aws:iam::{TARGET.account_id}:root is not authorized to perform: kms:DescribeKey on resource: "
        f"{cmk_source} because no resource-based policy allows the kms:DescribeKey action"
    )
    add_key_statements(aws, "alias/cmkSource", share_statements())
    described = target_kms.describe_key(KeyId=cmk_source)["KeyMetadata"]
    assert described["AWSAccountId"] == SOURCE.account_id


def test_aws_managed_keys_are_marked_aws(aws):
    kms = aws.source("kms")
    for alias in ("alias/aws/ebs", "alias/aws/backup"):
        assert kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyManager"] == "AWS"
    assert kms.describe_key(KeyId="alias/cmkSource")["KeyMetadata"]["KeyManager"] == "CUSTOMER"
    default = aws.source("ec2").get_ebs_default_kms_key_id()["KmsKeyId"]
    assert default == key_arn(kms, "alias/aws/ebs")


def test_snapshots_keep_their_volume_key(aws):
    ec2 = aws.source("ec2")
    volume_id = volume_arn(aws).rsplit("/", 1)[1]
    snapshot = ec2.create_snapshot(VolumeId=volume_id)
    assert snapshot["KmsKeyId"] == key_arn(aws.source("kms"), "alias/cmkSource")


def test_put_key_policy_over_32_kb_is_refused(aws):
    kms = aws.source("kms")
    key = key_arn(kms, "alias/cmkSource")
    huge = json.dumps({"Version": "2012-10-17", "Statement": [], "Padding": "x" * 33000})
    with pytest.raises(ClientError) as excinfo:
        kms.put_key_policy(KeyId=key, PolicyName="default", Policy=huge)
    assert excinfo.value.response["Error"]["Code"] == "MalformedPolicyDocumentException"
    assert excinfo.value.response["Error"]["Message"] == "The key policy exceeds the maximum size of 32768 bytes."


def test_aws_managed_aliases_without_a_key_have_no_target(aws):
    aliases = {a["AliasName"]: a for a in aws.source("kms").list_aliases()["Aliases"]}
    assert "TargetKeyId" not in aliases["alias/aws/s3"]
    assert (
        aliases["alias/aws/ebs"]["TargetKeyId"]
        == aws.source("kms").describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]["KeyId"]
    )


@pytest.mark.parametrize(
    "path, state",
    [("o-*/r-*/", "COMPLETED"), ("o-*/r-*/ou-backup/*", "FAILED")],
    ids=["inside-the-path", "outside-the-path"],
)
def test_key_policy_deny_on_organization_paths(aws, ready_but_unshared, path, state):
    deny = statement(
        "*",
        ["kms:Decrypt", "kms:CreateGrant"],
        effect="Deny",
        condition={"ForAnyValue:StringNotLike": {"aws:PrincipalOrgPaths": path}},
    )
    add_key_statements(aws, "alias/cmkSource", share_statements() + [deny])
    assert copy(aws, ready_but_unshared)["State"] == state


def test_key_policy_not_principal_excludes_a_role_only_with_its_account(aws, ready_but_unshared):
    def deny_all_but(*principals: str) -> dict:
        return {"Effect": "Deny", "NotPrincipal": {"AWS": list(principals)}, "Action": "kms:*", "Resource": "*"}

    add_key_statements(aws, "alias/cmkSource", share_statements() + [deny_all_but(SOURCE.root_arn, TARGET.root_arn)])
    assert copy(aws, ready_but_unshared)["State"] == "FAILED"
    kms = aws.source("kms")
    key_id = key_arn(kms, "alias/cmkSource")
    policy = json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
    policy["Statement"][-1] = deny_all_but(SOURCE.root_arn, TARGET.root_arn, SERVICE_ROLE)
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(policy))
    assert copy(aws, ready_but_unshared)["State"] == "COMPLETED"
