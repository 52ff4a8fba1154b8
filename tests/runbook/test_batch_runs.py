"""`runbook run` on the sandbox: the record it keeps, idempotent reruns, and a failing setup."""

from __future__ import annotations

import collections
import html
import json
import re
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from runbook_lib.app.runner import ALL_STEPS, DEFAULT_STEPS
from runbook_lib.core import permissions
from runbook_lib.core.steps import CALL_BUDGET
from tests.runbook_steps import command

ROOT = Path(__file__).resolve().parents[2]
PARAMETERS = ROOT / "parameters" / "sandbox.yaml"


def runbook_run(capture: pytest.CaptureFixture[str], out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """`runbook run parameters/sandbox.yaml --out OUT EXTRA...` in this process (stdout a pipe, as in batch)."""
    return command(capture, "run", str(PARAMETERS), "--out", str(out), *extra)


def outputs(notebook: Path) -> tuple[str, list[str]]:
    text, errors = [], []
    for cell in json.loads(notebook.read_text())["cells"]:
        for output in cell.get("outputs", []):
            if output["output_type"] == "error":
                errors.append(output["ename"])
            text.append("".join(output.get("text", "")))
            text.append("".join(output.get("data", {}).get("text/plain", "")))
    return "\n".join(text), errors


def source_key_policy() -> dict:
    kms = boto3.Session(profile_name="sandbox-source").client("kms", region_name="us-east-1")
    key_id = kms.describe_key(KeyId="alias/cmkSource")["KeyMetadata"]["KeyId"]
    return json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])


def test_run_keeps_a_record_a_second_run_changes_nothing_and_every_step_declares_its_iam_actions(
    world, tmp_path, capfd, monkeypatch
):
    """The walkthrough, its rerun, then troubleshooting, each AWS call logged: every step calls only the
    IAM actions it declares (step 07: test_cleanup.py). Captured at the file descriptors (capfd): a warning
    that anything in the run writes there, beside Python's streams, is seen."""
    out = tmp_path / "run"
    call_log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("RUNBOOK_CALL_LOG", str(call_log))
    original_statements = source_key_policy()["Statement"]
    first = runbook_run(capfd, out)
    assert first.returncode == 0, first.stderr
    walkthrough_calls = [json.loads(line) for line in call_log.read_text().splitlines()]
    made = collections.Counter(c["step"] for c in walkthrough_calls if not c.get("poll"))
    assert {step: made[step] for step in DEFAULT_STEPS if made[step] > CALL_BUDGET[step]} == {}, made
    assert sum(CALL_BUDGET.values()) <= 46 and sum(made.values()) <= 46
    assert any(c.get("poll") for c in walkthrough_calls), "the waits' polls are marked"
    read_once = collections.Counter(
        (c["profile"], c["region"], c["action"])
        for c in walkthrough_calls
        if c["action"]
        in ("kms:ListAliases", "sts:GetCallerIdentity", "organizations:DescribeOrganization", "iam:GetRole")
    )
    assert set(read_once.values()) == {1}, f"facts read once across the steps' kernels: {read_once}"
    summary = first.stdout.strip().splitlines()
    assert summary[-2].startswith("Source recovery point:      arn:aws:ec2:us-east-1::snapshot/snap-")
    assert summary[-2].endswith("(key alias/cmkSource)")
    assert summary[-1].endswith("(key alias/cmkTarget)")
    assert "Changes made by this run:" in summary
    step_lines = [line for line in summary if line.startswith("[")]
    assert [line.split("]")[0][1:] for line in step_lines] == list(DEFAULT_STEPS), "one line per step"
    assert all(re.fullmatch(r"\[\w+\] ok \d+\.\d s: .+", line) for line in step_lines), step_lines
    assert "[03_share_source_key] ok" in step_lines[3] and step_lines[3].endswith(
        ": share the key with account 333333333333"
    )
    assert re.search(r"ok [\d.]+ s: recovery point arn:aws:ec2:us-east-1::snapshot/snap-\w+$", step_lines[1])
    assert step_lines[5].endswith(": the copy is encrypted with alias/cmkTarget")
    assert "running" not in first.stdout, "a pipe gets no progress lines"
    assert "WARNING" not in first.stdout + first.stderr and "Kernel is running" not in first.stdout + first.stderr
    assert any(
        line.startswith("  [03_share_source_key] kms:PutKeyPolicy on ") and line.endswith(": applied")
        for line in summary
    )
    for step in DEFAULT_STEPS:
        assert not outputs(out / f"{step}.ipynb")[1], f"{step} has error output"
    assert {"state.json", "changes.jsonl", "report.html"} <= {p.name for p in out.iterdir()}
    verify_source, _ = outputs(out / "02_verify_source_key.ipynb")
    assert "encrypted with alias/cmkSource while its vault uses alias/cmkSourceVault" in verify_source
    verify_target, _ = outputs(out / "05_verify_target_key.ipynb")
    assert "The copy is encrypted with alias/cmkTarget" in verify_target
    assert "kms:PutKeyPolicy" in (out / "report.html").read_text()
    converted = subprocess.run(  # the record read without widgets: nbconvert, offline
        [str(Path(sys.executable).parent / "jupyter"), "nbconvert", "--to", "html", "--output-dir", str(tmp_path),
         str(out / "03_share_source_key.ipynb")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert converted.returncode == 0, converted.stderr
    page = html.unescape(re.sub(r"<[^>]+>", "", (tmp_path / "03_share_source_key.html").read_text()))
    assert "changed kms:PutKeyPolicy on arn:aws:kms:us-east-1:222222222222:key/" in page
    assert "--- key policy (now)" in page and '"Sid": "RunbookAllowUseOfTheKey333333333333Run' in page

    shared = source_key_policy()["Statement"]
    state, log = world.state(), (out / "changes.jsonl").read_text()
    changing = "00_prerequisites,01_create_backup,03_share_source_key,04_copy_to_target"
    second = runbook_run(capfd, out, "--steps", changing)  # the steps that change AWS; 02 and 05 only read
    assert second.returncode == 0, second.stderr
    assert "Nothing needed changing." in second.stdout.splitlines()
    assert "[03_share_source_key] ok" in second.stdout and ": nothing to change" in second.stdout
    assert world.state() == state, "a second run must change nothing in AWS"
    assert (out / "changes.jsonl").read_text() == log
    assert source_key_policy()["Statement"] == shared
    assert all(statement in shared for statement in original_statements)
    backup_jobs = state["backup"]["222222222222/us-east-1"]["backup_jobs"]
    copy_jobs = state["backup"]["222222222222/us-east-1"]["copy_jobs"]
    assert len(backup_jobs) == 1 and len(copy_jobs) == 1

    after = runbook_run(capfd, out, "--steps", "06_troubleshoot")
    assert after.returncode == 0, after.stderr
    target = boto3.Session(profile_name="sandbox-target")
    volumes = {v["VolumeId"] for v in target.client("ec2", region_name="eu-west-1").describe_volumes()["Volumes"]}
    drill = runbook_run(capfd, out, "--steps", "08_restore_drill")
    assert drill.returncode == 0, drill.stderr
    line = next(line for line in drill.stdout.splitlines() if line.startswith("[08_restore_drill]"))
    assert re.fullmatch(
        r"\[08_restore_drill\] ok [\d.]+ s: 3 changes made; the restored volume is encrypted with alias/cmkTarget: "
        r"SUCCESSFUL",
        line,
    ), line
    text, errors = outputs(out / "08_restore_drill.ipynb")
    assert errors == [] and "The copy restores: volume vol-" in text and "the volume is deleted." in text
    backup = target.client("backup", region_name="eu-west-1")
    restored = backup.list_restore_jobs()["RestoreJobs"]
    assert [(job["Status"], job["ValidationStatus"]) for job in restored] == [("COMPLETED", "SUCCESSFUL")]
    assert {v["VolumeId"] for v in target.client("ec2", region_name="eu-west-1").describe_volumes()["Volumes"]} == (
        volumes
    ), "the drill leaves no volume behind"
    automate = runbook_run(capfd, out, "--steps", "09_automate")
    assert automate.returncode == 0, automate.stderr
    line = next(line for line in automate.stdout.splitlines() if line.startswith("[09_automate]"))
    assert re.fullmatch(
        r"\[09_automate\] ok [\d.]+ s: 6 changes made; backup plan \S+, templates in cloudformation/", line
    )
    assert {p.name for p in (out / "cloudformation").iterdir()} == {"source-account.yaml", "target-account.yaml"}
    source_backup = boto3.Session(profile_name="sandbox-source").client("backup", region_name="us-east-1")
    assert [p["BackupPlanName"] for p in source_backup.list_backup_plans()["BackupPlansList"]] == ["CrossAccountCopy"]
    sides = {"sandbox-source": "source", "sandbox-target": "target", "sandbox-management": "management"}
    calls = [json.loads(line) for line in call_log.read_text().splitlines()]
    assert {c["step"] for c in calls} == set(ALL_STEPS) - {"07_cleanup"}, "07's calls: test_cleanup.py"
    undeclared = {
        (c["step"], sides[c["profile"]], c["action"])
        for c in calls
        if c["action"] not in permissions.declared(c["step"], sides[c["profile"]])
    }
    assert undeclared == set()


def test_a_failing_setup_stops_at_its_step_with_one_line(world, tmp_path, capsys):
    world.reset("outside-organization")
    out = tmp_path / "run"
    done = runbook_run(capsys, out)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith(
        "runbook: step 00_prerequisites failed: [same-organization] the source account is in organization "
    )
    assert lines[-1].endswith(
        "Fix: invite the target account into the source account's AWS Organization (from its "
        "management account) and accept the invitation"
    )
    assert not (out / "01_create_backup.ipynb").exists()
    assert "FAILED" in (out / "report.html").read_text()
