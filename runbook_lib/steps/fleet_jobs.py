"""Starting and following the selection's jobs: at most max_concurrent_jobs at once (Slots), one per resource,
and every job of a kind followed with one listing a round (ceil(N/1000) calls), each round's news in one state
write. A copy job in CREATED is still going (AWS's retry phase after a system error): only an end AWS
reports ends a row. A resource copied in two hops has two jobs in its step 04 row, one after the other: its
first hop ("hop", across Regions into the hop vault), then its second ("second", across accounts from there)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from botocore.exceptions import ClientError

from ..aws import clients, clusters, jobs
from ..aws.context import Run
from ..core import arns
from ..core.changes import NotMade
from ..core.errors import OutOfTime, StepFailed, StillRunning
from ..core.steps import COPY_TO_TARGET, CREATE_BACKUP, PREREQUISITES
from ..troubleshooting import checks, registry
from .fleet_rows import HOPPED, fail, failure, rows, selected, update_rows
from .following import COPY_JOB_DESTINATION, Outcome, resume_line

log = logging.getLogger(__name__)

SINCE = "fleet_since"
LISTING_MARGIN = timedelta(minutes=10)  # jobs are listed from a little before the first one was made
UNSEEN_ROUNDS = 3  # rounds in a row a job may be missing from the listings before it is described
Progress = Callable[[dict[str, Any]], None]

KINDS = {  # a job's kind: the step whose row holds it, and where its listing looks (the side, and the vault)
    "backup": (CREATE_BACKUP, "source"),
    "copy": (COPY_TO_TARGET, "source"),
    "hop": (COPY_TO_TARGET, "source"),
    "second": (COPY_TO_TARGET, "hop"),
}
# The kinds of job one wait follows: step 04's first wait follows the copies and the first hops together.
FOLLOWS = {"backup": ("backup",), "copy": ("copy", "hop"), "second": ("second",)}
LABELS = {"backup": "backup", "copy": "copy", "hop": "first hop copy", "second": "second hop copy"}
HOPPED_AS = {HOPPED: "COMPLETED"}  # in the progress of step 04's first wait


def kind_of(step: str, row: dict[str, Any]) -> str:
    """The kind of the job a row follows (a row of before the two hops names none: its step's)."""
    return str(row.get("kind") or ("backup" if step == CREATE_BACKUP else "copy"))


def rows_of(run: Run, kind: str) -> dict[str, dict[str, Any]]:
    """The rows of the jobs one wait follows."""
    step = KINDS[kind][0]
    table = {}
    for arn, row in rows(run, step).items():
        if kind_of(step, row) in FOLLOWS[kind]:
            table[arn] = row
        elif kind == "copy" and kind_of(step, row) == "second":  # its first hop is done: told as such
            table[arn] = {**row, "kind": "hop", "outcome": HOPPED, "job_id": row.get("hop_job_id")}
    return table


def _running(run: Run, kind: str) -> dict[str, dict[str, Any]]:
    return {arn: row for arn, row in rows_of(run, kind).items() if row.get("outcome") == "RUNNING"}


def refusals(backup: Any) -> tuple[type[Exception], ...]:
    """What AWS Backup refuses for one resource (its type, its state, a recovery point gone): the
    resource's row fails, the others go on. Anything else (access, the network) stops the step."""
    return (
        backup.exceptions.InvalidParameterValueException,
        backup.exceptions.InvalidRequestException,
        backup.exceptions.ResourceNotFoundException,
    )


def refused(run: Run, step: str, arn: str, operation: str, error: Any) -> NotMade:
    message = error.response["Error"]["Message"]
    known = registry.match(message, "copy" if "Copy" in operation else "backup")
    if known is not None and known.id == "rds-single-hop":
        checks.record_refusal(run, clusters.type_of(run.source_profile, run.source_region, arn), message)
    why = f"[{known.id if known else 'unknown'}] {operation} refused: {message}"
    fix = checks.CHECKS[known.id](checks.Facts(run, resource=arn)).fix if known else "read the message"
    fail(run, step, arn, why, fix)
    return NotMade(why)


def started_at(run: Run, step: str, created: datetime) -> None:
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
    profile, region = run.side(KINDS[kind][1])
    backup = clients.client(profile, "backup", region)
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
        self.running = {row["job_id"]: kind_of(step, row) for row in _running(run, kind).values()}
        self.unseen: dict[str, int] = {}

    def take(self) -> None:
        """Return once fewer than max_concurrent_jobs run; StillRunning after max_wait_minutes (the
        resources not started yet are started by the next run)."""
        deadline = time.monotonic() + self.run.max_wait_minutes * 60
        while len(self.running) >= self.run.max_concurrent_jobs:
            try:
                listed = _round(self.run, set(self.running.values()), deadline)
            except OutOfTime as ended:
                raise self._no_slot(_refused(ended)) from None
            for job_id, kind in list(self.running.items()):
                job = listed.get(job_id)
                self.unseen[job_id] = 0 if job else self.unseen.get(job_id, 0) + 1
                if job is None and self.unseen[job_id] >= UNSEEN_ROUNDS:
                    job = _described(self.run, kind, job_id) or {"State": "UNKNOWN"}
                if job is not None and job["State"] in (*jobs.ENDED, "UNKNOWN"):
                    self.running.pop(job_id)
            if len(self.running) < self.run.max_concurrent_jobs:
                return
            if time.monotonic() >= deadline:
                raise self._no_slot("")
            self.sleep(self.delay)

    def _no_slot(self, refused: str) -> StillRunning:
        return StillRunning(
            self.run.step,
            f"{len(self.running)} {LABELS[self.kind]} jobs still run after {self.run.max_wait_minutes:g} minutes "
            f"(max_wait_minutes) and no slot freed for the next one{refused}",
            resume_line(self.run, "the jobs stay this run's, and the resources not started yet are started then"),
        )

    def started(self, job_id: str, kind: str = "") -> None:
        self.running[job_id] = kind or self.kind


def _listing(run: Run, kind: str, deadline: float) -> dict[str, dict[str, Any]]:
    """One round's listing of one kind of job; OutOfTime once the deadline (max_wait_minutes) passes, whatever
    botocore's retries of a throttled page are doing then."""
    step, side = KINDS[kind]
    vault = run.source_vault_name if kind == "backup" else _vault_arn(run, kind)
    with clients.until(deadline):
        return jobs.list_round(*run.side(side), "backup" if kind == "backup" else "copy", vault, _since(run, step))


def _vault_arn(run: Run, kind: str) -> str:
    """The vault a kind of copy job goes into, named from what step 00 recorded of the accounts (a wait asks
    AWS nothing but its listings: throttled, it must not stop on who the accounts are)."""
    recorded = run.state.load().get(PREREQUISITES, {})
    if kind == "hop":
        account = recorded.get("source_account") or run.account("source")
        return arns.backup_vault(account, run.target_region, run.hop_vault)
    if recorded.get("target_vault_arn", "").endswith(f":backup-vault:{run.target_vault_name}"):
        return str(recorded["target_vault_arn"])
    return run.target_vault_arn


def _round(run: Run, kinds: set[str], deadline: float) -> dict[str, dict[str, Any]]:
    """One round's listings: one per kind of job running (copies and first hops go to different vaults)."""
    listed: dict[str, dict[str, Any]] = {}
    for kind in sorted(kinds):
        listed.update(_listing(run, kind, deadline))
    return listed


def _refused(ended: OutOfTime) -> str:
    return f", while AWS refused the listing ({ended.refused})" if ended.refused else ""


# What a dry run's later steps plan against, when no job of the kind runs.
PLANNED = {
    "backup": "later steps plan against what they will make",
    "copy": "step 05 plans against what they will make",
    "second": "step 05 plans against what they will make",
}
WAITED = {"backup": "backups", "copy": "copies", "second": "second hops"}
# A run of one resource's words for its one job: its kind, what it made, what a dry run plans against.
ONE = {
    "backup": ("backup", "Recovery point", "recovery_point_arn",
               "later steps plan against the recovery point it will make"),
    "copy": ("copy", "Destination recovery point", "destination_recovery_point_arn",
             "step 05 plans against the copy it will make"),
    "hop": ("hop", "First hop's recovery point", "hop_recovery_point_arn",
            "the second hop plans against the copy it will make"),
    "second": ("copy", "Destination recovery point", "destination_recovery_point_arn",
               "step 05 plans against the copy it will make"),
}  # fmt: skip


def wait(
    run: Run, kind: str, progress: Progress | None = None, delay: int = 5, sleep: Callable[[float], None] = time.sleep
) -> Outcome:
    """Follow the run's jobs of this kind to their end; a dry run that started none says so and goes on, and
    one whose wait ends first goes on too. The step fails when every resource it followed failed (a run of
    one resource: when its job did), with the first one's reason and fix."""
    chosen = selected(run)
    if not any(row.get("job_id") for row in rows_of(run, kind).values()):
        if run.dry_run:
            if len(chosen) == 1:
                said, _, _, later = ONE[kind]
                return Outcome(
                    f"The {said} is planned, not started (apply is false): {later}. Press Apply above, or set apply "
                    "to true, to start it."
                )
            return Outcome(f"The {WAITED[kind]} are planned, not started (apply is false): {PLANNED[kind]}.")
        if not rows(run, KINDS[kind][0]):
            said = ONE[kind][0]
            raise StepFailed(
                run.step, f"no {said} job was started", f"press Apply on the {said} plan, or set apply: true"
            )
    try:
        outcome = follow(run, kind, progress, delay, sleep)
    except StillRunning as waiting:
        if not run.dry_run:
            raise
        return Outcome(
            f"{waiting.what.rstrip('.')}. The jobs stay this run's; a dry run goes on, and {PLANNED[kind]}. "
            "Run this step again to keep waiting."
        )
    table = rows_of(run, kind)
    failed = [row for row in table.values() if row.get("outcome") == "FAILED"]
    if table and len(failed) == len(table):
        if len(chosen) == 1 and failed[0].get("unknown_job") and failed[0]["unknown_job"] == failed[0].get("job_id"):
            raise _unknown_job(run, failed[0])
        raise StepFailed(run.step, str(failed[0].get("reason")), str(failed[0].get("fix")))
    return outcome


def follow(run: Run, kind: str, progress: Progress | None, delay: int, sleep: Callable[[float], None]) -> Outcome:
    """Follow the run's jobs of one kind to their end, one listing a round; record each row (one write of the
    state a round). A job the listings miss for UNSEEN_ROUNDS rounds in a row is described. The jobs that
    completed are confirmed in the first round's listing (a run folder whose jobs AWS no longer knows is
    said so). A selection of one is told in the words of its one job."""
    step = KINDS[kind][0]
    one = len(selected(run)) == 1
    deadline = time.monotonic() + run.max_wait_minutes * 60
    unseen: dict[str, int] = {}
    created = 0  # the running jobs the last round saw CREATED
    seen: dict[str, dict[str, Any]] = {}  # each job as the listings last showed it
    confirm = {
        arn: row for arn, row in rows_of(run, kind).items() if row.get("outcome") == "COMPLETED" and row.get("job_id")
    }
    while True:
        running = {**confirm, **_running(run, kind)}
        if not running:
            break
        try:
            listed = _round(run, {kind_of(step, row) for row in running.values()}, deadline)
        except OutOfTime as ended:
            raise _still_running(run, kind, len(running), _refused(ended), created, seen, ended.refused) from None
        except ClientError as error:  # botocore's retries of a throttled listing gave up: a round without news
            code = error.response.get("Error", {}).get("Code", "")
            if code not in jobs.RETRIED_ERRORS:
                raise
            if time.monotonic() >= deadline:
                raise _still_running(run, kind, len(running), f", while AWS refused the listing ({code})", created,
                                     seen, code) from None  # fmt: skip
            sleep(delay)
            continue
        news: dict[str, dict[str, Any]] = {}
        created = sum(1 for row in running.values() if listed.get(row["job_id"], {}).get("State") == "CREATED")
        for arn, row in running.items():
            job_kind = kind_of(step, row)
            job = listed.get(row["job_id"])
            unseen[arn] = 0 if job else unseen.get(arn, 0) + 1
            if job is None and unseen[arn] >= UNSEEN_ROUNDS:
                job = _described(run, job_kind, row["job_id"])
                if job is None:
                    why = f"{LABELS[job_kind]} job {row['job_id']} is not known to AWS Backup"
                    news[arn] = {**failure(why, "run again"), "unknown_job": row["job_id"], "kind_unknown": job_kind}
                    confirm.pop(arn, None)
                    continue
            if job is None:
                continue
            seen[row["job_id"]] = job
            confirm.pop(arn, None)
            if job["State"] == "COMPLETED":
                news[arn] = _completed(job_kind, job)
            elif job["State"] in jobs.TERMINAL_FAILURES:
                news[arn] = _jobfailure(run, job_kind, arn, row, job)
        update_rows(run, step, news)
        table = rows_of(run, kind)
        if progress is not None:
            progress(next(iter(seen.values())) if one and seen else _progress(table, kind))
        still = sum(1 for row in table.values() if row.get("outcome") == "RUNNING") + len(confirm)
        if not still:
            break
        if time.monotonic() >= deadline:
            raise _still_running(run, kind, still, "", created, seen)
        sleep(delay)
    table = rows_of(run, kind)
    if one and len(table) == 1:
        (row,) = table.values()
        said, label, made, _ = ONE[kind_of(step, row)]
        if row.get(made):
            return Outcome(f"{label}: {row[made]}", seen.get(row.get("job_id", "")))
    return Outcome(_summary(table, kind))


def _unknown_job(run: Run, row: dict[str, Any]) -> StepFailed:
    """A run of one resource whose job AWS Backup does not know (the sandbox reset, another account): where
    it looked and what to do."""
    kind = str(row.get("kind_unknown", "backup"))
    side = KINDS[kind][1]
    profile, region = run.side(side)
    return StepFailed(
        run.step,
        f"{ONE[kind][0]} job {row['unknown_job']}, recorded in {run.state.path}, is unknown to account "
        f"{run.account(side)} in {region} (AWS Backup does not know it)",
        "if the sandbox was reset or this is another account, start a new run folder (--out NEW); "
        f"if {'source' if side == 'hop' else side}_profile names the wrong account, set it back",
    )


def _completed(kind: str, job: dict[str, Any]) -> dict[str, Any]:
    """What a completed job leaves in its row: its recovery point, or the copy and the key AWS says the copy
    is under (step 05 proves it from the copy itself), or a first hop's copy, which its second hop copies."""
    if kind == "backup":
        return {"outcome": "COMPLETED", "recovery_point_arn": job.get("RecoveryPointArn")}
    if kind == "hop":
        return {"outcome": HOPPED, "hop_recovery_point_arn": job.get("DestinationRecoveryPointArn")}
    return {
        "outcome": "COMPLETED",
        "destination_recovery_point_arn": job.get("DestinationRecoveryPointArn"),
        "destination_encryption_key_arn": job.get("DestinationEncryptionKeyArn"),
        "copy_job_destination": {name: job.get(name) for name in COPY_JOB_DESTINATION},
    }


def _still_running(
    run: Run,
    kind: str,
    still: int,
    refused: str,
    created: int = 0,
    seen: dict[str, dict[str, Any]] | None = None,
    code: str = "",
) -> StillRunning:
    """The wait's limit came first: the jobs go on; copies still CREATED are in AWS's retry phase, not failed.
    A run of one resource names its job, and how it was last seen."""
    running = _running(run, kind)
    if len(selected(run)) == 1 and len(running) == 1:
        (row,) = running.values()
        said = ONE[kind_of(KINDS[kind][0], row)][0]
        state = jobs.job_state((seen or {}).get(row["job_id"], {}))
        retrying = jobs.retrying(said, state)
        if refused or not state:
            last = f"last seen {state}" if state else "not seen yet"
            how = f"ended at max_wait_minutes ({run.max_wait_minutes:g})" + (
                f" while AWS refused its polls ({code})" if code else ""
            )
            what = f"the wait for {said} job {row['job_id']} ({last}) {how}{retrying}"
        else:
            what = (
                f"{said} job {row['job_id']} is still {state} after {run.max_wait_minutes:g} minutes (max_wait_minutes)"
            )
            what += retrying
        return StillRunning(run.step, what, resume_line(run))
    retrying = f"; {created} of them {jobs.created_note()}" if kind != "backup" and created else ""
    return StillRunning(
        run.step,
        f"{still} {LABELS[kind]} jobs are still running after {run.max_wait_minutes:g} minutes (max_wait_minutes)"
        f"{refused}{retrying}",
        resume_line(run, "the jobs stay this run's"),
    )


def _jobfailure(run: Run, kind: str, arn: str, row: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
    """A job AWS reports ended without completing: its row's failure, with the known failure's fix."""
    message = job.get("StatusMessage") or "no status message"
    known = registry.match(message, "backup" if kind == "backup" else "copy")
    fix = checks.CHECKS[known.id](checks.Facts(run, resource=arn)).fix if known else "read the message"
    failed = {
        "job_id": row["job_id"],
        "state": job["State"],
        "status_message": message,
        "recorded": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "check": known.id if known else "unknown",
        "undecided": row.get("undecided", []),
        "kind": "hop" if kind == "hop" else LABELS[kind].split()[-1],
    }
    label = LABELS[kind]
    return {
        **failure(
            f"[{known.id if known else 'unknown'}] {label} job {row['job_id']} ended {job['State']}: {message}",
            f"{fix}; the next run starts a new {label} job",
        ),
        "failed_jobs": [*row.get("failed_jobs", []), failed],
    }


def _progress(table: dict[str, dict[str, Any]], kind: str) -> dict[str, Any]:
    """The selection's jobs as one job for the progress bar: the share ended, and what is where (a first hop
    that completed counts as completed)."""
    outcomes = [HOPPED_AS.get(str(r.get("outcome")), r.get("outcome")) for r in table.values()]
    counts = {outcome: outcomes.count(outcome) for outcome in ("COMPLETED", "FAILED", "RUNNING")}
    total = len(table) or 1
    state = "RUNNING" if counts["RUNNING"] else ("COMPLETED" if not counts["FAILED"] else "FAILED")
    return {
        "State": state,
        "PercentDone": round(100 * (counts["COMPLETED"] + counts["FAILED"]) / total, 1),
        "StatusMessage": f"{counts['COMPLETED']} of {len(table)} {LABELS[kind]} jobs completed, "
        f"{counts['FAILED']} failed, {counts['RUNNING']} running",
    }


def _summary(table: dict[str, dict[str, Any]], kind: str) -> str:
    done = sum(1 for r in table.values() if r.get("outcome") == "COMPLETED")
    failed = sum(1 for r in table.values() if r.get("outcome") == "FAILED")
    hopped = sum(1 for r in table.values() if r.get("outcome") == HOPPED)
    made = "recovery points" if kind == "backup" else "copies"
    through = f", {hopped} through their first hop (the second copies them across accounts)" if hopped else ""
    of = " copied in two hops" if kind == "second" else ""
    return f"{done} {made}{through} of {len(table)} resources{of}; {failed} failed (see their rows)"
