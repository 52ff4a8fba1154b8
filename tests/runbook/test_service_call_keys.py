"""A copy's KMS calls are AWS Backup's own, from its network: a Deny on the caller's network decides.

AWS documents the keys of the caller's network (aws:SourceVpce, aws:SourceIp, ...) as absent from a
call a service makes with its service-linked role, so a negated operator on them is true and the Deny
applies; `source-key-shared` says `fail`, as the copy does. A key the runbook cannot know stays unknown.
"""

from __future__ import annotations

from typing import Any

import pytest

from runbook_lib.aws import keys
from runbook_lib.aws.context import Run
from runbook_lib.core.errors import StepFailed
from runbook_lib.steps.walkthrough import start_copy
from runbook_lib.troubleshooting import checks
from runbook_policy import iam_policy
from runbook_sandbox.accounts import SOURCE, TARGET, TARGET_REGION
from runbook_sandbox.testing.walkthrough import ROLE_ARN, TARGET_VAULT_ARN, add_key_statements
from tests.runbook_steps import copy, prepare, values

KEY = f"arn:aws:kms:us-east-1:{SOURCE.account_id}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
PRINCIPAL = keys.copy_principal(TARGET.account_id, TARGET_REGION, "o-abc")
OWNER = {
    "Sid": "Enable IAM User Permissions",
    "Effect": "Allow",
    "Principal": {"AWS": SOURCE.root_arn},
    "Action": "kms:*",
    "Resource": "*",
}
VPCE = "vpce-0123456789abcdef0"
DENY_OUTSIDE_VPCE = {
    "Sid": "DenyOutsideVpce",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "kms:*",
    "Resource": "*",
    "Condition": {"StringNotEquals": {"aws:SourceVpce": VPCE}},
}


def deny(sid: str, condition: dict[str, Any]) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Deny", "Principal": "*", "Action": "kms:*", "Resource": "*", "Condition": condition}


def shared(*extra: dict[str, Any]) -> dict[str, Any]:
    """The key policy once step 03 shared it, with the extra statements after."""
    return {
        "Version": "2012-10-17",
        "Statement": [OWNER, *keys.share_statements(TARGET.account_id, TARGET_REGION), *extra],
    }


def decision(policy: dict[str, Any]) -> iam_policy.Decision:
    return keys.copy_decision(policy, KEY, PRINCIPAL)


NETWORK_DENIES = {
    "source-vpce": DENY_OUTSIDE_VPCE,
    "source-ip": deny("DenyOutsideTheOffice", {"NotIpAddress": {"aws:SourceIp": ["203.0.113.0/24", "2001:db8::/32"]}}),
    "source-vpc": deny("DenyOutsideTheVpc", {"StringNotEquals": {"aws:SourceVpc": "vpc-1a2b3c4d"}}),
    "source-vpc-arn": deny(
        "DenyOutsideTheVpcArn", {"ArnNotEquals": {"aws:SourceVpcArn": "arn:aws:ec2:us-east-1:*:vpc/vpc-1a2b3c4d"}}
    ),
    "vpc-source-ip": deny("DenyOutsideTheSubnet", {"NotIpAddress": {"aws:VpcSourceIp": "10.0.0.0/16"}}),
    "source-vpce-not-like": deny("DenyOutsideOurEndpoints", {"StringNotLike": {"aws:SourceVpce": "vpce-0abc*"}}),
}


@pytest.mark.parametrize("statement", NETWORK_DENIES.values(), ids=NETWORK_DENIES.keys())
def test_a_negated_condition_on_the_callers_network_denies_the_copy(statement):
    """The key is absent from AWS Backup's own call, so the negated operator is true: the Deny applies."""
    found = decision(shared(statement))
    assert found.outcome == iam_policy.DENY
    assert found.statements == (statement,)


def test_a_deny_that_requires_the_endpoint_does_not_apply_to_the_service():
    """StringEquals on an absent key is false: the Deny does not apply and the shared key stays allowed."""
    inside = deny("DenyFromTheQuarantineEndpoint", {"StringEquals": {"aws:SourceVpce": VPCE}})
    assert decision(shared(inside)).allowed
    from_office = deny("DenyFromTheOldOffice", {"IpAddress": {"aws:SourceIp": "198.51.100.0/24"}})
    assert decision(shared(from_office)).allowed


def test_an_allow_that_requires_the_endpoint_grants_nothing_to_the_service():
    only_through_the_endpoint = [
        {**statement, "Condition": {**statement.get("Condition", {}), "StringEquals": {"aws:SourceVpce": VPCE}}}
        for statement in keys.share_statements(TARGET.account_id, TARGET_REGION)
    ]
    found = decision({"Statement": [OWNER, *only_through_the_endpoint]})
    assert found.outcome == iam_policy.IMPLICIT_DENY, "not undetermined: the endpoint is known absent"


def test_if_exists_and_null_follow_aws_logic_for_an_absent_key():
    """`...IfExists` is true when the key is absent, whatever the operator; `Null` true tests for absence."""
    for operator in ("StringNotEqualsIfExists", "StringEqualsIfExists"):
        statement = deny(f"Deny{operator}", {operator: {"aws:SourceVpce": VPCE}})
        assert decision(shared(statement)).outcome == iam_policy.DENY, operator
    address = deny("DenyIpAddressIfExists", {"IpAddressIfExists": {"aws:SourceIp": "203.0.113.0/24"}})
    assert decision(shared(address)).outcome == iam_policy.DENY
    without_endpoint = deny("DenyWithoutAnEndpoint", {"Null": {"aws:SourceVpce": "true"}})
    assert decision(shared(without_endpoint)).outcome == iam_policy.DENY
    with_endpoint = deny("DenyWithAnEndpoint", {"Null": {"aws:SourceVpce": "false"}})
    assert decision(shared(with_endpoint)).allowed
    allow_if_exists = [
        {**statement, "Condition": {**statement.get("Condition", {}), "StringEqualsIfExists": {"aws:SourceVpce": VPCE}}}
        for statement in keys.share_statements(TARGET.account_id, TARGET_REGION)
    ]
    assert decision({"Statement": [OWNER, *allow_if_exists]}).allowed


def test_a_data_perimeter_deny_applies_to_the_service_linked_role_unless_it_excludes_it():
    """aws:PrincipalIsAWSService is false for a call with a service-linked role; whether AWS makes a copy's
    KMS calls with forward access sessions (aws:ViaAWSService true) is not documented, so it stays unknown."""
    perimeter = {
        "StringNotEqualsIfExists": {"aws:SourceVpce": VPCE},
        "BoolIfExists": {"aws:PrincipalIsAWSService": "false"},
    }
    statement = deny("EnforceNetworkPerimeter", perimeter)
    assert decision(shared(statement)) == iam_policy.Decision(iam_policy.DENY, (statement,))
    excluding = deny(
        "EnforceNetworkPerimeterButServiceRoles",
        {**perimeter, "ArnNotLikeIfExists": {"aws:PrincipalArn": "arn:aws:iam::*:role/aws-service-role/*"}},
    )
    assert decision(shared(excluding)).allowed
    only_via_a_service = deny("DenyUnlessViaAService", {"Bool": {"aws:ViaAWSService": "false"}})
    assert decision(shared(only_via_a_service)).outcome == iam_policy.UNDETERMINED


def test_no_called_via_chain_in_a_service_linked_roles_call():
    via_cloudformation = deny(
        "DenyViaCloudFormation", {"ForAnyValue:StringEquals": {"aws:CalledVia": "cloudformation.amazonaws.com"}}
    )
    assert decision(shared(via_cloudformation)).allowed
    first_hop = deny("DenyUnlessFirstViaBackup", {"StringNotEquals": {"aws:CalledViaFirst": "backup.amazonaws.com"}})
    assert decision(shared(first_hop)).outcome == iam_policy.DENY


UNKNOWABLE = {
    "resource-tag": deny("DenyUnlessTagged", {"StringNotEquals": {"aws:ResourceTag/backup-copy": "allowed"}}),
    "request-tag": deny("DenyUntaggedRequests", {"StringNotEquals": {"aws:RequestTag/Project": "dr"}}),
    "principal-tag": deny("DenyUntaggedRoles", {"StringNotEquals": {"aws:PrincipalTag/team": "backup"}}),
    "unknown-key": deny("DenyOddKey", {"StringNotEquals": {"backup:SomeFutureKey": "x"}}),
    "perimeter-with-a-tag-exemption": deny(
        "EnforceNetworkPerimeterButTagged",
        {"StringNotEqualsIfExists": {"aws:SourceVpce": VPCE, "aws:PrincipalTag/dp:exclude:network": "true"}},
    ),
}


@pytest.mark.parametrize("statement", UNKNOWABLE.values(), ids=UNKNOWABLE.keys())
def test_a_key_the_runbook_cannot_know_stays_undetermined(statement):
    found = decision(shared(statement))
    assert found == iam_policy.Decision(iam_policy.UNDETERMINED, (statement,))


def test_only_a_service_call_knows_the_network_keys_absent():
    """A request that is neither complete nor a service's own call still cannot know them; the sandbox's
    complete requests find them absent, as before."""
    request = iam_policy.Request(PRINCIPAL, "kms:Decrypt", KEY)
    assert iam_policy.decide(shared(DENY_OUTSIDE_VPCE), request).outcome == iam_policy.UNDETERMINED
    complete = iam_policy.Request(PRINCIPAL, "kms:Decrypt", KEY, complete=True)
    assert iam_policy.decide(shared(DENY_OUTSIDE_VPCE), complete).outcome == iam_policy.DENY
    told = iam_policy.Request(PRINCIPAL, "kms:Decrypt", KEY, {"aws:SourceVpce": VPCE}, by_service=True)
    assert iam_policy.decide(shared(DENY_OUTSIDE_VPCE), told).allowed, "a key set in the context wins"


def test_the_copy_into_the_vault_as_a_service_call():
    """backup:CopyIntoBackupVault, made by AWS Backup with the source account's backup role."""
    role = iam_policy.Principal(SOURCE.account_id, ROLE_ARN, "o-abc")
    vault_policy = {
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": SOURCE.root_arn}, "Action": "backup:*", "Resource": "*"},
            {**DENY_OUTSIDE_VPCE, "Action": "backup:CopyIntoBackupVault"},
        ]
    }
    request = iam_policy.Request(role, "backup:CopyIntoBackupVault", TARGET_VAULT_ARN, by_service=True)
    assert iam_policy.decide(vault_policy, request).outcome == iam_policy.DENY


def test_every_documented_key_names_its_sources():
    assert iam_policy.SERVICE_CALL_CHECKED == "2026-12-07"
    for key, fact in iam_policy.SERVICE_CALL_CONTEXT.items():
        assert key == key.lower() and key.startswith("aws:")
        assert fact.sources and set(fact.sources) <= set(iam_policy.SERVICE_CALL_SOURCES), key
        assert fact.says and fact.value in (None, "false"), key
    for title, url in iam_policy.SERVICE_CALL_SOURCES.values():
        assert title and url.startswith("https://")
    network = {"aws:sourceip", "aws:sourcevpc", "aws:sourcevpce", "aws:sourcevpcarn", "aws:vpcsourceip"}
    assert network <= iam_policy.ABSENT_IN_SERVICE_CALLS


@pytest.fixture
def shared_run(world, aws, tmp_path):  # type: ignore[no-untyped-def]
    run_values = values(tmp_path)
    prepare(run_values)
    return run_values


def test_source_key_shared_fails_on_a_deny_outside_the_endpoint_and_the_sandbox_agrees(aws, shared_run):
    """Decrypt and CreateGrant only: on kms:* the Deny would lock the key's own account (which reaches
    the sandbox through no endpoint) out of DescribeKey and GetKeyPolicy too."""
    statement = {**DENY_OUTSIDE_VPCE, "Action": ["kms:Decrypt", "kms:CreateGrant"]}
    add_key_statements(aws, "alias/cmkSource", [statement])
    finding = checks.run_checks(Run("check", shared_run), ("source-key-shared",))[0]
    assert finding.status == checks.FAIL
    assert "statement 'DenyOutsideVpce'" in finding.finding and "denies account 333333333333" in finding.finding
    assert finding.evidence["denying statements"] == [statement]
    assert "also applies to others" in finding.fix
    assert finding.blocks()
    with pytest.raises(StepFailed, match=r"\[source-key-shared\] .*'DenyOutsideVpce'"):
        start_copy(Run("04_copy_to_target", shared_run))
    assert aws.source("backup").list_copy_jobs()["CopyJobs"] == []
    with pytest.raises(StepFailed, match=r"\[source-key-shared\] copy job \S+ ended FAILED: EBS snapshot copy failed"):
        copy({**shared_run, "force_copy": True})
