"""Preflight checks: every known copy failure, recognised before a copy is started. Read-only.

Each check has a stable ID (diagnosis uses the same IDs), says in one line what it found, and the
fix. Checks are a small registry: `@check(ID, blocking=...)` adds one. A blocking check that fails
means the copy would fail; `runbook check` exits 1 and step 04 refuses to copy.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from . import aws, iam_policy, keys, vaults
from .context import Run, resource_arn, resource_key
from .errors import StepFailed

PASS, FAIL, SKIPPED = "pass", "fail", "skipped"


@dataclass
class Finding:
    status: str
    finding: str
    fix: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    check_id: str = ""
    blocking: bool = True

    @property
    def blocks(self) -> bool:
        return self.blocking and self.status == FAIL

    def row(self) -> dict[str, str]:
        return {"check": self.check_id, "status": self.status, "finding": self.finding,
                "fix": self.fix if self.status == FAIL else ""}


class Facts:
    """What the checks read, each read once per check run."""

    def __init__(self, run: Run):
        self.run = run

    def organization(self, side: str) -> str | None:
        profile, region = ((self.run.source_profile, self.run.source_region) if side == "source"
                           else (self.run.target_profile, self.run.target_region))
        organizations = aws.client(profile, "organizations", region)
        try:
            return organizations.describe_organization()["Organization"]["Id"]
        except organizations.exceptions.AWSOrganizationsNotInUseException:
            return None

    @cached_property
    def source_organization(self) -> str | None:
        return self.organization("source")

    @cached_property
    def target_organization(self) -> str | None:
        return self.organization("target")

    @cached_property
    def target_vault(self) -> dict[str, Any] | None:
        return vaults.find(self.run.target_profile, self.run.target_region, self.run.target_vault_name)

    @cached_property
    def resource(self) -> str:
        return resource_arn(self.run)

    @cached_property
    def recovery_point(self) -> dict[str, Any] | None:
        """This run's recovery point, or the newest of the resource in the source vault."""
        backup = self.run.source("backup")
        arn = self.run.state.get("01_create_backup", "recovery_point_arn")
        if vaults.find(self.run.source_profile, self.run.source_region, self.run.source_vault_name) is None:
            return None
        if arn is None:
            points = [
                p
                for page in backup.get_paginator("list_recovery_points_by_backup_vault").paginate(
                    BackupVaultName=self.run.source_vault_name, ByResourceArn=self.resource)
                for p in page["RecoveryPoints"]
            ]
            if not points:
                return None
            arn = max(points, key=lambda p: p["CreationDate"])["RecoveryPointArn"]
        try:
            return backup.describe_recovery_point(BackupVaultName=self.run.source_vault_name, RecoveryPointArn=arn)
        except backup.exceptions.ResourceNotFoundException:
            return None

    @cached_property
    def source_key_arn(self) -> str | None:
        """The key that encrypts (or will encrypt) the backup: the recovery point's, else the resource's."""
        if self.recovery_point is not None:
            return self.recovery_point.get("EncryptionKeyArn")
        return resource_key(self.run, self.resource)

    @cached_property
    def source_key(self) -> keys.KeyInfo | None:
        if not self.source_key_arn:
            return None
        return keys.describe(self.run.source_profile, self.run.source_region, self.source_key_arn)

    @cached_property
    def source_key_policy(self) -> dict[str, Any]:
        kms = self.run.source("kms")
        return json.loads(kms.get_key_policy(KeyId=self.source_key.arn, PolicyName="default")["Policy"])


Check = Callable[[Facts], Finding]
CHECKS: dict[str, Check] = {}


def check(check_id: str) -> Callable[[Check], Check]:
    """Register a check under its ID; the ID is stamped on every finding it returns."""

    def register(function: Check) -> Check:
        def stamped(facts: Facts) -> Finding:
            finding = function(facts)
            finding.check_id = check_id
            return finding

        stamped.__doc__ = function.__doc__
        CHECKS[check_id] = stamped
        return function

    return register


@check("same-organization")
def same_organization(facts: Facts) -> Finding:
    source, target = facts.source_organization, facts.target_organization
    evidence = {"source organization": source, "target organization": target}
    if source is not None and source == target:
        return Finding(PASS, f"both accounts are in organization {source}", evidence=evidence)
    return Finding(FAIL,
                   f"the source account is in organization {source} and the target account in {target}",
                   "invite the target account into the source account's AWS Organization (from its management "
                   "account) and accept the invitation", evidence=evidence)


@check("cross-account-enabled")
def cross_account_enabled(facts: Facts) -> Finding:
    backup = facts.run.source("backup")
    try:
        settings = backup.describe_global_settings()["GlobalSettings"]
    except backup.exceptions.InvalidRequestException as error:
        return Finding(FAIL, f"global settings unreadable: {error}",
                       "put the source account in an AWS Organization")
    enabled = settings.get("isCrossAccountBackupEnabled") == "true"
    return Finding(PASS if enabled else FAIL,
                   f"cross-account backup is {'enabled' if enabled else 'not enabled'} for the organization",
                   "from the management account: aws backup update-global-settings --global-settings "
                   "isCrossAccountBackupEnabled=true (runbook: step 00 with management_profile set)",
                   evidence={"global settings": settings})


@check("role-exists")
def role_exists(facts: Facts) -> Finding:
    iam = aws.client(facts.run.source_profile, "iam", facts.run.source_region)
    name = facts.run.iam_role_name.rsplit("/", 1)[-1]
    try:
        arn = iam.get_role(RoleName=name)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        return Finding(FAIL, f"IAM role {facts.run.iam_role_name} does not exist in the source account",
                       "create the AWS Backup default role, or set iam_role_name to a role AWS Backup can assume")
    return Finding(PASS, f"role {arn} exists")


@check("target-vault-customer-key")
def target_vault_customer_key(facts: Facts) -> Finding:
    vault = facts.target_vault
    if vault is None:
        return Finding(FAIL, f"vault {facts.run.target_vault_name} does not exist in the "
                       "target account", "run step 00 to create it under a customer managed key")
    key = keys.describe(facts.run.target_profile, facts.run.target_region, vault["EncryptionKeyArn"])
    evidence = {"vault key": key.arn, "key manager": key.manager, "alias": key.alias}
    if key.manager == "CUSTOMER":
        return Finding(PASS, f"the target vault uses customer managed key {key.alias}",
                       evidence=evidence)
    return Finding(FAIL,
                   f"the target vault is encrypted with the AWS managed key {key.alias}",
                   "a vault's key cannot change: create another vault under a customer managed key "
                   "(set target_vault_name and target_vault_key, run step 00) and copy there", evidence=evidence)


@check("target-vault-policy")
def target_vault_policy(facts: Facts) -> Finding:
    if facts.target_vault is None:
        return Finding(SKIPPED, "no target vault yet")
    policy = vaults.current_policy(facts.run.target_profile, facts.run.target_region, facts.run.target_vault_name)
    source = facts.run.account("source")
    allowed = vaults.allows_copy_from(policy, facts.target_vault["BackupVaultArn"], source)
    evidence = {"vault access policy": policy}
    if allowed:
        return Finding(PASS, f"the vault's access policy lets account {source} copy in",
                       evidence=evidence)
    return Finding(FAIL,
                   f"the vault's access policy does not let account {source} call backup:CopyIntoBackupVault",
                   "add a statement allowing the source account backup:CopyIntoBackupVault (runbook fix "
                   "target-vault-policy, or step 00)", evidence=evidence)


@check("source-key-customer-managed")
def source_key_customer_managed(facts: Facts) -> Finding:
    key = facts.source_key
    if key is None:
        return Finding(SKIPPED, "the resource is not encrypted")
    evidence = {"key": key.arn, "alias": key.alias, "key manager": key.manager}
    if key.manager == "CUSTOMER":
        return Finding(PASS, f"the backup is encrypted with customer managed key "
                       f"{key.alias or key.arn}", evidence=evidence)
    return Finding(FAIL,
                   f"the backup is encrypted with the AWS managed key {key.alias}, which cannot be shared",
                   "re-encrypt under a customer managed key (runbook fix source-key-customer-managed copies the "
                   "snapshot with your CMK and makes a volume of it), then back that volume up", evidence=evidence)


@check("source-key-shared")
def source_key_shared(facts: Facts) -> Finding:
    key = facts.source_key
    if key is None or key.manager != "CUSTOMER":
        return Finding(SKIPPED, "no customer managed source key to share")
    target = facts.run.account("target")
    policy = facts.source_key_policy
    shared = keys.shares_with(policy, key.arn, target, facts.target_organization)
    evidence = {"key": key.arn, "key policy": policy}
    if shared:
        return Finding(PASS, f"{key.alias or key.arn} is shared with account {target}",
                       evidence=evidence)
    denied = any(iam_policy.evaluate(policy, iam_policy.Request(iam_policy.Principal(target), action, key.arn,
                                                                {"kms:GrantIsForAWSResource": "true"}))
                 == iam_policy.DENY for action in keys.COPY_ACTIONS)
    fix = ("remove the Deny statement for the target account from the key policy, then share the key"
           if denied else "share the key with the target account (step 03, or runbook fix source-key-shared)")
    return Finding(FAIL,
                   f"the policy of {key.alias or key.arn} does not let account {target} use it"
                   + (" (an explicit Deny names it)" if denied else ""), fix, evidence=evidence)


@check("rds-single-hop")
def rds_single_hop(facts: Facts) -> Finding:
    is_rds = ":rds:" in facts.resource
    two_hops = (facts.run.source_region != facts.run.target_region
                and facts.run.account("source") != facts.run.account("target"))
    if is_rds and two_hops:
        return Finding(FAIL, "an RDS backup cannot go to another account and another Region in "
                       "one copy", "copy in two hops: first to a vault of the source account in the target Region, "
                       "then across accounts in that Region (or set target_region to source_region)")
    return Finding(PASS, "one hop is enough for this resource" if is_rds else "not an RDS resource")


@check("recovery-point-ready")
def recovery_point_ready(facts: Facts) -> Finding:
    point = facts.recovery_point
    if point is None:
        return Finding(FAIL, f"no recovery point of {facts.resource} in "
                       f"{facts.run.source_vault_name}", "run step 01 to back the resource up")
    ready = point["Status"] == "COMPLETED" and point.get("StorageClass", "WARM") == "WARM"
    return Finding(PASS if ready else FAIL,
                   f"recovery point {point['RecoveryPointArn']} is {point['Status']} in {point.get('StorageClass')}",
                   "wait for the backup to complete; cold recovery points cannot be copied: back up again")


BEFORE_BACKUP = ("same-organization", "cross-account-enabled", "role-exists", "target-vault-customer-key",
                 "target-vault-policy", "source-key-customer-managed", "rds-single-hop")
BEFORE_COPY = (*BEFORE_BACKUP, "recovery-point-ready", "source-key-shared")


def run_checks(run: Run, check_ids: tuple[str, ...] = BEFORE_COPY) -> list[Finding]:
    facts = Facts(run)
    return [CHECKS[check_id](facts) for check_id in check_ids]


def blocking(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.blocks]


def require(step: str, findings: list[Finding], force: bool = False) -> None:
    """Stop the step at the first blocking failure, naming the check and its fix (unless forced)."""
    failed = blocking(findings)
    if failed and not force:
        raise StepFailed(step, f"[{failed[0].check_id}] {failed[0].finding}", failed[0].fix)
    for finding in failed:
        print(f"force_copy: going on although [{finding.check_id}] {finding.finding}")
