"""Restoring a copy in the destination account: the role a restore runs as, whether it may use the key
the restored resource is encrypted with, and what AWS Backup restores with.

A restore runs as the restore role of the destination account, and the EBS volume it makes is
encrypted with the copy's key, the destination vault's. EBS uses that key on the role's behalf, so
the role needs the key for each of RESTORE_ACTIONS. The key's policy decides first: an explicit Deny
refuses, a statement naming the role (or everyone) grants. A statement naming the account's root
only lets the account's IAM policies decide, so then the role's own policies (attached and inline)
must grant it too; and an explicit Deny in the role's policies refuses whatever the key says.
Permission boundaries and service control policies are not read. Both policies are evaluated with the
three-valued evaluator: a statement it cannot decide makes the answer undetermined, never allowed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runbook_policy import iam_policy

from . import clients

RESTORE_ACTIONS = (
    "kms:DescribeKey",
    "kms:Decrypt",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:CreateGrant",
)
KEY_POLICY, ROLE_POLICIES = "key policy", "role's policies"
# Worst first: the outcome a restore decision reports when its actions' answers differ.
SEVERITY = (iam_policy.DENY, iam_policy.IMPLICIT_DENY, iam_policy.UNDETERMINED, iam_policy.ALLOW)


def find_role(profile: str, region: str, name: str) -> dict[str, Any] | None:
    """The role as IAM returns it (found by its name, with or without the path), or None."""
    iam = clients.client(profile, "iam", region)
    try:
        return iam.get_role(RoleName=name.rsplit("/", 1)[-1])["Role"]
    except iam.exceptions.NoSuchEntityException:
        return None


def role_policies(profile: str, region: str, role_name: str) -> dict[str, dict[str, Any]]:
    """Every identity policy of the role by name: the default version of each attached managed policy
    and each inline policy (paginated)."""
    iam = clients.client(profile, "iam", region)
    name = role_name.rsplit("/", 1)[-1]
    found: dict[str, dict[str, Any]] = {}
    for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=name):
        for attached in page["AttachedPolicies"]:
            version = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]["DefaultVersionId"]
            document = iam.get_policy_version(PolicyArn=attached["PolicyArn"], VersionId=version)["PolicyVersion"]
            found[attached["PolicyName"]] = iam_policy.parse_policy(document["Document"])
    for page in iam.get_paginator("list_role_policies").paginate(RoleName=name):
        for policy_name in page["PolicyNames"]:
            document = iam.get_role_policy(RoleName=name, PolicyName=policy_name)["PolicyDocument"]
            found[policy_name] = iam_policy.parse_policy(document)
    return found


def requests(principal: iam_policy.Principal, key_arn: str, region: str) -> list[iam_policy.Request]:
    """The KMS requests EBS makes with the role's credentials to create a volume under the key."""
    via = {"kms:ViaService": f"ec2.{region}.amazonaws.com"}
    return [
        iam_policy.Request(
            principal,
            action,
            key_arn,
            {**via, "kms:GrantIsForAWSResource": "true"} if action == "kms:CreateGrant" else via,
        )
        for action in RESTORE_ACTIONS
    ]


def _granting_directly(document: dict[str, Any], role_arn: str) -> dict[str, Any]:
    """The key policy's statements that grant without IAM's help: Allows naming the role itself or
    everyone (an Allow naming the account root only hands the decision to IAM policies)."""

    def direct(statement: dict[str, Any]) -> bool:
        principal = statement.get("Principal")
        if principal == "*":
            return True
        values = principal.get("AWS", []) if isinstance(principal, dict) else []
        return any(str(v) in ("*", role_arn) for v in (values if isinstance(values, list) else [values]))

    return {"Statement": [s for s in iam_policy.statements(document) if s.get("Effect") == "Allow" and direct(s)]}


def names_only_role(statement: dict[str, Any], role_arn: str) -> bool:
    """Whether the statement names this role and no one else (so removing it affects no one else)."""
    principal = statement.get("Principal")
    if "NotPrincipal" in statement or not isinstance(principal, dict) or set(principal) != {"AWS"}:
        return False
    values = principal["AWS"] if isinstance(principal["AWS"], list) else [principal["AWS"]]
    return bool(values) and all(str(v) == role_arn for v in values)


def as_attached(documents: dict[str, dict[str, Any]], role_arn: str) -> dict[str, Any]:
    """The role's identity policies as one policy whose statements name the role: what they grant it."""
    return {
        "Statement": [
            {**statement, "Principal": {"AWS": role_arn}}
            for document in documents.values()
            for statement in iam_policy.statements(document)
            if "Principal" not in statement and "NotPrincipal" not in statement
        ]
    }


@dataclass(frozen=True)
class RestoreDecision:
    """Whether the role may use the key for a restore; where not, the first action refused (or
    undecided), which policy said so, and its statements."""

    outcome: str
    action: str = ""
    where: str = ""
    statements: tuple[dict[str, Any], ...] = ()
    through_iam: bool = False

    @property
    def allowed(self) -> bool:
        return self.outcome == iam_policy.ALLOW


def decide(
    key_policy: str | dict[str, Any],
    key_arn: str,
    principal: iam_policy.Principal,
    region: str,
    read_role_policies: Callable[[], dict[str, dict[str, Any]]],
) -> RestoreDecision:
    """The restore's decision for every action. The role's policies (`read_role_policies()`, a few reads)
    must grant what the key's policy hands to IAM, and an explicit Deny in them refuses in any case."""
    assert principal.arn is not None, "a restore decision is about one role"
    document = iam_policy.parse_policy(key_policy)
    direct = _granting_directly(document, principal.arn)
    found: list[RestoreDecision] = []
    through_iam = False
    for request in requests(principal, key_arn, region):
        by_key = iam_policy.decide(document, request)
        if not by_key.allowed:
            found.append(RestoreDecision(by_key.outcome, request.action, KEY_POLICY, by_key.statements))
            continue
        by_role = iam_policy.decide(as_attached(read_role_policies(), principal.arn), request)
        if iam_policy.decide(direct, request).allowed:  # the key grants it: only a Deny of the role's can refuse
            denying = [s for s in by_role.statements if s.get("Effect") == "Deny"]
            if by_role.outcome in (iam_policy.DENY, iam_policy.UNDETERMINED) and denying:
                found.append(RestoreDecision(by_role.outcome, request.action, ROLE_POLICIES, tuple(denying)))
            continue
        through_iam = True
        if not by_role.allowed:
            found.append(RestoreDecision(by_role.outcome, request.action, ROLE_POLICIES, by_role.statements))
    if not found:
        return RestoreDecision(iam_policy.ALLOW, through_iam=through_iam)
    return min(found, key=lambda decision: SEVERITY.index(decision.outcome))


def restore_metadata(profile: str, region: str, vault_name: str, recovery_point_arn: str) -> dict[str, str]:
    """The metadata AWS Backup keeps for restoring this recovery point (what StartRestoreJob takes)."""
    backup = clients.client(profile, "backup", region)
    answer = backup.get_recovery_point_restore_metadata(BackupVaultName=vault_name, RecoveryPointArn=recovery_point_arn)
    return dict(answer.get("RestoreMetadata", {}))
