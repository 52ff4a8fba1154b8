"""The events AWS Backup puts on EventBridge when a backup or copy job ends.

Each goes on the default event bus of the account and Region that ran the job, with source
`aws.backup`, detail-type `Backup Job State Change` or `Copy Job State Change`, and the detail
fields of AWS Backup's documented examples (developer guide, "Monitoring AWS Backup events using
Amazon EventBridge"), spelled and typed as there: sizes of backup jobs as strings, of copy jobs as
numbers, dates as ISO 8601 to the millisecond.

Simplification: only the events of a job's end (COMPLETED or FAILED) are sent, not those of CREATED
or RUNNING, and AWS's delay (it sends in a best-effort manner every 5 minutes) is left out: the
event is dated when the job ended and sent when the sandbox settles it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from moto.events.models import EventsBackend, events_backends

from .records import BACKUP_SIZE_BYTES, BackupJob, CopyJob, Job

SOURCE = "aws.backup"
BACKUP_JOB_STATE_CHANGE = "Backup Job State Change"
COPY_JOB_STATE_CHANGE = "Copy Job State Change"


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _created_by(job: Job) -> dict[str, str] | None:
    """A plan's job names its plan and rule, as the documented events spell them."""
    if "BackupPlanId" not in job.created_by:
        return None
    return {
        "backupPlanId": job.created_by["BackupPlanId"],
        "backupPlanArn": job.created_by["BackupPlanArn"],
        "backupPlanVersion": job.created_by["BackupPlanVersion"],
        "backupPlanRuleId": job.created_by["BackupRuleId"],
    }


def _common(job: Job) -> dict[str, Any]:
    return {
        "creationDate": _iso(job.creation_date),
        "iamRoleArn": job.iam_role_arn,
        "resourceArn": job.resource_arn,
        "resourceType": job.resource_type,
        "state": job.state,
        "statusMessage": job.failure,
        "completionDate": _iso(job.completion_date),
        "createdBy": _created_by(job),
    }


def backup_job_event(job: BackupJob) -> tuple[str, list[str], dict[str, Any]]:
    """(detail-type, resources, detail) of a backup job that ended."""
    completed = job.state == "COMPLETED"
    detail = {
        "backupJobId": job.job_id,
        "backupSizeInBytes": str(BACKUP_SIZE_BYTES) if completed else None,
        "backupVaultArn": job.backup_vault_arn,
        "backupVaultName": job.backup_vault_name,
        "bytesTransferred": str(BACKUP_SIZE_BYTES) if completed else "0",
        **_common(job),
        "startBy": _iso(job.start_by),
        "percentDone": 100 if completed else 0,
    }
    resources = [job.recovery_point_arn] if completed and job.recovery_point_arn else []
    return BACKUP_JOB_STATE_CHANGE, resources, detail


def copy_job_event(job: CopyJob) -> tuple[str, list[str], dict[str, Any]]:
    """(detail-type, resources, detail) of a copy job that ended; a failed copy's
    destinationRecoveryPointArn is {}, as in AWS's example."""
    detail = {
        "copyJobId": job.job_id,
        "backupSizeInBytes": BACKUP_SIZE_BYTES,
        **_common(job),
        "sourceBackupVaultArn": job.source_backup_vault_arn,
        "destinationBackupVaultArn": job.destination_backup_vault_arn,
        "destinationRecoveryPointArn": job.destination_recovery_point_arn or {},
    }
    return COPY_JOB_STATE_CHANGE, [job.source_recovery_point_arn], detail


def _default_bus_rules(account_id: str, region: str) -> bool:
    """Whether the account has any rule on its default bus in the Region, asked without creating its
    EventBridge backend: the jobs of a world that never used EventBridge send nothing."""
    account = dict.get(events_backends, account_id)
    backend: EventsBackend | None = dict.get(account, region) if account is not None else None
    return backend is not None and bool(backend.event_buses["default"].rules)


def put_job_event(job: BackupJob | CopyJob) -> None:
    """Put the event of a job that ended on its account's default bus in its Region, dated when it ended."""
    if not _default_bus_rules(job.account_id, job.region):
        return
    detail_type, resources, detail = backup_job_event(job) if isinstance(job, BackupJob) else copy_job_event(job)
    events_backends[job.account_id][job.region].put_events(
        [
            {
                "Source": SOURCE,
                "DetailType": detail_type,
                "Detail": json.dumps({name: value for name, value in detail.items() if value is not None}),
                "Resources": resources,
                "Time": job.due_date.timestamp(),
            }
        ]
    )
