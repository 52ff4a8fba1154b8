"""`make demo KEEP_SANDBOX=1`, then the restore drill, as the README tells people to run them: the drill,
in a run folder of its own, finds the demo's copy, restores it under alias/cmkTarget, records the
verdict with AWS Backup and leaves no volume behind."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import boto3

from runbook_sandbox import process

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = Path(sys.executable).parent / "runbook"


def test_make_demo_keeps_its_sandbox_for_the_restore_drill(tmp_path, monkeypatch):
    sandbox, demo_run = tmp_path / "sandbox", tmp_path / "demo"
    demo = subprocess.run(
        # -o bytecode: the environment make test built is the one to use, whatever changed since.
        ["make", "-o", "bytecode", "demo", "KEEP_SANDBOX=1", f"DEMO_SANDBOX={sandbox}", f"DEMO_RUN={demo_run}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    try:
        assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]
        assert f"The sandbox keeps running: source {sandbox}/sandbox.env" in demo.stdout
        running = process.find(sandbox)
        assert running is not None, "KEEP_SANDBOX=1 leaves the sandbox running"
        for name, value in running.environment().items():
            monkeypatch.setenv(name, value)
        drill = subprocess.run(
            [str(RUNBOOK), "run", str(ROOT / "parameters" / "sandbox.yaml"), "--steps", "08_restore_drill"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, **running.environment()},
        )
        assert drill.returncode == 0, drill.stderr
        line = next(line for line in drill.stdout.splitlines() if line.startswith("[08_restore_drill]"))
        assert re.search(r": 3 changes made; the restored volume is encrypted with alias/cmkTarget: SUCCESSFUL$", line)
        target = boto3.Session(profile_name="sandbox-target")
        jobs = target.client("backup", region_name="eu-west-1").list_restore_jobs()["RestoreJobs"]
        assert [(job["Status"], job["ValidationStatus"]) for job in jobs] == [("COMPLETED", "SUCCESSFUL")]
        assert target.client("ec2", region_name="eu-west-1").describe_volumes()["Volumes"] == [], "no drill volume"
    finally:
        process.stop(sandbox)
