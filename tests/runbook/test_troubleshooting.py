"""Each known failure: the preflight check names it before a copy; forced, the copy fails with AWS's
message; diagnosis names the same check with evidence and fix; after the fix, checks pass and the
copy completes."""

from __future__ import annotations

from typing import Any

import pytest

from runbook_lib.core.errors import StepFailed
from runbook_lib.steps.walkthrough import (
    Run,
    prerequisites,
    second_hops,
    start_copies,
    verify_target_key,
    wait_for_copies,
    wait_for_second_hop,
)
from runbook_lib.troubleshooting import checks, diagnose, fixes, registry
from runbook_sandbox.accounts import TARGET
from tests import runbook_steps
from tests.runbook_steps import copy, prepare


def values(tmp_path, **overrides: Any) -> dict[str, Any]:
    return runbook_steps.values(tmp_path, **{"force_copy": True, **overrides})


def blocking_ids(run_values: dict[str, Any]) -> list[str]:
    return [f.check_id for f in checks.blocking(checks.run_checks(Run("check", run_values)))]


def assert_failure_reproduced(aws, run_values: dict[str, Any], check_id: str) -> None:  # type: ignore[no-untyped-def]
    assert check_id in blocking_ids(run_values)
    unforced = {**run_values, "force_copy": False}
    with pytest.raises(StepFailed) as refused:
        copy(unforced)
    assert str(refused.value).startswith("step 04_copy_to_target failed: [") and "Fix: " in str(refused.value)
    assert aws.source("backup").list_copy_jobs()["CopyJobs"] == [], "no copy may start when a check blocks"
    with pytest.raises(StepFailed) as failed:
        copy(run_values)
    assert f"[{check_id}]" in str(failed.value) and registry.BY_ID[check_id].matches(str(failed.value))
    jobs = aws.source("backup").list_copy_jobs(ByState="FAILED")["CopyJobs"]
    assert [registry.match(j["StatusMessage"]) for j in jobs] == [registry.BY_ID[check_id]]
    found = diagnose.failed_jobs(Run("06_troubleshoot", run_values))
    assert [d.check_id for d in found] == [check_id]
    assert found[0].evidence and found[0].fix and found[0].evidence["finding now"].startswith("fail: ")


def assert_fixed(run_values: dict[str, Any]) -> None:
    assert blocking_ids(run_values) == []
    job = copy({**run_values, "force_copy": False})
    assert job["State"] == "COMPLETED"
    found = verify_target_key(Run("05_verify_target_key", run_values))
    assert found["recovery_point_key_arn"] == found["vault_key_arn"]


def apply_fix(run_values: dict[str, Any], check_id: str) -> None:
    run = Run("06_troubleshoot", run_values)
    changes = fixes.plan(run, check_id, run.reencrypt_key)
    assert changes and all(c.needed for c in changes)
    run.carry_out(changes)


def test_failure_1_same_organization(world, aws, tmp_path):
    world.reset("outside-organization")
    run_values = values(tmp_path)
    prepare(run_values)
    assert_failure_reproduced(aws, run_values, "same-organization")
    with pytest.raises(StepFailed, match=r"\[same-organization\]"):
        fixes.plan(Run("06_troubleshoot", run_values), "same-organization")
    world.join(TARGET.account_id)
    assert_fixed(run_values)


def test_failure_2_source_key_shared(world, aws, tmp_path):
    run_values = values(tmp_path)
    prepare(run_values, share=False)
    assert_failure_reproduced(aws, run_values, "source-key-shared")
    apply_fix(run_values, "source-key-shared")
    assert_fixed(run_values)


def test_failure_3_target_vault_policy(world, aws, tmp_path):
    run_values = values(tmp_path)
    prepare(run_values)
    aws.target("backup").delete_backup_vault_access_policy(BackupVaultName="CABTargetVault")
    assert_failure_reproduced(aws, run_values, "target-vault-policy")
    apply_fix(run_values, "target-vault-policy")
    assert_fixed(run_values)


def test_failure_4_source_key_customer_managed(world, aws, tmp_path):
    run_values = values(tmp_path / "first", resource_name="default-key-volume")
    prepare(run_values)
    assert_failure_reproduced(aws, run_values, "source-key-customer-managed")
    apply_fix(run_values, "source-key-customer-managed")
    volume = Run("check", run_values).state.get("fixes", "reencrypted_volume_arn")
    again = values(tmp_path / "second", resource_arn=volume, force_copy=False)
    prepare(again)
    assert_fixed(again)


def test_failure_5_target_vault_customer_key(world, aws, tmp_path):
    world.reset("default-key-target-vault")
    run_values = values(tmp_path)
    prepare(run_values)
    assert_failure_reproduced(aws, run_values, "target-vault-customer-key")
    with pytest.raises(StepFailed, match=r"\[target-vault-customer-key\].*Fix: a vault's key cannot change"):
        fixes.plan(Run("06_troubleshoot", run_values), "target-vault-customer-key")
    fixed = {**run_values, "target_vault_name": "CABTargetVaultCMK", "force_copy": False}
    run = Run("00_prerequisites", fixed)
    run.carry_out(prerequisites(run))
    assert_fixed(fixed)


def test_failure_6_rds_single_hop(world, aws, tmp_path):
    """AWS copies a database across account and Region in one job since October 2025, so no check can see its
    refusal coming; where AWS still refuses (the sandbox set to, as lesson 6 says), step 04 names the failure
    with the fix, the run folder keeps it and the check names it from then on; two_hop_types is the fix."""
    lesson = registry.BY_ID["rds-single-hop"].lesson
    assert lesson is not None and not lesson.seen_before_copy
    world.configure(**lesson.sandbox_settings)
    run_values = values(tmp_path, **lesson.overlay)
    prepare(run_values)
    assert "rds-single-hop" not in blocking_ids(run_values), "AWS's answer cannot be seen before the copy"
    with pytest.raises(StepFailed) as refused:
        copy(run_values)
    assert "[rds-single-hop] StartCopyJob refused: Copy job from us-east-1 to eu-west-1 cannot be initiated" in str(
        refused.value
    )
    assert "Fix: copy in two hops: two_hop_types: [RDS]" in str(refused.value)
    assert registry.BY_ID["rds-single-hop"].matches(str(refused.value))
    assert aws.source("backup").list_copy_jobs()["CopyJobs"] == [], "StartCopyJob refused: no job to diagnose"
    assert blocking_ids(run_values) == ["rds-single-hop"], "the run folder keeps the refusal"
    fixed = {**run_values, "two_hop_types": ["RDS"], "force_copy": False}
    prepare(fixed)
    assert blocking_ids(fixed) == []
    run = Run("04_copy_to_target", fixed)
    run.carry_out(start_copies(run))
    wait_for_copies(run, delay=1)
    run.carry_out(second_hops(run))
    assert wait_for_second_hop(run, delay=1).job["State"] == "COMPLETED"  # type: ignore[index]
    found = verify_target_key(Run("05_verify_target_key", fixed))
    assert found["recovery_point_key_arn"] == found["vault_key_arn"]


def test_failure_7_cross_account_enabled(world, aws, tmp_path):
    run_values = values(tmp_path, management_profile="")
    prepare(run_values)
    assert_failure_reproduced(aws, run_values, "cross-account-enabled")
    apply_fix({**run_values, "management_profile": "sandbox-management"}, "cross-account-enabled")
    assert_fixed(run_values)


def test_unknown_message_stays_unknown(world, aws, tmp_path):
    run_values = values(tmp_path, force_copy=False)
    prepare(run_values)
    world.configure(fail_next_copy="Something nobody has seen before")
    with pytest.raises(StepFailed, match=r"\[unknown\]"):
        copy(run_values)
    found = diagnose.failed_jobs(Run("06_troubleshoot", run_values))
    assert [(d.check_id, d.message) for d in found] == [("unknown", "Something nobody has seen before")]


def test_healthy_walkthrough_passes_every_check_and_checking_changes_nothing(world, aws, tmp_path):
    run_values = values(tmp_path, force_copy=False)
    prepare(run_values)
    before = world.state()
    findings = checks.run_checks(Run("check", run_values))
    assert {f.status for f in findings} == {"pass"}, [f.row() for f in findings if f.status != "pass"]
    assert world.state() == before
