"""Steps 01 to 05 on the run's selection, one resource or many: every step on the whole selection, a row each
(a run of one resource is a selection of one; fleet_rows.one_record writes its record under the names its run
folder always had, and the steps tell it in its own words). A step fails when every selected resource did.

Each resource's progress is a row of the run's state (state.json, `fleet` under each step). A resource
that fails says so in its row and the others go on; the run exits non-zero when any row failed, and a
rerun picks up only what is unfinished. At most max_concurrent_jobs jobs run at once, and they are
followed with one listing per round (ceil(N/1000) calls, jobs.list_round), not one call per job. Reads
are made for the whole selection: one volume listing, one vault listing, snapshots 200 at a time.
A resource whose type copies in two hops (run.copies_in_two_hops) has both its jobs in its step 04 row:
start_copies starts its first hop, second_hops its second once the first completed (outcome HOPPED).
The rows live in fleet_rows.py, the following of jobs in fleet_jobs.py; here, the steps.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..aws import clients, keys, vaults
from ..aws.context import Run, resource_key, selection
from ..core import arns, grants
from ..core.changes import Change, NotMade
from ..core.errors import StepFailed, quoted
from ..core.steps import COPY_TO_TARGET, CREATE_BACKUP, SHARE_SOURCE_KEY, VERIFY_SOURCE_KEY, VERIFY_TARGET_KEY
from ..troubleshooting import checks
from .encryption import backup_key_arn, no_recovery_point
from .fleet_jobs import Slots, refusals, refused, started_at, wait
from .fleet_rows import (
    HOPPED,
    fail,
    failure,
    failures_line,
    only,
    record_rows,
    remember_selection,
    results,
    rows,
    update,
    update_rows,
)

__all__ = [
    "failures_line",
    "only",
    "results",
    "update",
    "wait",
]  # read through this module by the runner, the report, walkthrough.py

log = logging.getLogger(__name__)

SNAPSHOT_BATCH = 200  # snapshot IDs per DescribeSnapshots
# The checks that depend on the resource (its key, its type, its recovery point); the others are the run's.
PER_RESOURCE = ("source-key-customer-managed", "source-key-shared", "rds-single-hop", "recovery-point-ready")


# ----- step 01 -------------------------------------------------------------------------------------


def _missing_vault(run: Run, side: str) -> str:
    """'' when the side's vault exists; else which step makes it (and whether this run planned it)."""
    profile, region = run.side(side)
    name = run.source_vault_name if side == "source" else run.target_vault_name
    if vaults.find(profile, region, name) is not None:
        return ""
    planned = run.state.planned_effect("vault", profile=profile, region=region, name=name)
    return f"step 00_prerequisites creates vault {name} in the {side} account" + (
        " (planned, not made yet)" if planned else ""
    )


def start_backups(run: Run, sleep: Callable[[float], None] = time.sleep) -> list[Change]:
    """A backup per resource that has no recovery point and no running backup from this run; none into a source
    vault that does not exist (a dry run plans them, waiting for the vault step 00 plans)."""
    done, verified = record_rows(run, CREATE_BACKUP), rows(run, VERIFY_SOURCE_KEY)
    chosen = remember_selection(run)
    missing = _missing_vault(run, "source")
    if missing and not run.dry_run and not any(row.get("outcome") for row in done.values()):
        raise StepFailed(
            run.step,
            f"vault {run.source_vault_name} does not exist in the source account",
            f"run step 00_prerequisites first ({missing})",
        )
    slots = Slots(run, "backup", run.poll_seconds, sleep)
    backup = run.source("backup")
    changes = []
    for arn in chosen:
        row = done.get(arn, {})
        attempt = row.get("started", 0)
        arguments = run.backup_request(arn, attempt)

        def start(arn: str = arn, arguments: dict[str, Any] = arguments, attempt: int = attempt) -> str | NotMade:
            slots.take()
            try:
                made = backup.start_backup_job(**arguments)
            except refusals(backup) as error:
                return refused(run, CREATE_BACKUP, arn, "StartBackupJob", error)
            started_at(run, CREATE_BACKUP, made["CreationDate"])
            slots.started(made["BackupJobId"])
            fields = {"job_id": made["BackupJobId"], "outcome": "RUNNING", "started": attempt + 1}
            update(run, CREATE_BACKUP, arn, **fields, recovery_point_arn="", reason="", fix="")
            return str(made["BackupJobId"])

        # A recovery point step 02 found under the wrong key is backed up again.
        finished = row.get("outcome") in ("COMPLETED", "RUNNING") and verified.get(arn, {}).get("outcome") != "FAILED"
        if not finished:
            summary = f"back up {arn} into {run.source_vault_name}, kept {run.delete_after_days} days"
        elif len(chosen) == 1:
            summary = f"backup job {row.get('job_id')} was started earlier: waiting for it, not starting another"
        else:
            summary = f"backup job {row.get('job_id')} ({row['outcome']}) was started earlier: not starting another"
        key = resource_key(run, arn)
        changes.append(
            Change(
                run.step,
                run.source_profile,
                run.source_region,
                "backup:StartBackupJob",
                arn,
                summary,
                start,
                needed=not finished,
                blocked_by=missing if not finished else "",
                precheck=lambda: _missing_vault(run, "source"),
                effect={"kind": "backup", "resource_arn": arn, "vault": run.source_vault_name, "key_arn": key},
            )
        )
    return changes


# ----- steps 02 and 05: which key encrypts each recovery point -------------------------------------


def _points(run: Run, side: str) -> dict[str, dict[str, Any]]:
    """The side's vault's recovery points by ARN: one listing, 1,000 a page, once per step's Run."""
    return dict(run._once(f"fleet-points:{side}", lambda: _listed_points(run, side)))


def backup_points(run: Run) -> dict[str, str]:
    """The recovery point to copy of each selected resource: its backup's in this run; for one this run never
    backed up (a step run alone), its newest completed one in the source vault (one listing for all)."""
    backups = rows(run, CREATE_BACKUP)
    found = {arn: str(row["recovery_point_arn"]) for arn, row in backups.items() if row.get("recovery_point_arn")}
    unknown = [arn for arn in selection(run) if not backups.get(arn, {}).get("outcome")]
    if unknown and vaults.find(run.source_profile, run.source_region, run.source_vault_name) is not None:
        points = _points(run, "source")
        found.update({arn: newest for arn in unknown if (newest := _newest_point(points, arn))})
    return found


def _source_points(run: Run, wanted: list[str]) -> dict[str, dict[str, Any]]:
    """The source recovery points named, by ARN: one described (the read the run's records check shares), or
    the vault's listing for more."""
    named = [arn for arn in wanted if arn]
    if len(named) != 1:
        return _points(run, "source")
    backup = run.source("backup")
    try:
        return {named[0]: run.recovery_point(named[0])}
    except backup.exceptions.ResourceNotFoundException:
        return {}


def _listed_points(run: Run, side: str) -> dict[str, dict[str, Any]]:
    profile, region = run.side(side)
    vault = run.source_vault_name if side == "source" else run.target_vault_name
    backup = clients.client(profile, "backup", region)
    pages = backup.get_paginator("list_recovery_points_by_backup_vault").paginate(
        BackupVaultName=vault, PaginationConfig={"PageSize": 1000}
    )
    try:
        return {point["RecoveryPointArn"]: point for page in pages for point in page["RecoveryPoints"]}
    except backup.exceptions.ResourceNotFoundException:
        return {}


def _snapshot_keys(run: Run, side: str, points: list[str]) -> dict[str, str | None]:
    """The key of each recovery point's EBS snapshot, 200 snapshots a call."""
    profile, region = run.side(side)
    ec2 = clients.client(profile, "ec2", region)
    by_snapshot = {arns.snapshot_id(point): point for point in points if arns.snapshot_id(point)}
    found: dict[str, str | None] = {}
    ids = sorted(str(snapshot) for snapshot in by_snapshot)
    for start in range(0, len(ids), SNAPSHOT_BATCH):
        for snapshot in ec2.describe_snapshots(SnapshotIds=ids[start : start + SNAPSHOT_BATCH])["Snapshots"]:
            found[by_snapshot[snapshot["SnapshotId"]]] = snapshot.get("KmsKeyId")
    return found


def _key_id(arn: str | None) -> str:
    return (arn or "").rsplit("/", 1)[-1]


def _alias(aliases: dict[str, tuple[str, ...]], arn: str | None) -> str:
    names = aliases.get(_key_id(arn), ())
    return names[0] if names else ""


@dataclass(frozen=True)
class _Verified:
    """What steps 02 and 05 check of each recovery point, and where they record it."""

    step: str
    made_in: str
    arn_field: str
    what: str
    none_made: str
    expected: str
    missing_fix: str
    wrong_fix: str
    record_as: str


VERIFIED = {
    "source": _Verified(
        VERIFY_SOURCE_KEY, CREATE_BACKUP, "recovery_point_arn", "the recovery point",
        "no recovery point of the selection was made", "the resource's key",
        "back up the resource again", "back up the resource again", "source_key",
    ),
    "target": _Verified(
        VERIFY_TARGET_KEY, COPY_TO_TARGET, "destination_recovery_point_arn", "the copy",
        "no copy of the selection was made", "the destination vault's key",
        "copy again", "copy again into a vault under a customer managed key", "destination_key",
    ),
}  # fmt: skip


def _verify(run: Run, side: str, expected_of: Callable[[str], str | None]) -> list[dict[str, Any]]:
    """Each recovery point the run made on this side (or, for a resource this run made none of, its newest in
    the vault), and its snapshot, encrypted with the key expected of its resource: one vault listing, snapshots
    200 a call, the rows in one write. Each row keeps what encrypts its point (`encryption`), which a run of
    one resource shows and records under the names it always had."""
    checked = VERIFIED[side]
    made_rows = record_rows(run, checked.made_in)
    made = {a: r[checked.arn_field] for a, r in made_rows.items() if r.get("outcome") == "COMPLETED"}
    points = _points(run, side)
    for arn in selection(run):
        newest = "" if made_rows.get(arn, {}).get("outcome") else _newest_point(points, arn)
        if newest:
            made[arn] = newest
    if not made:
        if run.dry_run:
            return []
        if len(selection(run)) == 1:
            raise no_recovery_point(run, side)
        raise StepFailed(
            run.step, f"{checked.what} of no selected resource was made", f"run step {checked.made_in} first"
        )
    profile, region = run.side(side)
    vault = run.source_vault_name if side == "source" else run.target_vault_name
    snapshots = _snapshot_keys(run, side, [point for point in made.values() if point in points])
    aliases = keys.aliases_by_key(profile, region)
    found = vaults.find(profile, region, vault)
    vault_key = keys.describe(profile, region, found["EncryptionKeyArn"]) if found else None
    news: dict[str, dict[str, Any]] = {}
    for arn, point_arn in made.items():
        expected, point_key, snapshot_key = (
            expected_of(arn),
            points.get(point_arn, {}).get("EncryptionKeyArn"),
            snapshots.get(point_arn),
        )
        if point_arn not in points:
            news[arn] = failure(f"{checked.what} {point_arn} is not in {vault}", checked.missing_fix, arn)
        elif _key_id(point_key) != _key_id(expected) or (snapshot_key and _key_id(snapshot_key) != _key_id(expected)):
            why = f"{checked.what} is encrypted with {point_key}, not {checked.expected} {expected}"
            news[arn] = failure(why, checked.wrong_fix, arn)
        else:
            names = aliases.get(_key_id(point_key), ())
            news[arn] = {
                "outcome": "VERIFIED", f"{checked.record_as}_arn": point_key,
                f"{checked.record_as}_alias": _alias(aliases, point_key), "reason": "", "fix": "",
                "encryption": {
                    "recovery_point_arn": point_arn, "resource_arn": points[point_arn].get("ResourceArn", arn),
                    "status": points[point_arn].get("Status"), "recovery_point_key_arn": point_key,
                    "recovery_point_key_alias": names[0] if names else "",
                    "recovery_point_key_manager": keys.manager_by_aliases(names) if point_key else "",
                    "snapshot_key_arn": snapshot_key, "vault_key_arn": vault_key.arn if vault_key else None,
                    "vault_key_alias": vault_key.alias if vault_key else "",
                    "vault_key_manager": vault_key.manager if vault_key else "", "made_by": "",
                },
            }  # fmt: skip
            news[arn].update(_job_key(made_rows.get(arn, {}), point_key))
    update_rows(run, checked.step, news)
    _stop_when_none_ready(run, checked.step, selection(run))
    return [{"resource": arn, **row} for arn, row in rows(run, checked.step).items()]


def _job_key(made: dict[str, Any], point_key: str | None) -> dict[str, Any]:
    """The key the copy job named (ListCopyJobs' DestinationEncryptionKeyArn, kept by its row), beside the copy's
    own; a job that named another key is reported in the row (the copy's own key is what counts)."""
    job_key = made.get("destination_encryption_key_arn")
    if not job_key:
        return {}
    differs = (
        f"the copy job reports DestinationEncryptionKeyArn {job_key}, the copy is encrypted with {point_key}"
        if _key_id(job_key) != _key_id(point_key)
        else ""
    )
    if differs:
        log.warning("%s: %s", made.get("job_id"), differs)
    return {"copy_job_key_arn": job_key, "copy_job_key_differs": differs}


def verify_source_keys(run: Run) -> list[dict[str, Any]]:
    """Step 02 for each recovery point the run made: encrypted with its resource's key (for a type whose backups
    take the vault's key, that one), not the vault's."""
    selection(run)  # every volume's key from one listing
    return _verify(run, "source", lambda arn: backup_key_arn(run, arn))


def verify_target_keys(run: Run) -> list[dict[str, Any]]:
    """Step 05 for each copy: it and its snapshot are encrypted with the destination vault's key."""
    vault = vaults.find(run.target_profile, run.target_region, run.target_vault_name)
    if vault is None:
        if run.dry_run:
            return []
        raise StepFailed(run.step, f"vault {run.target_vault_name} does not exist", "run step 00_prerequisites first")
    return _verify(run, "target", lambda _arn: vault["EncryptionKeyArn"])


# ----- step 03 -------------------------------------------------------------------------------------


def share_source_keys(run: Run) -> list[Change]:
    """Share each distinct key that encrypts a selected resource's backup once; a key that cannot be shared
    fails the rows it encrypts, and the step when it encrypts every one. For the resources copied in two hops,
    the key shared is the hop vault's: the second hop copies across accounts what it encrypts. A run of one
    resource is a selection of one: the same rows, told in its own words (_share_note)."""
    chosen = selection(run)
    by_key: dict[tuple[str, str], list[str]] = {}
    planned: dict[str, str] = {}  # resource: the step whose planned backup its key will encrypt
    for arn in chosen:
        if run.copies_in_two_hops(arn):
            by_key.setdefault(("hop", _hop_key(run)), []).append(arn)
            continue
        key, made_by = _backup_key(run, arn)
        if key:
            by_key.setdefault(("source", key), []).append(arn)
            planned[arn] = made_by
        elif not run.dry_run:
            vault = run.source_vault_name
            fail(run, SHARE_SOURCE_KEY, arn, f"no completed recovery point of {arn} in vault {vault}",
                 f"run step {CREATE_BACKUP} first")  # fmt: skip
    principal = keys.copy_principal(run.account("target"), run.target_region, run.organization("target"))
    changes = []
    for (side, key_arn), resources in by_key.items():
        profile, region = run.side(side)
        info = keys.describe(profile, region, key_arn)
        why, fix = "", ""
        if info.manager != "CUSTOMER":
            why = (
                f"[source-key-customer-managed] the backup is encrypted with the AWS managed key "
                f"{info.alias or info.arn}, whose policy cannot be changed"
            )
            fix = checks.CHECKS["source-key-customer-managed"](checks.Facts(run, resource=resources[0])).fix or (
                "the backup takes its vault's key: set source_vault_key to a customer managed key, with a new "
                "source_vault_name (a vault's key cannot change), and back up again"
            )
            if run.force_copy:
                log.warning("force_copy: %s is an AWS managed key, not shared", info.alias or info.arn)
                changes.append(
                    Change(run.step, profile, region, "kms:PutKeyPolicy", info.arn, f"force_copy: not shared: {why}",
                           lambda: None, needed=False)
                )  # fmt: skip
                why, fix = "", ""
        else:
            try:
                change = keys.share_change(
                    run.step,
                    profile,
                    region,
                    info.arn,
                    principal,
                    force=run.force_copy,
                    owner=run.state.run_id(),
                )
            except grants.DenyBlocks as blocked:
                labels = ", ".join(grants.label(s) for s in blocked.statements)
                why = (
                    f"[source-key-shared] statement {labels} of the policy of {info.alias or info.arn} "
                    f"denies account {principal.account_id}"
                )
                fix = (
                    f"remove statement {labels} (runbook fix source-key-shared plans its removal), then run again"
                    if blocked.removable
                    else f"statement {labels} also applies to others: the key's administrators must change it"
                )
            else:
                change.notes.extend(_share_note(run, side, info, resources, planned, len(chosen)))
                changes.append(change)
        for arn in resources:
            if why:
                fail(run, SHARE_SOURCE_KEY, arn, why, fix)
            else:
                update(run, SHARE_SOURCE_KEY, arn, outcome="READY", key_arn=info.arn, key_alias=info.alias,
                       reason="", fix="")  # fmt: skip
    _stop_when_none_ready(run, SHARE_SOURCE_KEY, chosen)
    return changes


def _stop_when_none_ready(run: Run, step: str, chosen: list[str]) -> None:
    """Every selected resource failed in this step: the step fails, with the first one's reason and fix (a run
    of one resource stops where its resource did)."""
    table = rows(run, step)
    failed = [table[arn] for arn in chosen if table.get(arn, {}).get("outcome") == "FAILED"]
    if chosen and len(failed) == len(chosen):
        raise StepFailed(run.step, str(failed[0].get("reason")), str(failed[0].get("fix")))


def _backup_key(run: Run, arn: str) -> tuple[str | None, str]:
    """The key that encrypts the resource's backup, and '' (or, for a backup not made yet, the step that makes
    it): as step 02 verified it, else its recovery point's (this run's, or the newest in the source vault, from
    one listing), else, in a dry run, the key its backup will take."""
    verified = record_rows(run, VERIFY_SOURCE_KEY).get(arn, {}).get("source_key_arn")
    if verified:
        return str(verified), ""
    points = _points(run, "source")
    point = record_rows(run, CREATE_BACKUP).get(arn, {}).get("recovery_point_arn") or _newest_point(points, arn)
    if point in points:
        return points[point].get("EncryptionKeyArn"), ""
    if run.dry_run:
        return backup_key_arn(run, arn), CREATE_BACKUP
    return None, ""


def _newest_point(points: dict[str, dict[str, Any]], arn: str) -> str:
    mine = [p for p in points.values() if p.get("ResourceArn") == arn and p.get("Status") == "COMPLETED"]
    return str(max(mine, key=lambda p: p["CreationDate"])["RecoveryPointArn"]) if mine else ""


def _share_note(
    run: Run, side: str, info: keys.KeyInfo, resources: list[str], planned: dict[str, str], selected: int
) -> list[str]:
    """What a shared key encrypts: for a selection of one, in the words of a run of one resource."""
    name = info.alias or info.arn
    if side == "hop":
        if selected == 1:
            return [
                f"{name} encrypts the hop vault {run.hop_vault}: the second hop copies from there across accounts, "
                "so the destination account must be able to use it"
            ]
        return [
            f"{name} encrypts the hop vault {run.hop_vault}, through which {len(resources)} of the selected "
            "resources are copied in two hops"
        ]
    if selected == 1:
        made_by = planned.get(resources[0])
        told = f"{name} is the key of {resources[0]}: the backup of {made_by} will be encrypted with it"
        return [told] if made_by else []
    return [f"{name} encrypts {len(resources)} of the selected resources"]


def _hop_key(run: Run) -> str:
    """The key of the hop vault: the vault's own, or the one step 00 makes it under (hop_vault_key)."""
    profile, region = run.side("hop")
    vault = vaults.find(profile, region, run.hop_vault)
    return keys.describe(profile, region, vault["EncryptionKeyArn"] if vault else run.hop_vault_key).arn


# ----- step 04 -------------------------------------------------------------------------------------


def copy_findings(run: Run, as_planned: bool = True) -> tuple[list[checks.Finding], dict[str, list[checks.Finding]]]:
    """The checks before a copy: the run's once, and per resource those that depend on it (its key, its
    type, its recovery point, from one vault listing)."""
    backups = rows(run, CREATE_BACKUP)
    resources = selection(run)
    made = backup_points(run)
    points = _source_points(run, list(made.values()))
    per: dict[str, list[checks.Finding]] = {}
    for arn in resources:
        point = points.get(made.get(arn, ""))
        if point is None and run.dry_run and backups.get(arn, {}).get("outcome") not in ("FAILED", "RUNNING"):
            point = {
                "RecoveryPointArn": None,
                "Status": "PLANNED",
                "EncryptionKeyArn": resource_key(run, arn),
                "step": CREATE_BACKUP,
            }
        facts = checks.Facts(run, as_planned, resource=arn, recovery_point=point)
        per[arn] = [checks.CHECKS[c](facts) for c in checks.BEFORE_COPY if c in PER_RESOURCE]
    first = checks.Facts(run, as_planned, resource=resources[0], recovery_point=None)
    common = [checks.CHECKS[c](first) for c in checks.BEFORE_COPY if c not in PER_RESOURCE]
    return common, per


def checks_rows(
    run: Run, found: tuple[list[checks.Finding], dict[str, list[checks.Finding]]] | None = None
) -> list[dict[str, Any]]:
    """The checks before a copy for the fleet: the run's, then per check how many resources pass and fail
    (with the first one's finding and fix)."""
    common, per = found or copy_findings(run)
    table = [
        {"check": f.check_id, "status": f.status, "resources": "all", "finding": f.finding, "fix": f.fix}
        for f in common
    ]
    for check_id in [c for c in checks.BEFORE_COPY if c in PER_RESOURCE]:
        groups: dict[tuple[str, str], list[checks.Finding]] = {}  # by status and fix: one row per kind of finding
        for findings in per.values():
            for finding in findings:
                if finding.check_id == check_id:
                    groups.setdefault((finding.status, finding.fix), []).append(finding)
        order = (checks.FAIL, checks.UNKNOWN, checks.PASS, checks.SKIPPED)
        for (status, _), chosen in sorted(groups.items(), key=lambda item: order.index(item[0][0])):
            table.append(
                {
                    "check": check_id,
                    "status": status,
                    "resources": str(len(chosen)),
                    "finding": chosen[0].finding + (" (the first of them)" if len(chosen) > 1 else ""),
                    "fix": chosen[0].fix,
                }
            )
    return table


def _faults(run: Run, findings: list[checks.Finding]) -> list[checks.Finding]:
    """The blocking findings that stop a copy: in a dry run, one a step of this runbook makes good does not (the
    plan says what it waits for)."""
    return [f for f in checks.blocking(findings, run.strict_checks) if not (run.dry_run and f.needs_step)]


def _undecided(findings: list[checks.Finding]) -> list[dict[str, str]]:
    """The checks that could not decide as a copy starts: a copy that then fails keeps them in its failure's
    record, and the next one starts only once they rest on something else (_failed_alike)."""
    return [{"check": f.check_id, "fingerprint": f.fingerprint()} for f in findings if f.status == checks.UNKNOWN]


def _failed_alike(row: dict[str, Any], findings: list[checks.Finding]) -> tuple[str, str] | None:
    """Why not to start another copy for a resource: its last one started while checks could not decide
    (unknown), it failed as one of them feared (its diagnosis names that check), and they still cannot decide
    on exactly what they read then (the same policies, the same statements). Another copy would fail the same
    way; a rerun copies again once something changed. A failure of another cause is tried again as any is."""
    failures = row.get("failed_jobs", [])
    last = failures[-1] if failures else {}
    then = last.get("undecided", [])
    if not then or last.get("check") not in {u["check"] for u in then}:
        return None
    undecided = [f for f in findings if f.status == checks.UNKNOWN]
    if sorted(f.fingerprint() for f in undecided) != sorted(u["fingerprint"] for u in then):
        return None
    first = next(f for f in undecided if f.check_id == last["check"])
    return (
        f"[{first.check_id}] {last.get('kind', 'copy')} job {last['job_id']} ended {last['state']} "
        f"({quoted(last.get('status_message') or 'no status message')}) after this check could not decide "
        f"(unknown: {first.finding}), and nothing it rests on has changed since: another copy would fail the same way",
        f"change what the statement needs ({first.fix}); a rerun copies once it changed. force_copy: true tries again "
        "anyway; strict_checks: true refuses such a copy before it starts",
    )


def _stop_when_all_refused(run: Run, refused_now: list[tuple[str, str]], chosen: list[str]) -> None:
    """Every selected resource was refused its copy as the step planned it: the step fails with the first reason
    (a run of one resource stops where its resource did)."""
    if chosen and len(refused_now) == len(chosen):
        raise StepFailed(run.step, *refused_now[0])


def start_copies(run: Run, sleep: Callable[[float], None] = time.sleep) -> list[Change]:
    """A copy per resource whose checks pass and that has no copy from this run (for a resource copied in two
    hops, its first hop: across Regions into the hop vault); a resource that would fail fails in its row with
    the check's finding and fix, and the others go on; when every one would, the step fails. A run of one
    resource is told in its own words: its change is on the destination vault, as its run folder always said."""
    common, per = copy_findings(run)
    faults = _faults(run, common)
    if faults and not run.force_copy:
        raise StepFailed(run.step, f"[{faults[0].check_id}] {faults[0].finding}", faults[0].fix)
    for finding in faults:
        log.warning(f"force_copy: going on although [{finding.check_id}] {finding.finding}")
    one = only(run)
    backups, copies, made = record_rows(run, CREATE_BACKUP), rows(run, COPY_TO_TARGET), backup_points(run)
    slots = Slots(run, "copy", run.poll_seconds, sleep)
    backup = run.source("backup")
    role_arn = run.role_arn
    blockers: dict[str, str] = {}
    refused_now: list[tuple[str, str]] = []
    changes = []
    chosen = remember_selection(run)
    for arn in chosen:
        row = copies.get(arn, {})
        kind = "hop" if run.copies_in_two_hops(arn) else "copy"
        destination = run.hop_vault_arn if kind == "hop" else run.target_vault_arn
        target = destination if one else arn
        if row.get("outcome") in ("COMPLETED", "RUNNING", HOPPED) or row.get("hop_recovery_point_arn"):
            summary = (
                f"copy job {row['job_id']} was started earlier: waiting for it, not starting another"
                if one
                else f"copy job {row['job_id']} ({row['outcome']}) was started earlier: not starting another"
            )
            changes.append(
                Change(run.step, run.source_profile, run.source_region, "backup:StartCopyJob", target, summary,
                       lambda: None, needed=False)
            )  # fmt: skip
            continue
        findings = per[arn] + common
        failing = _faults(run, per[arn])
        if failing and not run.force_copy:
            why, fix = f"[{failing[0].check_id}] {failing[0].finding}", failing[0].fix
            fail(run, COPY_TO_TARGET, arn, why, fix)
            refused_now.append((why, fix))
            continue
        alike = None if run.force_copy else _failed_alike(row, findings)
        if alike and not run.dry_run:
            fail(run, COPY_TO_TARGET, arn, *alike)
            refused_now.append(alike)
            continue
        point = made.get(arn)
        if not point and not run.dry_run:
            why = f"no recovery point to copy: its backup {backups.get(arn, {}).get('outcome', 'was not started')}"
            fix = f"run step {CREATE_BACKUP} again for it"
            fail(run, COPY_TO_TARGET, arn, why, fix)
            refused_now.append((why, fix))
            continue
        attempt = row.get("started", 0)
        undecided = _undecided(findings)

        def start(
            arn: str = arn, point: str | None = point, attempt: int = attempt, kind: str = kind,
            undecided: list[dict[str, str]] = undecided,
        ) -> str | NotMade:  # fmt: skip
            chosen_point = point or rows(run, CREATE_BACKUP).get(arn, {}).get("recovery_point_arn")
            slots.take()
            try:
                made = backup.start_copy_job(
                    **run.copy_request(chosen_point, attempt, role_arn, "first" if kind == "hop" else "copy")
                )
            except refusals(backup) as error:
                return refused(run, COPY_TO_TARGET, arn, "StartCopyJob", error)
            started_at(run, COPY_TO_TARGET, made["CreationDate"])
            slots.started(made["CopyJobId"], kind)
            fields = {"job_id": made["CopyJobId"], "outcome": "RUNNING", "started": attempt + 1, "kind": kind}
            if kind == "hop":
                fields["hop_job_id"] = made["CopyJobId"]
            update(run, COPY_TO_TARGET, arn, **fields, source_recovery_point_arn=chosen_point, reason="", fix="",
                   undecided=undecided)  # fmt: skip
            return str(made["CopyJobId"])

        blocked_by = "; ".join(  # a dry run's copy waits for what an earlier step only planned
            f"step {f.needs_step} makes good [{f.check_id}] {f.finding}"
            for f in checks.blocking(findings, run.strict_checks)
            if f.needs_step and run.dry_run
        )
        if alike:
            blocked_by = "; ".join(part for part in (blocked_by, alike[0]) if part)
        if not point and not blocked_by:
            blocked_by = f"step {CREATE_BACKUP} makes the recovery point (planned, not made yet)"
        planned = run.state.planned_effect("backup", resource_arn=arn)
        source = point or (
            f"(the recovery point of the backup planned in {CREATE_BACKUP})"
            if planned
            else f"(no recovery point yet: step {CREATE_BACKUP} makes it)"
        )
        changes.append(
            Change(
                run.step,
                run.source_profile,
                run.source_region,
                "backup:StartCopyJob",
                target,
                f"{FIRST_HOP if kind == 'hop' else ''}copy {source}{'' if one else f' of {arn}'} to {destination}",
                start,
                blocked_by=blocked_by,
                precheck=lambda arn=arn: _copy_blocker(run, arn, blockers),  # type: ignore[misc]
                effect={
                    "kind": kind,
                    "resource_arn": arn,
                    "recovery_point_arn": point,
                    "destination_vault_arn": destination,
                },
            )
        )
    _stop_when_all_refused(run, refused_now, chosen)
    return changes


def _copy_blocker(run: Run, arn: str, found: dict[str, str]) -> str:
    """What stops a resource's copy now, read from AWS as it is (not as planned): '' when nothing does; the
    checks are read once for every change of the plan."""
    if not found:
        common, per = copy_findings(run, as_planned=False)
        points = backup_points(run)
        for each in selection(run):
            if not points.get(each):
                found[each] = f"no recovery point yet: step {CREATE_BACKUP} makes it"
            elif run.force_copy:
                found[each] = ""
            else:
                failed = checks.blocking(per[each] + common, run.strict_checks)
                found[each] = "; ".join(f"[{f.check_id}] {f.finding}" for f in failed)
    return found.get(arn, "")


FIRST_HOP = "first hop: copy across Regions, in the source account: "
SECOND_HOP = "second hop: copy across accounts, in the target Region: "


def second_hops(run: Run, sleep: Callable[[float], None] = time.sleep) -> list[Change]:
    """The second hop of each resource copied in two hops whose first hop completed: across accounts, from the
    hop vault into the destination vault, started by the source account in the target Region. In a dry run,
    each first hop planned plans its second, waiting for it."""
    copies = rows(run, COPY_TO_TARGET)
    profile, region = run.side("hop")
    backup = clients.client(profile, "backup", region)
    slots = Slots(run, "second", run.poll_seconds, sleep)
    role_arn = run.role_arn
    one = only(run)
    changes = []
    refused_now: list[tuple[str, str]] = []
    chosen = remember_selection(run)
    for arn in chosen:
        row = copies.get(arn, {})
        if not run.copies_in_two_hops(arn) or (row.get("outcome") == "FAILED" and row.get("kind") != "second"):
            continue
        target = run.target_vault_arn if one else arn
        if row.get("kind") == "second" and row.get("outcome") in ("COMPLETED", "RUNNING"):
            summary = (
                f"copy job {row['job_id']} was started earlier: waiting for it, not starting another"
                if one
                else f"copy job {row['job_id']} ({row['outcome']}) was started earlier: not starting another"
            )
            changes.append(
                Change(run.step, profile, region, "backup:StartCopyJob", target, summary, lambda: None, needed=False)
            )
            continue
        point = row.get("hop_recovery_point_arn")
        if not point and not run.dry_run:
            if one:
                refused_now.append(("the first hop has not completed", "start the first hop and wait for it"))
            continue  # its first hop has not completed: its row says how far it got
        attempt = row.get("second_started", 0)
        undecided = row.get("undecided", [])

        def start(
            arn: str = arn, point: str | None = point, attempt: int = attempt,
            undecided: list[dict[str, str]] = undecided,
        ) -> str | NotMade:  # fmt: skip
            chosen_point = point or rows(run, COPY_TO_TARGET).get(arn, {}).get("hop_recovery_point_arn")
            slots.take()
            try:
                made = backup.start_copy_job(**run.copy_request(chosen_point, attempt, role_arn, "second"))
            except refusals(backup) as error:
                return refused(run, COPY_TO_TARGET, arn, "StartCopyJob", error)
            started_at(run, COPY_TO_TARGET, made["CreationDate"])
            slots.started(made["CopyJobId"])
            fields = {"job_id": made["CopyJobId"], "outcome": "RUNNING", "second_started": attempt + 1}
            update(run, COPY_TO_TARGET, arn, **fields, kind="second", reason="", fix="", undecided=undecided)
            return str(made["CopyJobId"])

        source = point or f"(the first hop's copy in {run.hop_vault}, not made yet)"
        changes.append(
            Change(
                run.step,
                profile,
                region,
                "backup:StartCopyJob",
                target,
                f"{SECOND_HOP}copy {source}{'' if one else f' of {arn}'} to {run.target_vault_arn}",
                start,
                blocked_by="" if point else "the first hop makes the recovery point (planned, not made yet)",
                effect={
                    "kind": "copy",
                    "resource_arn": arn,
                    "recovery_point_arn": point,
                    "destination_vault_arn": run.target_vault_arn,
                },
            )
        )
    _stop_when_all_refused(run, refused_now, chosen)
    return changes


def results_of(run: Run) -> list[dict[str, Any]]:
    return results(run.state.load(), selection(run))
