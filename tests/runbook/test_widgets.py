"""The notebook widgets, driven from Python as a person would drive them in JupyterLab."""

from __future__ import annotations

import configparser
import os

import ipywidgets

from runbook_lib.aws import facts
from runbook_lib.core import params
from runbook_lib.display import widgets
from runbook_lib.steps.walkthrough import Run, prerequisites
from runbook_lib.troubleshooting import checks


def fresh_run(tmp_path, apply=False):  # type: ignore[no-untyped-def]
    return Run("00_prerequisites", params.validate({"run_dir": str(tmp_path), "apply": apply}))


def test_batch_with_apply_false_makes_no_change(world, tmp_path):
    before = world.state()
    run = fresh_run(tmp_path)
    shown = widgets.plan(run, prerequisites(run))
    assert world.state() == before
    assert [p.status.value for p in shown.panels] == ["waiting for Apply"] * 4
    assert not (tmp_path / "changes.jsonl").exists()


def test_apply_button_makes_the_change_and_logs_it(world, aws, tmp_path):
    run = fresh_run(tmp_path)
    panels = widgets.plan(run, prerequisites(run)).panels
    enable = next(p for p in panels if p.change.action == "backup:UpdateGlobalSettings")
    enable.button.click()
    assert "applied" in enable.status.value and enable.button.disabled
    assert repr(enable.view).startswith("[00_prerequisites] backup:UpdateGlobalSettings on organization")
    assert ": changed" in repr(enable.view).splitlines()[0]
    settings = aws.source("backup").describe_global_settings()["GlobalSettings"]
    assert settings["isCrossAccountBackupEnabled"] == "true"
    assert run.state.changes.entries()[0]["action"] == "backup:UpdateGlobalSettings"
    again = fresh_run(tmp_path)
    replanned = widgets.plan(again, prerequisites(again)).panels
    assert all(p.change.action != "backup:UpdateGlobalSettings" for p in replanned)


def test_choices_revalidate_the_run(world, tmp_path):
    run = fresh_run(tmp_path)
    choices = widgets.Choices(run)
    assert "sandbox-target" in choices.target_profile.options
    choices.target_vault.value = "OtherVault"
    assert run.target_vault_name == "OtherVault"
    choices.source_vault.value = "bad name!"
    assert choices.message.value.startswith("<b>Not saved</b>: parameter source_vault_name")
    assert run.source_vault_name == "SourceVault"


def test_a_target_account_outside_the_organization_is_refused_with_the_check_that_says_why(world, tmp_path):
    run = fresh_run(tmp_path)
    choices = widgets.Choices(run)
    assert "sandbox-outsider" in choices.target_profile.options
    choices.target_profile.value = "sandbox-outsider"
    assert choices.message.value.startswith("<b>Not saved</b>: [same-organization] the source account is in ")
    assert run.target_profile == "sandbox-target" and choices.target_profile.value == "sandbox-target"
    assert facts.active() is run.facts, "the refused choice's reads are not the run's facts"


def test_an_aws_refusal_while_checking_a_choice_is_one_line_in_the_widget(world, tmp_path, monkeypatch):
    from botocore.exceptions import ClientError

    def refused(run):  # type: ignore[no-untyped-def]
        raise ClientError(
            {"Error": {"Code": "ExpiredToken", "Message": "The security token expired"}}, "GetCallerIdentity"
        )

    monkeypatch.setattr(checks, "refusal_of_choices", refused)
    run = fresh_run(tmp_path)
    choices = widgets.Choices(run)
    choices.target_vault.value = "OtherVault"
    assert choices.message.value.startswith("<b>Not saved</b>: AWS refused reading what the choice needs: An error")
    assert "ExpiredToken" in choices.message.value and run.target_vault_name == "CABTargetVault"


def test_a_target_vault_under_an_aws_managed_key_is_refused(world, tmp_path):
    world.reset("default-key-target-vault")
    run = Run("00_prerequisites", params.validate({"run_dir": str(tmp_path), "target_vault_name": "NewVault"}))
    choices = widgets.Choices(run)
    choices.target_vault.value = "CABTargetVault"
    assert choices.message.value.startswith("<b>Not saved</b>: [target-vault-customer-key] the target vault is ")
    assert run.target_vault_name == "NewVault" and choices.target_vault.value == "NewVault"


def test_the_same_account_and_region_on_both_sides_is_refused(world, tmp_path, monkeypatch):
    run = Run("00_prerequisites", params.validate({"run_dir": str(tmp_path), "target_region": "us-east-1"}))
    choices = widgets.Choices(run)
    choices.target_profile.value = "sandbox-source"
    assert choices.message.value == (
        "<b>Not saved</b>: parameter target_region: same profile and Region as the source; a copy needs "
        "another account or another Region"
    )
    assert run.target_profile == "sandbox-target"
    # Another profile of the source account (a person's own profile beside an admin one): found through AWS.
    config = tmp_path / "aws-config"
    source = configparser.ConfigParser()
    source.read(os.environ["AWS_CONFIG_FILE"])
    source["profile source-again"] = dict(source["profile sandbox-source"])
    with config.open("w") as handle:
        source.write(handle)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    again = Run("00_prerequisites", params.validate({**run.as_dict(), "target_profile": "source-again"}))
    refusal = checks.refusal_of_choices(again)
    assert refusal is not None and refusal.check_id == "target_profile"
    assert refusal.finding.startswith("source and target are both account 222222222222 in us-east-1")
    elsewhere = Run("00_prerequisites", params.validate({**again.as_dict(), "target_region": "eu-west-1"}))
    assert checks.refusal_of_choices(elsewhere) is None, "the same account in another Region is a copy that crosses"


def test_job_progress_follows_the_job():
    now = [100.0]
    progress = widgets.JobProgress("backup", clock=lambda: now[0])
    now[0] += 75
    progress({"State": "RUNNING", "PercentDone": "40.0"})
    assert progress.bar.value == 40.0 and progress.bar.layout.display is None
    assert progress.moving.layout.display == "none"
    assert progress.state.value == "RUNNING · 1 min 15 s · 1 poll"
    progress({"State": "FAILED", "StatusMessage": "Access Denied trying to call AWS Backup service"})
    assert progress.state.value == "FAILED: Access Denied trying to call AWS Backup service · 1 min 15 s · 2 polls"
    assert progress.bar.bar_style == "danger"


def test_a_job_without_percent_done_moves_and_never_sits_at_zero():
    """Copy jobs report no PercentDone: a bar at 0 % until it jumps to 100 % looks stuck."""
    now = [0.0]
    progress = widgets.JobProgress("copy", clock=lambda: now[0])
    for poll in range(1, 4):
        now[0] += 20
        progress({"State": "RUNNING"})
        assert progress.bar.layout.display == "none" and progress.moving.layout.display is None
        assert progress.state.value.startswith("RUNNING · ") and progress.state.value.endswith(
            f"· {poll} poll" + "s" * (poll > 1)
        )
    assert "1 min 00 s" in progress.state.value
    progress({"State": "COMPLETED"})
    assert progress.bar.layout.display is None and progress.bar.value == 100.0 and progress.bar.bar_style == "success"
    assert progress.moving.layout.display == "none"


def test_apply_panels_show_their_plan_without_capturing_output(world, tmp_path):
    """Headless, nbclient answers output captured by an Output widget on the kernel's shell channel,
    racing the cell's reply: now and then a run hung for good. The plans are ordinary output instead."""
    run = fresh_run(tmp_path)
    shown = widgets.plan(run, prerequisites(run))

    def tree(widget):  # type: ignore[no-untyped-def]
        yield widget
        for child in getattr(widget, "children", ()):
            yield from tree(child)

    assert not [w for p in shown.panels for w in tree(p) if isinstance(w, ipywidgets.Output)]
    vault = next(p for p in shown.panels if p.change.action == "backup:CreateBackupVault")
    assert "create vault SourceVault encrypted with" in repr(vault.view)
    assert "will change" in vault.view._repr_html_()
    vault.button.click()
    assert "backup:CreateBackupVault on SourceVault (sandbox-source, us-east-1): changed" in repr(vault.view)
    assert "changed" in vault.view._repr_html_()


def test_a_plan_is_shown_once_and_its_diff_in_colour(world, tmp_path, capsys):
    """The panel no longer repeats the plan the log printed: one text, with the policy diff coloured."""
    from runbook_lib.display.console import messages_on_stdout

    run = fresh_run(tmp_path)
    with messages_on_stdout():
        shown = widgets.plan(run, prerequisites(run))
    assert capsys.readouterr().out == "", "carrying out a plan in a cell prints nothing: the plan shows it"
    policy = next(v for v in shown.views if v.change.action == "backup:PutBackupVaultAccessPolicy")
    assert repr(shown).count(policy.change.summary) == 1
    page = policy._repr_html_()
    assert "background:#dafbe1" in page and "+" in page, "added lines are green"


def test_a_failed_apply_says_why_in_its_panel_in_one_line(world, tmp_path):
    run = fresh_run(tmp_path)
    shown = widgets.plan(run, prerequisites(run))
    policy = next(p for p in shown.panels if p.change.action == "backup:PutBackupVaultAccessPolicy")
    policy.button.click()  # the target vault does not exist yet: AWS refuses
    assert policy.status.value.startswith("<span") and "failed: " in policy.status.value
    assert "\n" not in policy.view.failure and not policy.button.disabled
    assert "failed: " in repr(policy.view) and not policy.change.applied


def test_cleanup_numbers_its_changes_and_a_vault_waits_for_its_recovery_points(world, tmp_path):
    """07 says the order; the vault's button is disabled, saying which change comes first, until then."""
    from runbook_lib.steps import cleanup
    from tests.runbook_steps import copy, prepare, values

    walkthrough = values(tmp_path / "run")
    prepare(walkthrough)
    copy(walkthrough)
    run = Run("07_cleanup", params.validate({**walkthrough, "apply": False}))
    shown = widgets.plan(run, cleanup.cleanup(run))
    assert repr(shown).startswith(widgets.plans.ORDER_NOTE)
    target_vault = next(
        p for p in shown.panels if p.change.action == "backup:DeleteBackupVault" and p.change.region == "eu-west-1"
    )
    point = next(p for p in shown.panels if p.change.key in target_vault.change.after)
    assert target_vault.button.disabled and target_vault.status.value == f"apply {point.view.number} first"
    point.button.click()
    assert "applied" in point.status.value
    assert not target_vault.button.disabled and target_vault.status.value == "waiting for Apply"
    target_vault.button.click()
    assert "applied" in target_vault.status.value, target_vault.status.value
