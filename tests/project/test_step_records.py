"""A step is one record (runbook_lib/core/steps.py): its notebook's title and parameters cell are written from
it, the runner gives the notebook what it lists, and everything else that names a step reads it."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import papermill
import pytest

from runbook_lib.app import runner
from runbook_lib.core import params, permissions, steps
from runbook_lib.steps import results
from runbook_lib.troubleshooting import registry
from tests import fixture_diffs
from tools import notebook_cells

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = fixture_diffs.FIXTURES / "add_step_parameter.diff"
NAMES = [step.name for step in steps.STEPS]


@pytest.mark.parametrize("step", steps.STEPS, ids=NAMES)
def test_a_notebooks_title_and_parameters_cell_are_its_records(step):
    found = notebook_cells.differences(step, notebook_cells.read(step.notebook))
    assert found == [], f"{step.notebook.name}: {'; '.join(found)} (write them: python -m tools.notebook_cells)"


@pytest.mark.parametrize("step", steps.STEPS, ids=NAMES)
def test_papermill_finds_the_parameters_the_runner_gives(step):
    assert list(papermill.inspect_notebook(str(step.notebook))) == list(step.parameters)
    assert runner.declared_parameters(step.name) == set(step.parameters)


def test_the_runner_gives_a_step_the_runs_values_of_its_parameters():
    values = params.validate({"target_vault_key": "alias/app-copies", "plan_name": "Other"}, check_profiles=False)
    given = runner.given_parameters(steps.VERIFY_TARGET_KEY, values)
    assert given["target_vault_key"] == "alias/app-copies"
    assert set(given) == set(steps.record(steps.VERIFY_TARGET_KEY).parameters)


@pytest.mark.parametrize("step", steps.STEPS, ids=NAMES)
def test_a_record_lists_parameters_of_the_schema_once_each(step):
    assert [name for name in step.parameters if name not in params.BY_NAME] == []
    assert len(set(step.parameters)) == len(step.parameters)


def _names_read(source: str) -> set[str]:
    """The parameters a cell's code reads: run.<parameter>, and a parameter's variable by its name."""
    read = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "run":
            read.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            read.add(node.id)
    return read & set(params.BY_NAME)


@pytest.mark.parametrize("step", steps.STEPS, ids=NAMES)
def test_a_notebook_reads_only_parameters_its_record_lists(step):
    cells = notebook_cells.read(step.notebook)["cells"]
    code = [
        cell for cell in cells if cell["cell_type"] == "code" and "parameters" not in cell["metadata"].get("tags", [])
    ]
    read = set().union(*(_names_read("".join(cell["source"])) for cell in code))
    assert read - set(step.parameters) == set()


def test_the_index_of_steps():
    assert NAMES == list(steps.ALL) and len(set(NAMES)) == len(NAMES)
    assert sorted(step.number for step in steps.STEPS) == [f"{n:02d}" for n in range(10)]
    assert set(steps.DEFAULT) <= set(steps.ALL)
    assert steps.ALL[: len(steps.DEFAULT)] == steps.DEFAULT, "a run takes the default steps first"
    assert all(steps.BY_NAME[name] is steps.record(name) for name in NAMES)
    assert sorted(path.stem for path in (ROOT / "notebooks").glob("*.ipynb")) == sorted(NAMES)
    assert (steps.PREREQUISITES, steps.CLEANUP) == ("00_prerequisites", "07_cleanup")
    with pytest.raises(KeyError, match="no step '10_more'; steps: 00_prerequisites"):
        steps.record("10_more")


def test_the_call_budgets_are_the_records():
    assert steps.CALL_BUDGET == {step.name: step.call_budget for step in steps.STEPS if step.call_budget is not None}
    assert set(steps.CALL_BUDGET) == set(steps.DEFAULT), "the walkthrough's steps are measured"


@pytest.mark.parametrize("step", steps.STEPS, ids=NAMES)
def test_a_records_actions_are_actions_or_sets_of_them(step):
    assert set(step.actions) <= {steps.SOURCE, steps.TARGET, steps.MANAGEMENT}
    for account, listed in step.actions.items():
        for entry in listed:
            assert (":" in entry and " " not in entry) or account in permissions.SETS[entry], (account, entry)
    spelled = permissions.STEP_PERMISSIONS[step.name]
    assert all(":" in action for actions in spelled.values() for action in actions)


def test_every_phase_of_the_known_failures_is_checked_by_a_step():
    phases = {failure.before for failure in registry.FAILURES}
    assert {phase: steps.checking(phase) for phase in phases if not steps.checking(phase)} == {}
    assert {phase for step in steps.STEPS for phase in step.check_phases} <= phases


def test_a_lessons_run_reaches_the_step_that_checks_its_failure():
    for failure in registry.LESSONS:
        assert failure.lesson is not None
        reaching = steps.run_reaching(failure.before)
        assert failure.lesson.steps == ("" if reaching == steps.DEFAULT else ",".join(reaching)), failure.id
    assert steps.run_reaching(steps.BEFORE_RESTORE) == (*steps.DEFAULT, steps.RESTORE_DRILL)


def test_the_end_lines_clauses_are_keyed_by_the_records():
    assert set(results.PRODUCTS) <= set(steps.ALL)
    assert set(results.TOLD_BY_PRODUCT) <= set(results.PRODUCTS)


def test_the_tool_rewrites_only_the_title_and_the_parameters_cell(tmp_path):
    step = steps.record(steps.VERIFY_TARGET_KEY)
    original = notebook_cells.read(step.notebook)
    assert notebook_cells.text(original) == step.notebook.read_text(), "nbformat's layout, kept"
    broken = json.loads(json.dumps(original))
    title = next(cell for cell in broken["cells"] if cell["cell_type"] == "markdown")
    title["source"][0] = "# Verify the copy\n"
    cell = next(cell for cell in broken["cells"] if "parameters" in cell["metadata"].get("tags", []))
    cell["source"] = [line for line in cell["source"] if not line.startswith("target_vault_key")]
    assert notebook_cells.differences(step, broken) == [
        "title '# Verify the copy', the record's is '# Step 05: prove the copy is encrypted with the destination key'",
        "parameters cell lacks target_vault_key",
    ]
    assert notebook_cells.written(step, broken) == original


def test_adding_a_step_parameter_is_one_record_and_its_field(tmp_path):
    assert fixture_diffs.touched(FIXTURE) == ["runbook_lib/core/params.py", "runbook_lib/core/steps.py"]
    fixture_diffs.applied(FIXTURE, tmp_path, ("runbook_lib", "tools", "notebooks"))
    environment = {**os.environ, "PYTHONPATH": str(tmp_path)}
    tool = [sys.executable, "-m", "tools.notebook_cells"]
    written = subprocess.run(tool, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=60)
    assert written.returncode == 0, written.stderr
    assert written.stdout == "08_restore_drill.ipynb: parameters cell lacks restore_volume_type\n"
    notebook = json.loads((tmp_path / "notebooks" / "08_restore_drill.ipynb").read_text())
    cell = next(cell for cell in notebook["cells"] if "parameters" in cell["metadata"].get("tags", []))
    assert "restore_volume_type = 'gp3'\n" in cell["source"]
    given = (
        "from runbook_lib.app import runner; from runbook_lib.core import params; "
        "values = params.validate({'restore_volume_type': 'io2'}, check_profiles=False); "
        "print(runner.given_parameters('08_restore_drill', values)['restore_volume_type'])"
    )
    passed = subprocess.run(
        [sys.executable, "-c", given], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=60
    )
    assert passed.stdout == "io2\n", passed.stderr
    checked = subprocess.run([*tool, "--check"], cwd=tmp_path, env=environment, capture_output=True, timeout=60)
    assert checked.returncode == 0, "every other notebook as it was"
