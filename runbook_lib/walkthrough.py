"""The steps of the procedure, one function per step, called by the step notebooks.

Each step reads what earlier steps recorded in the run's state (or, run alone, discovers it), returns
the changes it plans (shown first, applied by `apply` or an Apply button, logged after), and records
what it produced. Nothing here knows whether it talks to AWS or to the sandbox.
"""

from __future__ import annotations

from typing import Any

from . import aws, checks, diagnose, jobs, keys, params, vaults
from .changes import Change
from .context import Run, resource_arn, resource_key
from .errors import JobFailed, StepFailed

__all__ = ["Run", "resource_arn"]


def prerequisites(run: Run) -> list[Change]:
    """Check what the copy needs and plan what is missing: global setting, vaults, vault policy."""
    step = run.step
    facts = checks.Facts(run)
    gate = ["same-organization", "role-exists"]
    if facts.target_vault is not None:
        gate.append("target-vault-customer-key")
    checks.require(step, [checks.CHECKS[check_id](facts) for check_id in gate], force=run.force_copy)
    changes: list[Change] = []
    enabled = checks.CHECKS["cross-account-enabled"](facts)
    if enabled.status == checks.FAIL:
        if not run.management_profile and run.force_copy:
            print(f"force_copy: going on although [cross-account-enabled] {enabled.finding}")
        elif not run.management_profile:
            raise StepFailed(step, f"[cross-account-enabled] {enabled.finding}",
                             "ask the management account to enable it, or set management_profile")
        else:
            changes.append(enable_cross_account_change(run))
    source_key = keys.describe(run.source_profile, run.source_region, run.source_vault_key)
    target_key = keys.describe(run.target_profile, run.target_region, run.target_vault_key)
    if target_key.manager != "CUSTOMER":
        raise StepFailed(step, f"[target-vault-customer-key] target_vault_key {run.target_vault_key} is an AWS "
                         "managed key", "use a customer managed key: copies cannot go into a vault under an AWS "
                         "managed key")
    changes.append(vaults.create_change(step, run.source_profile, run.source_region, run.source_vault_name,
                                        source_key.arn))
    changes.append(vaults.create_change(step, run.target_profile, run.target_region, run.target_vault_name,
                                        target_key.arn, keep_existing=run.force_copy))
    changes.append(vaults.access_policy_change(step, run.target_profile, run.target_region, run.target_vault_name,
                                               run.target_vault_arn, run.account("source")))
    run.state.record(step, organization=facts.source_organization, source_account=run.account("source"),
                     target_account=run.account("target"), role_arn=run.role_arn, source_vault_key=source_key.arn,
                     target_vault_key=target_key.arn, target_vault_arn=run.target_vault_arn)
    return changes


def enable_cross_account_change(run: Run) -> Change:
    """Plan turning on cross-account backup from the management account."""
    management = aws.client(run.management_profile, "backup", run.source_region)

    def enable() -> None:
        try:
            management.update_global_settings(GlobalSettings={"isCrossAccountBackupEnabled": "true"})
        except management.exceptions.ClientError as error:
            if run.force_copy:
                print(f"force_copy: going on although the management account may not enable it: {error}")
                return
            raise StepFailed(run.step, f"[cross-account-enabled] the management account may not enable "
                             f"cross-account backup: {error.response['Error']['Message']}",
                             "ask an administrator of the management account to allow "
                             "backup:UpdateGlobalSettings (a service control policy may deny it)") from None

    return Change(run.step, run.management_profile, run.source_region, "backup:UpdateGlobalSettings", "organization",
                  "enable cross-account backup for the organization", enable)


# ----- step 1 --------------------------------------------------------------------------------------

def start_backup(run: Run) -> Change:
    """Plan the on-demand backup; a backup this run already started is not started again."""
    arn = resource_arn(run)
    earlier = run.state.get("01_create_backup", "backup_job_id")
    backup = run.source("backup")
    arguments = {
        "BackupVaultName": run.source_vault_name,
        "ResourceArn": arn,
        "IamRoleArn": run.role_arn,
        "IdempotencyToken": jobs.idempotency_token(str(run.state.directory), "backup", arn),
        "Lifecycle": params.lifecycle(run.values),
        "RecoveryPointTags": dict(run.recovery_point_tags),
    }

    def start() -> str:
        job_id = backup.start_backup_job(**arguments)["BackupJobId"]
        run.state.record("01_create_backup", backup_job_id=job_id, resource_arn=arn)
        return job_id

    return Change(run.step, run.source_profile, run.source_region, "backup:StartBackupJob", arn,
                  f"back up {arn} into {run.source_vault_name}, kept {run.delete_after_days} days",
                  start, needed=earlier is None)


def wait_for_backup(run: Run, progress: jobs.Progress | None = None, delay: int = 5) -> dict[str, Any]:
    job_id = run.state.get("01_create_backup", "backup_job_id")
    if job_id is None:
        raise StepFailed(run.step, "no backup job was started", "press Apply on the backup plan, or set apply: true")
    job = jobs.wait_for_backup_job(run.source_profile, run.source_region, job_id, delay, progress)
    run.state.record("01_create_backup", recovery_point_arn=job["RecoveryPointArn"])
    return job


# ----- steps 1c and 4: which key encrypts a recovery point ----------------------------------------

def source_recovery_point(run: Run) -> str:
    """This run's recovery point, or the newest completed one of the resource in the source vault."""
    recorded = run.state.get("01_create_backup", "recovery_point_arn")
    if recorded:
        return recorded
    return newest_recovery_point(run.source_profile, run.source_region, run.source_vault_name, resource_arn(run),
                                 run.step)


def newest_recovery_point(profile: str, region: str, vault: str, resource: str, step: str) -> str:
    backup = aws.client(profile, "backup", region)
    points = [
        p
        for page in backup.get_paginator("list_recovery_points_by_backup_vault").paginate(
            BackupVaultName=vault, ByResourceArn=resource)
        for p in page["RecoveryPoints"]
        if p["Status"] == "COMPLETED"
    ]
    if not points:
        raise StepFailed(step, f"no completed recovery point of {resource} in vault {vault}",
                         "run the backup step first")
    return max(points, key=lambda p: p["CreationDate"])["RecoveryPointArn"]


def encryption_of(profile: str, region: str, vault: str, recovery_point_arn: str) -> dict[str, Any]:
    """The recovery point's key, its snapshot's key and the vault's key, with aliases and managers."""
    backup = aws.client(profile, "backup", region)
    point = backup.describe_recovery_point(BackupVaultName=vault, RecoveryPointArn=recovery_point_arn)
    vault_key = backup.describe_backup_vault(BackupVaultName=vault)["EncryptionKeyArn"]
    snapshot_key = None
    if ":snapshot/" in recovery_point_arn and recovery_point_arn.startswith("arn:aws:ec2:"):
        ec2 = aws.client(profile, "ec2", region)
        snapshot = ec2.describe_snapshots(SnapshotIds=[recovery_point_arn.rsplit("/", 1)[1]])["Snapshots"][0]
        snapshot_key = snapshot.get("KmsKeyId")
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
    }


def verify_source_key(run: Run) -> dict[str, Any]:
    """Step 1c: the snapshot is encrypted with the volume's key, not the source vault's."""
    found = encryption_of(run.source_profile, run.source_region, run.source_vault_name, source_recovery_point(run))
    volume_key = _resource_key(run, found["resource_arn"])
    if found["recovery_point_key_arn"] != volume_key:
        raise StepFailed(run.step, f"the recovery point is encrypted with {found['recovery_point_key_arn']}, not "
                         f"the resource's key {volume_key}", "back up the resource again")
    if found["snapshot_key_arn"] not in (None, volume_key):
        raise StepFailed(run.step, f"the snapshot is encrypted with {found['snapshot_key_arn']}",
                         "back up the resource again")
    run.state.record("02_verify_source_key", source_key_arn=volume_key,
                     source_key_alias=found["recovery_point_key_alias"],
                     source_vault_key_alias=found["vault_key_alias"])
    return found


def _resource_key(run: Run, arn: str) -> str | None:
    """The key of the volume or DB instance, as a key ARN."""
    key = resource_key(run, arn)
    return keys.describe(run.source_profile, run.source_region, key).arn if key else None


# ----- step 2 --------------------------------------------------------------------------------------

def share_source_key(run: Run) -> Change:
    """Plan adding the target account to the source key's policy (the key that encrypts the snapshot)."""
    point = encryption_of(run.source_profile, run.source_region, run.source_vault_name, source_recovery_point(run))
    key_arn = point["recovery_point_key_arn"]
    if point["recovery_point_key_manager"] == "AWS":
        finding = (f"[source-key-customer-managed] the backup is encrypted with the AWS managed key "
                   f"{point['recovery_point_key_alias']}, whose policy cannot be changed")
        if not run.force_copy:
            raise StepFailed(run.step, finding, checks.CHECKS["source-key-customer-managed"](checks.Facts(run)).fix)
        return Change(run.step, run.source_profile, run.source_region, "kms:PutKeyPolicy", key_arn,
                      f"force_copy: not shared: {finding}", lambda: None, needed=False)
    return keys.share_change(run.step, run.source_profile, run.source_region, key_arn, run.account("target"))


# ----- step 3 --------------------------------------------------------------------------------------

def start_copy(run: Run) -> Change:
    """Plan the copy to the destination vault; a copy this run already started is not started again.

    The preflight checks run first; a blocking failure stops the step unless force_copy (for trainers).
    """
    earlier = run.state.get("04_copy_to_target", "copy_job_id")
    if earlier is None:
        checks.require(run.step, checks.run_checks(run), force=run.force_copy)
    point = source_recovery_point(run)
    attempt = len(run.state.get("04_copy_to_target", "failed_copy_jobs", []))
    backup = run.source("backup")
    arguments = {
        "RecoveryPointArn": point,
        "SourceBackupVaultName": run.source_vault_name,
        "DestinationBackupVaultArn": run.target_vault_arn,
        "IamRoleArn": run.role_arn,
        "IdempotencyToken": jobs.idempotency_token(str(run.state.directory), "copy", point, str(attempt)),
        "Lifecycle": params.lifecycle(run.values),
    }

    def start() -> str:
        try:
            job_id = backup.start_copy_job(**arguments)["CopyJobId"]
        except backup.exceptions.InvalidParameterValueException as error:
            message = error.response["Error"]["Message"]
            known = diagnose.match(message)
            check_id = known[0] if known else diagnose.UNKNOWN
            raise StepFailed(run.step, f"[{check_id}] StartCopyJob refused: {message}",
                             checks.run_checks(run, (check_id,))[0].fix if known else "read the message") from None
        run.state.record("04_copy_to_target", copy_job_id=job_id, source_recovery_point_arn=point)
        return job_id

    return Change(run.step, run.source_profile, run.source_region, "backup:StartCopyJob", point,
                  f"copy {point} to {run.target_vault_arn}", start, needed=earlier is None)


def wait_for_copy(run: Run, progress: jobs.Progress | None = None, delay: int = 5) -> dict[str, Any]:
    job_id = run.state.get("04_copy_to_target", "copy_job_id")
    if job_id is None:
        raise StepFailed(run.step, "no copy job was started", "press Apply on the copy plan, or set apply: true")
    try:
        job = jobs.wait_for_copy_job(run.source_profile, run.source_region, job_id, delay, progress)
    except JobFailed as failure:
        failed = [*run.state.get("04_copy_to_target", "failed_copy_jobs", []), job_id]
        run.state.record("04_copy_to_target", copy_job_id=None, failed_copy_jobs=failed)
        found = diagnose.explain(run, job_id, "copy", failure.state, failure.status_message)
        raise StepFailed(run.step, f"[{found.check_id}] copy job {job_id} failed: {failure.status_message}",
                         found.fix) from None
    run.state.record("04_copy_to_target", destination_recovery_point_arn=job["DestinationRecoveryPointArn"])
    return job


# ----- step 4 --------------------------------------------------------------------------------------

def destination_recovery_point(run: Run) -> str:
    recorded = run.state.get("04_copy_to_target", "destination_recovery_point_arn")
    if recorded:
        return recorded
    return newest_recovery_point(run.target_profile, run.target_region, run.target_vault_name, resource_arn(run),
                                 run.step)


def verify_target_key(run: Run) -> dict[str, Any]:
    """Step 4: the copy and its snapshot are encrypted with the destination vault's key."""
    found = encryption_of(run.target_profile, run.target_region, run.target_vault_name,
                          destination_recovery_point(run))
    expected = found["vault_key_arn"]
    for what in ("recovery_point_key_arn", "snapshot_key_arn"):
        if found[what] not in (None, expected) or found["recovery_point_key_arn"] is None:
            raise StepFailed(run.step, f"the copy's {what.replace('_', ' ')} is {found[what]}, not the destination "
                             f"vault's key {expected}", "copy again into a vault under a customer managed key")
    run.state.record("05_verify_target_key", destination_key_arn=expected,
                     destination_key_alias=found["recovery_point_key_alias"])
    return found


# ----- cleanup -------------------------------------------------------------------------------------

def cleanup(run: Run) -> list[Change]:
    """Plan deleting what this run created (recovery points, then vaults it created), nothing else."""
    changes: list[Change] = []
    created_vaults = {
        (entry["profile"], entry["region"], entry["target"])
        for entry in run.state.changes.entries()
        if entry["action"] == "backup:CreateBackupVault" and entry["outcome"] == "applied"
    }
    for profile, region, vault, point in (
        (run.target_profile, run.target_region, run.target_vault_name,
         run.state.get("04_copy_to_target", "destination_recovery_point_arn")),
        (run.source_profile, run.source_region, run.source_vault_name,
         run.state.get("01_create_backup", "recovery_point_arn")),
    ):
        backup = aws.client(profile, "backup", region)
        if point:
            exists = _recovery_point_exists(backup, vault, point)
            changes.append(Change(
                run.step, profile, region, "backup:DeleteRecoveryPoint", point, f"delete {point} from {vault}",
                lambda b=backup, v=vault, p=point: b.delete_recovery_point(BackupVaultName=v, RecoveryPointArn=p),
                needed=exists,
            ))
        if (profile, region, vault) in created_vaults:
            changes.append(Change(
                run.step, profile, region, "backup:DeleteBackupVault", vault,
                f"delete vault {vault} (this run made it)",
                lambda b=backup, v=vault: b.delete_backup_vault(BackupVaultName=v),
                needed=vaults.find(profile, region, vault) is not None,
            ))
    return changes


def _recovery_point_exists(backup: Any, vault: str, point: str) -> bool:
    try:
        backup.describe_recovery_point(BackupVaultName=vault, RecoveryPointArn=point)
        return True
    except backup.exceptions.ResourceNotFoundException:
        return False


def recovery_points_table(profile: str, region: str, vault: str) -> list[dict[str, Any]]:
    """The vault's recovery points with their key's alias and manager (paginated)."""
    backup = aws.client(profile, "backup", region)
    if vaults.find(profile, region, vault) is None:
        return []
    rows = []
    for page in backup.get_paginator("list_recovery_points_by_backup_vault").paginate(BackupVaultName=vault):
        for point in page["RecoveryPoints"]:
            key = keys.describe(profile, region, point["EncryptionKeyArn"]) if point.get("EncryptionKeyArn") else None
            rows.append({
                "recovery point": point["RecoveryPointArn"],
                "resource": point["ResourceArn"],
                "status": point["Status"],
                "created": point["CreationDate"],
                "key arn": point.get("EncryptionKeyArn", ""),
                "key alias": key.alias if key else "",
                "key manager": key.manager if key else "",
                "lifecycle": point.get("Lifecycle", {}),
            })
    return rows
