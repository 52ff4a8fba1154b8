"""Following a run's restore job to its end, whatever way the wait ends (the backups and copies of steps 01 and 04
are followed with the selection's listings, fleet_jobs.py, which say the same of them).

A job is never abandoned: a wait that ends before the job does (the time budget, throttling, the
network) keeps the job as the run's job and says how to resume; only an end AWS reports counts as a
failure, recorded with its reason so that the next run starts a new job. A copy job in CREATED is going
(AWS Backup's retry phase after a system error lasts up to 2 hours): it is waited for like a running one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..aws import jobs
from ..aws.context import Run
from ..core.errors import JobFailed, JobNotFinished, JobUnknown, StepFailed, StillRunning
from ..core.runstate import RESUME_ENV
from ..core.steps import COPY_TO_TARGET, RESTORE_DRILL
from ..troubleshooting import diagnose


@dataclass
class Outcome:
    """What a step that waits for a job ends with: the job as AWS described it, or why there is none."""

    summary: str
    job: dict[str, Any] | None = None

    def __str__(self) -> str:
        return self.summary


def resume_line(run: Run, what: str = "the job goes on in AWS and stays this run's job") -> str:
    """How to resume: the exact command when `runbook run` runs the step, else its form, and what happens."""
    command = os.environ.get(RESUME_ENV) or f"runbook run PARAMS.yaml --out {run.state.directory}"
    return f"{command} (the same run folder): {what}"


def job_side(run: Run, kind: str) -> str:
    """Where the job runs, as the run's state says: a copy in two hops ends with the copy the source
    account starts in the target Region, from the first hop's recovery point."""
    second_hop = kind == "copy" and run.state.get(COPY_TO_TARGET, "hop_recovery_point_arn")
    return "hop" if second_hop else FOLLOWED[kind].side if kind in FOLLOWED else "source"


def _unknown_job(run: Run, kind: str, job_id: str, message: str) -> StepFailed:
    side = job_side(run, kind)
    profile, region = run.side(side)
    return StepFailed(
        run.step,
        f"{kind} job {job_id}, recorded in {run.state.path}, is unknown to account {run.account(side)} "
        f"in {region} ({message})",
        "if the sandbox was reset or this is another account, start a new run folder (--out NEW); "
        f"if {'source' if side == 'hop' else side}_profile names the wrong account, set it back",
    )


def _follow(run: Run, kind: str, job_id: str, progress: jobs.Progress | None, delay: int) -> dict[str, Any]:
    """Wait for the run's job; turn every way a wait can end into what the person must do next."""
    profile, region = run.side(job_side(run, kind))
    try:
        return jobs.wait_for_job(profile, region, kind, job_id, delay, run.max_wait_minutes, progress)
    except JobNotFinished as waiting:
        raise StillRunning(run.step, str(waiting), resume_line(run)) from None
    except JobUnknown as unknown:
        raise _unknown_job(run, kind, job_id, unknown.message) from None


def _record_failure(run: Run, step: str, kind: str, failure: JobFailed) -> StepFailed:
    """Keep the failed job, its reason and the known failure it is (with the checks that could not decide when
    it started); the next run starts a new job. The error says why it failed."""
    try:
        found = diagnose.explain(run, failure.job_id, kind, failure.state, failure.status_message)
    except (ClientError, BotoCoreError):
        found = diagnose.Diagnosis(
            failure.job_id,
            kind,
            failure.state,
            failure.status_message,
            fix="runbook diagnose explains it once AWS answers again",
        )
    undecided = f"{kind}_started_undecided"
    run.state.append(
        step,
        f"failed_{kind}_jobs",
        {
            "job_id": failure.job_id,
            "state": failure.state,
            "status_message": failure.status_message,
            "recorded": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "check": found.check_id,
            "undecided": run.state.get(step, undecided, []),
        },
    )
    run.state.record(step, **{f"{kind}_job_id": None, undecided: []})
    return StepFailed(
        run.step,
        f"[{found.check_id}] {kind} job {failure.job_id} ended {failure.state}: "
        f"{failure.status_message or 'no status message'}",
        f"{found.fix}; the next run starts a new {kind} job",
    )


@dataclass(frozen=True)
class _Followed:
    """What following one kind of job records, and what a dry run says instead."""

    step: str
    field: str
    record_as: str
    label: str
    later: str
    side: str = "source"  # the account that runs the job


# What DescribeCopyJob says of the copy a job made (the key, the destination vault's type and lock state, the
# message category); step 05 shows it beside its proof, which it reads from the copy itself.
COPY_JOB_DESTINATION = (
    "CopyJobId",
    "DestinationRecoveryPointArn",
    "DestinationEncryptionKeyArn",
    "DestinationVaultType",
    "DestinationVaultLockState",
    "MessageCategory",
)

FOLLOWED = {
    "restore": _Followed(
        RESTORE_DRILL,
        "CreatedResourceArn",
        "restored_resource_arn",
        "Restored resource",
        "the drill plans its checks against the volume it will make",
        "target",
    ),
}


def wait_for(run: Run, kind: str, progress: jobs.Progress | None, delay: int) -> Outcome:
    """Follow the run's job of this kind to its end, and record what it made.

    A dry run waits too (up to max_wait_minutes) for a job that Apply or an earlier run started;
    when the wait ends first, the dry run goes on planning instead of stopping.
    """
    followed = FOLLOWED[kind]
    job_id = run.state.get(followed.step, f"{kind}_job_id")
    if job_id is None:
        if run.dry_run:
            return Outcome(
                f"The {kind} is planned, not started (apply is false): {followed.later}. Press Apply "
                "above, or set apply to true, to start it."
            )
        raise StepFailed(run.step, f"no {kind} job was started", f"press Apply on the {kind} plan, or set apply: true")
    try:
        job = _follow(run, kind, job_id, progress, delay)
    except JobFailed as failure:
        raise _record_failure(run, followed.step, kind, failure) from None
    except StillRunning as waiting:
        if not run.dry_run:
            raise
        return Outcome(
            f"{waiting.what.rstrip('.')}. The job stays this run's {kind}; a dry run goes on, and "
            f"{followed.later}. Run this step again to keep waiting."
        )
    run.state.record(followed.step, **{followed.record_as: job[followed.field]})
    return Outcome(f"{followed.label}: {job[followed.field]}", job)
