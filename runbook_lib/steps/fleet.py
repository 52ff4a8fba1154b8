"""Many resources in one run (`resources` or `resource_tags`): every step on the whole selection, a row each.

Each resource's progress is a row of the run's state (state.json, `fleet` under each step). A resource
that fails says so in its row and the others go on; the run exits non-zero when any row failed, and a
rerun picks up only what is unfinished. At most max_concurrent_jobs jobs run at once, and they are
followed with one listing per round (ceil(N/1000) calls, jobs.list_round), not one call per job. Reads
are made for the whole selection: one volume listing, one vault listing, snapshots 200 at a time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from ..aws import clients, jobs, keys
from ..aws.context import FLEET_ROWS, Run, resource_key, selection
from ..core import arns, grants
from ..core.changes import Change, NotMade
from ..core.errors import StepFailed, StillRunning
from ..core.steps import COPY_TO_TARGET, CREATE_BACKUP, SHARE_SOURCE_KEY, VERIFY_SOURCE_KEY, VERIFY_TARGET_KEY
from ..troubleshooting import checks, registry
from .following import Outcome

log = logging.getLogger(__name__)

ROWS = FLEET_ROWS
SELECTED = "selection"  # the run's last selection, in its state
SINCE = "fleet_since"
SNAPSHOT_BATCH = 200  # snapshot IDs per DescribeSnapshots
LISTING_MARGIN = timedelta(minutes=10)  # jobs are listed from a little before the first one started
UNSEEN_ROUNDS = 3  # rounds a started job may be missing from the listing (AWS lists it eventually)
# The checks that depend on the resource (its key, its type, its recovery point); the others are the run's.
PER_RESOURCE = ("source-key-customer-managed", "source-key-shared", "rds-single-hop", "recovery-point-ready")
Progress = Callable[[dict[str, Any]], None]

KINDS = {
    "backup": (CREATE_BACKUP, "recovery_point_arn", "RecoveryPointArn"),
    "copy": (COPY_TO_TARGET, "destination_recovery_point_arn", "DestinationRecoveryPointArn"),
}


def rows(run: Run, step: str) -> dict[str, dict[str, Any]]:
    """The step's row per resource (resource ARN: what the step did for it)."""
    return dict(run.state.get(step, ROWS, {}))


def _update(run: Run, step: str, arn: str, **values: Any) -> None:
    _update_rows(run, step, {arn: values})


def _update_rows(run: Run, step: str, updates: dict[str, dict[str, Any]]) -> None:
    """Change many rows in one write of the run state (a round's news of every job at once)."""
    if not updates:
        return
    state = run.state.load()
    table = state.setdefault(step, {}).setdefault(ROWS, {})
    for arn, values in updates.items():
        table.setdefault(arn, {}).update(values)
    run.state.save(state)


def remember_selection(run: Run) -> list[str]:
    """The run's selection, kept in its state: the results and the exit code are about these resources."""
    chosen = selection(run)
    if run.state.get(SELECTED, "resources") != chosen:
        run.state.record(SELECTED, resources=chosen)
    return chosen


def _failed(run: Run, step: str, arn: str, why: str, fix: str) -> None:
    _update(run, step, arn, outcome="FAILED", reason=why, fix=fix)
    log.warning("%s: %s. Fix: %s", arn, why, fix)


def _refusals(backup: Any) -> tuple[type[Exception], ...]:
    """What AWS Backup refuses for one resource (its type, its state, a recovery point gone): the
    resource's row fails, the others go on. Anything else (access, the network) stops the step."""
    return (
        backup.exceptions.InvalidParameterValueException,
        backup.exceptions.InvalidRequestException,
        backup.exceptions.ResourceNotFoundException,
    )


def _refused(run: Run, step: str, arn: str, operation: str, error: Any) -> NotMade:
    message = error.response["Error"]["Message"]
    known = registry.match(message)
    why = f"[{known.id if known else 'unknown'}] {operation} refused: {message}"
    fix = checks.CHECKS[known.id](checks.Facts(run, resource=arn)).fix if known else "read the message"
    _failed(run, step, arn, why, fix)
    return NotMade(why)


def _started_at(run: Run, step: str, created: datetime) -> None:
    """Keep when the step's first job was made, by AWS's clock (CreationDate), for the listings."""
    if run.state.get(step, SINCE) is None:
        run.state.record(step, **{SINCE: (created - LISTING_MARGIN).isoformat()})


def _since(run: Run, step: str) -> datetime:
    """When the step's jobs are listed from: a little before its first job was made (kept for reruns)."""
    recorded = run.state.get(step, SINCE)
    if recorded is None:  # no job recorded its time: this machine's clock, with the margin
        return datetime.now(timezone.utc) - LISTING_MARGIN
    return datetime.fromisoformat(recorded)


def _described(run: Run, kind: str, job_id: str) -> dict[str, Any] | None:
    """One job as AWS Backup describes it (a job the listings missed), or None when AWS does not know it."""
    backup = run.source("backup")
    try:
        with clients.polling():
            if kind == "backup":
                return dict(backup.describe_backup_job(BackupJobId=job_id))
            return dict(backup.describe_copy_job(CopyJobId=job_id)["CopyJob"])
    except backup.exceptions.ResourceNotFoundException:
        return None


class Slots:
    """At most max_concurrent_jobs of the run's jobs of one kind running at once: a start waits for a
    slot, looking at the jobs with one listing a round."""

    def __init__(self, run: Run, kind: str, delay: int, sleep: Callable[[float], None] = time.sleep):
        self.run, self.kind, self.delay, self.sleep = run, kind, delay, sleep
        step = KINDS[kind][0]
        self.running = {row["job_id"] for row in rows(run, step).values() if row.get("outcome") == "RUNNING"}
        self.unseen: dict[str, int] = {}

    def take(self) -> None:
        """Return once fewer than max_concurrent_jobs run; StillRunning after max_wait_minutes (the
        resources not started yet are started by the next run)."""
        deadline = time.monotonic() + self.run.max_wait_minutes * 60
        while len(self.running) >= self.run.max_concurrent_jobs:
            listed = _listing(self.run, self.kind)
            for job_id in list(self.running):
                job = listed.get(job_id)
                self.unseen[job_id] = 0 if job else self.unseen.get(job_id, 0) + 1
                if job is None and self.unseen[job_id] >= UNSEEN_ROUNDS:
                    job = _described(self.run, self.kind, job_id) or {"State": "UNKNOWN"}
                if job is not None and job["State"] in (*jobs.ENDED, "UNKNOWN"):
                    self.running.discard(job_id)
            if len(self.running) < self.run.max_concurrent_jobs:
                return
            if time.monotonic() >= deadline:
                raise StillRunning(
                    self.run.step,
                    f"{len(self.running)} {self.kind} jobs still run after {self.run.max_wait_minutes:g} minutes "
                    "(max_wait_minutes) and no slot freed for the next one",
                    f"run the step again with the same run folder ({self.run.state.directory}): the jobs stay "
                    "this run's, and the resources not started yet are started then",
                )
            self.sleep(self.delay)

    def started(self, job_id: str) -> None:
        self.running.add(job_id)


def _listing(run: Run, kind: str) -> dict[str, dict[str, Any]]:
    step = KINDS[kind][0]
    vault = run.source_vault_name if kind == "backup" else run.target_vault_arn
    return jobs.list_round(run.source_profile, run.source_region, kind, vault, _since(run, step))


# ----- step 01 -------------------------------------------------------------------------------------


def start_backups(run: Run, sleep: Callable[[float], None] = time.sleep) -> list[Change]:
    """A backup per resource that has no recovery point and no running backup from this run."""
    done, verified = rows(run, CREATE_BACKUP), rows(run, VERIFY_SOURCE_KEY)
    slots = Slots(run, "backup", run.poll_seconds, sleep)
    backup = run.source("backup")
    changes = []
    for arn in remember_selection(run):
        row = done.get(arn, {})
        attempt = row.get("started", 0)
        arguments = {
            "BackupVaultName": run.source_vault_name,
            "ResourceArn": arn,
            "IamRoleArn": run.role_arn,
            "IdempotencyToken": jobs.idempotency_token(str(run.state.directory), "backup", arn, str(attempt)),
            "Lifecycle": run.lifecycle(),
            "RecoveryPointTags": dict(run.recovery_point_tags),
        }

        def start(arn: str = arn, arguments: dict[str, Any] = arguments, attempt: int = attempt) -> str | NotMade:
            slots.take()
            try:
                made = backup.start_backup_job(**arguments)
            except _refusals(backup) as error:
                return _refused(run, CREATE_BACKUP, arn, "StartBackupJob", error)
            _started_at(run, CREATE_BACKUP, made["CreationDate"])
            slots.started(made["BackupJobId"])
            fields = {"job_id": made["BackupJobId"], "outcome": "RUNNING", "started": attempt + 1}
            _update(run, CREATE_BACKUP, arn, **fields, recovery_point_arn="", reason="", fix="")
            return str(made["BackupJobId"])

        # A recovery point step 02 found under the wrong key is backed up again.
        finished = row.get("outcome") in ("COMPLETED", "RUNNING") and verified.get(arn, {}).get("outcome") != "FAILED"
        summary = (
            f"back up {arn} into {run.source_vault_name}, kept {run.delete_after_days} days"
            if not finished
            else f"backup job {row['job_id']} ({row['outcome']}) was started earlier: not starting another"
        )
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
                effect={"kind": "backup", "resource_arn": arn, "vault": run.source_vault_name, "key_arn": key},
            )
        )
    return changes


def _follow(run: Run, kind: str, progress: Progress | None, delay: int, sleep: Callable[[float], None]) -> Outcome:
    """Follow the run's running jobs of one kind to their end, one listing a round; record each row (one
    write of the state a round). A job the listings miss for UNSEEN_ROUNDS rounds in a row is described."""
    step, record_as, field = KINDS[kind]
    deadline = time.monotonic() + run.max_wait_minutes * 60
    unseen: dict[str, int] = {}
    while True:
        running = {arn: row for arn, row in rows(run, step).items() if row.get("outcome") == "RUNNING"}
        if not running:
            break
        listed = _listing(run, kind)
        news: dict[str, dict[str, Any]] = {}
        for arn, row in running.items():
            job = listed.get(row["job_id"])
            unseen[arn] = 0 if job else unseen.get(arn, 0) + 1
            if job is None and unseen[arn] >= UNSEEN_ROUNDS:
                job = _described(run, kind, row["job_id"])
                if job is None:
                    news[arn] = _failure(f"{kind} job {row['job_id']} is not known to AWS Backup", "run again")
                    continue
            if job is None:
                continue
            if job["State"] == "COMPLETED":
                news[arn] = {"outcome": "COMPLETED", record_as: job.get(field)}
            elif job["State"] in jobs.TERMINAL_FAILURES:
                news[arn] = _job_failure(run, kind, arn, row, job)
        _update_rows(run, step, news)
        table = rows(run, step)
        if progress is not None:
            progress(_progress(table, kind))
        still = sum(1 for row in table.values() if row.get("outcome") == "RUNNING")
        if not still:
            break
        if time.monotonic() >= deadline:
            raise StillRunning(
                run.step,
                f"{still} {kind} jobs are still running after {run.max_wait_minutes:g} minutes (max_wait_minutes)",
                f"run the step again with the same run folder ({run.state.directory}): the jobs stay this run's",
            )
        sleep(delay)
    return Outcome(_summary(rows(run, step), kind))


def _failure(why: str, fix: str) -> dict[str, Any]:
    log.warning("%s. Fix: %s", why, fix)
    return {"outcome": "FAILED", "reason": why, "fix": fix}


def _job_failure(run: Run, kind: str, arn: str, row: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
    """A job AWS reports ended without completing: its row's failure, with the known failure's fix."""
    message = job.get("StatusMessage") or "no status message"
    known = registry.match(message)
    fix = checks.CHECKS[known.id](checks.Facts(run, resource=arn)).fix if known else "read the message"
    failed = {"job_id": row["job_id"], "state": job["State"], "status_message": message}
    return {
        **_failure(
            f"[{known.id if known else 'unknown'}] {kind} job {row['job_id']} ended {job['State']}: {message}",
            f"{fix}; the next run starts a new {kind} job",
        ),
        "failed_jobs": [*row.get("failed_jobs", []), failed],
    }


def _progress(table: dict[str, dict[str, Any]], kind: str) -> dict[str, Any]:
    """The fleet's jobs as one job for the progress bar: the share ended, and what is where."""
    counts = {
        outcome: sum(1 for r in table.values() if r.get("outcome") == outcome)
        for outcome in ("COMPLETED", "FAILED", "RUNNING")
    }
    total = len(table) or 1
    state = "RUNNING" if counts["RUNNING"] else ("COMPLETED" if not counts["FAILED"] else "FAILED")
    return {
        "State": state,
        "PercentDone": round(100 * (counts["COMPLETED"] + counts["FAILED"]) / total, 1),
        "StatusMessage": f"{counts['COMPLETED']} of {len(table)} {kind} jobs completed, "
        f"{counts['FAILED']} failed, {counts['RUNNING']} running",
    }


def _summary(table: dict[str, dict[str, Any]], kind: str) -> str:
    done = sum(1 for r in table.values() if r.get("outcome") == "COMPLETED")
    failed = sum(1 for r in table.values() if r.get("outcome") == "FAILED")
    made = "recovery points" if kind == "backup" else "copies"
    return f"{done} {made} of {len(table)} resources; {failed} failed (see their rows)"


def wait_for_backups(
    run: Run, progress: Progress | None = None, delay: int = 5, sleep: Callable[[float], None] = time.sleep
) -> Outcome:
    if run.dry_run and not any(r.get("outcome") == "RUNNING" for r in rows(run, CREATE_BACKUP).values()):
        return Outcome(
            "The backups are planned, not started (apply is false): later steps plan against what they will make."
        )
    return _follow(run, "backup", progress, delay, sleep)


# ----- steps 02 and 05: which key encrypts each recovery point -------------------------------------


def _points(run: Run, side: str) -> dict[str, dict[str, Any]]:
    """The side's vault's recovery points by ARN: one listing, 1,000 a page, once per step's Run."""
    return dict(run._once(f"fleet-points:{side}", lambda: _listed_points(run, side)))


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


def verify_source_keys(run: Run) -> list[dict[str, Any]]:
    """Step 1c for each recovery point the run made: encrypted with its volume's key, not the vault's."""
    selection(run)  # every volume's key from one listing
    made = {a: r["recovery_point_arn"] for a, r in rows(run, CREATE_BACKUP).items() if r.get("outcome") == "COMPLETED"}
    if not made:
        if run.dry_run:
            return []
        raise StepFailed(run.step, "no recovery point of the selection was made", f"run step {CREATE_BACKUP} first")
    points = _points(run, "source")
    snapshots = _snapshot_keys(run, "source", [point for point in made.values() if point in points])
    aliases = keys.aliases_by_key(run.source_profile, run.source_region)
    for arn, point_arn in made.items():
        volume_key = resource_key(run, arn)
        point_key = points.get(point_arn, {}).get("EncryptionKeyArn")
        snapshot_key = snapshots.get(point_arn)
        if point_arn not in points:
            _failed(
                run,
                VERIFY_SOURCE_KEY,
                arn,
                f"recovery point {point_arn} is not in {run.source_vault_name}",
                "back up the resource again",
            )
        elif _key_id(point_key) != _key_id(volume_key) or (
            snapshot_key and _key_id(snapshot_key) != _key_id(volume_key)
        ):
            _failed(
                run,
                VERIFY_SOURCE_KEY,
                arn,
                f"the recovery point is encrypted with {point_key}, not the volume's key {volume_key}",
                "back up the resource again",
            )
        else:
            _update(
                run,
                VERIFY_SOURCE_KEY,
                arn,
                outcome="VERIFIED",
                source_key_arn=point_key,
                source_key_alias=_alias(aliases, point_key),
                reason="",
                fix="",
            )
    return [{"resource": arn, **row} for arn, row in rows(run, VERIFY_SOURCE_KEY).items()]


def verify_target_keys(run: Run) -> list[dict[str, Any]]:
    """Step 4 for each copy: it and its snapshot are encrypted with the destination vault's key."""
    made = {
        a: r["destination_recovery_point_arn"]
        for a, r in rows(run, COPY_TO_TARGET).items()
        if r.get("outcome") == "COMPLETED"
    }
    if not made:
        if run.dry_run:
            return []
        raise StepFailed(run.step, "no copy of the selection was made", f"run step {COPY_TO_TARGET} first")
    vault_key = run.target("backup").describe_backup_vault(BackupVaultName=run.target_vault_name)["EncryptionKeyArn"]
    points = _points(run, "target")
    snapshots = _snapshot_keys(run, "target", [point for point in made.values() if point in points])
    aliases = keys.aliases_by_key(run.target_profile, run.target_region)
    for arn, point_arn in made.items():
        point_key = points.get(point_arn, {}).get("EncryptionKeyArn")
        snapshot_key = snapshots.get(point_arn)
        if point_arn not in points:
            _failed(
                run, VERIFY_TARGET_KEY, arn, f"the copy {point_arn} is not in {run.target_vault_name}", "copy again"
            )
        elif _key_id(point_key) != _key_id(vault_key) or (snapshot_key and _key_id(snapshot_key) != _key_id(vault_key)):
            _failed(
                run,
                VERIFY_TARGET_KEY,
                arn,
                f"the copy is encrypted with {point_key}, not the destination vault's key {vault_key}",
                "copy again into a vault under a customer managed key",
            )
        else:
            _update(
                run,
                VERIFY_TARGET_KEY,
                arn,
                outcome="VERIFIED",
                destination_key_arn=point_key,
                destination_key_alias=_alias(aliases, point_key),
                reason="",
                fix="",
            )
    return [{"resource": arn, **row} for arn, row in rows(run, VERIFY_TARGET_KEY).items()]


# ----- step 03 -------------------------------------------------------------------------------------


def share_source_keys(run: Run) -> list[Change]:
    """Share each distinct source key once; a key that cannot be shared fails the rows it encrypts."""
    verified = rows(run, VERIFY_SOURCE_KEY)
    by_key: dict[str, list[str]] = {}
    for arn in selection(run):
        key = verified.get(arn, {}).get("source_key_arn") or resource_key(run, arn)
        if key:
            by_key.setdefault(key, []).append(arn)
    principal = keys.copy_principal(run.account("target"), run.target_region, run.organization("target"))
    changes = []
    for key_arn, resources in by_key.items():
        info = keys.describe(run.source_profile, run.source_region, key_arn)
        why, fix = "", ""
        if info.manager != "CUSTOMER" and run.force_copy:
            log.warning("force_copy: %s is an AWS managed key, not shared", info.alias or info.arn)
        elif info.manager != "CUSTOMER":
            why = (
                f"[source-key-customer-managed] the volume is encrypted with the AWS managed key {info.alias}, "
                "whose policy cannot be changed"
            )
            fix = "re-encrypt under a customer managed key (runbook fix source-key-customer-managed)"
        else:
            try:
                change = keys.share_change(
                    run.step, run.source_profile, run.source_region, info.arn, principal, force=run.force_copy
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
                change.notes.append(f"{info.alias or info.arn} encrypts {len(resources)} of the selected resources")
                changes.append(change)
        for arn in resources:
            if why:
                _failed(run, SHARE_SOURCE_KEY, arn, why, fix)
            else:
                _update(
                    run,
                    SHARE_SOURCE_KEY,
                    arn,
                    outcome="READY",
                    key_arn=info.arn,
                    key_alias=info.alias,
                    reason="",
                    fix="",
                )
    return changes


# ----- step 04 -------------------------------------------------------------------------------------


def copy_findings(run: Run, as_planned: bool = True) -> tuple[list[checks.Finding], dict[str, list[checks.Finding]]]:
    """The checks before a copy: the run's once, and per resource those that depend on it (its key, its
    type, its recovery point, from one vault listing)."""
    backups = rows(run, CREATE_BACKUP)
    points = _points(run, "source")
    resources = selection(run)
    per: dict[str, list[checks.Finding]] = {}
    for arn in resources:
        point = points.get(backups.get(arn, {}).get("recovery_point_arn", ""))
        if point is None and run.dry_run and backups.get(arn, {}).get("outcome") != "FAILED":
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


def start_copies(run: Run, sleep: Callable[[float], None] = time.sleep) -> list[Change]:
    """A copy per resource whose checks pass and that has no copy from this run; a resource that would
    fail fails in its row with the check's finding and fix, and the others go on."""
    common, per = copy_findings(run)
    blocking = checks.blocking(common, run.strict_checks)
    if blocking and not run.force_copy and not run.dry_run:
        first = blocking[0]
        raise StepFailed(run.step, f"[{first.check_id}] {first.finding}", first.fix)
    backups, copies = rows(run, CREATE_BACKUP), rows(run, COPY_TO_TARGET)
    slots = Slots(run, "copy", run.poll_seconds, sleep)
    backup = run.source("backup")
    role_arn = run.role_arn
    changes = []
    for arn in remember_selection(run):
        row = copies.get(arn, {})
        if row.get("outcome") in ("COMPLETED", "RUNNING"):
            changes.append(
                Change(
                    run.step,
                    run.source_profile,
                    run.source_region,
                    "backup:StartCopyJob",
                    arn,
                    f"copy job {row['job_id']} ({row['outcome']}) was started earlier: not starting another",
                    lambda: None,
                    needed=False,
                )
            )
            continue
        failing = checks.blocking(per[arn], run.strict_checks)
        if failing and not run.force_copy and not run.dry_run:
            _failed(run, COPY_TO_TARGET, arn, f"[{failing[0].check_id}] {failing[0].finding}", failing[0].fix)
            continue
        point = backups.get(arn, {}).get("recovery_point_arn")
        if not point and not run.dry_run:
            why = f"no recovery point to copy: its backup {backups.get(arn, {}).get('outcome', 'was not started')}"
            _failed(run, COPY_TO_TARGET, arn, why, f"run step {CREATE_BACKUP} again for it")
            continue
        attempt = row.get("started", 0)

        def start(arn: str = arn, point: str | None = point, attempt: int = attempt) -> str | NotMade:
            chosen = point or rows(run, CREATE_BACKUP).get(arn, {}).get("recovery_point_arn")
            slots.take()
            try:
                made = backup.start_copy_job(
                    RecoveryPointArn=chosen,
                    SourceBackupVaultName=run.source_vault_name,
                    DestinationBackupVaultArn=run.target_vault_arn,
                    IamRoleArn=role_arn,
                    IdempotencyToken=jobs.idempotency_token(
                        str(run.state.directory), "copy", str(chosen), str(attempt)
                    ),
                    Lifecycle=run.lifecycle(),
                )
            except _refusals(backup) as error:
                return _refused(run, COPY_TO_TARGET, arn, "StartCopyJob", error)
            _started_at(run, COPY_TO_TARGET, made["CreationDate"])
            slots.started(made["CopyJobId"])
            fields = {"job_id": made["CopyJobId"], "outcome": "RUNNING", "started": attempt + 1}
            _update(run, COPY_TO_TARGET, arn, **fields, source_recovery_point_arn=chosen, reason="", fix="")
            return str(made["CopyJobId"])

        blocked_by = "; ".join(  # a dry run's copy waits for what an earlier step only planned
            f"step {f.needs_step} makes good [{f.check_id}] {f.finding}"
            for f in checks.blocking(per[arn] + common, run.strict_checks)
            if f.needs_step and run.dry_run
        )
        changes.append(
            Change(
                run.step,
                run.source_profile,
                run.source_region,
                "backup:StartCopyJob",
                arn,
                f"copy {point or '(the recovery point step 01 makes)'} of {arn} to {run.target_vault_arn}",
                start,
                blocked_by=blocked_by,
                effect={
                    "kind": "copy",
                    "resource_arn": arn,
                    "recovery_point_arn": point,
                    "destination_vault_arn": run.target_vault_arn,
                },
            )
        )
    return changes


def wait_for_copies(
    run: Run, progress: Progress | None = None, delay: int = 5, sleep: Callable[[float], None] = time.sleep
) -> Outcome:
    if run.dry_run and not any(r.get("outcome") == "RUNNING" for r in rows(run, COPY_TO_TARGET).values()):
        return Outcome(
            "The copies are planned, not started (apply is false): step 05 plans against what they will make."
        )
    return _follow(run, "copy", progress, delay, sleep)


# ----- the results table ---------------------------------------------------------------------------

STEPS_OF_ROWS = (CREATE_BACKUP, VERIFY_SOURCE_KEY, SHARE_SOURCE_KEY, COPY_TO_TARGET, VERIFY_TARGET_KEY)


def results(state: dict[str, Any], resources: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per resource: its recovery point, its copy, the copy's key, and how it ended (the step
    it failed in, why and the fix; else how far it got)."""
    table = {step: state.get(step, {}).get(ROWS, {}) for step in STEPS_OF_ROWS}
    chosen = (
        resources
        or state.get(SELECTED, {}).get("resources")
        or list(dict.fromkeys(arn for step in STEPS_OF_ROWS for arn in table[step]))
    )
    out = []
    for arn in chosen:
        of = {step: table[step].get(arn, {}) for step in STEPS_OF_ROWS}
        failed = next((step for step in STEPS_OF_ROWS if of[step].get("outcome") == "FAILED"), None)
        if failed:
            outcome = f"FAILED in {failed}: {str(of[failed].get('reason')).rstrip('.')}. Fix: {of[failed].get('fix')}"
        elif of[VERIFY_TARGET_KEY].get("outcome") == "VERIFIED":
            outcome = "COMPLETED"
        else:
            reached = next((step for step in reversed(STEPS_OF_ROWS) if of[step].get("outcome")), None)
            outcome = f"{of[reached]['outcome']} in {reached}" if reached else "not started"
        out.append(
            {
                "resource": arn,
                "recovery point": of[CREATE_BACKUP].get("recovery_point_arn", ""),
                "copy": of[COPY_TO_TARGET].get("destination_recovery_point_arn", ""),
                "destination key": of[VERIFY_TARGET_KEY].get("destination_key_alias")
                or of[VERIFY_TARGET_KEY].get("destination_key_arn", ""),
                "outcome": outcome,
            }
        )
    return out


def results_of(run: Run) -> list[dict[str, Any]]:
    return results(run.state.load(), selection(run))


def failures_line(state: dict[str, Any]) -> str:
    """One line on the rows that failed ('' when none did): how many, and the first with its fix."""
    table = results(state)
    failed = [row for row in table if row["outcome"].startswith("FAILED")]
    if not failed:
        return ""
    first = failed[0]
    return f"{len(failed)} of {len(table)} resources failed; first: {first['resource']}: {first['outcome']}"
