"""Backup vaults: create one under a given key, and let another account copy into it."""

from __future__ import annotations

import copy
import json
from typing import Any

from . import aws, iam_policy
from .changes import Change, policy_diff
from .errors import StepFailed

COPY_INTO = "backup:CopyIntoBackupVault"


def find(profile: str, region: str, name: str) -> dict[str, Any] | None:
    backup = aws.client(profile, "backup", region)
    try:
        return backup.describe_backup_vault(BackupVaultName=name)
    except backup.exceptions.ResourceNotFoundException:
        return None


def vault_arn(account: str, region: str, name: str) -> str:
    return f"arn:aws:backup:{region}:{account}:backup-vault:{name}"


def create_change(step: str, profile: str, region: str, name: str, key_arn: str, keep_existing: bool = False) -> Change:
    """Plan the vault; an existing vault under another key cannot be changed, so that stops the step
    (unless keep_existing, which trainers use to go on with the vault as it is)."""
    existing = find(profile, region, name)
    if existing is not None and existing.get("EncryptionKeyArn") != key_arn and not keep_existing:
        raise StepFailed(
            step,
            f"vault {name} already exists in {region} encrypted with {existing.get('EncryptionKeyArn')}, not {key_arn}",
            "a vault's key cannot change: choose another vault name, or delete the empty vault and run again",
        )
    backup = aws.client(profile, "backup", region)

    def create() -> dict[str, Any]:
        return backup.create_backup_vault(BackupVaultName=name, EncryptionKeyArn=key_arn)

    return Change(step, profile, region, "backup:CreateBackupVault", name,
                  f"create vault {name} encrypted with {key_arn}", create, needed=existing is None)


def current_policy(profile: str, region: str, name: str) -> dict[str, Any] | None:
    backup = aws.client(profile, "backup", region)
    try:
        return json.loads(backup.get_backup_vault_access_policy(BackupVaultName=name)["Policy"])
    except backup.exceptions.ResourceNotFoundException:
        return None


def allows_copy_from(policy: dict[str, Any] | None, vault: str, account: str) -> bool:
    request = iam_policy.Request(iam_policy.Principal(account), COPY_INTO, vault)
    return iam_policy.evaluate(policy, request) == iam_policy.ALLOW


def policy_allowing(policy: dict[str, Any] | None, account: str) -> dict[str, Any]:
    """The vault policy with one statement letting the account copy in; other statements kept."""
    result = copy.deepcopy(policy) if policy else {"Version": "2012-10-17", "Statement": []}
    result.setdefault("Statement", []).append({
        "Sid": f"AllowCopyInFrom{account}",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
        "Action": COPY_INTO,
        "Resource": "*",
    })
    return result


def access_policy_change(step: str, profile: str, region: str, name: str, arn: str, source_account: str) -> Change:
    """Plan the access policy that lets the source account copy into this vault."""
    before = current_policy(profile, region, name)
    needed = not allows_copy_from(before, arn, source_account)
    after = policy_allowing(before, source_account) if needed else before or {}
    backup = aws.client(profile, "backup", region)

    def put() -> None:
        backup.put_backup_vault_access_policy(BackupVaultName=name, Policy=json.dumps(after))

    return Change(step, profile, region, "backup:PutBackupVaultAccessPolicy", arn,
                  f"let account {source_account} copy into {name}", put, needed=needed,
                  diff=policy_diff(before, after, "vault access policy") if needed else "")
