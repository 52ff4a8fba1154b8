"""Step 07: delete what this run created and, with revert_sharing, take back what it shared.

The volume a restore drill kept (keep_restored) is deleted too, and so is what step 09 made (the
backup plan with its selections, the EventBridge rule, the SNS topic).

A cleanup has to finish whatever else the vaults hold. It deletes the run's own recovery points (the
ones its state recorded) on both sides before any vault; it deletes a vault only when this run made
it and nothing else is left in it, and otherwise keeps it, says why and goes on. With revert_sharing
it also takes out exactly what the run's change log says the run added: its statements in the key
policy and in the vault policy (the vault policy is deleted only when the run wrote it from nothing
and nothing else was added since), and it turns the organization's cross-account backup off only
when the run turned it on. Each is a Change, planned and shown first; a rerun finds nothing to do.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..aws import clients, facts, keys, vaults
from ..aws.context import FLEET_ROWS, Run
from ..aws.sharing import vaults_principal
from ..core import arns, grants, iam_policy
from ..core.changes import Change, policy_diff
from ..core.errors import StepFailed
from ..core.steps import COPY_TO_TARGET, CREATE_BACKUP, RESTORE_DRILL
from . import automation, restore

SETTING = "isCrossAccountBackupEnabled"
KEPT = "kept, not deleted"
GONE = "already deleted, nothing to change"
NOTHING_LEFT = "nothing of this run's left to take out"
RELIED_ON = "kept: others rely on it"
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
    plans = plans_of_others(run)
    sides = ("target", "hop", "source") if _in_two_hops(run, made) else ("target", "source")
    vault_changes = [_delete_vault(run, side, {point for _, point in own}, made, plans) for side in sides]
    for vault_change in (c for c in vault_changes if c.needed):
        vault_change.after = [
            point.key
            for point in changes
            if point.needed and (point.profile, point.region) == (vault_change.profile, vault_change.region)
        ]
    changes += vault_changes
    if run.state.get(RESTORE_DRILL, "restore_job_id"):  # a volume the restore drill kept, or did not wait for
        changes.append(restore.removal(run, keep=False))
    changes += automation.removals(run)
    if run.revert_sharing:
        deleting = {(c.profile, c.region, c.target) for c in vault_changes if c.needed}
        changes += revert_changes(run, deleting, plans)
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
        for row in run.state.get(step, FLEET_ROWS, {}).values():  # a fleet's, one per resource
            made = row.get(recorded_as) or _job_point(run, kind, row.get("job_id"))
            if made:
                found.append((side, made))
    return found


def _in_two_hops(run: Run, made: set[tuple[str, str, str]]) -> bool:
    """Whether the run copied in two hops, as its own records say (its hop jobs, or a hop vault it made)."""
    if run.source_region == run.target_region:
        return False
    recorded = run.state.load().get(COPY_TO_TARGET, {})
    if any(recorded.get(name) for name in ("hop_job_id", "hop_recovery_point_arn", "failed_hop_jobs")):
        return True
    return (*run.side("hop"), run.hop_vault) in made


def _job_point(run: Run, kind: str, job_id: str | None) -> str | None:
    """The recovery point a recorded job made; the copy of a run in two hops was started in the target Region."""
    if not job_id:
        return None
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
    run: Run, side: str, own: set[str], made: set[tuple[str, str, str]], plans: dict[str, list[str]]
) -> Change:
    """Delete the side's vault when this run made it and will leave it empty, and no backup plan backs up or
    copies into it; else keep it, saying why."""
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
    users = _using(plans, arns.backup_vault(run.account(side), region, vault))
    if users:
        return change(
            f"keep vault {vault}: backup plan(s) {', '.join(users)} of the source account back up or copy into it",
            nothing_to_do=KEPT,
            notes=[f"they rely on it: {', '.join(users)}; once they no longer use it, run cleanup again"],
        )
    points = _points_in(backup, vault)
    others = [p for p in points if p not in own]
    if others:
        log.info("keeping vault %s: %d recovery point(s) not made by this run", vault, len(others))
        return change(
            f"keep vault {vault}: it holds {len(others)} recovery point(s) this run did not make",
            nothing_to_do=KEPT,
            notes=[
                f"not made by this run: {_some(others)}",
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


# ----- what the run shared -----------------------------------------------------------------------


@dataclass
class Added:
    """What the run's changes added to one policy, less what a cleanup took out again since."""

    target: str
    statements: list[dict[str, Any]] = field(default_factory=list)
    removed: list[dict[str, Any]] = field(default_factory=list)
    created: bool = False
    unknown: int = 0

    def take(self, entry: dict[str, Any]) -> None:
        """Follow one applied change of this policy from the log."""
        if "reverts" in entry:
            taken = entry["reverts"].get("statements", [])
            self.statements = [s for s in self.statements if s not in taken]
            self.created = self.created and bool(self.statements)
        elif "added" in entry:
            self.created = self.created or (not self.statements and entry["added"].get("created", False))
            self.statements += [s for s in entry["added"].get("statements", []) if s not in self.statements]
            self.removed += entry["added"].get("removed", [])
        else:
            self.unknown += 1


@dataclass
class Shared:
    """Everything the run's change log says the run shared and has not taken back."""

    key_policies: dict[tuple[str, str, str], Added] = field(default_factory=dict)
    vault_policies: dict[tuple[str, str, str], Added] = field(default_factory=dict)
    settings: dict[tuple[str, str], bool] = field(default_factory=dict)


def shared(entries: list[dict[str, Any]]) -> Shared:
    """Read the change log in order: statements added and taken out again, the setting turned on and off."""
    found = Shared()
    for entry in entries:
        if entry.get("outcome") != "applied":
            continue
        where = (entry["profile"], entry["region"], entry["target"])
        if entry["action"] == "kms:PutKeyPolicy":
            found.key_policies.setdefault(where, Added(entry["target"])).take(entry)
        elif entry["action"] in ("backup:PutBackupVaultAccessPolicy", "backup:DeleteBackupVaultAccessPolicy"):
            found.vault_policies.setdefault(where, Added(entry["target"])).take(entry)
        elif entry["action"] == "backup:UpdateGlobalSettings":
            found.settings[(entry["profile"], entry["region"])] = "reverts" not in entry
    return found


@dataclass
class Reliance:
    """Who else relies on what the run shared, as far as the cleanup can see: other run folders (their
    statements, named by their Sids, in the policies the run touched) and backup plans that copy across."""

    runs: set[str] = field(default_factory=set)
    plans: dict[str, list[str]] = field(default_factory=dict)  # plan name: its copy actions' destination vaults

    def saw(self, statements: list[dict[str, Any]], prefixes: tuple[str, ...]) -> None:
        self.runs.update(grants.owner_of(s, prefixes) or "" for s in statements)


def revert_changes(run: Run, deleting: set[tuple[str, str, str]], plans: dict[str, list[str]]) -> list[Change]:
    """Plan taking out what the run added to key policies, vault policies (those of vaults this cleanup
    does not delete) and the organization's setting: only what no other run folder, recovery point or backup
    plan relies on (kept, and named, otherwise); the organization's setting, which anyone in the organization
    may rely on unseen, only once confirmed (take_back_shared) in batch."""
    found = shared(run.state.changes.entries())
    seen = Reliance(plans=plans)
    changes = [
        _revert_key_policy(run, profile, region, added, seen)
        for (profile, region, _), added in found.key_policies.items()
    ]
    changes += [
        _revert_vault_policy(run, profile, region, added, deleting, seen)
        for (profile, region, _), added in found.vault_policies.items()
    ]
    changes += [
        _revert_setting(run, profile, region, seen) for (profile, region), enabled in found.settings.items() if enabled
    ]
    return changes


def plans_of_others(run: Run) -> dict[str, list[str]]:
    """The source account's backup plans in the source Region (not those this run made: this cleanup deletes
    them), by name, with the ARNs of the vaults each uses: those its rules back up into, and those they copy
    to. What they use, a cleanup keeps."""
    mine = set(automation.made_plans(run))
    backup = run.source("backup")
    account, region = run.account("source"), run.source_region
    found: dict[str, list[str]] = {}
    for page in backup.get_paginator("list_backup_plans").paginate():
        for listed in page["BackupPlansList"]:
            if listed["BackupPlanName"] in mine:
                continue
            plan = backup.get_backup_plan(BackupPlanId=listed["BackupPlanId"])["BackupPlan"]
            used = []
            for rule in plan.get("Rules", []):
                used.append(arns.backup_vault(account, region, rule["TargetBackupVaultName"]))
                used += [action["DestinationBackupVaultArn"] for action in rule.get("CopyActions", [])]
            found[listed["BackupPlanName"]] = list(dict.fromkeys(used))
    return found


def _using(plans: dict[str, list[str]], vault_arn: str) -> list[str]:
    return [name for name, used in plans.items() if vault_arn in used]


def _foreign_points(run: Run, profile: str, region: str, key_arn: str) -> list[str]:
    """Recovery points under this key in the run's vault of the key's Region that the run did not make: a
    later copy of any of them needs the key shared."""
    vault = run.source_vault_name if region == run.source_region else run.hop_vault
    own = {point for _, point in own_recovery_points(run)}
    backup = clients.client(profile, "backup", region)
    pages = backup.get_paginator("list_recovery_points_by_backup_vault").paginate(
        BackupVaultName=vault, PaginationConfig={"PageSize": 1000}
    )
    try:
        return [
            p["RecoveryPointArn"]
            for page in pages
            for p in page["RecoveryPoints"]
            if p.get("EncryptionKeyArn") == key_arn and p["RecoveryPointArn"] not in own
        ]
    except backup.exceptions.ResourceNotFoundException:
        return []


def _some(items: list[str], limit: int = 3) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _notes(added: Added, found: list[dict[str, Any]], text: str | None) -> list[str]:
    """What a person should know about what is not taken out."""
    notes = []
    now = {s.get("Sid") for s in iam_policy.statements(text)}
    changed = [s for s in added.statements if s not in found and s.get("Sid") in now]
    if changed:
        notes.append(f"{', '.join(grants.label(s) for s in changed)} changed since this run added it: kept as it is")
    if added.removed:
        notes.append(f"this run also took out {', '.join(grants.label(s) for s in added.removed)}: not put back")
    if added.unknown:
        notes.append(
            f"{added.unknown} earlier change(s) are logged without what they added (an older runbook): not taken out"
        )
    return notes


def _changed_since(read: Callable[[], str | None], text: str | None, what: str) -> Callable[[], str]:
    def check() -> str:
        with facts.fresh():
            now = read()
        return f"{what} changed since this plan was made: run the cell again" if now != text else ""

    return check


def _revert_key_policy(run: Run, profile: str, region: str, added: Added, seen: Reliance) -> Change:
    key_arn = added.target
    kms = clients.client(profile, "kms", region)
    with facts.fresh():  # an edit starts from the policy as it is now
        text = keys.current_policy(profile, region, key_arn)
    after, found = grants.without(text, added.statements)
    others = grants.of_other_runs(json.loads(after), keys.SID_PREFIXES, run.state.run_id())
    seen.saw(others, keys.SID_PREFIXES)
    kept_for = _key_kept_for(run, profile, region, key_arn, found, json.loads(after))
    notes = [*kept_for[1:], *_notes(added, found, text)]
    if found and others and not kept_for:
        notes.append(
            f"the key stays shared through the statements of {grants.runs_named(others, keys.SID_PREFIXES)}: "
            "taking out this run's takes nothing from them"
        )

    def put() -> None:
        kms.put_key_policy(KeyId=key_arn, PolicyName="default", Policy=after)

    taking = bool(found) and not kept_for
    summary = (
        f"keep what this run added to the key policy: {kept_for[0]}"
        if kept_for
        else f"take out what this run added to the key policy: {', '.join(grants.label(s) for s in found)}; "
        "keep every other statement"
        if found
        else "nothing this run added is left in the key policy"
    )
    return Change(
        run.step,
        profile,
        region,
        "kms:PutKeyPolicy",
        key_arn,
        summary,
        put,
        needed=taking,
        diff=policy_diff(json.loads(text), json.loads(after), "key policy") if taking else "",
        notes=notes,
        reverts={"statements": found},
        nothing_to_do=RELIED_ON if kept_for else NOTHING_LEFT,
        precheck=_changed_since(lambda: keys.current_policy(profile, region, key_arn), text, "the key policy"),
    )


def _key_kept_for(
    run: Run,
    profile: str,
    region: str,
    key_arn: str,
    found: list[dict[str, Any]],
    after: dict[str, Any],
) -> list[str]:
    """Why the run's statements stay in the key policy (the reason, then what relies on them), or [] to take
    them out: recovery points under the key that the run did not make would lose every way to be copied to
    an account the statements share the key with. Another run's statements that keep it shared make taking
    out this run's harmless."""
    if not found:
        return []
    for account in keys.shared_accounts({"Statement": found}, run.account("source")):
        principal = keys.copy_principal(account, run.target_region, run.organization("target"))
        if keys.copy_decision(after, key_arn, principal).allowed:
            continue  # still shared: by another run's statements or someone else's
        points = _foreign_points(run, profile, region, key_arn)
        if points:
            return [
                f"{len(points)} recovery point(s) this run did not make are encrypted with it, and their copies to "
                f"account {account} need it",
                f"they rely on it: {_some(points)}",
                "once no one needs to copy them, take the statements out by hand or run cleanup again after "
                "deleting them",
            ]
    return []


def _revert_vault_policy(
    run: Run, profile: str, region: str, added: Added, deleting: set[tuple[str, str, str]], seen: Reliance
) -> Change:
    arn = added.target
    name = arn.rsplit(":", 1)[-1]
    backup = clients.client(profile, "backup", region)

    def change(
        summary: str,
        action: str = "backup:PutBackupVaultAccessPolicy",
        do: Callable[[], Any] = lambda: None,
        found: list[dict[str, Any]] | None = None,
        kept: bool = False,
        **more: Any,
    ) -> Change:
        return Change(
            run.step,
            profile,
            region,
            action,
            arn,
            summary,
            do,
            needed=bool(found) and not kept,
            reverts={"statements": found or []},
            nothing_to_do=RELIED_ON if kept else NOTHING_LEFT,
            **more,
        )

    if (profile, region, name) in deleting:
        return change(f"the access policy of {name} goes with the vault, which this cleanup deletes")
    with facts.fresh():  # an edit starts from the policy as it is now
        text = vaults.current_policy(profile, region, name)
    if text is None:
        return change(f"vault {name} has no access policy now")
    after, found = grants.without(text, added.statements)
    notes = _notes(added, found, text)
    if not found:
        return change(f"nothing this run added is left in the access policy of {name}", notes=notes)
    others = grants.of_other_runs(json.loads(after), (vaults.SID_PREFIX,), run.state.run_id())
    seen.saw(others, (vaults.SID_PREFIX,))
    still_open = vaults.copy_in_decision(after, arn, vaults_principal(run)).allowed
    plans = _using(seen.plans, arn)
    if plans and not still_open:
        return change(
            f"keep what this run added to the access policy of {name}: backup plan(s) {', '.join(plans)} of the "
            "source account copy into it",
            found=found,
            kept=True,
            notes=[
                f"they rely on it: {', '.join(plans)}; once they no longer copy there, run cleanup again",
                *notes,
            ],
        )
    if others and still_open:
        notes.append(
            f"the vault stays open to the source account through the statement of "
            f"{grants.runs_named(others, (vaults.SID_PREFIX,))}: taking out this run's takes nothing from it"
        )
    labels = ", ".join(grants.label(s) for s in found)
    precheck = _changed_since(
        lambda: vaults.current_policy(profile, region, name), text, f"the access policy of {name}"
    )
    if not iam_policy.statements(after):
        why = (
            "this run wrote it from nothing and nothing else was added since"
            if added.created
            else f"nothing but {labels} is left in it (an empty policy allows nothing either)"
        )
        return change(
            f"delete the access policy of {name}: {why}",
            "backup:DeleteBackupVaultAccessPolicy",
            lambda: backup.delete_backup_vault_access_policy(BackupVaultName=name),
            found,
            notes=notes,
            diff=policy_diff(json.loads(text), None, "vault access policy"),
            precheck=precheck,
        )
    return change(
        f"take {labels} (this run added it) out of the access policy of {name}; keep every other statement",
        "backup:PutBackupVaultAccessPolicy",
        lambda: backup.put_backup_vault_access_policy(BackupVaultName=name, Policy=after),
        found,
        notes=notes,
        diff=policy_diff(json.loads(text), json.loads(after), "vault access policy"),
        precheck=precheck,
    )


def _revert_setting(run: Run, profile: str, region: str, seen: Reliance) -> Change:
    """Turn cross-account backup off again, since this run turned it on (and it is on now): kept while another
    run folder or a backup plan that copies across accounts relies on it; and since anyone in the organization
    may rely on it unseen, made in batch only once confirmed (take_back_shared, `runbook run --yes`)."""
    backup = clients.client(profile, "backup", region)
    try:
        enabled = backup.describe_global_settings()["GlobalSettings"].get(SETTING) == "true"
    except backup.exceptions.InvalidRequestException as error:
        raise StepFailed(
            run.step,
            f"cannot read the organization's cross-account backup setting as {profile}: "
            f"{error.response['Error']['Message']}",
            "run cleanup with the profile of the management account that turned it on",
        ) from None

    def disable() -> None:
        try:
            backup.update_global_settings(GlobalSettings={SETTING: "false"})
        except backup.exceptions.InvalidRequestException as error:
            raise StepFailed(
                run.step,
                f"cannot turn cross-account backup off as {profile}: {error.response['Error']['Message']}",
                "ask an administrator of the management account to turn it off",
            ) from None

    reliers = [grants.run_names(seen.runs)] if seen.runs else []
    account = run.account("source")
    reliers += [
        f"backup plan {plan} (copies to {_some(across)})"
        for plan, used in seen.plans.items()
        for across in [[arn for arn in used if arns.parts(arn).get("account") != account]]
        if across
    ]
    if enabled and reliers:
        return Change(
            run.step,
            profile,
            region,
            "backup:UpdateGlobalSettings",
            "organization",
            "keep the organization's cross-account backup on (this run turned it on): others copy across "
            "accounts with it",
            disable,
            needed=False,
            notes=[f"they rely on it: {'; '.join(reliers)}"],
            reverts={SETTING: "true"},
            nothing_to_do=RELIED_ON,
        )
    return Change(
        run.step,
        profile,
        region,
        "backup:UpdateGlobalSettings",
        "organization",
        "turn the organization's cross-account backup off again: this run turned it on"
        if enabled
        else "the organization's cross-account backup is off",
        disable,
        needed=enabled,
        diff=policy_diff({SETTING: "true"}, {SETTING: "false"}, "global settings") if enabled else "",
        notes=["no other run folder or backup plan of the source account is seen to rely on it"] if enabled else [],
        reverts={SETTING: "true"},
        nothing_to_do="already off, nothing to change",
        confirm="every cross-account copy in the organization needs it, not only this run's, and the runbook "
        "cannot see the other accounts' use"
        if enabled
        else "",
    )
