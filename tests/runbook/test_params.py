"""A bad parameter file stops before any AWS call, with one line naming the field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from runbook_lib.core import params
from runbook_lib.core.errors import ParameterError
from runbook_lib.core.runstate import RunState

RUNBOOK = Path(sys.executable).parent / "runbook"
SANDBOX_PARAMETERS = Path(__file__).resolve().parents[2] / "parameters" / "sandbox.yaml"


def sandbox_values() -> dict:
    return yaml.safe_load(SANDBOX_PARAMETERS.read_text())


@pytest.mark.parametrize(
    "change, field, words",
    [
        ({"source_profile": "prod-source"}, "source_profile", "no profile 'prod-source' in your AWS config"),
        ({"resource_arn": "arn:aws:ec2:us-east-1:22:volume/vol-1"}, "resource_arn", "allowed: empty, or an EBS"),
        (
            {"resource_arn": "arn:aws:ec2:eu-west-1:222222222222:volume/vol-0123456789abcdef0"},
            "resource_arn",
            "is in eu-west-1",
        ),
        ({"target_region": "eu-west-9"}, "target_region", "allowed: an AWS Region name"),
        ({"colour": "blue"}, "colour", "unknown parameter"),
        ({"aws_secret_access_key": "x"}, "aws_secret_access_key", "unknown parameter"),
        (
            {"move_to_cold_storage_after_days": 30, "delete_after_days": 60},
            "delete_after_days",
            "at least move_to_cold_storage_after_days + 90 = 120",
        ),
        ({"delete_after_days": 0}, "delete_after_days", "a whole number 1-36500"),
        (
            {"target_profile": "sandbox-source", "target_region": "us-east-1"},
            "target_region",
            "same profile and Region as the source",
        ),
        ({"target_vault_key": "alias/aws/ebs"}, "target_vault_key", "alias/aws/backup only for EFS"),
        (
            {
                "target_vault_key": "alias/aws/backup",
                "resource_arn": "arn:aws:ec2:us-east-1:222222222222:volume/vol-0123456789abcdef0",
            },
            "target_vault_key",
            "is AWS managed while resource_arn is an EBS resource; allowed: a customer managed key",
        ),
        (
            {"restore_availability_zone": "us-east-1a"},
            "restore_availability_zone",
            "an Availability Zone of target_region",
        ),
        ({"hop_vault_name": "x"}, "hop_vault_name", "2-50 letters"),
        ({"source_vault_name": "my vault!"}, "source_vault_name", "2-50 letters"),
        ({"recovery_point_tags": {"aws:owner": "me"}}, "recovery_point_tags", "not starting with aws:"),
        ({"apply": "yes"}, "apply", "true or false"),
        ({"iam_role_name": "service role"}, "iam_role_name", "an IAM role name, with or without its path"),
        ({"strict_checks": "no"}, "strict_checks", "true or false"),
        ({"max_wait_minutes": 0}, "max_wait_minutes", "a number of minutes above 0"),
        ({"max_wait_minutes": True}, "max_wait_minutes", "a number of minutes above 0"),
        (
            {"max_wait_minutes": 120, "step_timeout_minutes": 120},
            "step_timeout_minutes",
            "got 120; allowed: more than max_wait_minutes (120)",
        ),
        ({"step_timeout_minutes": "1h"}, "step_timeout_minutes", "a number of minutes above max_wait_minutes"),
        ({"source_vault_key": "cmkSourceVault"}, "source_vault_key", "alias/NAME, a key ID, or a key or alias ARN"),
        (
            {
                "source_region": "cn-north-1",
                "target_region": "cn-northwest-1",
                "resource_arn": "arn:aws:ec2:cn-north-1:222222222222:volume/vol-0123456789abcdef0",
            },
            "resource_arn",
            "is in partition aws; allowed: partition aws-cn of cn-north-1",
        ),
        (
            {
                "target_vault_key": "arn:aws:kms:us-gov-west-1:333333333333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                "source_region": "us-gov-east-1",
                "target_region": "us-gov-west-1",
            },
            "target_vault_key",
            "allowed: partition aws-us-gov of us-gov-west-1",
        ),
        (
            {"target_region": "cn-north-1"},
            "target_region",
            "is in partition aws-cn; allowed: a Region of partition aws",
        ),
    ],
)
def test_bad_values_name_the_field(sandbox, change, field, words):
    with pytest.raises(ParameterError) as excinfo:
        params.validate({**sandbox_values(), **change})
    assert excinfo.value.field == field
    assert words in str(excinfo.value)
    assert "\n" not in str(excinfo.value)


def test_sandbox_parameters_are_valid(sandbox):
    values = params.load(SANDBOX_PARAMETERS)
    assert values.apply is True and values.resource_name == "walkthrough-volume"


def test_runbook_run_refuses_before_any_aws_call(world, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**sandbox_values(), "target_region": "mars-1"}))
    before = world.state()
    out = tmp_path / "run"
    done = subprocess.run(
        [str(RUNBOOK), "run", str(bad), "--out", str(out)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "runbook: parameter target_region: got 'mars-1'; allowed: an AWS Region name, e.g. us-east-1"
    ]
    assert not out.exists()
    assert world.state() == before


@pytest.mark.parametrize(
    "key",
    [
        "alias/cmkTarget",
        "1234abcd-12ab-34cd-56ef-1234567890ab",
        "mrk-1234abcd12ab34cd56ef1234567890ab",
        "arn:aws:kms:eu-west-1:333333333333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "arn:aws:kms:eu-west-1:333333333333:alias/cmkTarget",
    ],
)
def test_keys_by_alias_id_or_arn(sandbox, key):
    assert params.validate({**sandbox_values(), "target_vault_key": key}).target_vault_key == key


def test_regions_of_every_partition_are_known(sandbox):
    values = params.validate({**sandbox_values(), "source_region": "cn-north-1", "target_region": "cn-northwest-1"})
    assert values.source_region == "cn-north-1"


def test_reference_table_lists_every_parameter():
    table = params.reference_table()
    assert all(f"`{p.name}`" in table for p in params.SCHEMA)


def test_a_notebook_without_run_dir_keeps_its_state_in_the_repositorys_runs_not_beside_it(tmp_path, monkeypatch):
    """JupyterLab runs a notebook in notebooks/: its state must not appear in the file browser there."""
    monkeypatch.chdir(tmp_path)
    repository = Path(__file__).resolve().parents[2]
    assert RunState().directory == repository / "runs" / "adhoc"
    assert RunState(str(tmp_path / "mine")).directory == tmp_path / "mine"
