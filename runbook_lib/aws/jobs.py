"""Backup, copy and restore jobs: start them once per run, and wait for them with a botocore waiter model.

botocore ships no waiters for AWS Backup, so they are written as data (data/waiters-backup.json)
and loaded with botocore's WaiterModel. Progress is reported from the waiter's own polls through
botocore's after-call event, not from a second loop. Only a job AWS reports ended counts as failed:
any other end of a wait leaves the job running in AWS and the run's job (see errors.py). A copy job in
CREATED is going too: after a system error AWS Backup keeps it CREATED through a retry phase of up to 2
hours (data/backup_quotas.json), and a wait that ends first says so.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from datetime import datetime
from importlib import resources
from typing import Any

from botocore.exceptions import BotoCoreError, WaiterError
from botocore.waiter import WaiterModel, create_waiter_with_client

from ..core import resource_types
from ..core.errors import JobFailed, JobNotFinished, JobUnknown, OutOfTime
from . import clients

WAITER_MODEL = WaiterModel(json.loads(resources.files("runbook_lib").joinpath("data/waiters-backup.json").read_text()))
Progress = Callable[[dict[str, Any]], None]


def idempotency_token(run_dir: str, *parts: str) -> str:
    """The same token for the same run and inputs, so a retried start returns the same job."""
    return hashlib.sha256("|".join((run_dir, *parts)).encode()).hexdigest()[:32]


TERMINAL_FAILURES = ("FAILED", "ABORTED", "EXPIRED", "PARTIAL")
RETRIED_ERRORS = {
    acceptor.expected
    for waiter in WAITER_MODEL.waiter_names
    for acceptor in WAITER_MODEL.get_waiter(waiter).acceptors
    if acceptor.state == "retry" and acceptor.matcher == "error"
}
COPY_KINDS = ("copy", "hop")


def created_note() -> str:
    """Why a copy job still CREATED is going, not failed: AWS Backup's retry phase after a system error."""
    hours = resource_types.quota(resource_types.COPY_RETRY_HOURS)
    return (
        f"CREATED, which AWS Backup keeps a copy job through its retry phase after a system error, up to {hours} "
        f"hours: it is still going, not failed (max_wait_minutes {hours * 60} or more waits that phase out)"
    )


def retrying(kind: str, state: str | None) -> str:
    """What a wait that ends adds of the job's state: the retry phase, for a copy job last seen CREATED."""
    return f"; {created_note()}" if kind in COPY_KINDS and state == "CREATED" else ""


KINDS = {
    "backup": ("BackupJobDone", "DescribeBackupJob", "BackupJobId"),
    "copy": ("CopyJobDone", "DescribeCopyJob", "CopyJobId"),
    "hop": ("CopyJobDone", "DescribeCopyJob", "CopyJobId"),  # the first of a copy in two hops
    "restore": ("RestoreJobDone", "DescribeRestoreJob", "RestoreJobId"),
}


def job_state(job: dict[str, Any]) -> str | None:
    """A job's state: backup and copy jobs call it State, restore jobs Status."""
    return job.get("State") or job.get("Status")


def wait_for_job(
    profile: str,
    region: str,
    kind: str,
    job_id: str,
    delay: int = 5,
    max_wait_minutes: float = 60,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Wait for a backup, copy or restore job to end; the job as AWS last described it when it COMPLETED.

    JobFailed when AWS reports it ended otherwise; JobUnknown when AWS does not know it; JobNotFinished
    when the wait ends for any other reason (the network; credentials; max_wait_minutes, which holds
    whatever botocore's retries of a throttled poll are doing then): the job may still be running and
    stays the run's job.
    """
    waiter_name, operation, id_field = KINDS[kind]
    client = clients.client(profile, "backup", region)
    event = f"after-call.backup.{operation}"
    seen: dict[str, Any] = {}

    def report(parsed: dict[str, Any], **_: Any) -> None:
        if "Error" in parsed:
            return
        seen["job"] = parsed.get("CopyJob", parsed)
        if progress is not None:
            progress(seen["job"])

    attempts = int(max_wait_minutes * 60 // delay) + 1
    client.meta.events.register(event, report)
    try:
        with clients.polling(), clients.until(time.monotonic() + max_wait_minutes * 60):
            create_waiter_with_client(waiter_name, WAITER_MODEL, client).wait(
                **{id_field: job_id}, WaiterConfig={"Delay": delay, "MaxAttempts": attempts}
            )
    except WaiterError as error:
        raise _wait_error(kind, job_id, error.last_response or {}, seen, max_wait_minutes) from None
    except OutOfTime as ended:
        raise _refused_until_the_end(kind, job_id, seen, max_wait_minutes, ended.refused) from None
    except BotoCoreError as error:
        raise _interrupted(kind, job_id, seen, str(error)) from None
    finally:
        client.meta.events.unregister(event, report)
    return seen["job"]


def _wait_error(
    kind: str, job_id: str, response: dict[str, Any], seen: dict[str, Any], max_wait_minutes: float
) -> Exception:
    if "Error" in response:
        code, message = response["Error"].get("Code", "Unknown"), response["Error"].get("Message", "")
        if code == "ResourceNotFoundException":
            return JobUnknown(kind, job_id, message)
        if code in RETRIED_ERRORS:
            return _refused_until_the_end(kind, job_id, seen, max_wait_minutes, code)
        return _interrupted(kind, job_id, seen, f"{code}: {message}")
    job = response.get("CopyJob", response)
    state = job_state(job) or "not known"
    if state in TERMINAL_FAILURES:
        return JobFailed(kind, job_id, state, job.get("StatusMessage"))
    return JobNotFinished(
        kind,
        job_id,
        state,
        f"{kind} job {job_id} is still {state} after {max_wait_minutes:g} minutes (max_wait_minutes)"
        f"{retrying(kind, state)}",
    )


def _interrupted(kind: str, job_id: str, seen: dict[str, Any], error: str) -> JobNotFinished:
    return _ended(kind, job_id, seen, f"was interrupted: {error}")


def _refused_until_the_end(
    kind: str, job_id: str, seen: dict[str, Any], max_wait_minutes: float, code: str
) -> JobNotFinished:
    """The wait ran out of time while AWS refused its polls (throttling): however botocore's retries ended."""
    refused = f" while AWS refused its polls ({code})" if code else ""
    return _ended(kind, job_id, seen, f"ended at max_wait_minutes ({max_wait_minutes:g}){refused}")


def _ended(kind: str, job_id: str, seen: dict[str, Any], how: str) -> JobNotFinished:
    """The wait ended before the job did, `how`; the job may still run in AWS."""
    state = job_state(seen.get("job", {}))
    last = f"last seen {state}" if state else "not seen yet"
    return JobNotFinished(
        kind, job_id, state or "", f"the wait for {kind} job {job_id} ({last}) {how}{retrying(kind, state)}"
    )


# How one kind of job is listed: operation, result key, ID field, and the filter naming its vault.
LISTINGS = {
    "backup": ("list_backup_jobs", "BackupJobs", "BackupJobId", "ByBackupVaultName"),
    "copy": ("list_copy_jobs", "CopyJobs", "CopyJobId", "ByDestinationVaultArn"),
}
LIST_PAGE = 1000  # the most ListBackupJobs and ListCopyJobs return in one page
ENDED = ("COMPLETED", *TERMINAL_FAILURES)


def list_round(profile: str, region: str, kind: str, vault: str, created_after: datetime) -> dict[str, dict[str, Any]]:
    """One look at many jobs: every job of this kind into `vault` (a source vault's name for backups, the
    destination vault's ARN for copies) created since `created_after`, by ID. One listing paged at 1,000:
    following N jobs costs ceil(N/1000) calls a round, not N Describe calls."""
    operation, key, id_field, by_vault = LISTINGS[kind]
    client = clients.client(profile, "backup", region)
    with clients.polling():
        pages = client.get_paginator(operation).paginate(
            **{by_vault: vault, "ByCreatedAfter": created_after}, PaginationConfig={"PageSize": LIST_PAGE}
        )
        return {job[id_field]: job for page in pages for job in page[key]}


def jobs_table(profile: str, region: str, kind: str = "copy", **filters: Any) -> list[dict[str, Any]]:
    """Backup or copy jobs of the account and Region (paginated), newest first."""
    client = clients.client(profile, "backup", region)
    operation, key = ("list_copy_jobs", "CopyJobs") if kind == "copy" else ("list_backup_jobs", "BackupJobs")
    rows = [
        {
            "job": job.get("CopyJobId") or job.get("BackupJobId"),
            "state": job["State"],
            "resource": job.get("ResourceArn"),
            "created": job.get("CreationDate"),
            "status message": job.get("StatusMessage", ""),
            "destination": job.get("DestinationRecoveryPointArn") or job.get("RecoveryPointArn", ""),
        }
        for page in client.get_paginator(operation).paginate(**filters)
        for job in page[key]
    ]
    return sorted(rows, key=lambda r: r["created"], reverse=True)
