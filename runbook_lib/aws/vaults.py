"""Backup vaults: create one under a given key, and let another account copy into it.

The access policy is granted like a key is shared (grants.py): with the runbook's own statement,
every other statement kept as written, and an explicit Deny named rather than outvoted.
"""

from __future__ import annotations

import json
from typing import Any

from runbook_policy import iam_policy

from ..core import arns, grants
from ..core.changes import Change, FoundInPlace, policy_diff
from ..core.errors import StepFailed
from . import clients, facts

COPY_INTO = "backup:CopyIntoBackupVault"
SID_PREFIX = "RunbookAllowCopyInFrom"
LEGACY_SID_PREFIX = "AllowCopyInFrom"


def find(profile: str, region: str, name: str) -> dict[str, Any] | None:
    backup = clients.client(profile, "backup", region)
    try:
        return backup.describe_backup_vault(BackupVaultName=name)
    except backup.exceptions.ResourceNotFoundException:
        return None


def newest_recovery_point(profile: str, region: str, vault: str, resource: str, any_status: bool = False) -> str | None:
    """The newest COMPLETED recovery point of the resource in the vault (or of any status), or None."""
    backup = clients.client(profile, "backup", region)
    points = [
        p
        for page in backup.get_paginator("list_recovery_points_by_backup_vault").paginate(
            BackupVaultName=vault, ByResourceArn=resource
        )
        for p in page["RecoveryPoints"]
    ]
    completed = [p for p in points if p["Status"] == "COMPLETED"]
    chosen = completed or (points if any_status else [])
    return max(chosen, key=lambda p: p["CreationDate"])["RecoveryPointArn"] if chosen else None


def create_change(
    step: str, profile: str, region: str, name: str, key_arn: str, arn: str, keep_existing: bool = False
) -> Change:
    """Plan the vault; an existing vault under another key cannot be changed, so that stops the step
    (unless keep_existing, which trainers use to go on with the vault as it is)."""
    existing = find(profile, region, name)
    if existing is not None and existing.get("EncryptionKeyArn") != key_arn and not keep_existing:
        raise StepFailed(
            step,
            f"vault {name} already exists in {region} encrypted with {existing.get('EncryptionKeyArn')}, not {key_arn}",
            "a vault's key cannot change: choose another vault name, or delete the empty vault and run again",
        )
    backup = clients.client(profile, "backup", region)

    def create() -> dict[str, Any] | FoundInPlace:
        try:
            return backup.create_backup_vault(BackupVaultName=name, EncryptionKeyArn=key_arn)
        except backup.exceptions.AlreadyExistsException:
            with facts.fresh():  # the run's answer (no such vault) is stale: someone made it meanwhile
                made = find(profile, region, name)
            if made is not None and made.get("EncryptionKeyArn") == key_arn:
                return FoundInPlace(f"vault {name} was created meanwhile with the same key")
            raise StepFailed(
                step,
                f"vault {name} was created meanwhile in {region}, encrypted with "
                f"{(made or {}).get('EncryptionKeyArn')}, not {key_arn}",
                "a vault's key cannot change: choose another vault name",
            ) from None

    return Change(
        step,
        profile,
        region,
        "backup:CreateBackupVault",
        name,
        f"create vault {name} encrypted with {key_arn}",
        create,
        needed=existing is None,
        effect={
            "kind": "vault",
            "profile": profile,
            "region": region,
            "name": name,
            "BackupVaultName": name,
            "BackupVaultArn": arn,
            "EncryptionKeyArn": key_arn,
        },
    )


def current_policy(profile: str, region: str, name: str) -> str | None:
    """The vault's access policy as written, or None when it has none (or the vault does not exist)."""
    backup = clients.client(profile, "backup", region)
    try:
        return backup.get_backup_vault_access_policy(BackupVaultName=name)["Policy"]
    except backup.exceptions.ResourceNotFoundException:
        return None


def copy_in_decision(
    policy: dict[str, Any] | str | None, vault: str, principal: iam_policy.Principal
) -> iam_policy.Decision:
    """Whether the policy lets the principal (the source account's backup role) copy into the vault: a call AWS
    Backup makes as a service, so the caller's network keys are absent from it."""
    return iam_policy.decide(policy, iam_policy.Request(principal, COPY_INTO, vault, by_service=True))


def allow_statement(account: str, region: str, sid_prefix: str = SID_PREFIX, owner: str = "") -> dict[str, Any]:
    """The runbook's own statement: one per source account and run (`owner`, its run folder's ID), found again
    by its Sid."""
    return {
        "Sid": grants.owned_sid(sid_prefix, account, owner),
        "Effect": "Allow",
        "Principal": {"AWS": arns.account_root(account, region)},
        "Action": COPY_INTO,
        "Resource": "*",
    }


def access_policy_change(
    step: str,
    profile: str,
    region: str,
    name: str,
    arn: str,
    principal: iam_policy.Principal,
    remove_denies: bool = False,
    force: bool = False,
    planned: bool = False,
    owner: str = "",
) -> Change:
    """Plan the access policy that lets the principal's account copy into this vault, with a statement whose
    Sid names run `owner` (its run folder's ID); nothing to do when the policy already lets it in, whoever's
    statement does (as keys.share_change).

    The vault's policy now is read only when the vault exists (`planned` says it is only planned).
    DenyBlocks when an explicit Deny for the account decides (see grants.plan_grant).
    """
    account = principal.account_id
    with facts.fresh():  # an edit starts from the policy as it is now, not as the run first read it
        text = None if planned else current_policy(profile, region, name)
    plan = grants.plan_grant(
        text,
        lambda policy: copy_in_decision(policy, arn, principal),
        [allow_statement(account, region, owner=owner)],
        account,
        remove_denies,
        force,
        legacy=(allow_statement(account, region, LEGACY_SID_PREFIX),),
    )
    after = plan.after or text or ""
    backup = clients.client(profile, "backup", region)

    def put() -> None:
        backup.put_backup_vault_access_policy(BackupVaultName=name, Policy=after)

    removed = f"; remove {', '.join(grants.label(s) for s in plan.removed)}" if plan.removed else ""
    summary = (
        f"let account {account} copy into {name}{removed}"
        if plan.needed
        else f"the access policy of {name} already lets account {account} copy in"
    )
    before_document = json.loads(text) if text else None

    def changed_since() -> str:
        """At Apply: the vault must exist and its policy must be the one this plan was made from."""
        if find(profile, region, name) is None:
            return f"vault {name} does not exist yet: apply its creation first"
        with facts.fresh():
            now = current_policy(profile, region, name)
        if now != text:
            return f"the access policy of {name} changed since this plan was made: run the cell again"
        return ""

    return Change(
        step,
        profile,
        region,
        "backup:PutBackupVaultAccessPolicy",
        arn,
        summary,
        put,
        needed=plan.needed,
        notes=plan.notes,
        precheck=changed_since,
        diff=policy_diff(before_document, json.loads(after), "vault access policy") if plan.needed else "",
        effect={"kind": "vault-policy", "profile": profile, "region": region, "name": name, "policy": after},
        added=plan.log_record(),
    )
