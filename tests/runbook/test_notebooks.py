"""The notebooks run by nbval against the sandbox, in order, with outputs sanitized."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import papermill
import yaml

from runbook_lib.app.runner import notebook_path
from tests.runbook_steps import copy, prepare
from tests.runbook_steps import values as steps_values

ROOT = Path(__file__).resolve().parents[2]


def test_notebooks_pass_nbval(world, tmp_path):
    """nbval runs the notebooks whose outputs are checked (02 and 05, with ARNs and dates sanitized) and
    06, on a walkthrough made by steps 00 to 04 in this process (`runbook run` runs them all elsewhere)."""
    values = yaml.safe_load((ROOT / "parameters" / "sandbox.yaml").read_text())
    values["run_dir"] = str(tmp_path / "run")
    walkthrough = steps_values(tmp_path / "run")
    prepare(walkthrough)
    copy(walkthrough)
    prepared = tmp_path / "notebooks"
    prepared.mkdir()
    steps = ("02_verify_source_key", "05_verify_target_key", "06_troubleshoot")
    for step in steps:
        declared = papermill.inspect_notebook(str(notebook_path(step)))
        papermill.execute_notebook(
            str(notebook_path(step)),
            str(prepared / f"{step}.ipynb"),
            parameters={k: v for k, v in values.items() if k in declared},
            prepare_only=True,
            progress_bar=False,
        )
    (prepared / "pytest.ini").write_text("[pytest]\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--nbval-lax",
            "--nbval-sanitize-with",
            str(ROOT / "tests" / "nbval_sanitize.cfg"),
            "-c",
            str(prepared / "pytest.ini"),
            *[str(prepared / f"{step}.ipynb") for step in steps],
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=prepared,
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"},
    )
    assert done.returncode == 0, done.stdout[-3000:]
    last = done.stdout.strip().splitlines()[-1]
    assert "passed" in last and "failed" not in last, last


def test_notebooks_hold_no_function_definitions_and_tag_parameters():
    import json

    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        assert any("parameters" in c["metadata"].get("tags", []) for c in cells), path.name
        for cell in cells:
            if cell["cell_type"] == "code":
                source = "".join(cell["source"])
                assert not any(line.lstrip().startswith(("def ", "class ")) for line in source.splitlines()), path


def test_a_notebook_runs_alone_with_plain_papermill(world, aws, tmp_path):
    """papermill itself, with a parameter file, on one notebook: no runbook command needed."""
    papermill_cli = Path(sys.executable).parent / "papermill"
    for step in ("00_prerequisites",):
        done = subprocess.run(
            [
                str(papermill_cli),
                str(notebook_path(step)),
                str(tmp_path / f"{step}.ipynb"),
                "-f",
                str(ROOT / "parameters" / "sandbox.yaml"),
                "-p",
                "run_dir",
                str(tmp_path / "state"),
                "--no-progress-bar",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp_path,
            env={**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"},
        )
        assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "state" / "state.json").exists()
    vaults = aws.source("backup").list_backup_vaults()["BackupVaultList"]
    assert [v["BackupVaultName"] for v in vaults] == ["SourceVault"], "apply: true in sandbox.yaml: step 00 made it"
