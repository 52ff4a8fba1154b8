"""Least-privilege IAM identity policies for one run's parameters, one per profile role, as files.

permissions.STEP_PERMISSIONS says which actions each step calls in each account; here each action gets the
resources it acts on for these parameters (ACTION_KINDS), scoped to the run's own wherever IAM allows it:
the vaults and roles by name, the alert topic and rule by name, backup plans, volumes, snapshots and
recovery points of the account and Region (their IDs are made by the run), "*" only for an action IAM
defines without a resource type (List*, Describe*Job, the global settings, ec2:Describe*, sts, ...).
iam:PassRole is allowed on the backup (or restore) role alone, and only to pass it to AWS Backup.

Keys. The steps read every key with an alias in the Regions they show (the key tables of steps 00 and 03)
and the key of each recovery point, whichever it is: kms:DescribeKey and kms:GetKeyPolicy are on every key
of the account and Region. kms:PutKeyPolicy (sharing a key, a fix, its revert) is on the keys the run shares
only: a key named by ARN or key ID on its ARN; a key named by alias on `key/*` with kms:ResourceAliases
holding the alias (IAM cannot name a key by alias), which follows the alias. The key a run shares is the
recovery point's, which for EBS, EC2 and RDS is the resource's own key, not a parameter: the caller reads it
(`resource_keys`); without it, kms:PutKeyPolicy is on every key of the source Region, and a warning says so.

Each statement groups the actions that act on the same resources under the same condition, with a Sid that
names them, so that the documents stay within IAM's 6,144 characters for a managed policy.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import arns, permissions, resource_kinds, resource_types
from .param_values import KEY_ARN
from .params import Parameters

log = logging.getLogger(__name__)

VERSION = "2012-10-17"
# The profile roles, as the files name them, and the account each is in permissions.py.
ROLES: dict[str, str] = {
    "source": permissions.SOURCE,
    "destination": permissions.TARGET,
    "management": permissions.MANAGEMENT,
}
FILE_MODE = 0o644
BACKUP_SERVICE = "backup.amazonaws.com"
PASS_ROLE_CONDITION = {"StringEquals": {"iam:PassedToService": BACKUP_SERVICE}}
ANY_ACCOUNT = "*"
NONE = ()
# The lookups IAM scopes to resources, by the Sid of their statement (ACTION_KINDS names them so).
LOOKUPS = {kind.lookup.scope: kind for kind in resource_kinds.NAMED if kind.lookup and kind.lookup.scope}
# What each action acts on (a kind below), by the runbook's use of it; NONE: IAM defines no resource type.
ACTION_KINDS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(
        (
            "sts:GetCallerIdentity",
            "iam:ListAccountAliases",
            "organizations:DescribeOrganization",
            "backup:DescribeGlobalSettings",
            "backup:UpdateGlobalSettings",
            "backup:ListBackupVaults",
            "backup:ListBackupJobs",
            "backup:ListCopyJobs",
            "backup:ListRestoreJobs",
            "backup:ListBackupPlans",
            "backup:DescribeBackupJob",
            "backup:DescribeCopyJob",
            "backup:DescribeRestoreJob",
            "backup:PutRestoreValidationResult",
            "kms:ListAliases",
            "ec2:DescribeVolumes",
            "ec2:DescribeSnapshots",
        ),
        NONE,
    ),
    **dict.fromkeys(permissions.VAULT_ACTIONS, ("vaults",)),
    "backup:StartBackupJob": ("backup-vault",),
    **dict.fromkeys(
        (
            "backup:DescribeRecoveryPoint",
            "backup:DeleteRecoveryPoint",
            "backup:GetRecoveryPointRestoreMetadata",
            "backup:StartCopyJob",
            "backup:StartRestoreJob",
        ),
        ("recovery-points",),
    ),
    **dict.fromkeys((*permissions.PLAN_ACTIONS, "backup:ListTags", "backup:TagResource"), ("plans",)),
    "kms:DescribeKey": ("keys",),
    "kms:GetKeyPolicy": ("keys",),
    "kms:PutKeyPolicy": ("shared-keys",),
    # What AWS authorizes beside CreateBackupVault and the fix's EBS calls (permissions.IMPLIED).
    "backup-storage:MountCapsule": NONE,
    **dict.fromkeys(("kms:CreateGrant", "kms:Decrypt"), ("vault-keys", "reencrypt-key")),
    **dict.fromkeys(("kms:RetireGrant", "kms:GenerateDataKey"), ("vault-keys",)),
    **dict.fromkeys(
        ("kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom", "kms:ReEncryptTo"), ("reencrypt-key",)
    ),
    **dict.fromkeys(
        ("iam:GetRole", "iam:ListAttachedRolePolicies", "iam:ListRolePolicies", "iam:GetRolePolicy"), ("role",)
    ),
    "iam:GetPolicy": ("role-policies",),
    "iam:GetPolicyVersion": ("role-policies",),
    "iam:PassRole": ("pass-role",),
    "ec2:CreateSnapshot": ("volumes-and-snapshots",),
    "ec2:CopySnapshot": ("snapshots",),
    "ec2:DeleteSnapshot": ("snapshots",),
    "ec2:CreateVolume": ("volumes-and-snapshots",),
    "ec2:DeleteVolume": ("volumes",),
    "ec2:CreateTags": ("new-volumes",),
    **{kind.lookup.action: (kind.lookup.scope,) for kind in resource_kinds.NAMED if kind.lookup and kind.lookup.scope},
    **dict.fromkeys(
        ("sns:GetTopicAttributes", "sns:CreateTopic", "sns:TagResource", "sns:SetTopicAttributes", "sns:DeleteTopic"),
        ("topic",),
    ),
    **dict.fromkeys(
        (
            "events:DescribeRule",
            "events:ListTargetsByRule",
            "events:PutRule",
            "events:TagResource",
            "events:PutTargets",
            "events:RemoveTargets",
            "events:DeleteRule",
        ),
        ("rule",),
    ),
}


def file_name(role: str) -> str:
    return f"{role}-policy.json"


def actions_of(role: str) -> set[str]:
    """Every action the steps declare for the account of a profile role."""
    account = ROLES[role]
    called = {action for accounts in permissions.STEP_PERMISSIONS.values() for action in accounts.get(account, ())}
    return called | permissions.implied(called)


def rule_name(values: Parameters) -> str:
    """The EventBridge rule step 09 makes (steps/automation.py names it so)."""
    return f"{values.plan_name}-copy-failed"


def _names(kinds: Iterable[resource_kinds.ResourceKind]) -> set[str]:
    return {kind.type_name for kind in kinds}


def resource_type_names(values: Parameters) -> set[str]:
    """The resource types the run may back up: read from its ARNs (every DB cluster kind for a cluster's: its
    engine tells them apart), else every kind its tags or a name may find."""
    tagged = _names(kind for kind in resource_kinds.KINDS.values() if kind.tagged)
    if values.resource_arn:
        return _names(resource_kinds.kinds_of(values.resource_arn)) or set(resource_types.TYPES)
    if values.resource_tags:
        return tagged
    if values.resources:
        by_arn = _names(kind for item in values.resources for kind in resource_kinds.kinds_of(item))
        return by_arn | (tagged if any(not item.startswith("arn:") for item in values.resources) else set())
    return _names(kind for kind in resource_kinds.KINDS.values() if kind.lookup is not None)


def _one_action(values: Parameters, name: str) -> bool:
    return resource_types.TYPES[name].copies_in_one_action(values.one_action_types, values.two_hop_types)


def copies_in_two_hops(values: Parameters) -> bool:
    """Whether the run may copy through the hop vault (a type it copies in two hops)."""
    return values.two_hops and any(not _one_action(values, name) for name in resource_type_names(values))


@dataclass(frozen=True)
class Scope:
    """The resources of one statement, with its condition and the Sid that names them."""

    sid: str
    resources: tuple[str, ...]
    condition: Mapping[str, Any] | None = None

    @property
    def key(self) -> tuple[tuple[str, ...], str]:
        return self.resources, json.dumps(self.condition, sort_keys=True)


def _camel(text: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", text) if part)


class _Account:
    """The resources of one profile role's account, by kind (ACTION_KINDS)."""

    def __init__(self, values: Parameters, role: str, accounts: Mapping[str, str], resource_keys: tuple[str, ...]):
        self.values, self.side = values, role
        self.account = accounts.get(role) or ANY_ACCOUNT
        self.hop = copies_in_two_hops(values)
        self.types = resource_type_names(values)
        self.resource_keys = resource_keys
        # The types whose recovery point keeps the resource's own key (a snapshot); the others take the vault's.
        self.resource_keyed = {name for name in self.types if resource_kinds.KINDS[name].keeps_resource_key}
        source, target = values.source_region, values.target_region
        # The Regions the account's vaults, recovery points, keys and volumes are in.
        self.regions = {"source": (source, target) if self.hop else (source,), "destination": (target,)}.get(role, ())
        self.home = self.regions[0] if self.regions else source

    def arn(self, service: str, resource: str, region: str | None = None, account: str | None = None) -> str:
        """An ARN in the account (unless another is given: "" for an EC2 snapshot's or image's, which name none)
        and the Region (the account's first unless given: "" for IAM's), in the partition of the run's Regions."""
        where = self.home if region is None else region
        owner = self.account if account is None else account
        return f"arn:{arns.partition(where or self.home)}:{service}:{where}:{owner}:{resource}"

    def scopes(self, kind: str) -> list[Scope]:
        if kind in LOOKUPS:
            return self.lookups(LOOKUPS[kind])
        return KINDS[kind](self)

    # ----- kinds -----

    def no_resource_type(self) -> list[Scope]:
        return [Scope("NoResourceType", ("*",))]

    def vaults(self) -> list[Scope]:
        values = self.values
        if self.side == "destination":
            return [Scope("BackupVaults", (self.arn("backup", f"backup-vault:{values.target_vault_name}"),))]
        found = [self.arn("backup", f"backup-vault:{values.source_vault_name}")]
        if self.hop:
            hop = values.hop_vault_name or values.source_vault_name
            found.append(self.arn("backup", f"backup-vault:{hop}", region=values.target_region))
        return [Scope("BackupVaults", tuple(found))]

    def backup_vault(self) -> list[Scope]:
        return [Scope("SourceVault", (self.arn("backup", f"backup-vault:{self.values.source_vault_name}"),))]

    def recovery_points(self) -> list[Scope]:
        """The recovery points in the account's Regions: AWS Backup's own (`recovery-point:*`, what it names the
        recovery points it manages fully, EFS's among them), and the snapshots or images of the run's types that
        are the service's (an EC2 snapshot's or image's ARN names no account); in the hop's Region, only of the
        types that copy through it."""
        found = {self.arn("backup", "recovery-point:*", region) for region in self.regions}
        for region in self.regions:
            hop_only = self.side == "source" and region != self.values.source_region
            for name in self.types:
                if hop_only and _one_action(self.values, name):
                    continue
                for service, resource, owned in resource_kinds.KINDS[name].recovery_points:
                    found.add(self.arn(service, resource, region, None if owned else ""))
        return [Scope("RecoveryPoints", tuple(sorted(found)))]

    def keys(self) -> list[Scope]:
        return [Scope("Keys", tuple(self.arn("kms", "key/*", region) for region in self.regions))]

    def shared_keys(self) -> list[Scope]:
        """The keys the run may edit the policy of: the recovery points' keys (the resources', or the source
        vault's for EFS), the hop vault's, and (a fix) the destination vault's."""
        values = self.values
        references: list[tuple[str, str]] = []
        if self.side == "destination":
            references.append((values.target_vault_key, values.target_region))
        else:
            references += [(key, values.source_region) for key in self.resource_keys]
            if self.types - self.resource_keyed:
                references.append((values.source_vault_key, values.source_region))
            if self.hop:
                references.append((values.hop_vault_key, values.target_region))
        if self.side == "source" and self.types & self.resource_keyed and not self.resource_keys:
            log.warning(
                "the keys of the run's resources are not known: kms:PutKeyPolicy is allowed on every key of %s",
                values.source_region,
            )
            return [Scope("SharedKeys", (self.arn("kms", "key/*", values.source_region),))]
        return self._key_scopes(references)

    def vault_keys(self) -> list[Scope]:
        """The keys of the vaults step 00 creates (AWS Backup mounts a vault on its key with the caller's rights)."""
        values = self.values
        if self.side == "destination":
            return self._key_scopes([(values.target_vault_key, values.target_region)], "VaultKeys")
        references = [(values.source_vault_key, values.source_region)]
        if self.hop:
            references.append((values.hop_vault_key, values.target_region))
        return self._key_scopes(references, "VaultKeys")

    def reencrypt_key(self) -> list[Scope]:
        """The key the fix source-key-customer-managed copies the volume under (EBS uses it with the caller's
        rights)."""
        if self.side != "source":
            return []
        return self._key_scopes([(self.values.reencrypt_key, self.values.source_region)], "ReencryptKey")

    def _key_scopes(self, references: Iterable[tuple[str, str]], name: str = "SharedKeys") -> list[Scope]:
        by_arn: set[str] = set()
        by_alias: dict[tuple[str, str], set[str]] = {}
        for reference, region in references:
            found = KEY_ARN.match(reference)
            if found and ":key/" in reference:
                by_arn.add(reference)
            elif found:
                alias = "alias/" + reference.split(":alias/", 1)[1]
                by_alias.setdefault((found["region"], found["account"]), set()).add(alias)
            elif reference.startswith("alias/"):
                by_alias.setdefault((region, self.account), set()).add(reference)
            else:
                by_arn.add(self.arn("kms", f"key/{reference}", region))
        scopes = [Scope(name, tuple(sorted(by_arn)))] if by_arn else []
        for (region, account), aliases in sorted(by_alias.items()):
            customer = sorted(a for a in aliases if not a.startswith("alias/aws/"))  # AWS managed: never edited
            if customer:
                condition = {"ForAnyValue:StringEquals": {"kms:ResourceAliases": customer}}
                sid = f"{name}ByAlias{_camel(region)}" + ("" if account == self.account else account)
                scopes.append(Scope(sid, (self.arn("kms", "key/*", region, account),), condition))
        return scopes

    def _role_arns(self) -> tuple[str, ...]:
        """The role by name; with the path the parameter gives, else any path (the jobs use IAM's ARN)."""
        name = (self.values.restore_role_name if self.side == "destination" else self.values.iam_role_name).lstrip("/")
        if "/" in name:
            return (self.arn("iam", f"role/{name}", ""),)
        return self.arn("iam", f"role/{name}", ""), self.arn("iam", f"role/*/{name}", "")

    def role(self) -> list[Scope]:
        return [Scope("BackupRole" if self.side == "source" else "RestoreRole", self._role_arns())]

    def pass_role(self) -> list[Scope]:
        return [Scope("PassRoleToBackup", self._role_arns(), PASS_ROLE_CONDITION)]

    def role_policies(self) -> list[Scope]:
        """The policies attached to the role: the account's own or AWS managed ones (account `aws`, which an ARN
        linter refuses as an account ID); IAM lets no account read another's, so any account says just that."""
        return [Scope("RolePolicies", (self.arn("iam", "policy/*", "", ANY_ACCOUNT),))]

    def plans(self) -> list[Scope]:
        return [Scope("BackupPlans", (self.arn("backup", "backup-plan:*", self.values.source_region),))]

    def topic(self) -> list[Scope]:
        return [Scope("AlertTopic", (self.arn("sns", self.values.alert_topic_name, self.values.source_region),))]

    def rule(self) -> list[Scope]:
        return [Scope("AlertRule", (self.arn("events", f"rule/{rule_name(self.values)}", self.values.source_region),))]

    def volumes(self) -> list[Scope]:
        return [Scope("Volumes", (self.arn("ec2", "volume/*"),))]

    def new_volumes(self) -> list[Scope]:
        return [
            Scope(
                "TagNewVolumes", (self.arn("ec2", "volume/*"),), {"StringEquals": {"ec2:CreateAction": "CreateVolume"}}
            )
        ]

    def volumes_and_snapshots(self) -> list[Scope]:
        """What CreateSnapshot and CreateVolume act on, both at once: a volume and a snapshot."""
        return [Scope("VolumesAndSnapshots", (self.arn("ec2", "volume/*"), self.arn("ec2", "snapshot/*", account="")))]

    def snapshots(self) -> list[Scope]:
        return [Scope("Snapshots", (self.arn("ec2", "snapshot/*", account=""),))]

    def lookups(self, kind: resource_kinds.ResourceKind) -> list[Scope]:
        """What looking up the run's resource of a kind acts on (resource_kinds.Lookup): where IAM scopes the
        lookup to one resource (BY_IDENTIFIER), the run's by ARN or by the name it is looked up by; any of the
        account and Region for a fleet's lookup (by filter), a listing, or a run without one."""
        values, lookup = self.values, kind.lookup
        assert lookup is not None
        if lookup.by == resource_kinds.BY_IDENTIFIER:
            if values.resource_arn:
                if resource_kinds.is_a(values.resource_arn, kind):
                    return [Scope(lookup.scope, (values.resource_arn,))]
            elif not values.resources and not values.resource_tags and kind.takes_name(values.resource_name):
                return [Scope(lookup.scope, (kind.arn(self.account, values.source_region, values.resource_name),))]
        return [Scope(lookup.scope, (kind.arn(self.account, values.source_region, "*"),))]


KINDS: dict[str, Callable[[_Account], list[Scope]]] = {
    "vaults": _Account.vaults,
    "backup-vault": _Account.backup_vault,
    "recovery-points": _Account.recovery_points,
    "keys": _Account.keys,
    "shared-keys": _Account.shared_keys,
    "vault-keys": _Account.vault_keys,
    "reencrypt-key": _Account.reencrypt_key,
    "role": _Account.role,
    "pass-role": _Account.pass_role,
    "role-policies": _Account.role_policies,
    "plans": _Account.plans,
    "topic": _Account.topic,
    "rule": _Account.rule,
    "volumes": _Account.volumes,
    "volumes-and-snapshots": _Account.volumes_and_snapshots,
    "new-volumes": _Account.new_volumes,
    "snapshots": _Account.snapshots,
}


def document(
    values: Parameters, role: str, accounts: Mapping[str, str] | None = None, resource_keys: Iterable[str] = ()
) -> dict[str, Any]:
    """One profile role's identity policy (see documents)."""
    account = _Account(values, role, accounts or {}, tuple(resource_keys))
    grouped: dict[tuple[tuple[str, ...], str], tuple[Scope, set[str]]] = {}
    for action in sorted(actions_of(role)):
        if action not in ACTION_KINDS:
            raise KeyError(f"{action}: a step declares it, and policy_files.ACTION_KINDS says not what it acts on")
        kinds = ACTION_KINDS[action]
        for scope in [s for kind in kinds for s in account.scopes(kind)] if kinds else account.no_resource_type():
            grouped.setdefault(scope.key, (scope, set()))[1].add(action)
    statements = []
    for scope, actions in grouped.values():
        statement: dict[str, Any] = {
            "Sid": f"Runbook{scope.sid}",
            "Effect": "Allow",
            "Action": sorted(actions),
            "Resource": list(scope.resources) if len(scope.resources) > 1 else scope.resources[0],
        }
        if scope.condition:
            statement["Condition"] = scope.condition
        statements.append(statement)
    return {"Version": VERSION, "Statement": sorted(statements, key=lambda s: s["Sid"])}


def documents(
    values: Parameters, accounts: Mapping[str, str] | None = None, resource_keys: Iterable[str] = ()
) -> dict[str, dict[str, Any]]:
    """One IAM identity policy per profile role (source, destination, management) for a run of `values`.

    `accounts` holds each role's account ID (sts:GetCallerIdentity of its profile): a role missing from it gets
    ARNs with `*` for the account, which any account's resources of that name match. `resource_keys` are the
    keys (ARNs, key IDs or aliases, in source_region) that encrypt the run's resources, which step 03 shares
    for EBS, EC2 and RDS; without them kms:PutKeyPolicy is on every key of source_region.
    """
    keys = tuple(resource_keys)
    return {role: document(values, role, accounts, keys) for role in ROLES}


def text(policy: Mapping[str, Any]) -> str:
    """A document as the files hold it: indented, keys sorted, one newline at the end (the same every time)."""
    return json.dumps(policy, indent=2, sort_keys=True) + "\n"


def write(
    values: Parameters, out_dir: Path, accounts: Mapping[str, str] | None = None, resource_keys: Iterable[str] = ()
) -> list[Path]:
    """Write source-policy.json, destination-policy.json and management-policy.json (0644) into out_dir, each
    replaced whole (no reader sees half a file); nothing else there is touched."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for role, policy in documents(values, accounts, resource_keys).items():
        path = out_dir / file_name(role)
        partial = path.with_name(f".{path.name}.partial")
        partial.write_text(text(policy), encoding="utf-8")
        os.chmod(partial, FILE_MODE)
        os.replace(partial, path)
        written.append(path)
    return written


# The accounts and resource key the permissions page's table is drawn for: the sandbox's parameters, as a
# reader's would be.
EXAMPLE_ACCOUNTS = {"source": "222222222222", "destination": "333333333333", "management": "111111111111"}
EXAMPLE_KEY = "arn:aws:kms:us-east-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def readme_table(values: Parameters) -> str:
    """What each profile's file allows, statement by statement, for these parameters (the permissions page's table)."""
    rows = ["| profile | statement | actions | on | condition |", "| --- | --- | --- | --- | --- |"]
    for role, policy in documents(values, EXAMPLE_ACCOUNTS, [EXAMPLE_KEY]).items():
        for statement in policy["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            condition = json.dumps(statement.get("Condition", {}))[1:-1] if statement.get("Condition") else ""
            rows.append(
                f"| {role} | `{statement['Sid']}` | {', '.join(f'`{a}`' for a in actions)} | "
                f"{'<br>'.join(f'`{r}`' for r in resources)} | {f'`{condition}`' if condition else ''} |"
            )
    return "\n".join(rows)
