"""Step 08, the restore drill: the copy restores in the destination account under the destination key,
the verdict is recorded with AWS Backup and nothing is left behind; what stops a restore is named
before it (restore checks), explained after a forced one (diagnosis), and fixed (runbook fix)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from runbook_lib.aws import restores
from runbook_lib.core.errors import StepFailed
from runbook_lib.steps import cleanup, restore
from runbook_lib.steps.walkthrough import Run
from runbook_lib.troubleshooting import checks, diagnose, fixes, registry
from runbook_policy import iam_policy
from runbook_sandbox.accounts import TARGET
from tests import runbook_steps
from tests.runbook_steps import copy, prepare

DRILL = "08_restore_drill"
ROLE_ARN = f"arn:aws:iam::{TARGET.account_id}:role/service-role/AWSBackupDefaultServiceRole"
KEY_ARN = f"arn:aws:kms:eu-west-1:{TARGET.account_id}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ROOT = f"arn:aws:iam::{TARGET.account_id}:root"


def copied(tmp_path, **overrides: Any) -> dict[str, Any]:
    """Parameters of a run whose copy is done (steps 00 to 04)."""
    run_values = runbook_steps.values(tmp_path, **overrides)
    prepare(run_values)
    assert copy(run_values)["State"] == "COMPLETED"
    return run_values


def drill(run_values: dict[str, Any]) -> tuple[Run, dict[str, Any]]:
    """Step 08 as the notebook runs it: restore, follow, verify, record, delete."""
    run = Run(DRILL, run_values)
    run.carry_out([restore.start_restore(run)])
    restore.wait_for_restore(run, delay=1)
    found = restore.verify_restore(run)
    run.carry_out([restore.record_validation(run), restore.remove_restored(run)])
    return run, found


def test_the_drill_restores_the_copy_under_the_destination_key_records_it_and_leaves_nothing(aws, tmp_path, world):
    run_values = copied(tmp_path)
    findings = checks.run_checks(Run(DRILL, run_values), checks.BEFORE_RESTORE)
    assert [(f.check_id, f.status) for f in findings] == [
        ("restore-role-exists", "pass"),
        ("restore-key-usable", "pass"),
    ]
    assert "the role's policies grant it" in findings[1].finding
    volumes_before = {v["VolumeId"] for v in aws.target("ec2").describe_volumes()["Volumes"]}

    run, found = drill(run_values)

    assert found["verdict"] == "SUCCESSFUL" and found["key alias"] == "alias/cmkTarget"
    assert found["availability zone"] == "eu-west-1a" and found["encrypted"] is True
    job = aws.target("backup").describe_restore_job(RestoreJobId=found["restore job"])
    assert job["Status"] == "COMPLETED" and job["ValidationStatus"] == "SUCCESSFUL"
    assert "encrypted with alias/cmkTarget, the destination vault's key" in job["ValidationStatusMessage"]
    assert {v["VolumeId"] for v in aws.target("ec2").describe_volumes()["Volumes"]} == volumes_before
    assert restore.conclusion(run) == (
        f"The copy restores: volume {found['restored volume']} was encrypted with alias/cmkTarget; the verdict "
        "SUCCESSFUL is recorded with AWS Backup; the volume is deleted."
    )
    actions = [entry["action"] for entry in run.state.changes.entries() if entry["step"] == DRILL]
    assert actions == ["backup:StartRestoreJob", "backup:PutRestoreValidationResult", "ec2:DeleteVolume"]

    state = world.state()
    again = Run(DRILL, run_values)
    changes = [restore.start_restore(again)]
    again.carry_out(changes)
    restore.wait_for_restore(again, delay=1)
    assert restore.verify_restore(again) == found
    changes += [restore.record_validation(again), restore.remove_restored(again)]
    again.carry_out(changes[1:])
    assert [c.needed for c in changes] == [False, False, False]
    assert world.state() == state, "a second drill with the same run folder changes nothing"


def test_a_dry_run_of_the_drill_plans_every_change_and_restores_nothing(aws, tmp_path, world):
    run_values = copied(tmp_path)
    before = world.state()
    run = Run(DRILL, {**run_values, "apply": False})
    start = restore.start_restore(run)
    run.carry_out([start])
    assert restore.wait_for_restore(run).summary.startswith("The restore is planned, not started")
    assert restore.verify_restore(run)["verdict"] == "(planned, not made yet)"
    later = [restore.record_validation(run), restore.remove_restored(run)]
    run.carry_out(later)
    assert start.needed and "as a new EBS volume in eu-west-1a, encrypted with alias/cmkTarget" in start.summary
    assert [c.blocked_by for c in later] == ["the restore (planned, not made yet)"] * 2
    assert restore.conclusion(run).startswith("The restore is planned, not made")
    assert world.state() == before


def test_keep_restored_keeps_the_volume_until_cleanup_deletes_it(aws, tmp_path, world):
    run_values = copied(tmp_path, keep_restored=True, restore_availability_zone="eu-west-1b")
    run, found = drill(run_values)
    volume = aws.target("ec2").describe_volumes(VolumeIds=[found["restored volume"]])["Volumes"][0]
    assert volume["AvailabilityZone"] == "eu-west-1b"
    assert restore.conclusion(run).endswith("the volume is kept (keep_restored).")
    tidy = Run("07_cleanup", run_values)
    planned = cleanup.cleanup(tidy)
    assert any(c.action == "ec2:DeleteVolume" and c.needed for c in planned)
    tidy.carry_out(planned)
    with pytest.raises(aws.target("ec2").exceptions.ClientError, match="InvalidVolume.NotFound"):
        aws.target("ec2").describe_volumes(VolumeIds=[found["restored volume"]])


def test_a_restore_role_that_does_not_exist_stops_the_drill_before_the_restore(aws, tmp_path, world):
    run_values = copied(tmp_path, restore_role_name="NoSuchRestoreRole")
    finding = checks.run_checks(Run(DRILL, run_values), ("restore-role-exists",))[0]
    assert finding.status == "fail" and "NoSuchRestoreRole does not exist in the destination account" in finding.finding
    with pytest.raises(StepFailed, match=r"\[restore-role-exists\]"):
        restore.start_restore(Run(DRILL, run_values))
    assert aws.target("backup").list_restore_jobs()["RestoreJobs"] == []


def test_a_key_that_denies_the_restore_role_is_caught_diagnosed_and_fixed(aws, tmp_path, world):
    world.reset("target-key-denies-restore")
    run_values = copied(tmp_path)
    finding = checks.run_checks(Run(DRILL, run_values), ("restore-key-usable",))[0]
    assert finding.status == "fail"
    assert finding.finding == (
        "alias/cmkTarget: statement 'DenyRestoreRole' of the key policy denies restore role "
        "AWSBackupDefaultServiceRole kms:Decrypt (an explicit Deny wins)"
    )
    assert finding.fix == "remove statement 'DenyRestoreRole' (runbook fix restore-key-usable plans its removal)"
    with pytest.raises(StepFailed, match=r"^step 08_restore_drill failed: \[restore-key-usable\] alias/cmkTarget"):
        restore.start_restore(Run(DRILL, run_values))
    assert aws.target("backup").list_restore_jobs()["RestoreJobs"] == [], "no restore may start when a check blocks"

    forced = {**run_values, "force_copy": True}
    run = Run(DRILL, forced)
    run.carry_out([restore.start_restore(run)])
    with pytest.raises(StepFailed) as failed:
        restore.wait_for_restore(run, delay=1)
    assert str(failed.value).startswith("step 08_restore_drill failed: [restore-key-usable] restore job ")
    assert "is not authorized to perform: kms:" in str(failed.value)
    found = diagnose.failed_jobs(Run("06_troubleshoot", forced))
    assert [(d.kind, d.check_id) for d in found] == [("restore", "restore-key-usable")]
    assert found[0].evidence["finding now"].startswith("fail: alias/cmkTarget: statement 'DenyRestoreRole'")
    assert registry.match(found[0].message) is registry.BY_ID["restore-key-usable"]

    fixing = Run("06_troubleshoot", run_values)
    changes = fixes.plan(fixing, "restore-key-usable")
    assert [c.action for c in changes] == ["kms:PutKeyPolicy"]
    assert '-      "Sid": "DenyRestoreRole"' in changes[0].diff
    fixing.carry_out(changes)
    kms = aws.target("kms")
    key_arn = kms.describe_key(KeyId="alias/cmkTarget")["KeyMetadata"]["Arn"]
    policy = json.loads(kms.get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"])
    assert [s.get("Sid") for s in policy["Statement"]] == ["Enable IAM User Permissions"]
    assert fixes.plan(Run("06_troubleshoot", run_values), "restore-key-usable") == []
    run, verified = drill({**run_values, "run_dir": str(tmp_path / "after-fix")})
    assert verified["verdict"] == "SUCCESSFUL"


# ----- the decision, on policies as written ---------------------------------------------------------


def decide(key_policy: dict[str, Any], role_policies: dict[str, dict[str, Any]] | None = None) -> Any:
    read: list[str] = []

    def policies() -> dict[str, dict[str, Any]]:
        read.append("read")
        return role_policies or {}

    principal = iam_policy.Principal(TARGET.account_id, ROLE_ARN, "o-sandbox")
    decision = restores.decide(key_policy, KEY_ARN, principal, "eu-west-1", policies)
    return decision, bool(read)


def allow(principal: Any, actions: Any = "kms:*", **more: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": principal, "Action": actions, "Resource": "*", **more}


def test_a_key_policy_naming_the_role_grants_unless_the_role_policies_deny():
    decision, read = decide({"Statement": [allow({"AWS": ROLE_ARN})]})
    assert decision.allowed and not decision.through_iam and read
    deny = {"Sid": "NoKms", "Effect": "Deny", "Action": "kms:*", "Resource": "*"}
    decision, _ = decide({"Statement": [allow({"AWS": ROLE_ARN})]}, {"Guard": {"Statement": [deny]}})
    assert (decision.outcome, decision.where, decision.action) == (
        iam_policy.DENY,
        restores.ROLE_POLICIES,
        "kms:DescribeKey",
    )


def test_the_account_root_hands_the_decision_to_the_role_policies():
    key = {"Statement": [allow({"AWS": ROOT})]}
    decision, read = decide(key, {"Empty": {"Statement": []}})
    assert read and decision.outcome == iam_policy.IMPLICIT_DENY
    assert (decision.where, decision.action) == (restores.ROLE_POLICIES, "kms:DescribeKey")
    granting = {"Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}
    assert decide(key, {"Granting": granting})[0].allowed


def test_a_condition_the_evaluator_does_not_model_makes_the_restore_check_unknown():
    odd = allow({"AWS": ROLE_ARN}, Condition={"StringEquals": {"aws:SourceVpce": "vpce-1"}})
    decision, _ = decide({"Statement": [odd]})
    assert decision.outcome == iam_policy.UNDETERMINED and decision.statements == (odd,)


def test_an_explicit_deny_in_the_role_policies_refuses_the_restore():
    key = {"Statement": [allow({"AWS": ROOT})]}
    deny = {"Sid": "NoDecrypt", "Effect": "Deny", "Action": "kms:Decrypt", "Resource": "*"}
    granting = {"Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}, deny]}
    decision, _ = decide(key, {"Mixed": granting})
    assert (decision.outcome, decision.where, decision.action) == (
        iam_policy.DENY,
        restores.ROLE_POLICIES,
        "kms:Decrypt",
    )
