"""The steps as library calls against the sandbox: the copy ends encrypted with the target key."""

from __future__ import annotations

import json

import pytest

from runbook_lib.core import params
from runbook_lib.core.errors import StepFailed
from runbook_lib.steps.walkthrough import (
    Run,
    cleanup,
    prerequisites,
    share_source_key,
    start_backup,
    start_copy,
    verify_source_key,
    verify_target_key,
    wait_for_backup,
    wait_for_copy,
)


def run_all(run_dir, values=None, apply=True):  # type: ignore[no-untyped-def]
    values = values or params.validate({"run_dir": str(run_dir), "apply": apply})
    results = {}
    Run("00_prerequisites", values).carry_out(prerequisites(Run("00_prerequisites", values)))
    run = Run("01_create_backup", values)
    run.carry_out([start_backup(run)])
    results["backup"] = wait_for_backup(run, delay=1)
    results["source"] = verify_source_key(Run("02_verify_source_key", values))
    run = Run("03_share_source_key", values)
    run.carry_out([share_source_key(run)])
    run = Run("04_copy_to_target", values)
    run.carry_out([start_copy(run)])
    results["copy"] = wait_for_copy(run, delay=1)
    results["target"] = verify_target_key(Run("05_verify_target_key", values))
    return results


def test_walkthrough_end_to_end(aws, tmp_path):
    results = run_all(tmp_path)
    assert results["source"]["recovery_point_key_alias"] == "alias/cmkSource"
    assert results["source"]["vault_key_alias"] == "alias/cmkSourceVault"
    assert results["target"]["recovery_point_key_alias"] == "alias/cmkTarget"
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["04_copy_to_target"]["destination_recovery_point_arn"].startswith("arn:aws:ec2:eu-west-1::snapshot/")
    actions = [e["action"] for e in map(json.loads, (tmp_path / "changes.jsonl").read_text().splitlines())]
    assert actions == [
        "backup:UpdateGlobalSettings",
        "backup:CreateBackupVault",
        "backup:CreateBackupVault",
        "backup:PutBackupVaultAccessPolicy",
        "backup:StartBackupJob",
        "kms:PutKeyPolicy",
        "backup:StartCopyJob",
    ]


def test_second_run_changes_nothing(aws, tmp_path, world):
    run_all(tmp_path)
    before = world.state()
    log_lines = (tmp_path / "changes.jsonl").read_text()
    run_all(tmp_path)
    assert world.state() == before
    assert (tmp_path / "changes.jsonl").read_text() == log_lines


def test_apply_false_changes_nothing(aws, tmp_path, world):
    before = world.state()
    results = run_all(tmp_path, apply=False)
    planned = json.loads((tmp_path / "state.json").read_text())["planned"]
    assert [entry["action"] for entry in planned] == [
        "backup:UpdateGlobalSettings",
        "backup:CreateBackupVault",
        "backup:CreateBackupVault",
        "backup:PutBackupVaultAccessPolicy",
        "backup:StartBackupJob",
        "kms:PutKeyPolicy",
        "backup:StartCopyJob",
    ]
    assert results["target"]["status"] == "PLANNED"
    assert results["target"]["recovery_point_key_alias"] == "alias/cmkTarget"
    assert world.state() == before
    assert not (tmp_path / "changes.jsonl").exists()


def test_cleanup_removes_what_the_run_created(aws, tmp_path, world):
    run_all(tmp_path)
    values = params.validate({"run_dir": str(tmp_path), "apply": True})
    run = Run("07_cleanup", values)
    run.carry_out(cleanup(run))
    state = world.state()["backup"]
    for where in ("333333333333/eu-west-1", "222222222222/us-east-1"):
        assert state.get(where, {}).get("vaults", {}) == {}
        assert state.get(where, {}).get("recovery_points", {}) == {}


def test_a_role_named_without_its_path_runs_the_walkthrough(aws, tmp_path):
    values = params.validate({"run_dir": str(tmp_path), "apply": True, "iam_role_name": "AWSBackupDefaultServiceRole"})
    results = run_all(tmp_path, values)
    assert results["target"]["recovery_point_key_alias"] == "alias/cmkTarget"
    role = "arn:aws:iam::222222222222:role/service-role/AWSBackupDefaultServiceRole"
    assert [j["IamRoleArn"] for j in aws.source("backup").list_backup_jobs()["BackupJobs"]] == [role]
    assert [j["IamRoleArn"] for j in aws.source("backup").list_copy_jobs()["CopyJobs"]] == [role]


def test_vault_keys_by_key_id_and_alias_arn(aws, tmp_path):
    source_key_id = aws.source("kms").describe_key(KeyId="alias/cmkSourceVault")["KeyMetadata"]["KeyId"]
    values = params.validate(
        {
            "run_dir": str(tmp_path),
            "apply": True,
            "source_vault_key": source_key_id,
            "target_vault_key": "arn:aws:kms:eu-west-1:333333333333:alias/cmkTarget",
        }
    )
    results = run_all(tmp_path, values)
    assert results["source"]["vault_key_alias"] == "alias/cmkSourceVault"
    assert results["target"]["vault_key_alias"] == "alias/cmkTarget"


def test_a_real_run_after_a_dry_run_in_the_same_folder_leaves_nothing_planned(aws, tmp_path, world):
    run_all(tmp_path, apply=False)
    results = run_all(tmp_path)
    assert results["target"]["recovery_point_key_alias"] == "alias/cmkTarget"
    assert json.loads((tmp_path / "state.json").read_text())["planned"] == []


def test_a_vault_key_that_does_not_exist_is_named_in_one_line(aws, tmp_path):
    values = params.validate({"run_dir": str(tmp_path), "apply": True, "source_vault_key": "alias/nope"})
    with pytest.raises(StepFailed) as missing:
        prerequisites(Run("00_prerequisites", values))
    assert str(missing.value) == (
        "step 00_prerequisites failed: source_vault_key alias/nope is not a KMS key of the "
        "source account (222222222222) in us-east-1. Fix: set source_vault_key to a customer "
        "managed key of that account and Region"
    )
