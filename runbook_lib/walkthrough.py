"""The steps of the procedure, one function per step, called by the step notebooks.

Each step reads what earlier steps recorded in the run's state (or, run alone, discovers it), returns
the changes it plans (shown first, applied by `apply` or an Apply button, logged after), and records
what it produced. Nothing here knows whether it talks to AWS or to the sandbox.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import aws, jobs, keys, params, vaults
from .changes import Change, carry_out
from .errors import StepFailed
from .runstate import RunState


@dataclass
class Run:
    """One run's parameters and state, shared by the steps."""

    step: str
    values: dict[str, Any]
    state: RunState = field(init=False)
    _accounts: dict[str, str] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.state = RunState(self.values["run_dir"])

    @classmethod
    def from_namespace(cls, step: str, namespace: Mapping[str, Any]) -> Run:
        """Build from a notebook's variables: the parameters it declares, defaults for the rest."""
        given = {name: namespace[name] for name in params.BY_NAME if name in namespace}
        return cls(step, params.validate(given))

    def __getattr__(self, name: str) -> Any:
        if name in params.BY_NAME:
            return self.values[name]
        raise AttributeError(name)

    def account(self, side: str) -> str:
        if side not in self._accounts:
            profile, region = (self.source_profile, self.source_region) if side == "source" else (
                self.target_profile, self.target_region)
            self._accounts[side] = aws.account_id(profile, region)
        return self._accounts[side]

    def source(self, service: str) -> Any:
        return aws.client(self.source_profile, service, self.source_region)

    def target(self, service: str) -> Any:
        return aws.client(self.target_profile, service, self.target_region)

    @property
    def role_arn(self) -> str:
        return f"arn:aws:iam::{self.account('source')}:role/{self.iam_role_name}"

    @property
    def target_vault_arn(self) -> str:
        return vaults.vault_arn(self.account("target"), self.target_region, self.target_vault_name)

    def carry_out(self, changes: list[Change]) -> list[Change]:
        """Apply every needed change when `apply` is true; show each either way."""
        return [carry_out(change, self.apply, self.state.changes) for change in changes]


def _organization(profile: str, region: str) -> str | None:
    organizations = aws.client(profile, "organizations", region)
    try:
        return organizations.describe_organization()["Organization"]["Id"]
    except organizations.exceptions.AWSOrganizationsNotInUseException:
        return None


# ----- step 0 --------------------------------------------------------------------------------------

def prerequisites(run: Run) -> list[Change]:
    """Check what the copy needs and plan what is missing: global setting, vaults, vault policy."""
    step = run.step
    source_org = _organization(run.source_profile, run.source_region)
    target_org = _organization(run.target_profile, run.target_region)
    if source_org is None or source_org != target_org:
        raise StepFailed(step, f"the source account is in organization {source_org} and the target account in "
                         f"{target_org}", "invite both accounts into one AWS Organization")
    changes: list[Change] = []
    settings = run.source("backup").describe_global_settings()["GlobalSettings"]
    if settings.get("isCrossAccountBackupEnabled") != "true":
        if not run.management_profile:
            raise StepFailed(step, "cross-account backup is not enabled for the organization",
                             "ask the management account to enable it, or set management_profile")
        management = aws.client(run.management_profile, "backup", run.source_region)
        changes.append(Change(
            step, run.management_profile, run.source_region, "backup:UpdateGlobalSettings", "organization",
            "enable cross-account backup for the organization",
            lambda: management.update_global_settings(GlobalSettings={"isCrossAccountBackupEnabled": "true"}),
        ))
    iam = aws.client(run.source_profile, "iam", run.source_region)
    role_name = run.iam_role_name.rsplit("/", 1)[-1]
    try:
        role = iam.get_role(RoleName=role_name)["Role"]
    except iam.exceptions.NoSuchEntityException:
        raise StepFailed(step, f"IAM role {run.iam_role_name} does not exist in the source account",
                         "create the AWS Backup default role (assign any resource in the AWS Backup console once) "
                         "or set iam_role_name") from None
    source_key = keys.describe(run.source_profile, run.source_region, run.source_vault_key)
    target_key = keys.describe(run.target_profile, run.target_region, run.target_vault_key)
    if target_key.manager != "CUSTOMER":
        raise StepFailed(step, f"target_vault_key {run.target_vault_key} is an AWS managed key",
                         "use a customer managed key: copies cannot go into a vault under an AWS managed key")
    changes.append(vaults.create_change(step, run.source_profile, run.source_region, run.source_vault_name,
                                        source_key.arn))
    changes.append(vaults.create_change(step, run.target_profile, run.target_region, run.target_vault_name,
                                        target_key.arn))
    changes.append(vaults.access_policy_change(step, run.target_profile, run.target_region, run.target_vault_name,
                                               run.target_vault_arn, run.account("source")))
    run.state.record(step, organization=source_org, source_account=run.account("source"),
                     target_account=run.account("target"), role_arn=role["Arn"], source_vault_key=source_key.arn,
                     target_vault_key=target_key.arn, target_vault_arn=run.target_vault_arn)
    return changes


# ----- step 1 --------------------------------------------------------------------------------------

def resource_arn(run: Run) -> str:
    """The resource to back up: resource_arn, or the one EBS volume whose Name tag is resource_name."""
    if run.resource_arn:
        return run.resource_arn
    ec2 = run.source("ec2")
    volumes = [
        v
        for page in ec2.get_paginator("describe_volumes").paginate(
            Filters=[{"Name": "tag:Name", "Values": [run.resource_name]}])
        for v in page["Volumes"]
    ]
    if len(volumes) != 1:
        raise StepFailed(run.step, f"{len(volumes)} EBS volumes are tagged Name={run.resource_name} in "
                         f"{run.source_region}", "set resource_arn to the volume's ARN")
    return f"arn:aws:ec2:{run.source_region}:{run.account('source')}:volume/{volumes[0]['VolumeId']}"


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
    if ":volume/" in arn:
        volume = run.source("ec2").describe_volumes(VolumeIds=[arn.rsplit("/", 1)[1]])["Volumes"][0]
        key = volume.get("KmsKeyId")
        return keys.describe(run.source_profile, run.source_region, key).arn if key else None
    return None


# ----- step 2 --------------------------------------------------------------------------------------

def share_source_key(run: Run) -> Change:
    """Plan adding the target account to the source key's policy (the key that encrypts the snapshot)."""
    point = encryption_of(run.source_profile, run.source_region, run.source_vault_name, source_recovery_point(run))
    key_arn = point["recovery_point_key_arn"]
    return keys.share_change(run.step, run.source_profile, run.source_region, key_arn, run.account("target"))


# ----- step 3 --------------------------------------------------------------------------------------

def start_copy(run: Run) -> Change:
    """Plan the copy to the destination vault; a copy this run already started is not started again."""
    point = source_recovery_point(run)
    earlier = run.state.get("04_copy_to_target", "copy_job_id")
    backup = run.source("backup")
    arguments = {
        "RecoveryPointArn": point,
        "SourceBackupVaultName": run.source_vault_name,
        "DestinationBackupVaultArn": run.target_vault_arn,
        "IamRoleArn": run.role_arn,
        "IdempotencyToken": jobs.idempotency_token(str(run.state.directory), "copy", point),
        "Lifecycle": params.lifecycle(run.values),
    }

    def start() -> str:
        job_id = backup.start_copy_job(**arguments)["CopyJobId"]
        run.state.record("04_copy_to_target", copy_job_id=job_id, source_recovery_point_arn=point)
        return job_id

    return Change(run.step, run.source_profile, run.source_region, "backup:StartCopyJob", point,
                  f"copy {point} to {run.target_vault_arn}", start, needed=earlier is None)


def wait_for_copy(run: Run, progress: jobs.Progress | None = None, delay: int = 5) -> dict[str, Any]:
    job_id = run.state.get("04_copy_to_target", "copy_job_id")
    if job_id is None:
        raise StepFailed(run.step, "no copy job was started", "press Apply on the copy plan, or set apply: true")
    job = jobs.wait_for_copy_job(run.source_profile, run.source_region, job_id, delay, progress)
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
