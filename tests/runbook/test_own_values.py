"""A parameter file with its own Regions, vault names and keys: every step plans with those values.

A notebook is given only the parameters its cell declares; a step that reads one it does not declare
would fall back to the default (the sandbox's names) and plan, or fail, on something the file never named.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import pytest
import yaml

from runbook_lib.app.runner import ALL_STEPS
from runbook_lib.troubleshooting import registry
from tests.runbook_steps import SANDBOX_PARAMETERS, command

DEFAULT_NAMES = ("cmkTarget", "CABTargetVault", "SourceVault", "cmkSourceVault", "cmkSourceHop", "eu-west-1")
OWN = {
    "source_vault_name": "AppBackups",
    "source_vault_key": "alias/app-backups",
    "target_region": "eu-central-1",
    "target_vault_name": "AppCopies",
    "target_vault_key": "alias/app-copies",
    "apply": False,
}
VARIANTS = {
    "volume": {},
    "database in two hops": {
        "resource_name": "walkthrough-db",
        "two_hop_types": ["RDS"],
        "hop_vault_name": "AppHop",
        "hop_vault_key": "alias/app-hop",
    },
}


def own_key(client, alias: str) -> None:  # type: ignore[no-untyped-def]
    key = client.create_key(Description=f"the reader's own {alias}")["KeyMetadata"]["KeyId"]
    client.create_alias(AliasName=alias, TargetKeyId=key)


def outputs(notebook: Path) -> str:
    """What the notebook showed, less AWS's sample messages of the known failures (step 06's table quotes them,
    with the Regions of AWS's example)."""
    cells = json.loads(notebook.read_text())["cells"]
    text = json.dumps([cell.get("outputs", []) for cell in cells])
    for failure in registry.FAILURES:
        sample = html.escape(failure.aws_message, quote=False)
        text = text.replace(json.dumps(sample)[1:-1], "").replace(json.dumps(failure.aws_message)[1:-1], "")
    return text


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_a_dry_run_of_a_file_with_its_own_names_plans_every_step_with_them(world, aws, tmp_path, capsys, variant):
    own_key(aws.source("kms"), "alias/app-backups")
    own_key(aws.source("kms", "eu-central-1"), "alias/app-hop")
    own_key(aws.target("kms", "eu-central-1"), "alias/app-copies")
    aws.source("kms").delete_alias(AliasName="alias/cmkSourceVault")  # the defaults' keys are not the reader's:
    aws.target("kms").delete_alias(AliasName="alias/cmkTarget")  # a step that names one fell back to a default
    chosen = tmp_path / "own.yaml"
    chosen.write_text(yaml.safe_dump({**OWN, **VARIANTS[variant]}))
    # The drill restores EBS volumes; a plan's copy action cannot copy in two hops (both refuse, saying so).
    steps = [s for s in ALL_STEPS if variant == "volume" or s not in ("08_restore_drill", "09_automate")]
    before = world.state()

    done = command(
        capsys, "run", str(SANDBOX_PARAMETERS), str(chosen), "--out", str(tmp_path / "run"), "--steps", ",".join(steps)
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert world.state() == before, "a dry run changes nothing"
    record = {
        "summary": done.stdout,
        "state.json": (tmp_path / "run" / "state.json").read_text(),
        "report.html": (tmp_path / "run" / "report.html").read_text(),
        **{step: outputs(tmp_path / "run" / f"{step}.ipynb") for step in steps},
    }
    named = {where: [n for n in DEFAULT_NAMES if n in text] for where, text in record.items()}
    assert {where: found for where, found in named.items() if found} == {}
    assert "AppCopies" in record["summary"] and "eu-central-1" in record["summary"]


def test_the_same_file_applied_copies_into_its_own_vault_under_its_own_key(world, aws, tmp_path, capsys):
    own_key(aws.source("kms"), "alias/app-backups")
    own_key(aws.target("kms", "eu-central-1"), "alias/app-copies")
    chosen = tmp_path / "own.yaml"
    chosen.write_text(yaml.safe_dump({**OWN, "apply": True}))
    done = command(capsys, "run", str(SANDBOX_PARAMETERS), str(chosen), "--out", str(tmp_path / "run"))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert done.stdout.rstrip().endswith("(key alias/app-copies)")
    target = aws.target("backup", "eu-central-1")
    points = target.list_recovery_points_by_backup_vault(BackupVaultName="AppCopies")["RecoveryPoints"]
    assert [p["Status"] for p in points] == ["COMPLETED"]
