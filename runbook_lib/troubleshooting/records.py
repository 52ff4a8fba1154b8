"""A rerun's records against AWS as it is now, before it changes anything.

A run folder keeps what a rerun needs to resume: the accounts the run worked in, the jobs it started and
the recovery points they made (state.json). Between two runs AWS may have moved on: a profile now signs as
another account, a sandbox was restarted (its jobs and recovery points are gone), someone deleted a
recovery point. A rerun that trusted the records would act on a world that has gone: recreate vaults, then
fail on a job AWS does not know. So before the first step, each record a step of this run will act on is
read back from AWS, and a record that no longer holds stops the run in one line, naming it and what to do.

For a run of many resources (a fleet) only the accounts are read back here: each resource's row follows its
own job, and a job AWS does not know fails that row alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..aws import clients
from ..aws.context import Run
from ..core.errors import ParameterError, RecordsOutdated
from ..core.steps import (
    COPY_TO_TARGET,
    CREATE_BACKUP,
    PREREQUISITES,
    RESTORE_DRILL,
    SHARE_SOURCE_KEY,
    VERIFY_SOURCE_KEY,
    VERIFY_TARGET_KEY,
)

NEW_FOLDER = "start a new run folder (--out NEW); this one keeps the record of what happened"
GONE_STATES = ("DELETED", "DELETING", "EXPIRED")


def _where(run: Run, side: str) -> str:
    profile, region = run.side(side)
    owner = "source" if side == "hop" else side
    return f"account {run.account(side)} ({owner}_profile {profile}) in {region}"


def accounts(run: Run) -> None:
    """The profiles sign as the accounts the folder's records were made in."""
    recorded = run.state.load().get(PREREQUISITES, {})
    for side in ("source", "target"):
        then = recorded.get(f"{side}_account")
        if then and then != run.account(side):
            raise ParameterError(
                f"{side}_profile",
                f"signs as account {run.account(side)}, and run folder {run.state.directory} holds the records of "
                f"account {then}; allowed: a profile of account {then} for this folder, or a new --out for "
                f"account {run.account(side)}",
            )


def _job(run: Run, side: str, kind: str, job_id: str) -> None:
    profile, region = run.side(side)
    backup = clients.client(profile, "backup", region)
    describe: dict[str, Callable[[], Any]] = {
        "backup": lambda: backup.describe_backup_job(BackupJobId=job_id),
        "copy": lambda: backup.describe_copy_job(CopyJobId=job_id),
        "restore": lambda: backup.describe_restore_job(RestoreJobId=job_id),
    }
    try:
        describe["copy" if kind == "hop" else kind]()
    except backup.exceptions.ResourceNotFoundException:
        step = {"backup": CREATE_BACKUP, "restore": RESTORE_DRILL}.get(kind, COPY_TO_TARGET)
        raise RecordsOutdated(
            str(run.state.directory),
            f"{'first hop ' if kind == 'hop' else ''}{'copy' if kind == 'hop' else kind} job {job_id}, recorded by "
            f"{step}, is unknown to {_where(run, side)} (the sandbox was restarted or reset, or AWS no longer "
            "keeps the job)",
            NEW_FOLDER,
        ) from None


def _recovery_point(run: Run, side: str, vault: str, arn: str, step: str) -> None:
    profile, region = run.side(side)
    backup = clients.client(profile, "backup", region)
    try:
        status = backup.describe_recovery_point(BackupVaultName=vault, RecoveryPointArn=arn).get("Status", "")
    except backup.exceptions.ResourceNotFoundException:
        status = "not there"
    if status == "not there" or status in GONE_STATES:
        raise RecordsOutdated(
            str(run.state.directory),
            f"recovery point {arn}, recorded by {step}, is {status.lower()} in vault {vault} of {_where(run, side)} "
            "(deleted, by 07_cleanup or by hand, or the sandbox was restarted or reset)",
            NEW_FOLDER,
        )


def check(run: Run, step: str) -> None:
    """Every record this step acts on holds in AWS now; RecordsOutdated at the first that does not. Nothing
    recorded (a new folder), or only rows per resource (a run of many, whose rows follow their own jobs): no
    read at all."""
    state = run.state.load()
    if not state:
        return
    backup, copy = state.get(CREATE_BACKUP, {}), state.get(COPY_TO_TARGET, {})
    if step == CREATE_BACKUP and backup.get("backup_job_id"):
        _job(run, "source", "backup", backup["backup_job_id"])
    uses_source_point = step in (VERIFY_SOURCE_KEY, SHARE_SOURCE_KEY) or (
        step == COPY_TO_TARGET and not copy.get("copy_job_id") and not copy.get("hop_job_id")
    )
    if uses_source_point and backup.get("recovery_point_arn"):
        _recovery_point(run, "source", run.source_vault_name, backup["recovery_point_arn"], CREATE_BACKUP)
    if step == COPY_TO_TARGET and copy.get("hop_job_id"):
        _job(run, "source", "hop", copy["hop_job_id"])
    if step == COPY_TO_TARGET and copy.get("copy_job_id"):
        _job(run, "hop" if copy.get("hop_recovery_point_arn") else "source", "copy", copy["copy_job_id"])
    if step in (VERIFY_TARGET_KEY, RESTORE_DRILL) and copy.get("destination_recovery_point_arn"):
        _recovery_point(run, "target", run.target_vault_name, copy["destination_recovery_point_arn"], COPY_TO_TARGET)
    restore_job = state.get(RESTORE_DRILL, {}).get("restore_job_id")
    if step == RESTORE_DRILL and restore_job:
        _job(run, "target", "restore", restore_job)
