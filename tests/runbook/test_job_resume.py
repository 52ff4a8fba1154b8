"""A job is never abandoned or duplicated: a wait that ends early keeps the job, the rerun waits for it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from runbook_lib.app.runner import EXIT_STILL_RUNNING
from runbook_lib.aws import clients
from runbook_lib.aws.context import Run
from runbook_lib.core.errors import StepFailed, StillRunning
from runbook_lib.steps.walkthrough import (
    encryption_of,
    prerequisites,
    source_recovery_point,
    start_backup,
    start_copy,
    wait_for_backup,
    wait_for_copy,
)
from tests.runbook_steps import command, copy, parameter_file, prepare, values

COPY_STEPS = "04_copy_to_target,05_verify_target_key"


def recorded(out: Path, step: str, key: str) -> object:
    state = out / "state.json"
    return json.loads(state.read_text()).get(step, {}).get(key) if state.exists() else None


def copies_and_destinations(aws) -> tuple[list[str], list[str]]:  # type: ignore[no-untyped-def]
    jobs = [j["CopyJobId"] for j in aws.source("backup").list_copy_jobs()["CopyJobs"]]
    points = aws.target("backup").list_recovery_points_by_backup_vault(BackupVaultName="CABTargetVault")
    return jobs, [p["RecoveryPointArn"] for p in points["RecoveryPoints"]]


def test_throttled_while_waiting_the_step_stops_and_the_rerun_completes_the_same_copy(
    world, aws, tmp_path, monkeypatch, own_clients
):
    """Polls that stay throttled past max_wait_minutes stop the step (StillRunning: `runbook run` exits 75
    with the resume line, as the next test shows) without abandoning the job; the rerun waits for it."""
    out = tmp_path / "run"
    run_values = values(out, max_wait_minutes=0.05)
    prepare(run_values)
    world.configure(job_seconds=8)
    run = Run("04_copy_to_target", run_values)
    run.carry_out([start_copy(run)])
    job_id = recorded(out, "04_copy_to_target", "copy_job_id")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    clients.forget()
    world.configure(throttle_rate=1.0)
    try:
        with pytest.raises(StillRunning) as stopped:
            wait_for_copy(Run("04_copy_to_target", run_values), delay=1)
    finally:
        world.configure(throttle_rate=0)
    line = str(stopped.value)
    assert line.startswith(f"step 04_copy_to_target stopped: the wait for copy job {job_id} (")
    assert "ended at max_wait_minutes (0.05) while AWS refused its polls (ThrottlingException)" in line
    assert f"To resume: runbook run PARAMS.yaml --out {out} (the same run folder)" in line and "\n" not in line
    assert recorded(out, "04_copy_to_target", "failed_copy_jobs") is None

    clients.forget()  # the rerun is a new process: its clients have not been throttled
    copy({**run_values, "max_wait_minutes": 1})  # the wait above ended on time: the job has seconds left
    jobs, points = copies_and_destinations(aws)
    assert jobs == [job_id] and len(points) == 1
    assert recorded(out, "04_copy_to_target", "destination_recovery_point_arn") == points[0]


def test_a_job_slower_than_max_wait_minutes_stops_the_run_and_the_rerun_waits_for_it(world, aws, tmp_path, capsys):
    out = tmp_path / "run"
    prepare(values(out))
    world.configure(job_seconds=10)
    impatient = command(
        capsys, "run", str(parameter_file(tmp_path, max_wait_minutes=0.02)), "--out", str(out), "--steps", COPY_STEPS
    )
    job_id = recorded(out, "04_copy_to_target", "copy_job_id")
    assert impatient.returncode == EXIT_STILL_RUNNING, impatient.stderr
    assert f"copy job {job_id} is still RUNNING after 0.02 minutes (max_wait_minutes)" in impatient.stderr
    patient = command(
        capsys,
        "run",
        str(parameter_file(tmp_path, max_wait_minutes=5)),
        "--out",
        str(out),
        "--steps",
        "04_copy_to_target",
    )
    assert patient.returncode == 0, patient.stderr
    jobs, points = copies_and_destinations(aws)
    assert jobs == [job_id] and len(points) == 1


def test_a_failed_backup_is_recorded_and_the_rerun_starts_a_new_one(world, aws, tmp_path):
    out = tmp_path / "run"
    run_values = values(out)
    run = Run("00_prerequisites", run_values)
    run.carry_out(prerequisites(run))
    world.configure(fail_next_backup="Backup job failed: the volume was busy.")
    run = Run("01_create_backup", run_values)
    run.carry_out([start_backup(run)])
    with pytest.raises(StepFailed) as failed:
        wait_for_backup(run, delay=1)
    line = str(failed.value)
    assert "backup job" in line and "ended FAILED: Backup job failed: the volume was busy." in line
    assert line.endswith("the next run starts a new backup job")
    first = recorded(out, "01_create_backup", "failed_backup_jobs")
    assert [(j["state"], j["status_message"]) for j in first] == [("FAILED", "Backup job failed: the volume was busy.")]

    run = Run("01_create_backup", run_values)
    run.carry_out([start_backup(run)])
    wait_for_backup(run, delay=1)
    jobs = aws.source("backup").list_backup_jobs()["BackupJobs"]
    assert sorted(j["State"] for j in jobs) == ["COMPLETED", "FAILED"]
    assert recorded(out, "01_create_backup", "recovery_point_arn")
    assert len(recorded(out, "01_create_backup", "failed_backup_jobs")) == 1


def test_a_job_aws_no_longer_knows_is_said_in_one_line(world, tmp_path):
    run_values = values(tmp_path)
    prepare(run_values, share=False)
    world.reset("walkthrough")
    run = Run("01_create_backup", run_values)
    run.carry_out([start_backup(run)])
    with pytest.raises(StepFailed) as unknown:
        wait_for_backup(run, delay=1)
    message = str(unknown.value)
    assert "is unknown to account 222222222222 in us-east-1" in message and "\n" not in message
    assert "start a new run folder (--out NEW)" in message
    run = Run("02_verify_source_key", run_values)
    with pytest.raises(StepFailed, match=r"recorded in .*state.json, is not in vault SourceVault"):
        encryption_of(run, "source", source_recovery_point(run))  # type: ignore[arg-type]


def test_a_dry_run_goes_on_planning_past_a_job_that_is_still_running(world, tmp_path):
    applied = values(tmp_path)
    run = Run("00_prerequisites", applied)
    run.carry_out(prerequisites(run))
    world.configure(job_seconds=30)
    run = Run("01_create_backup", applied)
    run.carry_out([start_backup(run)])
    dry = {**applied, "apply": False, "max_wait_minutes": 0.02}
    outcome = wait_for_backup(Run("01_create_backup", dry), delay=1)
    assert re.search(r"is still (CREATED|RUNNING) after 0.02 minutes", str(outcome))
    assert "a dry run goes on" in str(outcome)
    copy = start_copy(Run("04_copy_to_target", dry))
    assert "step 01_create_backup makes good [recovery-point-ready]" in copy.blocked_by


def test_a_copy_in_its_retry_phase_stays_created_the_wait_says_so_and_the_rerun_completes_it(world, aws, tmp_path):
    """After a system error AWS Backup keeps a copy job CREATED through a retry phase of up to 2 hours: the wait
    never calls it failed, and when max_wait_minutes ends first its line says the job is still going."""
    out = tmp_path / "run"
    run_values = values(out, max_wait_minutes=0.02)
    prepare(run_values)
    world.configure(retry_next_copy=3)
    run = Run("04_copy_to_target", run_values)
    run.carry_out([start_copy(run)])
    job_id = recorded(out, "04_copy_to_target", "copy_job_id")
    with pytest.raises(StillRunning) as stopped:
        wait_for_copy(Run("04_copy_to_target", run_values), delay=1)
    line = str(stopped.value)
    assert f"copy job {job_id}" in line and "max_wait_minutes" in line, line
    retrying = "CREATED, which AWS Backup keeps a copy job through its retry phase after a system error, up to 2 hours"
    assert line.count(f"; {retrying}: it is still going, not failed") == 1, line
    assert recorded(out, "04_copy_to_target", "failed_copy_jobs") is None, "a CREATED copy is never called failed"

    job = copy({**run_values, "max_wait_minutes": 1})
    assert job["State"] == "COMPLETED" and job["CopyJobId"] == job_id
    assert copies_and_destinations(aws)[0] == [job_id], "the rerun waited for the same job"
