"""Step 07: delete what this run created and, with revert_sharing, take back what it shared.

The volume a restore drill kept (keep_restored) is deleted too, and so is what step 09 made (the
backup plan with its selections, the EventBridge rule, the SNS topic), unless another run folder now
uses it.

A cleanup has to finish whatever else the vaults hold. It deletes the run's own recovery points (the
ones its state recorded) on both sides before any vault; it deletes a vault only when this run made
it, nothing else is left in it and nothing else uses it (reliance.py: a backup plan, another run
folder, another run's statement in its access policy), and otherwise keeps it, says why and goes on.
With revert_sharing it also takes back what the run shared (unsharing.py). Each is a Change, planned
and shown first; a rerun finds nothing to do.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from ..aws import clients, vaults
from ..aws.context import FLEET_ROWS, Run
from ..core import arns, grants
from ..core.changes import Change
from ..core.errors import StepFailed
from ..core.steps import COPY_TO_TARGET, CREATE_BACKUP, RESTORE_DRILL
from . import automation, reliance, restore, unsharing
from .fleet_jobs import kind_of

KEPT = "kept, not deleted"
GONE = "already deleted, nothing to change"
LISTED_FROM = 2  # more recovery points than this (a fleet's) are looked up in one vault listing

log = logging.getLogger(__name__)


def cleanup(run: Run) -> list[Change]:
    """Plan the whole cleanup in an order that works: the run's recovery points (both sides), then the
    vaults it made, then (revert_sharing) what it shared."""
    own = own_recovery_points(run)
    if len(own) > LISTED_FROM:  # a fleet's: one listing per vault instead of a call per point
        for side in {side for side, _ in own}:
            profile, region = run.side(side)
            listed = _listed(clients.client(profile, "backup", region), _vault_name(run, side))
            run._cache[f"cleanup-points:{side}"] = listed
    changes = [_delete_point(run, side, point) for side, point in own]
    made = _created_vaults(run)
    own_points = {point for _, point in own}
    seen = reliance.Reliance(run, own_points, set(automation.made_plans(run)))
    sides = ("target", "hop", "source") if _in_two_hops(run, made) else ("target", "source")
    vault_changes = [_delete_vault(run, side, own_points, made, seen) for side in sides]
    for vault_change in (c for c in vault_changes if c.needed):
        vault_change.after = [
            point.key
            for point in changes
            if point.needed and (point.profile, point.region) == (vault_change.profile, vault_change.region)
        ]
    changes += vault_changes
    if run.state.get(RESTORE_DRILL, "restore_job_id"):  # a volume the restore drill kept, or did not wait for
        changes.append(restore.removal(run, keep=False))
    changes += automation.removals(run, seen)
    if run.revert_sharing:
        deleting = {(c.profile, c.region, c.target) for c in vault_changes if c.needed}
        changes += unsharing.revert_changes(run, deleting, seen, own_points)
    run.state.record(run.step, kept=[c.summary for c in changes if c.nothing_to_do == KEPT])
    return changes


def plan_text(run: Run, changes: list[Change]) -> str:
    """The cleanup plan, shown before anything is deleted (in batch too): what it will do and keep and,
    with apply, each change it makes now in full. Carrying the changes out then shows each one that
    needs nothing (a vault kept and why) and, in a dry run, each planned change in full."""
    to_make = [c for c in changes if c.needed]
    kept = sum(1 for c in changes if c.nothing_to_do == KEPT)
    heading = f"Cleanup plan: {len(to_make)} change(s) to make, {kept} vault(s) kept; "
    if not to_make:
        heading += "nothing to change"
    elif run.apply:
        heading += "apply is true: making them now, in this order"
    else:
        heading += "apply is false: a dry run, nothing is changed"
    lines = [heading]
    if not run.revert_sharing:
        lines.append(
            "revert_sharing is false: what this run shared (its key policy and vault policy statements, "
            "the cross-account backup setting) stays"
        )
    if run.apply:
        lines += [change.describe() for change in to_make]
    return "\n".join(lines)


# ----- recovery points and vaults ----------------------------------------------------------------


def _vault_name(run: Run, side: str) -> str:
    return {"source": run.source_vault_name, "hop": run.hop_vault}.get(side, run.target_vault_name)


def own_recovery_points(run: Run) -> list[tuple[str, str]]:
    """(side, ARN) of the recovery points this run made: the ones its state recorded, or else the one
    its recorded job made (a job that ended after its step stopped waiting is still the run's)."""
    found = []
    for side, step, recorded_as, kind in (
        ("target", COPY_TO_TARGET, "destination_recovery_point_arn", "copy"),
        ("hop", COPY_TO_TARGET, "hop_recovery_point_arn", "hop"),
        ("source", CREATE_BACKUP, "recovery_point_arn", "backup"),
    ):
        point = run.state.get(step, recorded_as) or _job_point(run, kind, run.state.get(step, f"{kind}_job_id"))
        if point:
            found.append((side, point))
        for row in run.state.get(step, FLEET_ROWS, {}).values():  # a run of many's, one per resource
            job = kind_of(step, row)
            ran = row.get("job_id") if job == kind or (kind, job) == ("copy", "second") else None
            made = row.get(recorded_as) or _job_point(run, kind, ran, second_hop=job == "second")
            if made:
                found.append((side, made))
    return list(dict.fromkeys(found))  # a run of one resource records its row's recovery point twice


def _in_two_hops(run: Run, made: set[tuple[str, str, str]]) -> bool:
    """Whether the run copied in two hops, as its own records say (its hop jobs, or a hop vault it made)."""
    if run.source_region == run.target_region:
        return False
    recorded = run.state.load().get(COPY_TO_TARGET, {})
    if any(recorded.get(name) for name in ("hop_job_id", "hop_recovery_point_arn", "failed_hop_jobs")):
        return True
    if any(row.get("kind") in ("hop", "second") for row in recorded.get(FLEET_ROWS, {}).values()):
        return True
    return (*run.side("hop"), run.hop_vault) in made


def _job_point(run: Run, kind: str, job_id: str | None, second_hop: bool | None = None) -> str | None:
    """The recovery point a recorded job made; the copy of a run in two hops was started in the target Region
    (a row says whether its copy was a second hop; a run of one resource's records, whether it copied in two)."""
    if not job_id:
        return None
    if second_hop is None:
        second_hop = kind == "copy" and _in_two_hops(run, _created_vaults(run))
    profile, region = run.side("hop" if second_hop else "source")
    backup = clients.client(profile, "backup", region)
    try:
        if kind == "backup":
            return backup.describe_backup_job(BackupJobId=job_id).get("RecoveryPointArn")
        return backup.describe_copy_job(CopyJobId=job_id)["CopyJob"].get("DestinationRecoveryPointArn")
    except backup.exceptions.ResourceNotFoundException:
        return None


def _recovery_point_exists(run: Run, side: str, backup: Any, vault: str, point: str) -> bool:
    """Whether the point is there to delete: one AWS is already deleting (DELETING) counts as gone. A
    fleet's points are looked up in one listing of the vault, not one call each."""
    listed = run._cache.get(f"cleanup-points:{side}")
    if listed is not None:
        return listed.get(point, "DELETING") != "DELETING"
    try:
        return backup.describe_recovery_point(BackupVaultName=vault, RecoveryPointArn=point)["Status"] != "DELETING"
    except backup.exceptions.ResourceNotFoundException:
        return False


def _listed(backup: Any, vault: str) -> dict[str, str]:
    """The vault's recovery points and their status, 1,000 a page."""
    pages = backup.get_paginator("list_recovery_points_by_backup_vault").paginate(
        BackupVaultName=vault, PaginationConfig={"PageSize": 1000}
    )
    try:
        return {p["RecoveryPointArn"]: p["Status"] for page in pages for p in page["RecoveryPoints"]}
    except backup.exceptions.ResourceNotFoundException:
        return {}


def _delete_point(run: Run, side: str, point: str) -> Change:
    profile, region = run.side(side)
    vault = _vault_name(run, side)
    backup = clients.client(profile, "backup", region)

    def delete() -> None:
        try:
            backup.delete_recovery_point(BackupVaultName=vault, RecoveryPointArn=point)
        except backup.exceptions.InvalidResourceStateException as error:
            raise StepFailed(
                run.step,
                f"recovery point {point} cannot be deleted yet: {error.response['Error']['Message']}",
                "wait until the job that uses it ends (step 04 follows the copy), then run cleanup again",
            ) from None

    return Change(
        run.step,
        profile,
        region,
        "backup:DeleteRecoveryPoint",
        point,
        f"delete recovery point {point} from {vault} (this run made it)",
        delete,
        needed=_recovery_point_exists(run, side, backup, vault, point),
        nothing_to_do=GONE,
    )


def _created_vaults(run: Run) -> set[tuple[str, str, str]]:
    """(profile, Region, name) of every vault the run's change log says the run created."""
    return {
        (e["profile"], e["region"], e["target"])
        for e in run.state.changes.entries()
        if e["action"] == "backup:CreateBackupVault" and e["outcome"] == "applied"
    }


def _points_in(backup: Any, vault: str) -> list[str]:
    return [
        p["RecoveryPointArn"]
        for page in backup.get_paginator("list_recovery_points_by_backup_vault").paginate(BackupVaultName=vault)
        for p in page["RecoveryPoints"]
    ]


def _delete_vault(
    run: Run, side: str, own: set[str], made: set[tuple[str, str, str]], seen: reliance.Reliance
) -> Change:
    """Delete the side's vault when this run made it and will leave it empty, and nothing else uses it (a
    backup plan, another run folder, another run's statement in its access policy); else keep it, saying
    why."""
    profile, region = run.side(side)
    vault = _vault_name(run, side)
    backup = clients.client(profile, "backup", region)

    def change(summary: str, do: Callable[[], Any] = lambda: None, needed: bool = False, **more: Any) -> Change:
        return Change(run.step, profile, region, "backup:DeleteBackupVault", vault, summary, do, needed=needed, **more)

    if (profile, region, vault) not in made:
        if run.state.planned_effect("vault", profile=profile, region=region, name=vault):
            return change(
                f"vault {vault}: this run only planned it (step 00_prerequisites), nothing to delete",
                nothing_to_do="not made, nothing to change",
            )
        return change(f"keep vault {vault}: this run did not make it", nothing_to_do=KEPT)
    if vaults.find(profile, region, vault) is None:
        return change(f"vault {vault} (this run made it) is deleted", nothing_to_do=GONE)
    users = seen.using_vault(arns.backup_vault(run.account(side), region, vault))
    policy = vaults.current_policy(profile, region, vault) if side == "target" else None
    statements = grants.of_other_runs(json.loads(policy), (vaults.SID_PREFIX,), run.state.run_id()) if policy else []
    if statements:
        users.append(f"{grants.runs_named(statements, (vaults.SID_PREFIX,))} (their statements in its access policy)")
    if users:
        return change(
            f"keep vault {vault}: others back up or copy into it",
            nothing_to_do=KEPT,
            notes=[f"they rely on it: {'; '.join(users)}", "once they no longer use it, run cleanup again"],
        )
    points = _points_in(backup, vault)
    others = [p for p in points if p not in own]
    if others:
        log.info("keeping vault %s: %d recovery point(s) not made by this run", vault, len(others))
        return change(
            f"keep vault {vault}: it holds {len(others)} recovery point(s) this run did not make",
            nothing_to_do=KEPT,
            notes=[
                f"not made by this run: {reliance.some(others)}",
                "once no one needs them, delete them and run cleanup again: it then deletes the vault",
            ],
        )

    def delete() -> None:
        try:
            backup.delete_backup_vault(BackupVaultName=vault)
        except backup.exceptions.InvalidRequestException as error:
            raise StepFailed(
                run.step,
                f"vault {vault} cannot be deleted yet: {error.response['Error']['Message']}",
                "AWS deletes recovery points in the background: run cleanup again in a few minutes "
                "(it keeps a vault that holds recovery points this run did not make)",
            ) from None

    def still_holds() -> str:
        left = len(_points_in(backup, vault))
        return f"vault {vault} still holds {left} recovery point(s): delete them first" if left else ""

    return change(
        f"delete vault {vault} (this run made it; nothing else is in it)",
        delete,
        needed=True,
        blocked_by=f"its {len(points)} recovery point(s) above are deleted" if points and run.dry_run else "",
        precheck=still_holds,
    )
