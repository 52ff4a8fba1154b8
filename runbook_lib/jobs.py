"""Backup and copy jobs: start them once per run, and wait for them with a botocore waiter model.

botocore ships no waiters for AWS Backup, so they are written as data (data/waiters-backup.json)
and loaded with botocore's WaiterModel. Progress is reported from the waiter's own polls through
botocore's after-call event, not from a second loop.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from importlib import resources
from typing import Any

from botocore.exceptions import WaiterError
from botocore.waiter import WaiterModel, create_waiter_with_client

from . import aws
from .errors import JobFailed

WAITER_MODEL = WaiterModel(json.loads(resources.files("runbook_lib").joinpath("data/waiters-backup.json").read_text()))
Progress = Callable[[dict[str, Any]], None]


def idempotency_token(run_dir: str, *parts: str) -> str:
    """The same token for the same run and inputs, so a retried start returns the same job."""
    return hashlib.sha256("|".join((run_dir, *parts)).encode()).hexdigest()[:32]


def _wait(client: Any, waiter_name: str, operation: str, kind: str, job_id: str, arguments: dict[str, Any],
          delay: int, progress: Progress | None) -> dict[str, Any]:
    handler_id = None
    if progress is not None:
        def report(parsed: dict[str, Any], **_: Any) -> None:
            progress(parsed.get("CopyJob", parsed))

        handler_id = client.meta.events.register(f"after-call.backup.{operation}", report)
    try:
        create_waiter_with_client(waiter_name, WAITER_MODEL, client).wait(
            **arguments, WaiterConfig={"Delay": delay}
        )
    except WaiterError as error:
        last = error.last_response or {}
        job = last.get("CopyJob", last)
        raise JobFailed(kind, job_id, job.get("State", "UNKNOWN"), job.get("StatusMessage", str(error))) from None
    finally:
        if handler_id is not None:
            client.meta.events.unregister(f"after-call.backup.{operation}", report)
    if kind == "backup":
        return client.describe_backup_job(**arguments)
    return client.describe_copy_job(**arguments)["CopyJob"]


def wait_for_backup_job(profile: str, region: str, job_id: str, delay: int = 5,
                        progress: Progress | None = None) -> dict[str, Any]:
    client = aws.client(profile, "backup", region)
    return _wait(client, "BackupJobDone", "DescribeBackupJob", "backup", job_id, {"BackupJobId": job_id},
                 delay, progress)


def wait_for_copy_job(profile: str, region: str, job_id: str, delay: int = 5,
                      progress: Progress | None = None) -> dict[str, Any]:
    client = aws.client(profile, "backup", region)
    return _wait(client, "CopyJobDone", "DescribeCopyJob", "copy", job_id, {"CopyJobId": job_id}, delay, progress)


def jobs_table(profile: str, region: str, kind: str = "copy", **filters: Any) -> list[dict[str, Any]]:
    """Backup or copy jobs of the account and Region (paginated), newest first."""
    client = aws.client(profile, "backup", region)
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
