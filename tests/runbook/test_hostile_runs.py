"""Runs under hostile conditions: throttling, runs at once, Ctrl-C and hung steps."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest
from jupyter_core.utils import ensure_event_loop, run_sync

from runbook_lib.app import runner
from runbook_lib.app.runner import EXIT_INTERRUPTED
from runbook_lib.aws import clients as aws
from runbook_lib.aws import jobs
from runbook_lib.aws.context import Run
from runbook_lib.core import guard
from runbook_lib.core.errors import StepFailed, Terminated
from runbook_lib.steps.walkthrough import prerequisites, start_backup
from tests.runbook_steps import (
    RUNBOOK,
    command,
    fork_servers,
    kernels_left,
    parameter_file,
    prepare,
    report_rows,
    runbook,
    values,
)

COPY_STEPS = "04_copy_to_target,05_verify_target_key"
THROTTLING_CODES = {"ThrottlingException", "Throttling", "RequestLimitExceeded"}  # JSON, query and EC2 protocols


def recorded(out: Path, step: str, key: str) -> object:
    state = out / "state.json"
    return json.loads(state.read_text()).get(step, {}).get(key) if state.exists() else None


def start_run(*args: str, session: bool = False) -> subprocess.Popen[str]:
    """`runbook run ARGS` running; in a session of its own (`session`), as a terminal starts a command:
    a signal to its process group reaches it and what it started in its group (the kernels' fork server)."""
    return subprocess.Popen(
        [str(RUNBOOK), "run", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=session,
    )


def test_retried_calls_are_logged_per_operation(world, tmp_path, monkeypatch, own_clients):
    log = tmp_path / "retries.jsonl"
    monkeypatch.setenv(aws.RETRY_LOG_ENV, str(log))
    monkeypatch.setenv(aws.STEP_ENV, "00_prerequisites")
    world.configure(throttle_rate=0.5, throttle_seed=13)
    try:
        kms = aws.client("sandbox-source", "kms", "us-east-1")
        for _ in range(3):
            kms.list_aliases()
    finally:
        world.configure(throttle_rate=0)
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert entries, "at 50 % throttling (seed 13), three calls were all answered at once"
    assert {(e["step"], e["operation"], e["error"]) for e in entries} == {
        ("00_prerequisites", "ListAliases", "ThrottlingException")
    }
    assert runner.retry_counts(tmp_path)[("00_prerequisites", "ListAliases", "ThrottlingException")] == len(entries)


def test_a_wait_survives_polls_that_stay_throttled_after_botocores_retries(world, tmp_path, monkeypatch, own_clients):
    run_values = values(tmp_path)
    run = Run("00_prerequisites", run_values)
    run.carry_out(prerequisites(run))
    world.configure(job_seconds=3)
    run = Run("01_create_backup", run_values)
    job_id = run.carry_out([start_backup(run)])[0].result
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    aws.forget()
    world.configure(throttle_rate=0.6)
    try:
        job = jobs.wait_for_job("sandbox-source", "us-east-1", "backup", job_id, delay=1, max_wait_minutes=2)
    finally:
        world.configure(throttle_rate=0)
        aws.forget()
    assert job["State"] == "COMPLETED"


def test_a_vault_created_meanwhile_with_the_same_key_is_found_in_place(world, aws, tmp_path):
    run_values = values(tmp_path)
    run = Run("00_prerequisites", run_values)
    changes = prerequisites(run)
    target = next(c for c in changes if c.action == "backup:CreateBackupVault" and c.profile == "sandbox-target")
    key_arn = target.effect["EncryptionKeyArn"]
    aws.target("backup").create_backup_vault(BackupVaultName="CABTargetVault", EncryptionKeyArn=key_arn)
    run.carry_out(changes)
    logged = {e["target"]: e["outcome"] for e in run.state.changes.entries()}
    assert logged["CABTargetVault"] == "found in place: vault CABTargetVault was created meanwhile with the same key"
    assert logged["SourceVault"] == "applied"


def test_a_vault_created_meanwhile_with_another_key_stops_the_step_in_one_line(world, aws, tmp_path):
    run = Run("00_prerequisites", values(tmp_path))
    changes = prerequisites(run)
    other_key = aws.target("kms").create_key()["KeyMetadata"]["Arn"]
    aws.target("backup").create_backup_vault(BackupVaultName="CABTargetVault", EncryptionKeyArn=other_key)
    with pytest.raises(StepFailed) as stopped:
        run.carry_out(changes)
    assert f"vault CABTargetVault was created meanwhile in eu-west-1, encrypted with {other_key}" in str(stopped.value)
    assert "\n" not in str(stopped.value)


def test_two_throttled_runs_at_once_succeed_count_their_retries_and_a_third_into_a_busy_folder_is_refused(
    world, tmp_path
):
    """A walkthrough and, at the same time, another run of its first two steps, while AWS throttles
    about one call in seven: both complete, each counts its retries (stdout and report.html), and a third
    run into a folder in use is refused. (`make stress` runs three whole walkthroughs at once, at one
    call in two.)"""
    parameters = str(parameter_file(tmp_path))
    folders = [tmp_path / "first", tmp_path / "second"]
    steps = [(), ("--steps", "00_prerequisites,01_create_backup")]
    world.configure(throttle_rate=0.15)
    try:
        runs = [start_run(parameters, "--out", str(out), *chosen) for out, chosen in zip(folders, steps)]
        deadline = time.monotonic() + 120
        while not (folders[0] / runner.LOCK_FILE).exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        facts = folders[0] / runner.FACTS_FILE
        kept = facts.read_text() if facts.exists() else ""
        busy = runbook("run", parameters, "--out", str(folders[0]))
        assert (facts.read_text() if facts.exists() else "").startswith(kept), "a refused run leaves the facts be"
        results = [running.communicate(timeout=900) for running in runs]
    finally:
        world.configure(throttle_rate=0)
    assert busy.returncode == 1
    assert busy.stderr.strip() == (
        f"runbook: run folder {folders[0]} is in use by another runbook run "
        f"(pid {runs[0].pid}); wait for it to end, or give another --out"
    )
    assert_completed_counting_retries(folders, runs, results, whole=(True, False))
    assert recorded(folders[1], "01_create_backup", "recovery_point_arn")


def assert_completed_counting_retries(folders, runs, results, whole):  # type: ignore[no-untyped-def]
    """Each run ended well, counted its retries and shows them; whole runs verified the copy's key."""
    patterns = []
    for out, running, (stdout, stderr), walkthrough in zip(folders, runs, results, whole):
        assert running.returncode == 0, stderr
        counts = runner.retry_counts(out)
        if walkthrough:
            assert str(recorded(out, "05_verify_target_key", "destination_key_alias")) == "alias/cmkTarget"
            assert sum(counts.values()) > 3
        assert counts, "no call was retried"
        assert {code for _, _, code in counts} <= THROTTLING_CODES
        assert f"AWS asked for {sum(counts.values())} retries" in stdout
        step, operation, code = max(counts, key=counts.get)
        retries = report_rows(out / "report.html", "retries")
        assert [step, operation, code, str(counts[step, operation, code])] in retries
        patterns.append(str(sorted(counts.items())))
    assert len(set(patterns)) == len(folders), "runs drew the same throttling"


def test_ctrl_c_during_the_copy_says_one_line_writes_the_report_and_the_rerun_makes_one_copy(
    world, aws, tmp_path, capsys, monkeypatch
):
    out = tmp_path / "run"
    prepare(values(out))
    world.configure(job_seconds=10)
    parameters = str(parameter_file(tmp_path))
    running = start_run(parameters, "--out", str(out), "--steps", COPY_STEPS, session=True)
    deadline = time.monotonic() + 120
    while recorded(out, "04_copy_to_target", "copy_job_id") is None and time.monotonic() < deadline:
        time.sleep(0.1)
    servers = fork_servers(psutil.Process(running.pid))
    os.killpg(running.pid, signal.SIGINT)  # Ctrl-C in a terminal: the command's whole process group
    _, stderr = running.communicate(timeout=120)
    assert running.returncode == EXIT_INTERRUPTED
    assert stderr.strip() == (
        f"runbook: interrupted (Ctrl-C) during step 04_copy_to_target; what it started goes "
        f"on in AWS. Resume with: runbook run {parameters} --out {out}"
    )
    steps = report_rows(out / "report.html", "steps")
    assert steps[-1][:2] == ["04_copy_to_target", "INTERRUPTED"]
    assert kernels_left(out) == [], "neither 04's kernel nor 05's, started while 04 ran"
    assert len(servers) == 1 and not psutil.pid_exists(servers[0].pid), "the fork server ended with the run"
    job_id = recorded(out, "04_copy_to_target", "copy_job_id")

    monkeypatch.delenv(guard.CONFIRMED_ENV, raising=False)  # the command pops it: back as it was after the test
    again = command(capsys, "run", parameters, "--out", str(out), "--steps", "04_copy_to_target")
    assert again.returncode == 0, again.stderr
    copies = [j["CopyJobId"] for j in aws.source("backup").list_copy_jobs()["CopyJobs"]]
    points = aws.target("backup").list_recovery_points_by_backup_vault(BackupVaultName="CABTargetVault")
    assert copies == [job_id] and len(points["RecoveryPoints"]) == 1


@pytest.mark.stress
def test_fifty_percent_throttled_the_walkthrough_completes_three_times_and_counts_retries(world, tmp_path):
    """Three walkthroughs at once while AWS throttles every other call: minutes of botocore's backoff,
    so `make stress` runs it (and CI after `make test`), not `make test`."""
    parameters = str(parameter_file(tmp_path))
    folders = [tmp_path / f"run{index}" for index in range(3)]
    world.configure(throttle_rate=0.5)
    try:
        runs = [start_run(parameters, "--out", str(out)) for out in folders]
        results = [running.communicate(timeout=1500) for running in runs]
    finally:
        world.configure(throttle_rate=0)
    assert_completed_counting_retries(folders, runs, results, whole=(True, True, True))


def test_a_step_that_hangs_ends_at_its_timeout_in_one_line_and_leaves_no_kernel(world, tmp_path):
    """The hung step's kernel is stopped, and the next step's, started while it ran, ended."""
    out = tmp_path / "run"
    parameters = str(parameter_file(tmp_path, max_wait_minutes=0.05, step_timeout_minutes=0.25))
    # A call only the step makes (its pickers list the vaults): the preflight's own reads are bounded apart.
    world.configure(stall_service="backup", stall_operation="ListBackupVaults", stall_seconds=600, stall_calls=1)
    try:
        started = time.monotonic()
        hung = runbook("run", parameters, "--out", str(out), "--steps", "00_prerequisites,01_create_backup")
        took = time.monotonic() - started
    finally:
        world.reset("walkthrough")
    assert hung.returncode == runner.EXIT_STILL_RUNNING, hung.stderr
    assert hung.stderr.strip() == (
        f"runbook: step 00_prerequisites was stopped after step_timeout_minutes (0.25); what it started goes on in "
        f"AWS, and its record is {out / '00_prerequisites.ipynb'}. Resume with: runbook run {parameters} --out {out}"
    )
    assert took < 120
    assert "TIMED OUT" in (out / "report.html").read_text()
    assert kernels_left(out) == []


def test_the_variables_a_run_gives_its_kernels_are_restored_after_it(monkeypatch):
    monkeypatch.setenv(aws.STEP_ENV, "before")
    monkeypatch.delenv(aws.RETRY_LOG_ENV, raising=False)
    with runner._environment(**{aws.STEP_ENV: "04_copy_to_target", aws.RETRY_LOG_ENV: "/tmp/retries.jsonl"}):
        assert os.environ[aws.STEP_ENV] == "04_copy_to_target"
    assert os.environ[aws.STEP_ENV] == "before" and aws.RETRY_LOG_ENV not in os.environ


def test_a_steps_tasks_left_by_an_interruption_do_not_raise_it_again_when_its_kernel_ends():
    """Ctrl-C or SIGTERM inside a step leaves nbclient's tasks on the thread's event loop, one holding the
    interruption, and ending the step's kernel runs that loop again: the run raised the interruption a second
    time, out of the run, its line not printed and its kernels not all ended (seen once in about 20 SIGTERMs
    on a busy machine). The run ends those tasks first."""
    loop = ensure_event_loop()

    async def interrupted() -> None:
        raise Terminated()

    async def waiting_for(task: asyncio.Task[None]) -> None:
        await task

    async def ending_the_kernel() -> str:
        return "ended"

    inner = loop.create_task(interrupted())
    with pytest.raises(Terminated) as stop:
        loop.run_until_complete(waiting_for(inner))
    runner._end_interrupted_tasks(stop.value)
    assert run_sync(ending_the_kernel)() == "ended"
    assert [task for task in asyncio.all_tasks(loop) if not task.done()] == []
    assert inner.exception() is stop.value
