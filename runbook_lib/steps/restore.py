"""Step 08, the restore drill: restore the copy in the destination account, prove the restored volume is
encrypted with the destination vault's key, record the verdict with AWS Backup, and delete the volume.

A copy that cannot be restored is not a backup, and what stops a restore (the restore role, the
destination key's policy) is not what stops a copy. The drill checks those first (the registry's
checks before a restore), restores the copy with the metadata AWS Backup keeps for it (in the chosen
Availability Zone), follows the job like any other, reads the volume it made, and records the verdict
with PutRestoreValidationResult so that AWS Backup shows it too. Each change (the restore, the
verdict, the deletion) is planned first and logged after; run again with the same run folder, the
drill restores nothing twice. With keep_restored the volume stays (step 07 deletes it later).
"""

from __future__ import annotations

import logging
from typing import Any

from ..aws import jobs, keys, restores
from ..aws.context import RESTORE_ROLE_FIX, Run, resource_arn, selection
from ..core import arns, resource_types
from ..core.changes import Change, NotMade
from ..core.errors import StepFailed
from ..core.steps import COPY_TO_TARGET, RESTORE_DRILL
from ..troubleshooting import checks
from .encryption import destination_recovery_point, no_recovery_point
from .following import Outcome, wait_for

log = logging.getLogger(__name__)

SUCCESSFUL, FAILED = "SUCCESSFUL", "FAILED"
RESOURCE_TYPE = "EBS"  # what the drill restores: the copy of an EBS volume, as a new volume
PLANNED = "(planned, not made yet)"
GONE = "already deleted, nothing to change"


def _recorded(run: Run, name: str, default: Any = None) -> Any:
    return run.state.get(RESTORE_DRILL, name, default)


def availability_zone(run: Run) -> str:
    """Where the restored volume goes: the parameter, or the destination Region's first zone."""
    return run.restore_availability_zone or f"{run.target_region}a"


def start_restore(run: Run) -> Change:
    """Plan restoring the copy as a new EBS volume; a drill restores once per run folder (a failed restore
    is recorded, and the next run starts another). The restore checks run first and stop the step on a
    blocking failure, unless force_copy (for trainers)."""
    chosen = selection(run)
    if len(chosen) > 1:
        raise StepFailed(
            run.step,
            f"the restore drill restores one copy; this run selects {len(chosen)} resources",
            "set resource_arn (or resource_name) to the resource whose copy to restore",
        )
    row = resource_types.type_of(resource_arn(run))
    if row is None or row.name != RESOURCE_TYPE:
        raise StepFailed(
            run.step,
            f"the restore drill restores EBS volumes; {resource_arn(run)} is "
            f"{'an ' + row.name + ' resource' if row else 'of a type the runbook does not restore'}",
            "set resource_arn or resource_name to an EBS volume whose copy to restore",
        )
    earlier = _recorded(run, "restore_job_id")
    if earlier is None:
        checks.require(run, checks.run_checks(run, checks.BEFORE_RESTORE))
    point = destination_recovery_point(run)
    if point is None and not run.dry_run and earlier is None:
        raise no_recovery_point(run, "target")
    role = run.restore_role()
    if role is None and earlier is None and not run.dry_run:
        raise StepFailed(
            run.step, f"[restore-role-exists] IAM role {run.restore_role_name} does not exist", RESTORE_ROLE_FIX
        )
    zone = availability_zone(run)
    key = checks.Facts(run).restore_key
    attempt = len(_recorded(run, "failed_restore_jobs", []))
    backup = run.target("backup")

    def start() -> str:
        assert role is not None
        chosen = point or destination_recovery_point(run)
        if chosen is None:
            raise no_recovery_point(run, "target")
        metadata = restores.restore_metadata(run.target_profile, run.target_region, run.target_vault_name, chosen)
        metadata["availabilityZone"] = zone
        if key is not None:  # the key the checks judged, whatever the metadata kept
            metadata.update(encrypted="true", kmsKeyId=key.arn)
        token = jobs.idempotency_token(str(run.state.directory), "restore", chosen, str(attempt))
        job_id = backup.start_restore_job(
            RecoveryPointArn=chosen,
            Metadata=metadata,
            IamRoleArn=role["Arn"],
            IdempotencyToken=token,
            ResourceType=RESOURCE_TYPE,
        )["RestoreJobId"]
        run.state.record(RESTORE_DRILL, restore_job_id=job_id, restored_recovery_point_arn=chosen, zone=zone)
        return job_id

    source = point or f"(the copy step {COPY_TO_TARGET} makes)"
    under = f", encrypted with {key.alias or key.arn}" if key else ""
    restorer = role["Arn"] if role else run.restore_role_name
    summary = (
        f"restore {source} as a new EBS volume in {zone}{under}, as role {restorer}"
        if earlier is None
        else f"restore job {earlier} was started earlier: waiting for it, not starting another"
    )
    return Change(
        run.step,
        run.target_profile,
        run.target_region,
        "backup:StartRestoreJob",
        point or run.target_vault_arn,
        summary,
        start,
        needed=earlier is None,
        blocked_by="" if point else f"step {COPY_TO_TARGET} makes the copy {PLANNED}",
        effect={"kind": "restore", "recovery_point_arn": point, "zone": zone},
    )


def wait_for_restore(run: Run, progress: jobs.Progress | None = None, delay: int = 5) -> Outcome:
    return wait_for(run, "restore", progress, delay)


def verify_restore(run: Run) -> dict[str, Any]:
    """Read the restored volume and judge it: SUCCESSFUL when it is encrypted with the destination vault's
    key. A dry run without a restore says what the drill will check."""
    resource = _recorded(run, "restored_resource_arn")
    expected = checks.Facts(run).restore_key
    expected_name = (expected.alias or expected.arn) if expected else run.target_vault_key
    if resource is None:
        if run.dry_run:
            return {"restored volume": PLANNED, "expected key": expected_name, "verdict": PLANNED}
        raise StepFailed(run.step, "no restore has completed", "press Apply on the restore plan, or set apply: true")
    if _recorded(run, "volume_deleted"):
        return dict(_recorded(run, "verified"))
    volume_id = resource.rsplit("/", 1)[-1]
    ec2 = run.target("ec2")
    volume = ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]
    key = keys.describe(run.target_profile, run.target_region, volume["KmsKeyId"]) if volume.get("KmsKeyId") else None
    name = (key.alias or key.arn) if key else "no key"
    matches = key is not None and expected is not None and key.arn == expected.arn
    message = (
        f"restored volume {volume_id} is encrypted with {name}, the destination vault's key"
        if matches
        else f"restored volume {volume_id} is encrypted with {name}, not the destination vault's key {expected_name}"
    )
    found = {
        "restore job": _recorded(run, "restore_job_id"),
        "copy restored": _recorded(run, "restored_recovery_point_arn"),
        "restored volume": volume_id,
        "availability zone": volume["AvailabilityZone"],
        "volume state": volume["State"],
        "encrypted": bool(volume.get("Encrypted")),
        "key alias": key.alias if key else "",
        "key arn": key.arn if key else "",
        "expected key": expected_name,
        "verdict": SUCCESSFUL if matches else FAILED,
        "message": message,
    }
    run.state.record(RESTORE_DRILL, verified=found, restored_key_alias=found["key alias"], verdict=found["verdict"])
    return found


def record_validation(run: Run) -> Change:
    """Plan telling AWS Backup the drill's verdict (PutRestoreValidationResult), once per restore job."""
    job_id = _recorded(run, "restore_job_id")
    verified = _recorded(run, "verified") or {}
    done = job_id is not None and _recorded(run, "validation_recorded") == job_id
    backup = run.target("backup")

    def put() -> NotMade | None:
        try:
            backup.put_restore_validation_result(
                RestoreJobId=job_id,
                ValidationStatus=verified["verdict"],
                ValidationStatusMessage=verified["message"][:1000],
            )
        except (backup.exceptions.InvalidRequestException, backup.exceptions.InvalidParameterValueException) as error:
            # the verdict stays in the run's record; the drill goes on to delete its volume
            return NotMade(f"AWS Backup did not take the verdict: {error.response['Error']['Message']}")
        run.state.record(RESTORE_DRILL, validation_recorded=job_id)
        return None

    return Change(
        run.step,
        run.target_profile,
        run.target_region,
        "backup:PutRestoreValidationResult",
        job_id or "(the restore job)",
        f"record the verdict {verified.get('verdict', PLANNED)}: {verified.get('message', 'once the volume is read')}",
        put,
        needed=not done,
        nothing_to_do="the verdict is recorded already",
        blocked_by="" if verified else f"the restore {PLANNED}",
    )


def remove_restored(run: Run) -> Change:
    """Plan deleting the volume the drill made (keep_restored keeps it; step 07 deletes it then)."""
    return removal(run, keep=run.keep_restored)


def _made_by_job(run: Run) -> str | None:
    job_id = _recorded(run, "restore_job_id")
    if not job_id or run.step == RESTORE_DRILL:
        return None
    backup = run.target("backup")
    try:
        return backup.describe_restore_job(RestoreJobId=job_id).get("CreatedResourceArn")
    except backup.exceptions.ResourceNotFoundException:
        return None


def removal(run: Run, keep: bool) -> Change:
    """Deleting the drill's volume, unless `keep`; nothing to do once it is deleted (or never made). A
    restore that ended after its step stopped waiting is looked up: its volume is the run's too."""
    resource = _recorded(run, "restored_resource_arn") or _made_by_job(run)
    volume_id = resource.rsplit("/", 1)[-1] if resource else None
    ec2 = run.target("ec2")
    gone = bool(_recorded(run, "volume_deleted"))

    def delete() -> None:
        try:
            ec2.delete_volume(VolumeId=volume_id)
        except ec2.exceptions.ClientError as error:
            if error.response["Error"]["Code"] != "InvalidVolume.NotFound":
                raise
        run.state.record(RESTORE_DRILL, volume_deleted=True)

    target = arns.volume(run.account("target"), run.target_region, volume_id) if volume_id else "(the restored volume)"
    return Change(
        run.step,
        run.target_profile,
        run.target_region,
        "ec2:DeleteVolume",
        target,
        f"delete the drill's volume {volume_id or PLANNED}: the drill leaves nothing behind",
        delete,
        needed=not gone and not keep and (volume_id is not None or run.step == RESTORE_DRILL),
        nothing_to_do=(
            "kept: keep_restored is true (step 07 deletes it)"
            if keep and not gone
            else GONE
            if gone
            else "the restore made no volume, nothing to delete"
        ),
        blocked_by="" if volume_id else f"the restore {PLANNED}",
    )


def conclusion(run: Run) -> str:
    """The drill's verdict in one sentence; StepFailed when the restored volume is not under the destination key."""
    verified = _recorded(run, "verified")
    if not verified:
        return "The restore is planned, not made (apply is false): nothing was restored or recorded."
    if verified["verdict"] != SUCCESSFUL:
        raise StepFailed(run.step, verified["message"], "copy again into a vault under the destination key")
    left = "kept (keep_restored)" if run.keep_restored else "deleted" if _recorded(run, "volume_deleted") else "left"
    return (
        f"The copy restores: volume {verified['restored volume']} was encrypted with {verified['key alias']}; "
        f"the verdict {verified['verdict']} is recorded with AWS Backup; the volume is {left}."
    )
