"""Preflight checks: every known failure, recognised before a copy is started. Read-only.

One check per record of the registry of known failures (registry.py), under the same ID; the
registry says when each must pass (before the backup, or before the copy). A check says in one line
what it found, and the fix. It answers `pass`, `fail`, `unknown` (a policy the evaluator cannot
decide: never `pass`) or `skipped`. A `fail` blocks the copy, and `unknown` does too with
`strict_checks`; `runbook check` exits 1 and step 04 refuses to copy.

The checks read AWS as it is. The steps of a dry run (apply false) read it as it will be once the
changes planned by earlier steps of the run are made (`as_planned`), and say so; there a failure
that a step of the runbook makes good (`needs_step`) is a missing prerequisite, not a fault.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runbook_policy import iam_policy

from ..aws import keys, restores, vaults
from ..aws.context import RESTORE_ROLE_FIX, ROLE_FIX, Run
from ..core import grants, resource_kinds
from ..core.errors import StepFailed, quoted
from ..core.resource_types import ResourceType
from ..core.steps import ALL as ALL_STEPS
from ..core.steps import COPY_TO_TARGET, CREATE_BACKUP, PREREQUISITES, SHARE_SOURCE_KEY
from . import registry
from .check_facts import Facts, planned_note

log = logging.getLogger(__name__)

PASS, FAIL, UNKNOWN, SKIPPED = "pass", "fail", "unknown", "skipped"
# How a finding says that a Deny decides (fixes.py reads it back to know the fix may remove it).
DENY_WINS = "(an explicit Deny wins)"


def deny_fix(labels: str, fix_command: str, removable: bool, owner: str) -> str:
    """The fix of a blocking Deny: a fix removes one that names only the account; anyone else's is its owner's."""
    if removable:
        return f"remove statement {labels} (runbook fix {fix_command} plans its removal)"
    return f"statement {labels} also applies to others: {owner} must change it"


UNKNOWN_FIX = (
    "read the statement: if it cannot apply to this copy, go on; the evaluator does not model "
    "it (strict_checks: true makes this block)"
)


@dataclass
class Finding:
    status: str
    finding: str
    fix: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    check_id: str = ""
    needs_step: str = ""

    def blocks(self, strict: bool = False) -> bool:
        return self.status == FAIL or (strict and self.status == UNKNOWN)

    def fingerprint(self) -> str:
        """What the finding rests on (its check and evidence: the policy read, the statements), as a short hash:
        the same fingerprint later means nothing it rests on has changed."""
        text = json.dumps([self.check_id, self.status, self.evidence], sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def row(self) -> dict[str, str]:
        return {
            "check": self.check_id,
            "status": self.status,
            "finding": self.finding,
            "fix": self.fix if self.status in (FAIL, UNKNOWN) else "",
        }


Check = Callable[[Facts], Finding]
CHECKS: dict[str, Check] = {}


def check(check_id: str) -> Callable[[Check], Check]:
    """Register the check of a known failure under its ID; the ID is stamped on every finding it returns."""
    if check_id not in registry.BY_ID:
        raise KeyError(f"check {check_id!r} has no record in the registry of known failures")

    def register(function: Check) -> Check:
        def stamped(facts: Facts) -> Finding:
            finding = function(facts)
            finding.check_id = check_id
            return finding

        stamped.__doc__ = function.__doc__
        CHECKS[check_id] = stamped
        return function

    return register


def policy_finding(
    decision: iam_policy.Decision,
    what: str,
    account: str,
    owner: str,
    fix_command: str,
    grant_step: str,
    evidence: dict[str, Any],
    planned: str,
) -> Finding:
    """The finding for a policy decision: pass, fail (no grant, or a Deny), or unknown, with the statements."""
    if decision.allowed:
        return Finding(PASS, f"{what} lets account {account} in{planned}", evidence=evidence)
    labels = ", ".join(grants.label(s) for s in decision.statements)
    if decision.outcome == iam_policy.UNDETERMINED:
        evidence = {"undecided statements": list(decision.statements), **evidence}
        return Finding(
            UNKNOWN,
            f"{what}: cannot decide whether statement {labels} applies to account {account}{planned}",
            UNKNOWN_FIX,
            evidence,
        )
    if decision.outcome == iam_policy.DENY:
        evidence = {"denying statements": list(decision.statements), **evidence}
        removable = all(grants.names_only(s, account) for s in decision.statements)
        fix = deny_fix(labels, fix_command, removable, owner)
        return Finding(FAIL, f"{what}: statement {labels} denies account {account} {DENY_WINS}", fix, evidence)
    return Finding(
        FAIL,
        f"{what} does not let account {account} in{planned}",
        f"step {grant_step} adds the statement (or runbook fix {fix_command})",
        evidence,
        needs_step=grant_step,
    )


def _organization(org_id: str | None) -> str:
    return f"organization {org_id}" if org_id else "no organization"


@check("same-organization")
def same_organization(facts: Facts) -> Finding:
    source, target = facts.run.organization("source"), facts.run.organization("target")
    evidence = {"source organization": source, "target organization": target}
    if source is not None and source == target:
        return Finding(PASS, f"both accounts are in organization {source}", evidence=evidence)
    return Finding(
        FAIL,
        f"the source account is in {_organization(source)} and the target account in {_organization(target)}",
        "invite the target account into the source account's AWS Organization (from its management "
        "account) and accept the invitation",
        evidence=evidence,
    )


@check("cross-account-enabled")
def cross_account_enabled(facts: Facts) -> Finding:
    backup = facts.run.source("backup")
    try:
        settings = backup.describe_global_settings()["GlobalSettings"]
    except backup.exceptions.InvalidRequestException as error:
        return Finding(FAIL, f"global settings unreadable: {error}", "put the source account in an AWS Organization")
    evidence: dict[str, Any] = {"global settings": settings}
    if settings.get("isCrossAccountBackupEnabled") == "true":
        return Finding(PASS, "cross-account backup is enabled for the organization", evidence=evidence)
    plan = facts.planned("cross-account-backup")
    if plan:
        return Finding(PASS, f"cross-account backup will be enabled{planned_note(plan)}", evidence=evidence)
    return Finding(
        FAIL,
        "cross-account backup is not enabled for the organization",
        "from the management account: aws backup update-global-settings --global-settings "
        "isCrossAccountBackupEnabled=true (runbook: step 00 with management_profile set)",
        evidence,
        needs_step=PREREQUISITES if facts.run.management_profile else "",
    )


@check("role-exists")
def role_exists(facts: Facts) -> Finding:
    role = facts.run.role()
    if role is None:
        return Finding(FAIL, f"IAM role {facts.run.iam_role_name} does not exist in the source account", ROLE_FIX)
    return Finding(PASS, f"role {role['Arn']} exists", evidence={"role": role["Arn"]})


@check("target-vault-customer-key")
def target_vault_customer_key(facts: Facts) -> Finding:
    vault = facts.target_vault
    if vault is None:
        return Finding(
            FAIL,
            f"vault {facts.run.target_vault_name} does not exist in the target account",
            "run step 00 to create it under a customer managed key",
            needs_step=PREREQUISITES,
        )
    key = keys.describe(facts.run.target_profile, facts.run.target_region, vault["EncryptionKeyArn"])
    evidence = {"vault key": key.arn, "key manager": key.manager, "alias": key.alias}
    row = facts.resource_type
    if key.manager == "CUSTOMER":
        return Finding(
            PASS,
            f"the target vault uses customer managed key {key.alias or key.arn}"
            f"{planned_note(vault if vault.get('step') else None)}",
            evidence=evidence,
        )
    if row is not None and resource_kinds.destination_key_allowed(row, customer_managed=False):
        return Finding(
            PASS,
            f"the target vault uses the AWS managed key {key.alias}, which {row.name} copies may go under "
            f"(capability table, checked {row.destination_vault_key.checked})",
            evidence=evidence,
        )
    return Finding(
        FAIL,
        f"the target vault is encrypted with the AWS managed key {key.alias}",
        "a vault's key cannot change: create another vault under a customer managed key "
        "(set target_vault_name and target_vault_key, run step 00) and copy there",
        evidence=evidence,
    )


@check("target-vault-policy")
def target_vault_policy(facts: Facts) -> Finding:
    run = facts.run
    if facts.target_vault is None:
        return Finding(SKIPPED, "no target vault yet")
    text, plan = facts.target_vault_policy
    role = run.role()
    principal = iam_policy.Principal(run.account("source"), role["Arn"] if role else None, run.organization("source"))
    decision = vaults.copy_in_decision(text, facts.target_vault["BackupVaultArn"], principal)
    evidence = {"vault access policy": json.loads(text) if text else None}
    return policy_finding(
        decision,
        f"the access policy of {run.target_vault_name}",
        principal.account_id,
        f"the destination account ({run.account('target')})",
        "target-vault-policy",
        PREREQUISITES,
        evidence,
        planned_note(plan),
    )


@check("source-key-customer-managed")
def source_key_customer_managed(facts: Facts) -> Finding:
    row = facts.resource_type
    if row is not None and resource_kinds.takes_vault_key(row):
        return Finding(
            SKIPPED,
            f"{row.name} backups are encrypted with the vault's key: the resource's key does not travel "
            f"(capability table, checked {row.source_key_customer_managed.checked})",
        )
    key = facts.source_key
    if key is None:
        return Finding(SKIPPED, "the resource is not encrypted")
    evidence = {"key": key.arn, "alias": key.alias, "key manager": key.manager}
    if key.manager == "CUSTOMER":
        what = "the first hop's copy" if facts.key_side == "hop" else "the backup"
        return Finding(PASS, f"{what} is encrypted with customer managed key {key.alias or key.arn}", evidence=evidence)
    return Finding(
        FAIL,
        f"the backup is encrypted with the AWS managed key {key.alias}, which cannot be shared",
        "re-encrypt under a customer managed key (runbook fix source-key-customer-managed copies the "
        "snapshot with your CMK and makes a volume of it), then back that volume up",
        evidence=evidence,
    )


@check("source-key-shared")
def source_key_shared(facts: Facts) -> Finding:
    key = facts.source_key
    if key is None or key.manager != "CUSTOMER":
        return Finding(SKIPPED, "no customer managed source key to share")
    run = facts.run
    text, plan = facts.source_key_policy
    principal = keys.copy_principal(run.account("target"), run.target_region, run.organization("target"))
    decision = keys.copy_decision(json.loads(text), key.arn, principal)
    evidence = {"key": key.arn, "key policy": json.loads(text)}
    return policy_finding(
        decision,
        f"the policy of {key.alias or key.arn}",
        principal.account_id,
        f"the key's administrators (account {key.account})",
        "source-key-shared",
        SHARE_SOURCE_KEY,
        evidence,
        planned_note(plan),
    )


# Where a run keeps the refusals of one copy job across account and Region that AWS made (step 04): the
# resource type and AWS's words. The check then says so, until the run copies that type in two hops.
ONE_ACTION_REFUSED = "one_action_refused"


def record_refusal(run: Run, resource_type: ResourceType | None, message: str) -> None:
    """Keep AWS's refusal of one copy job across account and Region for a type (known failure rds-single-hop)."""
    if resource_type is not None:
        refused = dict(run.state.get(COPY_TO_TARGET, ONE_ACTION_REFUSED, {}))
        run.state.record(COPY_TO_TARGET, **{ONE_ACTION_REFUSED: {**refused, resource_type.name: message}})


def two_hops_fix(run: Run, row: ResourceType) -> str:
    """The fix of a refused single copy job: the parameter that copies the type in two hops."""
    return (
        f"copy in two hops: two_hop_types: [{row.name}] (step 00 makes vault {run.hop_vault} of the source account "
        f"in {run.target_region} under hop_vault_key, step 03 shares that key, step 04 copies across Regions, then "
        "across accounts); or set target_region to source_region"
    )


@check("rds-single-hop")
def rds_single_hop(facts: Facts) -> Finding:
    """Whether AWS copies the resource to another account and Region in one copy job: the capability table says
    so for every type since October 2025; the run's two_hop_types copies a type in two hops (where AWS still
    refuses one job), and a refusal step 04 met is kept until it does. A pass carries the fix too: AWS's
    refusal, when it comes, is explained with it."""
    row = facts.resource_type
    run = facts.run
    if row is None:
        return Finding(SKIPPED, "a resource type the capability table does not hold")
    crosses_both = run.source_region != run.target_region and run.account("source") != run.account("target")
    evidence = {"resource type": row.name, "one action": row.one_action.value, "source": row.one_action.source.url}
    fix = two_hops_fix(run, row)
    if not crosses_both:
        return Finding(PASS, "one copy job changes only the account or only the Region", evidence=evidence)
    if run.copies_in_two_hops(facts.resource):
        why = (
            "two_hop_types names it"
            if row.name in run.two_hop_types
            else f"capability table, checked {row.one_action.checked}"
        )
        return Finding(
            PASS,
            f"{row.name} copies in two hops: across Regions into {run.hop_vault} of the source account, then "
            f"across accounts ({why})",
            evidence=evidence,
        )
    if not row.copies_in_one_action(run.one_action_types, run.two_hop_types):
        return Finding(
            FAIL,
            f"{row.name} is to be copied in two hops (two_hop_types names it), and two_hops is false",
            "set two_hops: true, or take the type out of two_hop_types",
            evidence,
        )
    refused = run.state.get(COPY_TO_TARGET, ONE_ACTION_REFUSED, {}).get(row.name)
    if refused:
        return Finding(
            FAIL,
            f"AWS refused one copy job across account and Region for {row.name} in this run: {quoted(refused)}",
            f"{fix} (a new run folder tries one job again)",
            {**evidence, "refused": refused},
        )
    said = "one_action_types names it" if row.name in run.one_action_types else f"checked {row.one_action.checked}"
    return Finding(
        PASS,
        f"{row.name} copies across account and Region in one copy job (capability table, {said})",
        f"if AWS refuses it (known failure rds-single-hop), {fix}",
        evidence,
    )


@check("recovery-point-ready")
def recovery_point_ready(facts: Facts) -> Finding:
    point = facts.recovery_point
    if point is None:
        return Finding(
            FAIL,
            f"no recovery point of {facts.resource} in {facts.run.source_vault_name}",
            "run step 01 to back the resource up",
            needs_step=CREATE_BACKUP,
        )
    if point["Status"] == "PLANNED":
        return Finding(PASS, f"the backup planned in {point['step']} will make it (not made yet)")
    if point["Status"] != "COMPLETED":
        return Finding(
            FAIL,
            f"recovery point {point['RecoveryPointArn']} is {point['Status']}",
            "wait for the backup to complete (run step 01 again)",
            needs_step=CREATE_BACKUP,
        )
    if point.get("StorageClass", "WARM") != "WARM":
        return Finding(
            FAIL,
            f"recovery point {point['RecoveryPointArn']} is in {point.get('StorageClass')} storage",
            "cold recovery points cannot be copied: back up again",
        )
    return Finding(PASS, f"recovery point {point['RecoveryPointArn']} is COMPLETED in WARM storage")


@check("restore-role-exists")
def restore_role_exists(facts: Facts) -> Finding:
    run = facts.run
    role = run.restore_role()
    if role is None:
        return Finding(
            FAIL,
            f"IAM role {run.restore_role_name} does not exist in the destination account ({run.account('target')})",
            RESTORE_ROLE_FIX,
        )
    return Finding(PASS, f"restore role {role['Arn']} exists", evidence={"restore role": role["Arn"]})


def _restore_fix(decision: restores.RestoreDecision, role_arn: str, key_name: str) -> str:
    labels = ", ".join(grants.label(s) for s in decision.statements)
    if decision.outcome == iam_policy.DENY and decision.where == restores.KEY_POLICY:
        removable = all(restores.names_only_role(s, role_arn) for s in decision.statements)
        return deny_fix(labels, "restore-key-usable", removable, f"{key_name}'s administrators")
    if decision.outcome == iam_policy.DENY:
        return f"take statement {labels} out of the restore role's policies, or set restore_role_name to another role"
    if decision.where == restores.KEY_POLICY:
        return (
            f"let the role use {key_name}: a key policy statement naming {role_arn} (or the account root, with the "
            f"role's policies granting {', '.join(restores.RESTORE_ACTIONS)})"
        )
    return (
        "attach AWS's AWSBackupServiceRolePolicyForRestores to the restore role, or a policy granting "
        f"{', '.join(restores.RESTORE_ACTIONS)} on {key_name} through EC2"
    )


@check("restore-key-usable")
def restore_key_usable(facts: Facts) -> Finding:
    """Whether the restore role may use the key the restored volume is encrypted with (restores.py)."""
    run = facts.run
    role = run.restore_role()
    if role is None:
        return Finding(SKIPPED, "no restore role (see restore-role-exists)")
    key = facts.restore_key
    if key is None:
        return Finding(
            SKIPPED, f"no destination key yet: {run.target_vault_key} is not a key of the destination account"
        )
    policy = key.policy or keys.current_policy(run.target_profile, run.target_region, key.arn)
    principal = iam_policy.Principal(run.account("target"), role["Arn"], run.organization("target"))
    decision = restores.decide(policy, key.arn, principal, run.target_region, run.restore_role_policies)
    name = key.alias or key.arn
    evidence: dict[str, Any] = {"key": key.arn, "restore role": role["Arn"], "key policy": json.loads(policy)}
    if decision.allowed:
        how = " (the key's policy lets IAM decide; the role's policies grant it)" if decision.through_iam else ""
        return Finding(PASS, f"restore role {role['RoleName']} may use {name}{how}", evidence=evidence)
    labels = ", ".join(grants.label(s) for s in decision.statements)
    evidence[f"statements of the {decision.where}"] = list(decision.statements)
    if decision.outcome == iam_policy.UNDETERMINED:
        return Finding(
            UNKNOWN,
            f"{name}: cannot decide whether statement {labels} of the {decision.where} lets restore role "
            f"{role['RoleName']} {decision.action}",
            UNKNOWN_FIX,
            evidence,
        )
    what = (
        f"statement {labels} of the {decision.where} denies restore role {role['RoleName']} {decision.action} "
        + DENY_WINS
        if decision.outcome == iam_policy.DENY
        else f"the {decision.where} does not let restore role {role['RoleName']} {decision.action}"
    )
    return Finding(FAIL, f"{name}: {what}", _restore_fix(decision, role["Arn"], name), evidence)


BEFORE_BACKUP, BEFORE_COPY = registry.CHECKS_BEFORE_BACKUP, registry.CHECKS_BEFORE_COPY
BEFORE_RESTORE, ALL_CHECKS = registry.CHECKS_BEFORE_RESTORE, registry.CHECKS_ALL


def run_checks(run: Run, check_ids: tuple[str, ...] = BEFORE_COPY, as_planned: bool = False) -> list[Finding]:
    """The findings of these checks, on AWS as it is; with `as_planned` in a dry run, on AWS as the
    run's plans will leave it (what the steps of a dry run plan against). A step keeps its last
    findings in the run's state, where the report finds them."""
    facts = Facts(run, as_planned)
    findings = [CHECKS[check_id](facts) for check_id in check_ids]
    if run.step in ALL_STEPS and check_ids in (BEFORE_BACKUP, BEFORE_COPY, BEFORE_RESTORE):  # for the report
        run.state.record(run.step, checks=[f.row() for f in findings])
    return findings


def blocking(findings: list[Finding], strict: bool = False) -> list[Finding]:
    return [f for f in findings if f.blocks(strict)]


def require(run: Run, findings: list[Finding]) -> list[Finding]:
    """Stop the step at the first blocking finding, naming the check and its fix (unless force_copy).

    In a dry run, a finding that a step of this runbook makes good is not a fault: it is returned
    (pending) for the plan to say what it waits for.
    """
    failed = blocking(findings, run.strict_checks)
    pending = [f for f in failed if run.dry_run and f.needs_step]
    faults = [f for f in failed if f not in pending]
    if faults and not run.force_copy:
        raise StepFailed(run.step, f"[{faults[0].check_id}] {faults[0].finding}", faults[0].fix)
    for finding in faults:
        log.warning(f"force_copy: going on although [{finding.check_id}] {finding.finding}")
    return pending


def refusal_of_choices(run: Run) -> Finding | None:
    """Why the accounts and vaults a person picked cannot work, before anything is planned with them:
    the same account and Region on both sides (nothing crosses), a target account outside the source's
    organization, a target vault (that exists) under an AWS managed key. None when the choice can work."""
    if run.account("source") == run.account("target") and run.source_region == run.target_region:
        return Finding(
            FAIL,
            f"source and target are both account {run.account('source')} in {run.source_region}: nothing would "
            "cross an account or a Region",
            "choose a target account or a target Region other than the source's",
            check_id="target_profile",
        )
    facts = Facts(run)
    crosses_accounts = run.account("source") != run.account("target")
    checked = ["same-organization"] * crosses_accounts
    checked += ["target-vault-customer-key"] if facts.target_vault is not None else []
    return next((f for f in (CHECKS[check_id](facts) for check_id in checked) if f.status == FAIL), None)
