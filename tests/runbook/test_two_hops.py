"""A copy in two hops: an RDS database goes to another account and another Region through a vault of
the source account in the target Region, because the capability table says one copy job cannot change
both; the destination key is verified as for any copy, and a one-edit change of the table (or the run's
one_action_types) makes it one copy job again."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from runbook_lib.core import resource_types
from runbook_lib.sandbox.accounts import TARGET
from runbook_lib.steps import cleanup
from runbook_lib.steps import walkthrough as rb
from runbook_lib.steps.walkthrough import Run
from runbook_lib.troubleshooting import checks
from tests import runbook_steps
from tests.runbook_steps import prepare

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = Path(sys.executable).parent / "runbook"
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


def test_a_database_named_by_resource_name_copies_in_two_hops_and_the_copy_is_under_the_destination_key(
    aws, tmp_path, world
):
    run_values = runbook_steps.values(tmp_path, resource_name="walkthrough-db")
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
    source_key = key_arn(aws.source("kms"), "alias/cmkSource")
    untouched = json.loads(aws.source("kms").get_key_policy(KeyId=source_key, PolicyName="default")["Policy"])
    assert len(untouched["Statement"]) == 1, "the hop's key is shared, not the database's"
    findings = {f.check_id: f for f in checks.run_checks(Run("check", run_values))}
    assert findings["rds-single-hop"].status == checks.PASS
    assert findings["rds-single-hop"].finding.startswith("RDS copies in two hops: across Regions into SourceVault")
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


def test_one_action_for_rds_makes_it_one_copy_job_and_the_sandbox_follows(aws, tmp_path, world, monkeypatch):
    run_values = runbook_steps.values(tmp_path, resource_name="walkthrough-db")
    row = resource_types.TYPES["RDS"]
    flipped = dataclasses.replace(row, one_action=dataclasses.replace(row.one_action, value=True))
    monkeypatch.setitem(resource_types.TYPES, "RDS", flipped)  # as one edit of data/resource_types.json does
    world.configure(one_action_types=["RDS"])
    assert not Run("04_copy_to_target", run_values).copies_in_two_hops()
    prepare(run_values)
    first, second = copy_in_hops(run_values)
    assert first.job is not None and first.job["State"] == "COMPLETED"
    assert first.job["DestinationBackupVaultArn"] == TARGET_VAULT_ARN
    assert second.summary == "One copy job: no second hop to follow."
    assert len(aws.source("backup").list_copy_jobs()["CopyJobs"]) == 1
    assert aws.client("source", "backup", "eu-west-1").list_backup_vaults()["BackupVaultList"] == []


def test_a_dry_run_plans_both_hops_and_changes_nothing(aws, tmp_path, world):
    run_values = runbook_steps.values(tmp_path, resource_name="walkthrough-db", apply=False)
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
    assert rb.hops_line(run).startswith("Two hops: an RDS backup cannot change account and Region in one copy job")
    assert world.state() == before


def test_runbook_run_copies_walkthrough_db_in_two_hops(world, tmp_path):
    """Must show: resource_name walkthrough-db, `runbook run`, and step 05 verifies the destination key."""
    overlay = tmp_path / "db.yaml"
    overlay.write_text(yaml.safe_dump({"resource_name": "walkthrough-db"}))
    done = subprocess.run(
        [str(RUNBOOK), "run", str(ROOT / "parameters" / "sandbox.yaml"), str(overlay), "--out", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("[")]
    assert re.search(r"\[03_share_source_key\] ok [\d.]+ s: share the key with account 333333333333$", lines[3])
    assert re.search(r"\[04_copy_to_target\] ok [\d.]+ s: copy arn:aws:rds:eu-west-1:333333333333:snapshot:", lines[4])
    assert lines[5].endswith(": the copy is encrypted with alias/cmkTarget"), lines
    copied = json.loads((tmp_path / "run" / "04_copy_to_target.ipynb").read_text())
    text = "".join("".join(o.get("text", "")) for c in copied["cells"] for o in c.get("outputs", []))
    assert "Two hops: an RDS backup cannot change account and Region in one copy job" in text
    table = next(c for c in copied["cells"] if "".join(c["source"]) == "ui.table(rb.copy_jobs_table(run))")
    shown = "".join("".join(o.get("data", {}).get("text/plain", "")) for o in table["outputs"])
    assert "arn:aws:rds:eu-west-1:222222222222:snapshot:" in shown, "the first hop's job is in the jobs table"
    assert "arn:aws:rds:eu-west-1:333333333333:snapshot:" in shown, "and so is the second's"
