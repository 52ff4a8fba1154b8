"""report.html: one page, nothing from the network, that tells the run."""

from __future__ import annotations

import re
from pathlib import Path

from runbook_lib.app import report, runner
from runbook_lib.core import params
from runbook_lib.steps.walkthrough import Run, verify_target_key
from runbook_lib.troubleshooting import checks
from tests.runbook_steps import copy, prepare, values

SECTIONS = ("topology", "steps", "checks", "keys", "recovery-points", "changes", "planned", "retries", "notebooks")


def walkthrough_report(folder: Path) -> str:
    run_values = values(folder)
    prepare(run_values)
    checks.run_checks(Run("04_copy_to_target", run_values))
    copy(run_values)
    verify_target_key(Run("05_verify_target_key", run_values))
    steps = [report.StepRow(step, "ok", 1.5, f"result of {step}") for step in runner.DEFAULT_STEPS]
    for step in runner.DEFAULT_STEPS[:2]:
        (folder / f"{step}.ipynb").write_text("{}")
    parameters = params.validate(run_values)
    return report.write(folder, steps, parameters, runner.summary(folder), {}).read_text()


def test_the_report_tells_the_run_in_its_sections_and_loads_nothing(world, tmp_path):
    page = walkthrough_report(tmp_path / "run")
    for anchor in SECTIONS:
        assert f"<h2 id='{anchor}'>" in page, anchor
    assert not re.search(r"https?:|<script|<link|<img|<iframe|@import|url\((?!#)", page), "nothing from the network"

    picture = page.split("<h2 id='topology'>")[1].split("<h2")[0]
    assert picture.count("<svg") == 1
    for seen in ("account 222222222222", "account 333333333333", "Region us-east-1", "Region eu-west-1",
                 "vault SourceVault", "vault CABTargetVault", "key alias/cmkSource", "key alias/cmkTarget",
                 "copy: ok"):  # fmt: skip
        assert seen in picture, seen
    assert picture.count(report.GREEN) >= 3 and report.RED not in picture

    keys = page.split("<h2 id='keys'>")[1].split("<h2")[0]
    assert "alias/cmkSource" in keys and "alias/cmkTarget" in keys and "alias/cmkSourceVault" in keys
    points = page.split("<h2 id='recovery-points'>")[1].split("<h2")[0]
    assert points.count("COMPLETED") == 2
    changes = page.split("<h2 id='changes'>")[1].split("<h2")[0]
    assert "kms:PutKeyPolicy" in changes and "background:#dafbe1" in changes, "the key policy's diff, coloured"
    checked = page.split("<h2 id='checks'>")[1].split("<h2")[0]
    assert "as 04_copy_to_target saw them" in checked and "same-organization" in checked
    assert "<a href='00_prerequisites.ipynb'>" in page and "result of 03_share_source_key" in page


def test_a_failed_copy_is_red_in_the_picture(world, tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    steps = [report.StepRow("00_prerequisites", "ok", 2.0, ""), report.StepRow("04_copy_to_target", "FAILED", 3.0, "x")]
    page = report.write(folder, steps, params.validate({"run_dir": str(folder), "apply": True}), "", {}).read_text()
    picture = page.split("<h2 id='topology'>")[1].split("<h2")[0]
    assert "copy: FAILED" in picture and report.RED in picture
    assert "No key verified yet (steps 02 and 05 verify them)." in page


def test_one_check_run_alone_does_not_replace_the_checks_a_step_saw(world, tmp_path):
    """A failed copy is explained by one check; the report keeps the whole table step 04 saw."""
    run_values = values(tmp_path / "run")
    run = Run("04_copy_to_target", run_values)
    checks.run_checks(run)
    checks.run_checks(run, ("same-organization",))
    assert len(run.state.get("04_copy_to_target", "checks")) == len(checks.BEFORE_COPY)
