"""Cleanup finishes and explains: it deletes only the run's own recovery points and the vaults it made
and left empty, keeps the others saying why, converges on a rerun, and with revert_sharing puts the
key policy, the vault policy and the organization's setting back as they were before the run."""

from __future__ import annotations

import contextlib
import io
import json

from runbook_lib.aws.context import Run
from runbook_lib.aws.keys import share_statements
from runbook_lib.core import permissions
from runbook_lib.display import console
from runbook_lib.steps import cleanup
from runbook_sandbox.testing import walkthrough as steps
from tests.runbook_steps import command, copy, notebook_outputs, parameter_file, prepare, values

SOURCE_AT, TARGET_AT = "222222222222/us-east-1", "333333333333/eu-west-1"


def run_walkthrough(tmp_path, **overrides):  # type: ignore[no-untyped-def]
    """Steps 00 to 04 in-process; the run's own recovery points (source, destination)."""
    run_values = values(tmp_path / "run", **overrides)
    prepare(run_values)
    job = copy(run_values)
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    return run_values, (state["01_create_backup"]["recovery_point_arn"], job["DestinationRecoveryPointArn"])


def points_from_outside(aws):  # type: ignore[no-untyped-def]
    """A backup and its copy made outside the run, into the same two vaults."""
    source = steps.back_up(aws, steps.volume_arn(aws))
    job = steps.copy(aws, source)
    assert job["State"] == "COMPLETED", job
    return source, job["DestinationRecoveryPointArn"]


def clean(run_values, **overrides):  # type: ignore[no-untyped-def]
    """Step 07 as the notebook runs it; its changes and all it shows (the plan, then each change)."""
    run = Run("07_cleanup", {**run_values, **overrides})
    changes = cleanup.cleanup(run)
    shown = io.StringIO()
    with contextlib.redirect_stdout(shown), console.messages_on_stdout():
        print(cleanup.plan_text(run, changes))
        run.carry_out(changes)
    return changes, shown.getvalue()


def key_policy(aws, alias="alias/cmkSource"):  # type: ignore[no-untyped-def]
    kms = aws.source("kms")
    return kms.get_key_policy(KeyId=steps.key_arn(kms, alias), PolicyName="default")["Policy"]


def test_cleanup_keeps_vaults_holding_other_points_and_a_rerun_changes_nothing(aws, world, tmp_path):
    run_values, own = run_walkthrough(tmp_path)
    outside = points_from_outside(aws)
    shared_key = key_policy(aws)

    changes, text = clean(run_values)

    points = {
        **world.state()["backup"][SOURCE_AT]["recovery_points"],
        **world.state()["backup"][TARGET_AT]["recovery_points"],
    }
    assert set(points) == set(outside), "exactly the run's own recovery points are deleted"
    assert world.state()["backup"][SOURCE_AT]["vaults"].keys() == {"SourceVault"}
    assert world.state()["backup"][TARGET_AT]["vaults"].keys() == {"CABTargetVault"}
    for vault in ("CABTargetVault", "SourceVault"):
        assert f"keep vault {vault}: it holds 1 recovery point(s) this run did not make" in text
    assert text.index("backup:DeleteRecoveryPoint") < text.index("backup:DeleteBackupVault")
    assert [c.action for c in changes if c.applied] == ["backup:DeleteRecoveryPoint"] * 2
    assert "revert_sharing is false" in text and key_policy(aws) == shared_key

    before, log = world.state(), (tmp_path / "run" / "changes.jsonl").read_text()
    again, _ = clean(run_values)
    assert world.state() == before and (tmp_path / "run" / "changes.jsonl").read_text() == log
    assert not any(c.needed for c in again)


def test_cleanup_deletes_the_vaults_it_made_once_they_are_empty(aws, world, tmp_path):
    run_values, _ = run_walkthrough(tmp_path)
    changes, _ = clean(run_values)
    assert [c.action for c in changes if c.applied] == ["backup:DeleteRecoveryPoint"] * 2 + [
        "backup:DeleteBackupVault"
    ] * 2
    for where in (SOURCE_AT, TARGET_AT):
        assert world.state()["backup"].get(where, {}).get("vaults", {}) == {}


def test_a_copy_that_ended_after_its_step_stopped_waiting_is_still_the_runs(aws, world, tmp_path):
    run_values, (_, destination) = run_walkthrough(tmp_path)
    state_file = tmp_path / "run" / "state.json"
    state = json.loads(state_file.read_text())
    del state["04_copy_to_target"]["destination_recovery_point_arn"]
    state_file.write_text(json.dumps(state))

    changes, _ = clean(run_values)

    assert destination in [c.target for c in changes if c.applied]
    assert world.state()["backup"].get(TARGET_AT, {}).get("vaults", {}) == {}


def test_revert_sharing_puts_everything_back_as_it_was_before_the_run(aws, world, tmp_path):
    """With nothing else seen relying on them, everything the run shared goes, once confirmed (take_back_shared:
    `runbook run --yes`): a run the cleanup cannot see may still use it."""
    before = world.state()
    settings_before = aws.management("backup").describe_global_settings()["GlobalSettings"]
    run_values, _ = run_walkthrough(tmp_path)
    outside_backup, _ = points_from_outside(aws)  # its copy keeps the destination vault (and its policy)
    aws.source("backup").delete_recovery_point(BackupVaultName=steps.SOURCE_VAULT, RecoveryPointArn=outside_backup)
    shared = world.state()
    assert shared["kms"] != before["kms"] and shared["backup"][TARGET_AT]["vault_policies"]

    unconfirmed, text = clean(run_values, revert_sharing=True)
    setting = next(c for c in unconfirmed if c.action == "backup:UpdateGlobalSettings")
    assert setting.needed and not setting.applied and "will change once confirmed" in text
    assert "confirm: every cross-account copy in the organization needs it" in text
    assert "confirm: a run the cleanup cannot see" in text
    assert world.state()["kms"] == shared["kms"], "the key policy is as it was"
    assert world.state()["backup"][TARGET_AT]["vault_policies"], "and so is the vault's access policy"
    assert aws.management("backup").describe_global_settings()["GlobalSettings"]["isCrossAccountBackupEnabled"] == (
        "true"
    )
    assert [e["action"] for e in Run("07_cleanup", run_values).state.planned() if e.get("confirm")] == [
        "kms:PutKeyPolicy",
        "backup:DeleteBackupVaultAccessPolicy",
        "backup:UpdateGlobalSettings",
    ]

    changes, text = clean(run_values, revert_sharing=True, take_back_shared=True)

    after = world.state()
    assert after["kms"] == before["kms"], "the key policies are back, byte for byte"
    assert after["backup"][TARGET_AT]["vault_policies"] == {}, "the run wrote the vault policy from nothing"
    assert aws.management("backup").describe_global_settings()["GlobalSettings"] == settings_before
    assert settings_before["isCrossAccountBackupEnabled"] == "false", "the run turned it on"
    run_id = Run("07_cleanup", run_values).state.run_id()
    assert f'-      "Sid": "RunbookAllowUseOfTheKey333333333333Run{run_id}"' in unconfirmed_text(tmp_path)
    assert '-  "isCrossAccountBackupEnabled": "true"' in text
    reverted = [e["action"] for e in map(json.loads, changes_log(tmp_path).splitlines()) if "reverts" in e]
    assert reverted == ["kms:PutKeyPolicy", "backup:DeleteBackupVaultAccessPolicy", "backup:UpdateGlobalSettings"]

    log = changes_log(tmp_path)
    again, _ = clean(run_values, revert_sharing=True, take_back_shared=True)
    assert world.state() == after and changes_log(tmp_path) == log
    assert not any(c.needed for c in again)


def changes_log(tmp_path):  # type: ignore[no-untyped-def]
    return (tmp_path / "run" / "changes.jsonl").read_text()


def unconfirmed_text(tmp_path):  # type: ignore[no-untyped-def]
    """What the first cleanup's key policy change logged (its diff)."""
    entries = [json.loads(line) for line in changes_log(tmp_path).splitlines()]
    return next(e["diff"] for e in entries if e["action"] == "kms:PutKeyPolicy" and "reverts" in e)


PERSONS_VAULT_POLICY = (
    '{"Version":"2012-10-17","Statement":[{"Sid":"AuditorsMayRead","Effect":"Allow",'
    '"Principal":{"AWS":"arn:aws:iam::444444444444:root"},"Action":"backup:DescribeBackupVault",'
    '"Resource":"*"}]}'
)


def test_revert_takes_out_only_what_the_run_added(aws, world, tmp_path):
    """A person's vault and policy, a statement of the runbook's already in the key policy, the setting
    already on: the run adds one vault statement and one key statement, and the revert takes out those."""
    steps.enable_cross_account(aws)
    steps.create_target_vault(aws, with_policy=False)
    aws.target("backup").put_backup_vault_access_policy(BackupVaultName=steps.TARGET_VAULT, Policy=PERSONS_VAULT_POLICY)
    already = share_statements("333333333333", "eu-west-1")[0]
    steps.add_key_statements(aws, "alias/cmkSource", [already])
    key_before = json.loads(key_policy(aws))["Statement"]
    run_values, _ = run_walkthrough(tmp_path)
    assert (
        "RunbookAllowCopyInFrom222222222222"
        in aws.target("backup").get_backup_vault_access_policy(BackupVaultName=steps.TARGET_VAULT)["Policy"]
    )

    changes, text = clean(run_values, revert_sharing=True, take_back_shared=True)

    assert "keep vault CABTargetVault: this run did not make it" in text
    policy = aws.target("backup").get_backup_vault_access_policy(BackupVaultName=steps.TARGET_VAULT)["Policy"]
    assert policy == PERSONS_VAULT_POLICY, "the person's policy is back byte for byte"
    statements = json.loads(key_policy(aws))["Statement"]
    assert sorted(map(json.dumps, statements)) == sorted(map(json.dumps, key_before))
    assert already in statements, "a statement that was there before the run stays"
    settings = aws.management("backup").describe_global_settings()["GlobalSettings"]
    assert settings["isCrossAccountBackupEnabled"] == "true", "the run did not turn the setting on: it stays on"
    assert not any(c.action == "backup:UpdateGlobalSettings" for c in changes)


def test_a_dry_run_shows_the_whole_plan_and_changes_nothing(aws, world, tmp_path):
    """Outside points in both vaults: the vaults stay, and so does the key's sharing, which the outside
    backup (under the same key) needs for a copy of it; the plan says so."""
    run_values, _ = run_walkthrough(tmp_path)
    outside_backup, _ = points_from_outside(aws)
    before = world.state()

    _, shown = clean(run_values, apply=False, revert_sharing=True)

    assert world.state() == before
    assert shown.startswith("Cleanup plan: 4 change(s) to make, 2 vault(s) kept; apply is false")
    planned = json.loads((tmp_path / "run" / "state.json").read_text())["planned"]
    assert [e["action"] for e in planned if e["step"] == "07_cleanup"] == [
        "backup:DeleteRecoveryPoint",
        "backup:DeleteRecoveryPoint",
        "backup:DeleteBackupVaultAccessPolicy",
        "backup:UpdateGlobalSettings",
    ]
    assert "keep vault SourceVault: it holds 1 recovery point(s) this run did not make" in shown
    assert "delete the access policy of CABTargetVault: this run wrote it from nothing" in shown
    assert (
        "keep what this run added to the key policy: 1 recovery point(s) this run did not make are encrypted with "
        "it, and their copies to account 333333333333 need it" in shown
    )
    assert f"they rely on it: {outside_backup}" in shown


def test_batch_cleanup_prints_its_plan_first_and_calls_only_what_it_declares(aws, world, tmp_path, monkeypatch, capsys):
    """Step 07 through `runbook run`, reverting the sharing; its dry run and its rerun are shown in this
    process by the tests above."""
    out = tmp_path / "run"
    pristine = world.state()
    run_walkthrough(tmp_path)
    outside = points_from_outside(aws)
    call_log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("RUNBOOK_CALL_LOG", str(call_log))
    done = command(
        capsys, "run", str(parameter_file(tmp_path, revert_sharing=True)), "--out", str(out), "--steps", "07_cleanup"
    )
    monkeypatch.delenv("RUNBOOK_CALL_LOG")  # the log holds the run's calls alone, as the run's process had it
    assert done.returncode == 0, done.stderr
    shown, errors = notebook_outputs(out / "07_cleanup.ipynb")
    assert not errors
    plan = shown.index("Cleanup plan: 4 change(s) to make, 2 vault(s) kept; apply is true")
    assert plan < shown.index("keep vault CABTargetVault: it holds 1 recovery point(s) this run did not make")
    assert shown.index("delete recovery point") < shown.index(": changed")
    assert shown.index('-  "isCrossAccountBackupEnabled": "true"') < shown.index(": changed")
    assert "Changes made by this run:" in done.stdout and "backup:DeleteRecoveryPoint" in done.stdout
    assert "(deleted by 07_cleanup)" in done.stdout and "(key alias/" not in done.stdout
    assert (
        "Kept by cleanup:\n  keep vault CABTargetVault: it holds 1 recovery point(s) this run did not make"
        in done.stdout
    )
    waiting = done.stdout.split("Not made until confirmed (take_back_shared: true, or runbook run ... --yes):\n")[1]
    assert waiting.startswith("  [07_cleanup] backup:DeleteBackupVaultAccessPolicy on arn:aws:backup:eu-west-1:")
    assert "\n  [07_cleanup] backup:UpdateGlobalSettings on organization: turn the organization's" in waiting
    assert world.state()["kms"] != pristine["kms"], "the outside backup under cmkSource still needs it shared"
    points = {
        **world.state()["backup"][SOURCE_AT]["recovery_points"],
        **world.state()["backup"][TARGET_AT]["recovery_points"],
    }
    assert set(points) == set(outside)
    sides = {"sandbox-source": "source", "sandbox-target": "target", "sandbox-management": "management"}
    calls = [json.loads(line) for line in call_log.read_text().splitlines()]
    assert {c["step"] for c in calls} == {"07_cleanup"}
    called = {c["action"] for c in calls}
    assert "backup:DeleteRecoveryPoint" in called and not {"kms:PutKeyPolicy", "backup:UpdateGlobalSettings"} & called
    undeclared = {
        (sides[c["profile"]], c["action"])
        for c in calls
        if c["action"] not in permissions.declared("07_cleanup", sides[c["profile"]])
    }
    assert undeclared == set()
