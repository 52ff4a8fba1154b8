"""Which key encrypts a recovery point, or will: what steps 02 and 05 verify.

A recovery point not made yet (a dry run, or a notebook opened alone) is described by what will
encrypt it: for the source, the resource's key (a snapshot keeps its volume's key); for a copy, the
destination vault's key.
"""

from __future__ import annotations

from typing import Any

from ..aws import clients, keys, vaults
from ..aws.context import Run, resource_arn, resource_key
from ..core import arns, resource_types
from ..core.errors import StepFailed
from ..core.steps import COPY_TO_TARGET, CREATE_BACKUP, VERIFY_SOURCE_KEY


def source_recovery_point(run: Run) -> str | None:
    """This run's recovery point, or the newest completed one of the resource in the source vault."""
    recorded = run.state.get(CREATE_BACKUP, "recovery_point_arn")
    if recorded:
        return recorded
    if vaults.find(run.source_profile, run.source_region, run.source_vault_name) is None:
        return None
    return vaults.newest_recovery_point(run.source_profile, run.source_region, run.source_vault_name, resource_arn(run))


def no_recovery_point(run: Run, side: str) -> StepFailed:
    vault = run.source_vault_name if side == "source" else run.target_vault_name
    maker = CREATE_BACKUP if side == "source" else COPY_TO_TARGET
    return StepFailed(
        run.step, f"no completed recovery point of {resource_arn(run)} in vault {vault}", f"run step {maker} first"
    )


def encryption_of(run: Run, side: str, recovery_point_arn: str) -> dict[str, Any]:
    """The recovery point's key, its snapshot's key and the vault's key, with aliases and managers.

    What step 02 verified of the source recovery point is reused by later steps: the keys of a
    completed recovery point never change."""
    verified = run.state.get(VERIFY_SOURCE_KEY, "encryption") if side == "source" else None
    if run.step != VERIFY_SOURCE_KEY and verified and verified["recovery_point_arn"] == recovery_point_arn:
        return dict(verified)
    profile, region = run.side(side)
    vault = run.source_vault_name if side == "source" else run.target_vault_name
    backup = clients.client(profile, "backup", region)
    try:
        point = backup.describe_recovery_point(BackupVaultName=vault, RecoveryPointArn=recovery_point_arn)
    except backup.exceptions.ResourceNotFoundException:
        raise StepFailed(
            run.step,
            f"recovery point {recovery_point_arn}, recorded in {run.state.path}, is not in "
            f"vault {vault} of account {run.account(side)}",
            "if the sandbox was reset or it was deleted, start a new run folder (--out NEW)",
        ) from None
    vault_key = backup.describe_backup_vault(BackupVaultName=vault)["EncryptionKeyArn"]
    snapshot_key = None
    snapshot_id = arns.snapshot_id(recovery_point_arn)
    if snapshot_id:
        ec2 = clients.client(profile, "ec2", region)
        snapshot_key = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0].get("KmsKeyId")
    point_key = keys.describe(profile, region, point["EncryptionKeyArn"]) if point.get("EncryptionKeyArn") else None
    vault_key_info = keys.describe(profile, region, vault_key)
    return {
        "recovery_point_arn": recovery_point_arn,
        "resource_arn": point["ResourceArn"],
        "status": point["Status"],
        "recovery_point_key_arn": point.get("EncryptionKeyArn"),
        "recovery_point_key_alias": point_key.alias if point_key else "",
        "recovery_point_key_manager": point_key.manager if point_key else "",
        "snapshot_key_arn": snapshot_key,
        "vault_key_arn": vault_key,
        "vault_key_alias": vault_key_info.alias,
        "vault_key_manager": vault_key_info.manager,
        "made_by": "",
    }


def _planned_vault_key(run: Run, side: str) -> keys.KeyInfo:
    """The key of the side's vault: the vault's own, or the key step 00 plans it under."""
    profile, region = run.side(side)
    name = run.source_vault_name if side == "source" else run.target_vault_name
    vault = vaults.find(profile, region, name)
    key_ref = (
        vault["EncryptionKeyArn"] if vault else (run.source_vault_key if side == "source" else run.target_vault_key)
    )
    return keys.describe(profile, region, key_ref)


def planned_encryption(run: Run, side: str) -> dict[str, Any]:
    """What a recovery point not made yet will be encrypted with: for the source, the resource's key
    (a snapshot keeps its volume's key; a fully managed type's backup takes the vault's); for a copy, the
    destination vault's key."""
    arn = resource_arn(run)
    vault_key = _planned_vault_key(run, side)
    if side == "source":
        maker, kind = CREATE_BACKUP, "backup"
        key_ref = backup_key_arn(run, arn)
        key = keys.describe(run.source_profile, run.source_region, key_ref) if key_ref else None
    else:
        maker, kind = COPY_TO_TARGET, "copy"
        key = vault_key
    planned = run.state.planned_effect(kind) is not None
    return {
        "recovery_point_arn": f"(the recovery point of the {kind} planned in {maker})"
        if planned
        else f"(none yet: step {maker} makes it)",
        "resource_arn": arn,
        "status": "PLANNED" if planned else "MISSING",
        "recovery_point_key_arn": key.arn if key else None,
        "recovery_point_key_alias": key.alias if key else "",
        "recovery_point_key_manager": key.manager if key else "",
        "snapshot_key_arn": key.arn if key else None,
        "vault_key_arn": vault_key.arn,
        "vault_key_alias": vault_key.alias,
        "vault_key_manager": vault_key.manager,
        "made_by": maker,
    }


def encryption_sentence(found: dict[str, Any], vault: str = "") -> str:
    """One line on what encrypts the recovery point (or will), for the verification notebooks."""
    if "resources" in found:  # a fleet's count (walkthrough.verify_source_keys, verify_target_keys)
        what = (
            "copies are encrypted with the destination vault's key"
            if vault
            else "recovery points are encrypted with their volume's key"
        )
        failed = f"; {found['failed']} failed (see their rows)" if found["failed"] else ""
        return f"{found['verified']} of {found['resources']} {what} ({found['keys'] or 'none'}){failed}."
    key, vault_key = found["recovery_point_key_alias"] or found["recovery_point_key_arn"], found["vault_key_alias"]
    if vault:
        if found["status"] == "PLANNED":
            return f"The copy planned in {found['made_by']} will be encrypted with {key}, the key of vault {vault}."
        if found["status"] == "MISSING":
            return (
                f"No copy yet (step {found['made_by']} makes it); it will be encrypted with {key}, "
                f"the key of vault {vault}."
            )
        return f"The copy is encrypted with {key}, the key of vault {vault}."
    if found["status"] == "PLANNED":
        return (
            f"The backup planned in {found['made_by']} will be encrypted with {key} while its vault uses {vault_key}."
        )
    if found["status"] == "MISSING":
        return (
            f"No recovery point yet (step {found['made_by']} makes it); it will be encrypted with {key} "
            f"while its vault uses {vault_key}."
        )
    return f"The recovery point is encrypted with {key} while its vault uses {vault_key}."


def resource_key_arn(run: Run, arn: str) -> str | None:
    """The key of the volume or DB instance, as a key ARN."""
    key = resource_key(run, arn)
    return keys.describe(run.source_profile, run.source_region, key).arn if key else None


def backup_key_arn(run: Run, arn: str) -> str | None:
    """The key a backup of the resource is encrypted with: the resource's own, except for a type AWS
    Backup fully manages (EFS), whose backups take the source vault's key (the capability table)."""
    row = resource_types.type_of(arn)
    if row is not None and not row.source_key_customer_managed.value:
        return _planned_vault_key(run, "source").arn
    return resource_key_arn(run, arn)


def destination_recovery_point(run: Run) -> str | None:
    recorded = run.state.get(COPY_TO_TARGET, "destination_recovery_point_arn")
    if recorded:
        return recorded
    if vaults.find(run.target_profile, run.target_region, run.target_vault_name) is None:
        return None
    return vaults.newest_recovery_point(run.target_profile, run.target_region, run.target_vault_name, resource_arn(run))
