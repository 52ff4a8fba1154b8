"""The registry of known failures is the one place a failure is described: everything else that
names a failure reads it, and a test fails when either side has an entry the other lacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from runbook_lib.app import cli
from runbook_lib.troubleshooting import checks, fixes, registry
from runbook_sandbox.backup import copy_rules, restore_rules
from runbook_sandbox.catalog import AT_SCALE, STORIES
from runbook_sandbox.scenarios import SCENARIOS
from tools import docs

ROOT = Path(__file__).resolve().parents[2]
# What a sandbox template's placeholders stand for in a message AWS would send.
SAMPLE = {
    "kind": "EBS",
    "request_id": "0f1e2d3c-0000-4000-8000-000000000000",
    "source_region": "us-east-1",
    "destination_region": "eu-west-1",
    "caller": "arn:aws:sts::333333333333:assumed-role/AWSBackupDefaultServiceRole/"
    "AWSBackup-AWSBackupDefaultServiceRole",
    "action": "kms:CreateGrant",
    "key_arn": "arn:aws:kms:eu-west-1:333333333333:key/2af359cb-f51f-43a1-9ba3-cc23fdfe292d",
}


def sandbox_messages() -> dict[str, str]:
    """Every message the sandbox ends a copy or a restore job with (or refuses a copy with)."""
    templates = {**copy_rules.COPY_FAILURE_MESSAGES, **restore_rules.RESTORE_FAILURE_MESSAGES}
    return {name: template.format(**SAMPLE) for name, template in templates.items()}


def test_every_check_has_a_record_and_every_record_a_check():
    assert set(checks.CHECKS) == set(registry.BY_ID)
    assert checks.ALL_CHECKS == tuple(f.id for f in registry.FAILURES)
    assert set(checks.BEFORE_COPY) | set(checks.BEFORE_RESTORE) == set(checks.ALL_CHECKS)
    assert not set(checks.BEFORE_COPY) & set(checks.BEFORE_RESTORE), "a copy never waits on a restore check"


def test_a_check_without_a_record_cannot_be_registered():
    with pytest.raises(KeyError, match="no record in the registry"):
        checks.check("no-such-failure")


def test_every_fixer_has_a_fixable_record_and_the_other_way_round():
    assert set(fixes.FIXERS) == set(registry.FIXABLE)
    with pytest.raises(KeyError, match="not a fixable known failure"):
        fixes.fixer("rds-single-hop")


def test_runbook_fix_offers_exactly_the_fixable_failures():
    fix = next(
        a
        for a in cli.build_parser()._subparsers._group_actions[0].choices["fix"]._actions  # type: ignore
        if a.dest == "check_id"
    )
    assert tuple(fix.choices) == registry.FIXABLE


@pytest.mark.parametrize("failure", [f for f in registry.FAILURES if f.pattern], ids=lambda f: f.id)
def test_a_record_matches_its_own_message_and_no_other_record_does(failure):
    assert failure.matches(failure.aws_message)
    assert [f.id for f in registry.FAILURES if f.matches(failure.aws_message)] == [failure.id]


def test_records_without_a_message_are_checks_that_no_job_message_reports():
    silent = [f.id for f in registry.FAILURES if f.pattern is None]
    assert silent == ["role-exists", "recovery-point-ready", "restore-role-exists"]
    assert all(not f.aws_message and f.lesson is None for f in registry.FAILURES if f.pattern is None)


def test_the_sandbox_and_the_registry_agree_on_every_message():
    """Each message the sandbox ends a job with is matched by exactly one record, and each record's pattern
    matches the sandbox's messages: one for a copy's failure, and for a restore's key both of KMS's
    refusals (an explicit Deny, no Allow). Neither side has a message the other lacks."""
    messages = sandbox_messages()
    matched = {name: [f.id for f in registry.FAILURES if f.matches(text)] for name, text in messages.items()}
    assert all(len(ids) == 1 for ids in matched.values()), matched
    by_record = {f.id: [n for n, t in messages.items() if f.matches(t)] for f in registry.FAILURES if f.pattern}
    assert by_record.pop("restore-key-usable") == ["MSG_RESTORE_KEY_EXPLICIT_DENY", "MSG_RESTORE_KEY_NOT_ALLOWED"]
    assert all(len(names) == 1 for names in by_record.values()), by_record


def test_an_unknown_message_is_never_forced_into_a_known_failure():
    assert registry.match("Copy job failed. Something new went wrong.") is None
    assert registry.match("") is None


def test_every_scenario_of_the_catalog_has_a_builder_and_every_builder_a_catalog_entry():
    assert list(SCENARIOS) == list(STORIES)
    assert {name: s.story for name, s in SCENARIOS.items()} == STORIES


def test_listing_and_naming_scenarios_does_not_import_moto():
    """`runbook sandbox scenarios` and `runbook sandbox reset --scenario X` answer without moto (seconds)."""
    code = (
        "import sys; from runbook_lib.app import cli; cli.main(['sandbox', 'scenarios']); "
        "from runbook_sandbox import commands; commands._scenario('walkthrough'); "
        "assert 'moto' not in sys.modules, sorted(sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].split(maxsplit=1) == ["walkthrough", STORIES["walkthrough"]]


def test_every_lesson_names_a_scenario_and_every_failing_scenario_has_a_lesson():
    used = {f.lesson.scenario for f in registry.LESSONS if f.lesson}
    assert used <= set(SCENARIOS)
    unused = set(SCENARIOS) - used
    assert unused == set(AT_SCALE), "a scenario no lesson uses (the walkthrough is one lesson's; worlds at scale none)"
    assert [f.lesson.number for f in registry.LESSONS if f.lesson] == list(range(1, len(registry.LESSONS) + 1))


def test_every_generated_page_is_current():
    """The pages written from code (the site's tables, the guide, the trainer files, the picture of a run) read
    as `python -m tools.docs` would write them now: docs.stale() names any that does not."""
    assert docs.stale() == [], "run: python -m tools.docs"
    generated = set(docs.expected())
    assert {docs.GUIDE, docs.PERMISSIONS, docs.PARAMETERS, docs.RESOURCE_TYPES, docs.SANDBOX_MOTO} <= generated
    assert docs.RUN_PICTURE in generated


def test_trainer_files_and_the_guide_are_written_from_the_registry():
    files = sorted(p.name for p in (ROOT / "parameters" / "troubleshooting").glob("*.yaml"))
    assert files == sorted(registry.trainer_file(f) for f in registry.LESSONS)
    guide = (ROOT / "docs" / "troubleshooting.md").read_text()
    assert all(f"`{f.id}`" in guide for f in registry.FAILURES)


def test_a_stray_trainer_file_is_stale(tmp_path, monkeypatch):
    """docs.stale() also names a trainer file that no lesson makes."""
    monkeypatch.setattr(docs, "TRAINER_FILES", tmp_path)
    for failure in registry.LESSONS:
        (tmp_path / registry.trainer_file(failure)).write_text(docs.trainer_text(failure))
    (tmp_path / "8-new-failure.yaml").write_text("force_copy: true\n")
    assert tmp_path / "8-new-failure.yaml" in docs.stale()


def test_a_changed_report_picture_makes_the_run_picture_stale(monkeypatch):
    """The README's picture of a run is the report's own drawing: when the report draws otherwise, it is stale."""
    drawing = docs.report.topology
    monkeypatch.setattr(docs.report, "topology", lambda *args: drawing(*args).replace("copy: ", "copied: "))
    assert docs.stale() == [docs.RUN_PICTURE]


def test_a_page_without_its_generated_section_is_refused(tmp_path, monkeypatch):
    page = tmp_path / "parameters.md"
    page.write_text("# Parameters reference\n\nThe table went missing.\n")
    monkeypatch.setattr(docs, "SECTIONS", {**docs.SECTIONS, page: docs.SECTIONS[docs.PARAMETERS]})
    with pytest.raises(LookupError, match="has no generated section parameters"):
        docs.stale()


def test_notebook_06_shows_the_registry():
    notebook = json.loads((ROOT / "notebooks" / "06_troubleshoot.ipynb").read_text())
    code = ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code"]
    assert "ui.known_failures_frame()" in code
    text = "".join("".join(c["source"]) for c in notebook["cells"])
    assert not any(f.aws_message[:40] in text for f in registry.FAILURES if f.aws_message), "a message written out"


def test_a_failure_is_matched_only_for_the_kind_of_job_that_ends_with_it():
    restore_message = registry.BY_ID["restore-key-usable"].aws_message
    assert registry.match(restore_message, "restore") is registry.BY_ID["restore-key-usable"]
    assert registry.match(restore_message, "copy") is None, "a copy's KMS refusal is not a restore's"
    copy_message = registry.BY_ID["source-key-shared"].aws_message
    assert registry.match(copy_message, "restore") is None
    assert registry.match(copy_message, "copy") is registry.BY_ID["source-key-shared"]
