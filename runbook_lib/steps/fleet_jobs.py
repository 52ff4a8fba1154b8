"""Starting and following a fleet's jobs: at most max_concurrent_jobs at once (Slots), one per resource, and
every job of a kind followed with one listing a round (ceil(N/1000) calls), each round's news in one state
write. A copy job in CREATED is still going (AWS's retry phase after a system error): only an end AWS
reports ends a row."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from ..aws import clients, clusters, jobs
from ..aws.context import Run
from ..core.changes import NotMade
from ..core.errors import OutOfTime, StillRunning
from ..core.steps import COPY_TO_TARGET, CREATE_BACKUP
from ..troubleshooting import checks, registry
from .fleet_rows import fail, failure, rows, update_rows
from .following import Outcome, resume_line

log = logging.getLogger(__name__)

SINCE = "fleet_since"
LISTING_MARGIN = timedelta(minutes=10)  # jobs are listed from a little before the first one was made
UNSEEN_ROUNDS = 3  # rounds in a row a job may be missing from the listings before it is described
Progress = Callable[[dict[str, Any]], None]

KINDS = {
    "backup": (CREATE_BACKUP, "recovery_point_arn", "RecoveryPointArn"),
    "copy": (COPY_TO_TARGET, "destination_recovery_point_arn", "DestinationRecoveryPointArn"),
}


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
            try:
                listed = _listing(self.run, self.kind, deadline)
            except OutOfTime as ended:
                raise self._no_slot(_refused(ended)) from None
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
                raise self._no_slot("")
            self.sleep(self.delay)

    def _no_slot(self, refused: str) -> StillRunning:
        return StillRunning(
            self.run.step,
            f"{len(self.running)} {self.kind} jobs still run after {self.run.max_wait_minutes:g} minutes "
            f"(max_wait_minutes) and no slot freed for the next one{refused}",
            resume_line(self.run, "the jobs stay this run's, and the resources not started yet are started then"),
        )

    def started(self, job_id: str) -> None:
        self.running.add(job_id)


def _listing(run: Run, kind: str, deadline: float) -> dict[str, dict[str, Any]]:
    """One round's listing; OutOfTime once the deadline (max_wait_minutes) passes, whatever botocore's retries
    of a throttled page are doing then."""
    step = KINDS[kind][0]
    vault = run.source_vault_name if kind == "backup" else run.target_vault_arn
    with clients.until(deadline):
        return jobs.list_round(run.source_profile, run.source_region, kind, vault, _since(run, step))


def _refused(ended: OutOfTime) -> str:
    return f", while AWS refused the listing ({ended.refused})" if ended.refused else ""


# What a dry run's later steps plan against, when no job of the kind runs.
PLANNED = {
    "backup": "later steps plan against what they will make",
    "copy": "step 05 plans against what they will make",
}


def wait(
    run: Run, kind: str, progress: Progress | None = None, delay: int = 5, sleep: Callable[[float], None] = time.sleep
) -> Outcome:
    """Follow the run's jobs of this kind to their end; a dry run that started none says so and goes on."""
    running = any(row.get("outcome") == "RUNNING" for row in rows(run, KINDS[kind][0]).values())
    if run.dry_run and not running:
        return Outcome(f"The {kind}s are planned, not started (apply is false): {PLANNED[kind]}.")
    return follow(run, kind, progress, delay, sleep)


def follow(run: Run, kind: str, progress: Progress | None, delay: int, sleep: Callable[[float], None]) -> Outcome:
    """Follow the run's running jobs of one kind to their end, one listing a round; record each row (one
    write of the state a round). A job the listings miss for UNSEEN_ROUNDS rounds in a row is described."""
    step, record_as, field = KINDS[kind]
    deadline = time.monotonic() + run.max_wait_minutes * 60
    unseen: dict[str, int] = {}
    created = 0  # the running jobs the last round saw CREATED
    while True:
        running = {arn: row for arn, row in rows(run, step).items() if row.get("outcome") == "RUNNING"}
        if not running:
            break
        try:
            listed = _listing(run, kind, deadline)
        except OutOfTime as ended:
            raise _still_running(run, kind, len(running), _refused(ended), created) from None
        news: dict[str, dict[str, Any]] = {}
        created = sum(1 for row in running.values() if listed.get(row["job_id"], {}).get("State") == "CREATED")
        for arn, row in running.items():
            job = listed.get(row["job_id"])
            unseen[arn] = 0 if job else unseen.get(arn, 0) + 1
            if job is None and unseen[arn] >= UNSEEN_ROUNDS:
                job = _described(run, kind, row["job_id"])
                if job is None:
                    news[arn] = failure(f"{kind} job {row['job_id']} is not known to AWS Backup", "run again")
                    continue
            if job is None:
                continue
            if job["State"] == "COMPLETED":
                news[arn] = {"outcome": "COMPLETED", record_as: job.get(field)}
                if kind == "copy":  # the key AWS says the copy is under; step 05 proves it from the copy itself
                    news[arn]["destination_encryption_key_arn"] = job.get("DestinationEncryptionKeyArn")
            elif job["State"] in jobs.TERMINAL_FAILURES:
                news[arn] = _jobfailure(run, kind, arn, row, job)
        update_rows(run, step, news)
        table = rows(run, step)
        if progress is not None:
            progress(_progress(table, kind))
        still = sum(1 for row in table.values() if row.get("outcome") == "RUNNING")
        if not still:
            break
        if time.monotonic() >= deadline:
            raise _still_running(run, kind, still, "", created)
        sleep(delay)
    return Outcome(_summary(rows(run, step), kind))


def _still_running(run: Run, kind: str, still: int, refused: str, created: int = 0) -> StillRunning:
    """The wait's limit came first: the jobs go on; copies still CREATED are in AWS's retry phase, not failed."""
    retrying = f"; {created} of them {jobs.created_note()}" if kind == "copy" and created else ""
    return StillRunning(
        run.step,
        f"{still} {kind} jobs are still running after {run.max_wait_minutes:g} minutes (max_wait_minutes)"
        f"{refused}{retrying}",
        resume_line(run, "the jobs stay this run's"),
    )


def _jobfailure(run: Run, kind: str, arn: str, row: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
    """A job AWS reports ended without completing: its row's failure, with the known failure's fix."""
    message = job.get("StatusMessage") or "no status message"
    known = registry.match(message, kind)
    fix = checks.CHECKS[known.id](checks.Facts(run, resource=arn)).fix if known else "read the message"
    failed = {"job_id": row["job_id"], "state": job["State"], "status_message": message}
    return {
        **failure(
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
