"""A dry run (apply: false) plans every step, changes nothing in AWS, and never ends in a traceback."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.manager import start_new_kernel
from nbclient import NotebookClient

from runbook_lib.app.runner import ALL_STEPS, DEFAULT_STEPS, notebook_path
from runbook_lib.aws.context import Run
from runbook_lib.core import params, permissions
from runbook_lib.troubleshooting import checks
from tests.runbook_steps import command, notebook_outputs, parameter_file

SIDES = {"sandbox-source": "source", "sandbox-target": "target", "sandbox-management": "management"}


def test_runbook_run_with_apply_false_plans_every_step_and_changes_nothing(world, tmp_path, monkeypatch, capsys):
    before = world.state()
    out = tmp_path / "run"
    calls = tmp_path / "calls.jsonl"
    monkeypatch.setenv("RUNBOOK_CALL_LOG", str(calls))
    done = command(
        capsys,
        "run",
        str(parameter_file(tmp_path, apply=False)),
        "--out",
        str(out),
        "--steps",
        ",".join((*DEFAULT_STEPS, "07_cleanup")),
    )
    monkeypatch.delenv("RUNBOOK_CALL_LOG")  # the log holds the run's calls alone, as the run's process had it
    assert done.returncode == 0, done.stderr
    assert world.state() == before, "a dry run must change nothing in AWS"
    assert not (out / "changes.jsonl").exists()
    for step in (*DEFAULT_STEPS, "07_cleanup"):
        assert not notebook_outputs(out / f"{step}.ipynb")[1], f"{step} has error output"

    printed = done.stdout
    assert "Dry run (apply: false): nothing was changed in AWS. Planned changes:" in printed
    results = {line.split("]")[0][1:]: line for line in printed.splitlines() if line.startswith("[")}
    assert " ok " in results["00_prerequisites"] and ": 4 changes planned" in results["00_prerequisites"]
    assert results["03_share_source_key"].endswith(": share the key with account 333333333333")
    planned = [line for line in printed.splitlines() if line.startswith("  [")]
    assert [line.split("]")[0].strip(" [") + " " + line.split("] ")[1].split(" on ")[0] for line in planned] == [
        "00_prerequisites backup:UpdateGlobalSettings",
        "00_prerequisites backup:CreateBackupVault",
        "00_prerequisites backup:CreateBackupVault",
        "00_prerequisites backup:PutBackupVaultAccessPolicy",
        "01_create_backup backup:StartBackupJob",
        "03_share_source_key kms:PutKeyPolicy",
        "04_copy_to_target backup:StartCopyJob",
    ]
    report = (out / "report.html").read_text()
    for action in (
        "backup:UpdateGlobalSettings",
        "backup:PutBackupVaultAccessPolicy",
        "backup:StartBackupJob",
        "kms:PutKeyPolicy",
        "backup:StartCopyJob",
    ):
        assert action in report.split("<h2 id='planned'>")[1]
    assert "RunbookAllowUseOfTheKey333333333333" in report

    share, _ = notebook_outputs(out / "03_share_source_key.ipynb")
    assert "--- key policy (now)" in share and '+      "Sid": "RunbookAllowUseOfTheKey333333333333Run' in share
    assert "alias/cmkSource is the key of arn:aws:ec2:us-east-1:222222222222:volume/" in share
    verify, _ = notebook_outputs(out / "02_verify_source_key.ipynb")
    assert (
        "The backup planned in 01_create_backup will be encrypted with alias/cmkSource while its vault uses "
        "alias/cmkSourceVault."
    ) in verify
    dry = Run("check", params.load(parameter_file(tmp_path, apply=False, run_dir=str(out))))
    findings = checks.run_checks(dry, as_planned=True)
    assert {f.check_id: f.status for f in findings} == dict.fromkeys(checks.BEFORE_COPY, "pass")
    finding = {f.check_id: f.finding for f in findings}
    assert finding["cross-account-enabled"] == (
        "cross-account backup will be enabled (as planned in 00_prerequisites, not made yet)"
    )
    assert finding["recovery-point-ready"] == "the backup planned in 01_create_backup will make it (not made yet)"
    assert finding["source-key-shared"].endswith("(as planned in 03_share_source_key, not made yet)")
    as_is = {f.check_id: f.status for f in checks.run_checks(dry)}
    assert as_is["cross-account-enabled"] == as_is["recovery-point-ready"] == "fail", "checks read AWS as it is"
    check = command(capsys, "check", str(parameter_file(tmp_path, apply=False, run_dir=str(out))))
    assert check.returncode == 1 and "[cross-account-enabled]" in check.stderr
    copy, _ = notebook_outputs(out / "04_copy_to_target.ipynb")
    assert "copy (the recovery point of the backup planned in 01_create_backup) to arn:aws:backup:eu-west-1:" in copy
    assert "The copy is planned, not started (apply is false)" in copy
    target, _ = notebook_outputs(out / "05_verify_target_key.ipynb")
    assert (
        "The copy planned in 04_copy_to_target will be encrypted with alias/cmkTarget, the key of vault CABTargetVault."
    ) in target

    undeclared = {
        (c["step"], SIDES[c["profile"]], c["action"])
        for c in map(json.loads, calls.read_text().splitlines())
        if c["action"] not in permissions.declared(c["step"], SIDES[c["profile"]])
    }
    assert undeclared == set()


@pytest.fixture
def kernel(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """One kernel for several notebooks, as a person's JupyterLab keeps one per notebook: started once
    here because a kernel's start is most of the time a notebook takes."""
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    manager, client = start_new_kernel(kernel_name="python3", cwd=str(tmp_path))
    yield manager, client
    client.stop_channels()
    manager.shutdown_kernel(now=True)


def run_all_alone(kernel, step: str, folder: Path) -> Path:  # type: ignore[no-untyped-def]
    """The notebook as Run All runs it in JupyterLab, with its own parameter defaults (apply = False), in a
    kernel whose variables, clients, working folder and ad-hoc state folder are fresh."""
    manager, client = kernel
    folder.mkdir()
    client.execute_interactive(
        f"%reset -f\nimport os\nos.chdir({str(folder)!r})\nfrom runbook_lib.aws import clients\nclients.forget()\n"
        # The repository's runs/adhoc, where a notebook keeps its state, is this test's own folder.
        f"from runbook_lib.core import runstate\nrunstate.DEFAULT_RUN_DIR = runstate.Path({str(folder / 'adhoc')!r})",
        timeout=60,
    )
    notebook = nbformat.read(notebook_path(step), as_version=4)
    executor = NotebookClient(notebook, km=manager, timeout=300, allow_errors=True)
    executor.kc = client
    executor.execute()
    executed = folder / f"{step}.ipynb"
    nbformat.write(notebook, executed)
    return executed


def test_run_all_with_apply_false_alone_on_a_fresh_sandbox_ends_without_an_error(world, tmp_path, kernel):
    missing = {
        "01_create_backup": "blocked until step 00_prerequisites creates vault SourceVault in the source account",
        "04_copy_to_target": "copy (no recovery point yet: step 01_create_backup makes it) to arn:aws:backup:",
        "02_verify_source_key": "No recovery point yet (step 01_create_backup makes it); it will be encrypted with "
        "alias/cmkSource while its vault uses alias/cmkSourceVault.",
        "05_verify_target_key": "No copy yet (step 04_copy_to_target makes it); it will be encrypted with "
        "alias/cmkTarget, the key of vault CABTargetVault.",
    }
    for step in ALL_STEPS:
        world.reset("walkthrough")
        before = world.state()
        text, errors = notebook_outputs(run_all_alone(kernel, step, tmp_path / step))
        assert errors == [], step
        assert world.state() == before, f"{step} alone with apply = False changed AWS"
        if step in missing:
            assert missing[step] in text, step
