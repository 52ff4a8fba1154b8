"""Shared set-up is owned: what a run adds to what others share names its run folder, and one run's cleanup
takes back only what no other run folder, recovery point or backup plan relies on, naming them.

Two run folders copy the same volume with the same key into the same vault: each writes its own statements
(their Sids name it), so one's cleanup leaves the other's copies working. The organization's setting, which
anyone in the organization may rely on unseen, goes only once confirmed. Step 09 of another folder shows the
plan it found and will not overwrite it unasked.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from runbook_lib.aws import keys, vaults
from runbook_lib.core import guard
from runbook_lib.core.errors import StepFailed
from runbook_lib.steps import automation, unsharing
from runbook_lib.steps.walkthrough import Run, share_source_key
from runbook_lib.troubleshooting import checks
from runbook_sandbox.accounts import SOURCE, TARGET
from runbook_sandbox.testing import walkthrough as steps
from tests.runbook_steps import at_a_terminal, command, copy, parameter_file, prepare, values

from .test_cleanup import clean as cleaned

SETTING = "isCrossAccountBackupEnabled"


def walkthrough(folder: Any, **overrides: Any) -> dict[str, Any]:
    """Steps 00 to 04 in this process, into `folder`; its parameters."""
    run_values = values(folder, **overrides)
    prepare(run_values)
    assert copy(run_values)["State"] == "COMPLETED"
    return run_values


def clean(run_values: dict[str, Any], **overrides: Any) -> tuple[list[Any], str]:
    """Step 07 as its notebook runs it, reverting the sharing: its changes, and what it shows."""
    return cleaned(run_values, **{"revert_sharing": True, **overrides})


def sids(policy: str) -> list[str]:
    return [s.get("Sid", "") for s in json.loads(policy)["Statement"]]


def key_policy(aws: Any) -> str:
    kms = aws.source("kms")
    return kms.get_key_policy(KeyId=steps.key_arn(kms, "alias/cmkSource"), PolicyName="default")["Policy"]


def vault_policy(aws: Any) -> str:
    return aws.target("backup").get_backup_vault_access_policy(BackupVaultName=steps.TARGET_VAULT)["Policy"]


def run_id(run_values: dict[str, Any]) -> str:
    return Run("07_cleanup", run_values).state.run_id()


def checks_pass(run_values: dict[str, Any]) -> dict[str, str]:
    findings = checks.run_checks(Run("check", run_values))
    return {f.check_id: f.status for f in findings}


def test_two_run_folders_sharing_a_key_one_cleanup_keeps_what_the_other_relies_on_and_says_so(world, aws, tmp_path):
    """The second run finds the key shared, the vault open and the setting on (by the first run's statements,
    their Sids naming it) and uses them as they are; the first run's cleanup keeps them while the second
    still holds what it made, naming it; once the second has cleaned up, they go (confirmed)."""
    first = walkthrough(tmp_path / "first")
    a = run_id(first)
    share_plan = share_source_key(Run("03_share_source_key", values(tmp_path / "second")))
    assert not share_plan.needed, "the policy does not grow by a pair of statements per run folder"
    second = walkthrough(tmp_path / "second")
    b = run_id(second)
    assert a != b
    assert [sid for sid in sids(key_policy(aws)) if sid.startswith(keys.SID_PREFIXES)] == [
        f"{prefix}{TARGET.account_id}Run{a}" for prefix in keys.SID_PREFIXES
    ], "the statements name the run folder that added them"
    assert sids(vault_policy(aws)) == [f"{vaults.SID_PREFIX}{SOURCE.account_id}Run{a}"]
    key_before, vault_before = key_policy(aws), vault_policy(aws)

    changes, shown = clean(first, take_back_shared=True)

    assert (key_policy(aws), vault_policy(aws)) == (key_before, vault_before), "kept for the second run"
    assert aws.management("backup").describe_global_settings()["GlobalSettings"][SETTING] == "true"
    reverts = {c.action: c for c in changes if c.reverts}
    assert {action for action, c in reverts.items() if not c.needed and c.nothing_to_do == unsharing.RELIED_ON} == {
        "kms:PutKeyPolicy",
        "backup:PutBackupVaultAccessPolicy",
        "backup:UpdateGlobalSettings",
    }
    second_folder = f"run folder {tmp_path / 'second'} ({b})"
    assert "keep what this run added to the key policy: 1 other run folder(s) copy with this key to account" in shown
    assert "keep what this run added to the access policy of CABTargetVault: others copy into the vault" in shown
    assert "keep the organization's cross-account backup on (this run turned it on)" in shown
    assert shown.count(f"they rely on it: {second_folder}") >= 3
    found = checks_pass(second)
    assert [found[c] for c in ("source-key-shared", "target-vault-policy", "cross-account-enabled")] == ["pass"] * 3
    assert copy({**second, "run_dir": str(tmp_path / "second-again")})["State"] == "COMPLETED", "its copies work"

    clean(second)  # nothing of its own to take back: it added no statement and did not turn the setting on
    changes, shown = clean(first)
    waiting = [c.action for c in changes if c.reverts and c.needed and not c.applied]
    assert waiting == ["kms:PutKeyPolicy", "backup:DeleteBackupVaultAccessPolicy", "backup:UpdateGlobalSettings"]
    assert "will change once confirmed" in shown, "a run the cleanup cannot see may still use them: not unasked"
    clean(first, take_back_shared=True)
    assert not any(a in sid for sid in sids(key_policy(aws)))
    assert aws.management("backup").describe_global_settings()["GlobalSettings"][SETTING] == "false"


def test_a_backup_plan_that_copies_into_the_vault_keeps_the_access_policy_and_the_setting(world, aws, tmp_path):
    run_values = walkthrough(tmp_path / "run")
    aws.source("backup").create_backup_plan(
        BackupPlan={
            "BackupPlanName": "TeamNightly",
            "Rules": [
                {
                    "RuleName": "nightly",
                    "TargetBackupVaultName": steps.SOURCE_VAULT,
                    "ScheduleExpression": "cron(0 3 ? * * *)",
                    "CopyActions": [{"DestinationBackupVaultArn": steps.TARGET_VAULT_ARN}],
                }
            ],
        }
    )
    before = vault_policy(aws)

    changes, shown = clean(run_values, take_back_shared=True)

    assert vault_policy(aws) == before
    assert "keep what this run added to the access policy of CABTargetVault: others copy into the vault" in shown
    assert "keep vault CABTargetVault: others back up or copy into it" in shown
    assert "they rely on it: backup plan TeamNightly\n" in shown
    assert "they rely on it: backup plan TeamNightly (copies to " + steps.TARGET_VAULT_ARN + ")" in shown
    assert aws.management("backup").describe_global_settings()["GlobalSettings"][SETTING] == "true"


def test_step_09_of_another_folder_shows_its_plan_and_will_not_overwrite_it_unasked(world, aws, tmp_path):
    first = values(tmp_path / "first", delete_after_days=60, plan_schedule="cron(0 7 ? * * *)")
    prepare(first)
    run = Run("09_automate", first)
    run.carry_out(automation.plan_changes(run))
    backup = aws.source("backup")
    listed = backup.list_backup_plans()["BackupPlansList"][0]
    assert backup.list_tags(ResourceArn=listed["BackupPlanArn"])["Tags"][automation.OWNER_TAG] == run_id(first)
    plan_before = backup.get_backup_plan(BackupPlanId=listed["BackupPlanId"])["BackupPlan"]

    later = values(tmp_path / "second")  # the sandbox file's 35 days at 05:00
    with pytest.raises(StepFailed) as refused:
        automation.plan_changes(Run("09_automate", later))

    line = str(refused.value)
    assert "\n" not in line
    assert (
        f"backup plan CrossAccountCopy was made by run folder {run_id(first)} (its runbook-run tag): it backs up "
        f"on cron(0 7 ? * * *) into SourceVault, kept 60 days, and copies to {steps.TARGET_VAULT_ARN}" in line
    )
    assert "take_over_plan: true makes it this run's" in line
    assert backup.get_backup_plan(BackupPlanId=listed["BackupPlanId"])["BackupPlan"] == plan_before

    taking = Run("09_automate", {**later, "take_over_plan": True})
    taking.carry_out(automation.plan_changes(taking))
    rule = backup.get_backup_plan(BackupPlanId=listed["BackupPlanId"])["BackupPlan"]["Rules"][0]
    assert (rule["ScheduleExpression"], rule["Lifecycle"]["DeleteAfterDays"]) == ("cron(0 5 ? * * *)", 35)
    assert backup.list_tags(ResourceArn=listed["BackupPlanArn"])["Tags"][automation.OWNER_TAG] == run_id(later)

    changes, shown = clean(first)
    assert "keep backup plan CrossAccountCopy (step 09 made it), its rule and its topic" in shown
    assert f"they rely on it: run folder {run_id(later)} took it over (its runbook-run tag)" in shown
    assert backup.get_backup_plan(BackupPlanId=listed["BackupPlanId"])["BackupPlan"]["Rules"][0] == rule
    assert not any(c.action in ("events:DeleteRule", "sns:DeleteTopic") for c in changes)


def test_at_a_terminal_the_run_asks_before_turning_the_setting_off(world, aws, tmp_path):
    run_values = walkthrough(tmp_path / "run")
    chosen = str(parameter_file(tmp_path, revert_sharing=True))
    args = ["run", chosen, "--out", run_values["run_dir"], "--steps", "07_cleanup"]

    code, shown = at_a_terminal(args, b"n\n")
    assert code == 0, shown
    assert "Not made until confirmed" in shown and "Make them now? [y/N]" in shown
    assert aws.management("backup").describe_global_settings()["GlobalSettings"][SETTING] == "true"

    code, shown = at_a_terminal(args, b"y\n")
    assert code == 0, shown
    assert aws.management("backup").describe_global_settings()["GlobalSettings"][SETTING] == "false"
    assert "backup:UpdateGlobalSettings on organization: applied" in shown


def test_a_vault_another_run_folder_uses_is_kept_though_this_run_made_it(world, aws, tmp_path):
    """A later run has backed up, and will copy into the destination vault the first run made."""
    first = walkthrough(tmp_path / "first")
    later = values(tmp_path / "later")
    prepare(later)

    changes, shown = clean(first, take_back_shared=True)

    assert "keep vault CABTargetVault: others back up or copy into it" in shown
    assert f"they rely on it: run folder {tmp_path / 'later'} ({run_id(later)})" in shown
    assert "CABTargetVault" in [
        v["BackupVaultName"] for v in aws.target("backup").list_backup_vaults()["BackupVaultList"]
    ]
    assert copy(later)["State"] == "COMPLETED", "the later run copies into the vault it relied on"


def test_yes_confirms_in_batch(world, aws, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(guard.CONFIRMED_ENV, raising=False)  # the command pops it: back as it was after the test
    run_values = walkthrough(tmp_path / "run")
    chosen = str(parameter_file(tmp_path, revert_sharing=True))
    done = command(capsys, "run", chosen, "--out", run_values["run_dir"], "--steps", "07_cleanup", "--yes")
    assert done.returncode == 0, done.stderr
    assert "Not made until confirmed" not in done.stdout
    assert aws.management("backup").describe_global_settings()["GlobalSettings"][SETTING] == "false"
    assert not any(sid.startswith(keys.SID_PREFIXES) for sid in sids(key_policy(aws)))


def test_a_dry_run_asks_nothing_and_an_old_plan_is_not_asked_for_again(world, aws, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(guard.CONFIRMED_ENV, raising=False)  # the command pops it: back as it was after the test
    run_values = walkthrough(tmp_path / "run")
    folder = run_values["run_dir"]
    code, shown = at_a_terminal(
        [
            "run",
            str(parameter_file(tmp_path, revert_sharing=True, apply=False)),
            "--out",
            folder,
            "--steps",
            "07_cleanup",
        ],
        b"y\n",
    )
    assert code == 0 and "[y/N]" not in shown and "Dry run (apply: false)" in shown, shown
    batch = command(
        capsys, "run", str(parameter_file(tmp_path, revert_sharing=True)), "--out", folder, "--steps", "07_cleanup"
    )
    assert "Not made until confirmed" in batch.stdout, "a batch cleanup leaves them waiting"
    code, shown = at_a_terminal(
        ["run", str(parameter_file(tmp_path)), "--out", folder, "--steps", "07_cleanup"], b"y\n"
    )
    assert code == 0 and "Not made until confirmed" not in shown and "[y/N]" not in shown, shown
    assert aws.management("backup").describe_global_settings()["GlobalSettings"][SETTING] == "true"


def test_a_plan_taken_over_stays_and_another_plan_of_the_same_run_goes(world, aws, tmp_path):
    """Each plan the run made is kept or deleted on its own: the one another folder took over stays (and the
    rule and topic with it), the other goes."""
    first = values(tmp_path / "first")
    prepare(first)
    for name in ("Nightly", "Weekly"):
        run = Run("09_automate", {**first, "plan_name": name})
        run.carry_out(automation.plan_changes(run))
    second = values(tmp_path / "second", plan_name="Nightly", plan_schedule="cron(0 7 ? * * *)", take_over_plan=True)
    taking = Run("09_automate", second)
    taking.carry_out(automation.plan_changes(taking))

    changes, shown = clean(first)

    plans = {p["BackupPlanName"] for p in aws.source("backup").list_backup_plans()["BackupPlansList"]}
    assert plans == {"Nightly"}
    assert "keep backup plan Nightly (step 09 made it), its rule and its topic" in shown
    assert not any(c.action in ("events:DeleteRule", "sns:DeleteTopic") and c.needed for c in changes)
