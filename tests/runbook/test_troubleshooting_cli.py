"""`runbook check`, `runbook diagnose`, `runbook fix`, and the trainers' parameter files."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from runbook_lib.app import cli
from runbook_lib.troubleshooting import registry
from tests.runbook_steps import command, copy, prepare, values

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = Path(sys.executable).parent / "runbook"
PARAMETERS = ROOT / "parameters" / "sandbox.yaml"
LESSONS = registry.LESSONS


def runbook(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """A real `runbook` process: for what only a process shows (one line, not a traceback)."""
    return subprocess.run([str(RUNBOOK), *args], capture_output=True, text=True, timeout=600, cwd=cwd, env=env)


def test_check_on_a_fresh_walkthrough_fails_and_changes_nothing(world, tmp_path, monkeypatch, capsys):
    before = world.state()
    calls = tmp_path / "calls.jsonl"
    monkeypatch.setenv("RUNBOOK_CALL_LOG", str(calls))
    done = command(capsys, "check", str(PARAMETERS), cwd=tmp_path)
    assert done.returncode == 1
    assert re.search(r"cross-account-enabled\s+fail", done.stdout)
    assert re.search(r"same-organization\s+pass", done.stdout)
    assert done.stderr.startswith("runbook: ") and "Fix: " in done.stderr
    assert world.state() == before
    made = Counter((c["profile"], c["region"], c["action"]) for c in map(json.loads, calls.read_text().splitlines()))
    assert [call for call, times in made.items() if times > 1] == []  # each fact is read once
    assert "restore-role-exists" not in done.stdout, "a restore's checks only with --steps naming the drill"
    assert made[("sandbox-source", "us-east-1", "ec2:DescribeVolumes")] == 1


def test_check_after_the_walkthrough_passes(world, tmp_path, capsys):
    out = tmp_path / "run"
    walkthrough = values(out)
    prepare(walkthrough)
    copy(walkthrough)
    before = world.state()
    params = yaml.safe_load(PARAMETERS.read_text()) | {"run_dir": str(out)}
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(params))
    done = command(capsys, "check", str(tmp_path / "p.yaml"), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "fail" not in done.stdout
    assert world.state() == before


def test_diagnose_and_fix_a_failed_copy(world, tmp_path, capsys):
    """The trainer's lesson 3: steps 00 to 03 (as library calls), then the forced copy through `runbook run`."""
    world.reset("target-vault-denies-source")
    trainer = ROOT / "parameters" / "troubleshooting" / "3-target-vault-policy.yaml"
    files = (str(PARAMETERS), str(trainer))
    overlay = {k: v for k, v in yaml.safe_load(trainer.read_text()).items() if k != "sandbox_scenario"}
    prepare(values(tmp_path / "run", **overlay))
    forced = command(capsys, "run", *files, "--out", str(tmp_path / "run"), "--steps", "04_copy_to_target")
    assert forced.returncode == 1
    line = forced.stderr.strip().splitlines()[-1]
    assert line.startswith("runbook: step 04_copy_to_target failed: [target-vault-policy] copy job ")
    assert "Access Denied trying to call AWS Backup service" in line and "Fix: " in line
    (tmp_path / "p.yaml").write_text(yaml.safe_dump({"run_dir": str(tmp_path / "run")}))
    done = command(capsys, "diagnose", *files, str(tmp_path / "p.yaml"), cwd=tmp_path)
    assert done.returncode == 0
    assert "known failure: target-vault-policy" in done.stdout
    assert "evidence vault access policy" in done.stdout and "DenySourceAccount" in done.stdout
    fix = "fix: remove statement 'DenySourceAccount' (runbook fix target-vault-policy plans its removal)"
    assert fix in done.stdout
    job_id = re.search(r"copy job (\S+) FAILED", done.stdout).group(1)
    one = command(capsys, "diagnose", *files, "--copy-job-id", job_id, cwd=tmp_path)
    assert one.stdout.count("known failure:") == 1


def test_diagnose_and_fix_a_failed_restore(world, tmp_path, capsys):
    """The trainer's lesson 8: steps 00 to 04 (as library calls), then the forced drill through `runbook run`,
    `runbook diagnose` on the failed restore job, and `runbook fix restore-key-usable`."""
    world.reset("target-key-denies-restore")
    trainer = ROOT / "parameters" / "troubleshooting" / "8-restore-key-usable.yaml"
    files = (str(PARAMETERS), str(trainer))
    overlay = {k: v for k, v in yaml.safe_load(trainer.read_text()).items() if k != "sandbox_scenario"}
    run_values = values(tmp_path / "run", **overlay)
    prepare(run_values)
    copy(run_values)
    forced = command(capsys, "run", *files, "--out", str(tmp_path / "run"), "--steps", "08_restore_drill")
    assert forced.returncode == 1
    line = forced.stderr.strip().splitlines()[-1]
    assert line.startswith("runbook: step 08_restore_drill failed: [restore-key-usable] restore job ")
    assert "ended FAILED: User: arn:aws:sts::333333333333:assumed-role/AWSBackupDefaultServiceRole/" in line
    assert "Fix: remove statement 'DenyRestoreRole' (runbook fix restore-key-usable plans its removal)" in line
    done = command(capsys, "diagnose", *files, cwd=tmp_path)
    assert re.search(r"^restore job \S+ FAILED: User: arn:aws:sts::", done.stdout, re.M), done.stdout
    assert "known failure: restore-key-usable" in done.stdout and "evidence restore role: arn:aws:iam::" in done.stdout
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump({"apply": False}))
    planned = command(capsys, "fix", *files, str(tmp_path / "plan.yaml"), "restore-key-usable", cwd=tmp_path)
    assert planned.returncode == 0 and '-      "Sid": "DenyRestoreRole"' in planned.stdout
    fixed = command(capsys, "fix", *files, "restore-key-usable", cwd=tmp_path)
    assert fixed.returncode == 0 and ": changed" in fixed.stdout
    checked = command(capsys, "check", *files, "--steps", "08_restore_drill", cwd=tmp_path)
    assert re.search(r"^\s*restore-key-usable\s+pass\s", checked.stdout, re.M), checked.stdout


def test_fix_plans_and_applies_the_key_share(world, tmp_path, capsys):
    params = yaml.safe_load(PARAMETERS.read_text()) | {"run_dir": str(tmp_path / "run"), "apply": False}
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(params | {"apply": True}))
    prepare(values(tmp_path / "run"), share=False)
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(params))
    before = world.state()
    planned = command(capsys, "fix", str(tmp_path / "plan.yaml"), "source-key-shared", cwd=tmp_path)
    assert planned.returncode == 0 and "apply is false: not changed" in planned.stdout
    assert re.search(r'^\+\s+"AWS": "arn:aws:iam::333333333333:root"', planned.stdout, re.M)
    assert world.state() == before
    applied = command(capsys, "fix", str(tmp_path / "p.yaml"), "source-key-shared", cwd=tmp_path)
    assert applied.returncode == 0 and "changed" in applied.stdout
    again = command(capsys, "fix", str(tmp_path / "p.yaml"), "source-key-shared", cwd=tmp_path)
    assert "[source-key-shared] passes: nothing to fix." in again.stdout


@pytest.mark.parametrize("failure", LESSONS, ids=[f.id for f in LESSONS])
def test_each_trainer_file_over_the_sandbox_file_names_its_failure(world, tmp_path, capsys, failure):
    """In the scenario it names, a lesson's parameters make `runbook check` name its check, before any copy.
    (That the forced copy then fails with AWS's message is shown per failure in test_troubleshooting.py,
    and end to end through `runbook run` by test_diagnose_and_fix_a_failed_copy.)"""
    trainer = ROOT / "parameters" / "troubleshooting" / registry.trainer_file(failure)
    assert failure.lesson is not None
    world.reset(failure.lesson.scenario)
    world.configure(**failure.lesson.sandbox_settings)
    before = world.state()
    steps = ["--steps", failure.lesson.steps] if failure.lesson.steps else []
    assert cli.main(["check", str(PARAMETERS), str(trainer), *steps]) == 1
    out, err = capsys.readouterr()
    # A refusal AWS decides on its side shows only in its answer (test_troubleshooting.py shows the run folder
    # keeping it, and the check naming it from then on): before any copy, the check passes.
    status = "fail" if failure.lesson.seen_before_copy else "pass"
    assert re.search(rf"^\s*{failure.id}\s+{status}\s", out, re.M), out
    assert err.startswith("runbook: ") and "blocking check(s) failed" in err
    assert world.state() == before


def test_a_trainer_file_refuses_a_sandbox_in_another_scenario(world, tmp_path, capsys):
    trainer = ROOT / "parameters" / "troubleshooting" / registry.trainer_file(registry.BY_ID["target-vault-policy"])
    assert cli.main(["check", str(PARAMETERS), str(trainer)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        "runbook: parameter sandbox_scenario: these parameters are for scenario target-vault-denies-source, and the "
        f"sandbox is in walkthrough; run: runbook sandbox reset --scenario target-vault-denies-source --dir "
        f"{world.directory}"
    ]


def test_what_aws_refuses_is_one_line_not_a_traceback(world, tmp_path):
    unknown_job = runbook("diagnose", str(PARAMETERS), "--copy-job-id", "NOPE", cwd=tmp_path)
    assert unknown_job.returncode == 1
    assert unknown_job.stderr.strip().splitlines() == [
        "runbook: step diagnose failed: copy job NOPE is unknown to account 222222222222 in us-east-1. Fix: check "
        "the ID, and that source_profile and source_region name the account and Region that started the copy"
    ]
    config = Path(os.environ["AWS_CONFIG_FILE"])
    unreachable = tmp_path / "aws-config"
    unreachable.write_text(re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:9", config.read_text()))
    env = {**os.environ, "AWS_CONFIG_FILE": str(unreachable), "AWS_MAX_ATTEMPTS": "1"}
    done = subprocess.run(
        [str(RUNBOOK), "check", str(PARAMETERS)], capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        'runbook: AWS: Could not connect to the endpoint URL: "http://127.0.0.1:9/"'
    ]


def test_fix_says_when_a_check_was_skipped(world, tmp_path, capsys):
    done = command(capsys, "fix", str(PARAMETERS), "target-vault-policy", cwd=tmp_path)
    assert done.returncode == 0
    assert done.stdout.strip() == "[target-vault-policy] skipped: no target vault yet; nothing to fix."
