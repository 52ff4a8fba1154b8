"""Databases to another account and another Region: one copy job since October 2025 (an RDS instance and a
Neptune cluster, with `runbook run` on the sandbox); where AWS refuses one job (the sandbox set to refuse it),
the refusal is recognised and explained with two_hop_types, which copies in two hops through a vault of the
source account in the target Region; the destination key is verified as for any copy."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from runbook_lib.aws import clients
from runbook_lib.core import permissions
from runbook_lib.core.errors import StepFailed
from runbook_lib.steps import cleanup
from runbook_lib.steps import walkthrough as rb
from runbook_lib.steps.walkthrough import Run
from runbook_lib.troubleshooting import checks
from runbook_sandbox.accounts import TARGET
from tests import runbook_steps
from tests.runbook_steps import command, copy, prepare

ROOT = Path(__file__).resolve().parents[2]
HOP_VAULT_ARN = "arn:aws:backup:eu-west-1:222222222222:backup-vault:SourceVault"
TARGET_VAULT_ARN = f"arn:aws:backup:eu-west-1:{TARGET.account_id}:backup-vault:CABTargetVault"


def copy_in_hops(run_values: dict[str, Any]) -> list[rb.Outcome]:
    """Step 04 as its notebook runs it: the copy (or first hop), then the second hop."""
    run = Run("04_copy_to_target", run_values)
    run.carry_out(rb.start_copies(run))
    first = rb.wait_for_copies(run, delay=1)
    run.carry_out(rb.second_hops(run))
    return [first, rb.wait_for_second_hop(run, delay=1)]


def key_arn(kms: Any, alias: str) -> str:
    return str(kms.describe_key(KeyId=alias)["KeyMetadata"]["Arn"])


def test_a_refused_single_copy_is_explained_and_two_hop_types_copies_the_database_in_two_hops(aws, tmp_path, world):
    world.configure(refuse_one_action_types=["RDS"])
    one_job = runbook_steps.values(tmp_path, resource_name="walkthrough-db")
    assert not Run("04_copy_to_target", one_job).copies_in_two_hops()
    prepare(one_job)
    with pytest.raises(StepFailed) as refused:
        copy(one_job)
    assert str(refused.value).startswith(
        "step 04_copy_to_target failed: [rds-single-hop] StartCopyJob refused: Copy job from us-east-1 to eu-west-1 "
        "cannot be initiated for RDS resources. Feature is not supported for provided resource type. Fix: copy in "
        "two hops: two_hop_types: [RDS] (step 00 makes vault SourceVault of the source account in eu-west-1"
    )
    assert aws.source("backup").list_copy_jobs()["CopyJobs"] == []
    again = checks.CHECKS["rds-single-hop"](checks.Facts(Run("check", one_job)))
    assert again.status == checks.FAIL and again.finding.startswith("AWS refused one copy job across account and")

    source_key = key_arn(aws.source("kms"), "alias/cmkSource")
    shared_for_one_job = aws.source("kms").get_key_policy(KeyId=source_key, PolicyName="default")["Policy"]
    run_values = {**one_job, "two_hop_types": ["RDS"]}
    run = Run("04_copy_to_target", run_values)
    assert run.copies_in_two_hops()
    assert rb.resource_arn(run) == "arn:aws:rds:us-east-1:222222222222:db:walkthrough-db"
    prepare(run_values)
    hop_kms = aws.client("source", "kms", "eu-west-1")
    hop_key = key_arn(hop_kms, "alias/cmkSourceHop")
    shared = json.loads(hop_kms.get_key_policy(KeyId=hop_key, PolicyName="default")["Policy"])
    assert f"RunbookAllowUseOfTheKey{TARGET.account_id}Run{run.state.run_id()}" in {
        s.get("Sid") for s in shared["Statement"]
    }
    untouched = aws.source("kms").get_key_policy(KeyId=source_key, PolicyName="default")["Policy"]
    assert untouched == shared_for_one_job, "two hops share the hop's key, not the database's"
    findings = {f.check_id: f for f in checks.run_checks(Run("check", run_values))}
    assert findings["rds-single-hop"].status == checks.PASS
    assert findings["rds-single-hop"].finding == (
        "RDS copies in two hops: across Regions into SourceVault of the source account, then across accounts "
        "(two_hop_types names it)"
    )
    assert (
        findings["source-key-shared"].status == checks.PASS and "cmkSourceHop" in findings["source-key-shared"].finding
    )

    first, second = copy_in_hops(run_values)

    assert first.summary.startswith("First hop's recovery point: arn:aws:rds:eu-west-1:222222222222:snapshot:")
    assert second.job is not None and second.job["State"] == "COMPLETED"
    hops = aws.source("backup").list_copy_jobs()["CopyJobs"]
    seconds = aws.client("source", "backup", "eu-west-1").list_copy_jobs()["CopyJobs"]
    assert [job["DestinationBackupVaultArn"] for job in hops] == [HOP_VAULT_ARN]
    assert [job["DestinationBackupVaultArn"] for job in seconds] == [TARGET_VAULT_ARN]
    assert seconds[0]["SourceRecoveryPointArn"] == hops[0]["DestinationRecoveryPointArn"]
    hop_point = aws.client("source", "backup", "eu-west-1").describe_recovery_point(
        BackupVaultName="SourceVault", RecoveryPointArn=hops[0]["DestinationRecoveryPointArn"]
    )
    assert hop_point["EncryptionKeyArn"] == hop_key
    verified = rb.verify_target_key(Run("05_verify_target_key", run_values))
    assert (
        verified["recovery_point_key_arn"] == verified["vault_key_arn"] == key_arn(aws.target("kms"), "alias/cmkTarget")
    )
    assert verified["recovery_point_arn"] == seconds[0]["DestinationRecoveryPointArn"]

    state = world.state()
    assert [outcome.summary for outcome in copy_in_hops(run_values)] == [first.summary, second.summary]
    assert world.state() == state, "a rerun waits for the run's hops and starts none"

    tidy = Run("07_cleanup", run_values)
    planned = cleanup.cleanup(tidy)
    hop_changes = [c for c in planned if (c.profile, c.region) == ("sandbox-source", "eu-west-1")]
    assert [c.action for c in hop_changes] == ["backup:DeleteRecoveryPoint", "backup:DeleteBackupVault"]
    tidy.carry_out(planned)
    assert aws.client("source", "backup", "eu-west-1").list_backup_vaults()["BackupVaultList"] == []


def test_a_dry_run_plans_both_hops_and_changes_nothing(aws, tmp_path, world):
    run_values = runbook_steps.values(tmp_path, resource_name="walkthrough-db", apply=False, two_hop_types=["RDS"])
    before = world.state()
    run = Run("00_prerequisites", run_values)
    planned = rb.prerequisites(run)
    run.carry_out(planned)
    assert any(c.action == "backup:CreateBackupVault" and c.target == "SourceVault" and c.region == "eu-west-1"
               for c in planned)  # fmt: skip
    run = Run("03_share_source_key", run_values)
    shared = rb.share_source_keys(run)
    assert shared[0].region == "eu-west-1" and any("encrypts the hop vault SourceVault" in n for n in shared[0].notes)
    run = Run("04_copy_to_target", run_values)
    first = rb.start_copies(run)
    run.carry_out(first)
    second = rb.second_hops(run)
    assert first[0].summary.startswith("first hop: copy across Regions, in the source account: ")
    assert first[0].target == HOP_VAULT_ARN and second[0].target == TARGET_VAULT_ARN
    assert second[0].blocked_by == "the first hop makes the recovery point (planned, not made yet)"
    assert rb.hops_line(run).startswith("Two hops: two_hop_types names RDS, for where AWS refuses one copy job")
    assert world.state() == before


def runbook_run_in_one_job(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, resource_name: str
) -> tuple[list[str], str, list[dict[str, Any]]]:
    """`runbook run` of the default steps on the sandbox for one resource (in this process): its step lines, the
    text step 04 and 05 showed, and its calls (each declared by its step)."""
    overlay = tmp_path / "resource.yaml"
    overlay.write_text(yaml.safe_dump({"resource_name": resource_name}))
    calls = tmp_path / "calls.jsonl"
    monkeypatch.setenv(clients.CALL_LOG_ENV, str(calls))
    done = command(
        capsys, "run", str(ROOT / "parameters" / "sandbox.yaml"), str(overlay), "--out", str(tmp_path / "run")
    )
    assert done.returncode == 0, done.stderr
    shown = ""
    for step in ("04_copy_to_target", "05_verify_target_key"):
        notebook = json.loads((tmp_path / "run" / f"{step}.ipynb").read_text())
        shown += "".join(
            "".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
            for c in notebook["cells"]
            for o in c.get("outputs", [])
        )
    logged = [json.loads(line) for line in calls.read_text().splitlines()]
    return [line for line in done.stdout.splitlines() if line.startswith("[")], shown, logged


SIDES = {"sandbox-source": "source", "sandbox-target": "target", "sandbox-management": "management"}


@pytest.mark.parametrize(
    "resource_name, snapshot",
    [("walkthrough-db", "snapshot"), ("walkthrough-neptune", "cluster-snapshot")],
)
def test_runbook_run_copies_walkthrough_db_and_neptune_in_one_job_each(
    world, aws, tmp_path, capsys, monkeypatch, resource_name, snapshot
):
    """Must show: resource_name walkthrough-db (RDS) or walkthrough-neptune (a Neptune cluster), `runbook run`, one
    copy job across account and Region, and step 05 verifies the destination key, the copy job's beside it."""
    lines, shown, calls = runbook_run_in_one_job(capsys, monkeypatch, tmp_path, resource_name)
    assert re.search(
        rf"\[04_copy_to_target\] ok [\d.]+ s: copy arn:aws:rds:eu-west-1:333333333333:{snapshot}:", lines[4]
    )
    assert lines[5].endswith(": the copy is encrypted with alias/cmkTarget"), lines
    assert "One copy job: nothing more to plan here." in shown
    assert "copy job key alias" in shown and "DestinationEncryptionKeyArn" not in shown
    copies = aws.source("backup").list_copy_jobs()["CopyJobs"]
    assert [job["DestinationBackupVaultArn"] for job in copies] == [TARGET_VAULT_ARN], "one job, no hop"
    assert aws.client("source", "backup", "eu-west-1").list_backup_vaults()["BackupVaultList"] == []
    undeclared = {
        (c["step"], SIDES[c["profile"]], c["action"])
        for c in calls
        if c["action"] not in permissions.declared(c["step"], SIDES[c["profile"]])
    }
    assert undeclared == set()
