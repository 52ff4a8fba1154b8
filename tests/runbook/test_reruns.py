"""A rerun reads AWS as it is now, and every limit holds wherever the time goes.

A rerun into a run folder acts on AWS as it is, not on what the last run found: a setting someone turned
off is turned on again, and records AWS no longer holds (a sandbox restarted, a recovery point deleted)
stop the run in one line before it changes anything. The preflight is bounded like a step, a wait ends at
max_wait_minutes whatever botocore's retries do inside a poll, and what a run counts starts with it.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import psutil
import pytest

from runbook_lib.app import runner
from runbook_lib.core import changes, params, runstate
from runbook_lib.core.changes import Change
from runbook_lib.core.errors import EXIT_STILL_RUNNING, EXIT_TERMINATED
from runbook_lib.core.runstate import RunState
from runbook_lib.steps import results
from runbook_sandbox.accounts import SOURCE
from tests.runbook_steps import (
    command,
    fork_servers,
    kernels_left,
    parameter_file,
    prepare,
    report_rows,
    values,
)

from .test_hostile_runs import recorded, start_run

SETTING = "isCrossAccountBackupEnabled"


def setting(aws) -> str:  # type: ignore[no-untyped-def]
    return aws.management("backup").describe_global_settings()["GlobalSettings"][SETTING]


def test_a_setting_turned_off_between_two_runs_into_one_folder_is_turned_back_on(world, aws, tmp_path, capsys):
    """The second run reads the organization's setting afresh (not from the first run's facts.jsonl)."""
    parameters, out = str(parameter_file(tmp_path)), tmp_path / "run"
    first = command(capsys, "run", parameters, "--out", str(out))
    assert first.returncode == 0, first.stderr
    aws.management("backup").update_global_settings(GlobalSettings={SETTING: "false"})

    second = command(capsys, "run", parameters, "--out", str(out))

    assert second.returncode == 0, second.stderr
    assert "[00_prerequisites] backup:UpdateGlobalSettings on organization: applied" in second.stdout
    assert setting(aws) == "true"
    facts = [json.loads(line) for line in (out / runner.FACTS_FILE).read_text().splitlines()]
    settings_read = [f for f in facts if "|backup:DescribeGlobalSettings|" in f.get("key", "")]
    assert settings_read, "the second run read the setting and kept what it read for its steps"


def test_a_rerun_after_the_sandbox_forgot_the_runs_jobs_stops_in_one_line_before_any_change(world, tmp_path, capsys):
    """A restart (here a reset: the same world, gone) leaves the folder's records of a world that is no more."""
    parameters, out = str(parameter_file(tmp_path)), tmp_path / "run"
    first = command(capsys, "run", parameters, "--out", str(out))
    assert first.returncode == 0, first.stderr
    job_id = recorded(out, "01_create_backup", "backup_job_id")
    world.reset("walkthrough")
    before = world.state()

    again = command(capsys, "run", parameters, "--out", str(out))

    assert again.returncode == 1
    assert again.stderr.strip() == (
        f"runbook: run folder {out}: backup job {job_id}, recorded by 01_create_backup, is unknown to account "
        f"{SOURCE.account_id} (source_profile sandbox-source) in us-east-1 (the sandbox was restarted or reset, or "
        "AWS no longer keeps the job); nothing was changed. Fix: start a new run folder (--out NEW); this one "
        "keeps the record of what happened"
    )
    assert world.state() == before, "no vault, policy, setting or job was made"
    assert command(capsys, "run", parameters, "--out", str(tmp_path / "new")).returncode == 0, "a new folder works"


def test_a_recorded_recovery_point_deleted_since_stops_the_rerun_naming_it(world, tmp_path, capsys):
    parameters, out = str(parameter_file(tmp_path)), tmp_path / "run"
    assert command(capsys, "run", parameters, "--out", str(out)).returncode == 0
    assert command(capsys, "run", parameters, "--out", str(out), "--steps", "07_cleanup").returncode == 0
    point = recorded(out, "01_create_backup", "recovery_point_arn")
    before = world.state()

    again = command(capsys, "run", parameters, "--out", str(out))

    assert again.returncode == 1
    line = again.stderr.strip()
    assert line.startswith(f"runbook: run folder {out}: recovery point {point}, recorded by 01_create_backup, is ")
    assert "(deleted, by 07_cleanup or by hand, or the sandbox was restarted or reset); nothing was changed" in line
    assert "\n" not in line and world.state() == before


def test_runbook_check_answers_from_aws_not_from_the_state_notebooks_left(world, tmp_path, monkeypatch, capsys):
    """Notebooks keep their state in runs/adhoc; left from another sandbox world, it named a recovery point
    that is gone, and `runbook check` failed recovery-point-ready right after a good run."""
    adhoc = tmp_path / "adhoc"
    prepare(values(adhoc, source_vault_name="AccDrillSource"))
    world.reset("walkthrough")
    parameters = str(parameter_file(tmp_path))
    assert command(capsys, "run", parameters, "--out", str(tmp_path / "run")).returncode == 0
    monkeypatch.setattr(runstate, "DEFAULT_RUN_DIR", adhoc)

    checked = command(capsys, "check", parameters)

    assert checked.returncode == 0, checked.stderr
    ready = next(line for line in checked.stdout.splitlines() if line.startswith("recovery-point-ready"))
    assert ready.split()[1] == "pass", ready


def test_a_preflight_call_that_hangs_ends_at_step_timeout_minutes_naming_it(world, tmp_path, capsys, own_clients):
    """Every STS call held: botocore alone would wait 60 s an attempt, 15 attempts. (Clients of this test's
    own: the alarm interrupts one of them in the middle of a call.)"""
    out = tmp_path / "run"
    parameters = str(parameter_file(tmp_path, max_wait_minutes=0.1, step_timeout_minutes=0.2))
    world.configure(stall_service="sts", stall_seconds=600, stall_calls=50)
    try:
        started = time.monotonic()
        hung = command(capsys, "run", parameters, "--out", str(out))
        took = time.monotonic() - started
    finally:
        world.reset("walkthrough")
    assert hung.returncode == EXIT_STILL_RUNNING, hung.stderr
    assert hung.stderr.strip() == (
        "runbook: the preflight (it only reads: nothing was changed) was stopped after step_timeout_minutes (0.2): "
        f"sts:GetCallerIdentity (profile sandbox-source, us-east-1) did not answer. Resume with: runbook run "
        f"{parameters} --out {out}"
    )
    assert took < 12 + 20, f"{took:.0f} s"
    assert not out.exists(), "the run made the folder, and took it back"


@pytest.mark.stress
def test_with_step_timeout_minutes_1_a_preflight_sts_stall_ends_within_90_seconds(world, tmp_path, capsys, own_clients):
    parameters = str(parameter_file(tmp_path, max_wait_minutes=0.5, step_timeout_minutes=1))
    world.configure(stall_service="sts", stall_seconds=600, stall_calls=50)
    try:
        started = time.monotonic()
        hung = command(capsys, "run", parameters, "--out", str(tmp_path / "run"))
        took = time.monotonic() - started
    finally:
        world.reset("walkthrough")
    assert hung.returncode == EXIT_STILL_RUNNING and took < 90, (took, hung.stderr)
    assert len(hung.stderr.splitlines()) == 1 and "sts:GetCallerIdentity" in hung.stderr


def wait_under_throttling(world, tmp_path: Path, capsys, max_wait: float) -> tuple[float, str, int]:  # type: ignore[no-untyped-def]
    """Step 01's wait with every call throttled from the moment its job has started: (seconds from the
    throttling to the end of the run, stderr, exit code). The run is made in this process (its main thread,
    where its alarms work); a thread watches for the job and turns the throttling on."""
    out = tmp_path / "run"
    parameters = parameter_file(tmp_path, max_wait_minutes=max_wait, step_timeout_minutes=max_wait + 3, poll_seconds=2)
    world.configure(job_seconds=600)
    throttled: list[float] = []
    ended = threading.Event()

    def throttle_once_the_job_started() -> None:
        deadline = time.monotonic() + 120
        while recorded(out, "01_create_backup", "backup_job_id") is None and time.monotonic() < deadline:
            if ended.wait(0.05):
                return
        world.configure(throttle_rate=1.0)
        throttled.append(time.monotonic())

    watcher = threading.Thread(target=throttle_once_the_job_started, daemon=True)
    watcher.start()
    try:
        done = command(
            capsys, "run", str(parameters), "--out", str(out), "--steps", "00_prerequisites,01_create_backup"
        )
        finished = time.monotonic()
        ended.set()
        watcher.join(timeout=60)
        assert throttled, f"the run ended before its job started: {done.stderr}"
        return finished - throttled[0], done.stderr, done.returncode
    finally:
        ended.set()
        watcher.join(timeout=60)
        world.configure(throttle_rate=0, job_seconds=0)


def test_a_wait_ends_at_max_wait_minutes_whatever_botocores_retries_do(world, tmp_path, capsys, own_clients):
    took, stderr, code = wait_under_throttling(world, tmp_path, capsys, max_wait=0.25)
    assert code == EXIT_STILL_RUNNING, stderr
    assert len(stderr.splitlines()) == 1, stderr
    assert "ended at max_wait_minutes (0.25) while AWS refused its polls (ThrottlingException)" in stderr
    assert took < 15 + 25, f"{took:.0f} s after the throttling began: botocore's backoff is up to 20 s an attempt"


@pytest.mark.stress
def test_max_wait_minutes_1_5_under_full_throttling_ends_the_wait_within_2_minutes(
    world, tmp_path, capsys, own_clients
):
    took, stderr, code = wait_under_throttling(world, tmp_path, capsys, max_wait=1.5)
    assert code == EXIT_STILL_RUNNING and len(stderr.splitlines()) == 1, stderr
    assert took < 120, f"{took:.0f} s"


def test_the_retries_a_run_reports_are_its_own(world, tmp_path, capsys, own_clients):
    parameters, out = str(parameter_file(tmp_path)), tmp_path / "run"
    world.configure(throttle_rate=0.15, throttle_seed=7)
    try:
        throttled = command(capsys, "run", parameters, "--out", str(out), "--steps", "00_prerequisites")
    finally:
        world.configure(throttle_rate=0)
    assert throttled.returncode == 0, throttled.stderr
    assert runner.retry_counts(out) and "AWS asked for" in throttled.stdout

    calm = command(capsys, "run", parameters, "--out", str(out), "--steps", "00_prerequisites")

    assert calm.returncode == 0, calm.stderr
    assert runner.retry_counts(out) == {} and "AWS asked for" not in calm.stdout
    assert report_rows(out / "report.html", "retries")[1:] == []


def test_sigterm_ends_a_run_as_ctrl_c_does(world, tmp_path):
    """How systemd and CI stop a job: one line, the report, exit 143, no kernel left."""
    out = tmp_path / "run"
    parameters = str(parameter_file(tmp_path))
    world.configure(job_seconds=30)
    try:
        running = start_run(parameters, "--out", str(out), "--steps", "00_prerequisites,01_create_backup")
        deadline = time.monotonic() + 120
        while recorded(out, "01_create_backup", "backup_job_id") is None and time.monotonic() < deadline:
            time.sleep(0.1)
        servers = fork_servers(psutil.Process(running.pid))
        running.send_signal(signal.SIGTERM)
        _, stderr = running.communicate(timeout=120)
    finally:
        world.configure(job_seconds=0)
    assert running.returncode == EXIT_TERMINATED
    assert stderr.strip() == (
        "runbook: stopped (SIGTERM) during step 01_create_backup; what it started goes on in AWS. "
        f"Resume with: runbook run {parameters} --out {out}"
    )
    assert report_rows(out / "report.html", "steps")[-1][:2] == ["01_create_backup", "TERMINATED"]
    assert kernels_left(out) == []
    assert len(servers) == 1 and not psutil.pid_exists(servers[0].pid)


def test_run_folders_are_the_owners_only(world, tmp_path, capsys):
    """A run folder names the accounts, keys and vaults of a run: 0700, given with --out or made under runs/."""
    given, chosen = tmp_path / "given", str(parameter_file(tmp_path))
    assert command(capsys, "run", chosen, "--out", str(given), "--steps", "00_prerequisites").returncode == 0
    assert command(capsys, "run", chosen, "--steps", "00_prerequisites", cwd=tmp_path).returncode == 0
    made = next((tmp_path / "runs").iterdir())
    assert {oct(folder.stat().st_mode & 0o777) for folder in (given, made)} == {"0o700"}


def test_a_hang_between_steps_ends_the_run_at_step_timeout_minutes_with_its_report(world, tmp_path, monkeypatch):
    """The work between two steps (here made to hang) is bounded like a step, and the report still says so."""
    chosen = parameter_file(tmp_path, max_wait_minutes=0.2, step_timeout_minutes=0.25)
    checked = params.load(chosen)
    monkeypatch.setattr(results, "clause", lambda *_args, **_kwargs: time.sleep(600))
    started = time.monotonic()
    ended = runner.run(checked, [chosen], tmp_path / "run", ("00_prerequisites", "01_create_backup"))
    assert time.monotonic() - started < 60
    assert ended.code == EXIT_STILL_RUNNING
    assert ended.problems[0].startswith(
        "the run after step 00_prerequisites was stopped after step_timeout_minutes (0.25). Resume with: runbook run"
    )
    assert report_rows(tmp_path / "run" / "report.html", "steps")[-1][:2] == ["(between steps)", "TIMED OUT"]


def test_a_rerun_begun_within_the_second_of_the_last_runs_change_does_not_count_it_as_its_own(tmp_path):
    """A run's changes are those logged at or after its beginning. A script (or a run made in process) can
    begin the next run within the second the last one made its last change: to the second, that change was
    counted twice."""
    log = RunState(tmp_path).changes
    change = Change(
        "00_prerequisites", "sandbox-target", "eu-west-1", "backup:CreateBackupVault", "T", "", lambda: None
    )
    if time.time() % 1 > 0.9:
        time.sleep(0.15)  # the change and the next run's beginning within one second of the clock
    log.record(change, "applied")
    began = changes.now()
    assert "Nothing needed changing." in runner.summary(tmp_path, True, ("00_prerequisites",), since=began)
    log.record(change, "applied")
    assert "Changes made by this run:" in runner.summary(tmp_path, True, ("00_prerequisites",), since=began)
