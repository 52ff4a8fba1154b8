"""A copy job AWS Backup retries after a system error stays CREATED through its retry phase (up to 2 hours,
"Copy a backup"), then runs and ends as any; the sandbox plays it with `retry_next_copy`, a fault of the
world that a reset forgets."""

from __future__ import annotations

import time

import pytest

from runbook_sandbox.process import SandboxError
from runbook_sandbox.testing.walkthrough import ROLE_ARN, SOURCE_VAULT, TARGET_VAULT_ARN, prepare_everything


def test_a_retried_copy_stays_created_then_completes(world, aws):
    point = prepare_everything(aws)
    world.configure(retry_next_copy=2)
    backup = aws.source("backup")
    started = time.monotonic()
    job_id = backup.start_copy_job(
        RecoveryPointArn=point, SourceBackupVaultName=SOURCE_VAULT, DestinationBackupVaultArn=TARGET_VAULT_ARN,
        IamRoleArn=ROLE_ARN,
    )["CopyJobId"]  # fmt: skip
    states = []
    while time.monotonic() - started < 1.5:
        states.append(backup.describe_copy_job(CopyJobId=job_id)["CopyJob"]["State"])
        time.sleep(0.3)
    assert set(states) == {"CREATED"}, states
    time.sleep(max(0.0, 2.2 - (time.monotonic() - started)))
    assert backup.describe_copy_job(CopyJobId=job_id)["CopyJob"]["State"] == "COMPLETED"
    assert world.status()["settings"]["queued_copy_retries"] == []


def test_the_retry_phase_is_at_most_two_hours_and_a_reset_forgets_a_queued_one(world):
    with pytest.raises(SandboxError, match="retry_next_copy must be a finite number from 0 to 7200, not 7201"):
        world.configure(retry_next_copy=7201)
    world.configure(retry_next_copy=60)
    assert world.status()["settings"]["queued_copy_retries"] == [60.0]
    world.reset("walkthrough")
    assert world.status()["settings"]["queued_copy_retries"] == []
