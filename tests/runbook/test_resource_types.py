"""The capability table: every fact sourced and dated, read by the checks and the preflight, and moved by
`one_action_types` or by one edit of its row."""

from __future__ import annotations

import dataclasses
import re
from datetime import date
from typing import Any

import pytest

from runbook_lib.core import params, resource_types
from runbook_lib.core.errors import ParameterError, StepFailed
from runbook_lib.core.params import Parameters
from runbook_lib.core.steps import DEFAULT as DEFAULT_STEPS
from runbook_lib.sandbox.accounts import SOURCE_REGION, TARGET
from runbook_lib.steps.walkthrough import Run, verify_target_key
from runbook_lib.troubleshooting import checks, preflight
from tests import runbook_steps
from tests.runbook_steps import copy, prepare
from tests.walkthrough_steps import database_arn

EFS_ARN = f"arn:aws:elasticfilesystem:{SOURCE_REGION}:{TARGET.account_id}:file-system/fs-0123456789abcdef0"


def test_every_fact_of_every_type_has_a_source_and_the_date_it_was_checked():
    assert {"EBS", "EC2", "RDS", "Aurora", "EFS"} <= set(resource_types.TYPES)
    for row in resource_types.TYPES.values():
        for name in resource_types.FACTS:
            fact = row.fact(name)
            assert fact.source.url.startswith("https://") and fact.source.title, (row.name, name)
            assert date.fromisoformat(fact.checked) <= date.today(), (row.name, name)
    table = resource_types.readme_table()
    assert table.count("\n| ") == len(resource_types.TYPES) + 1
    assert all(f"]({source.url})" in table for source in resource_types.SOURCES.values())


def test_resource_arns_find_their_row():
    assert resource_types.type_of(database_arn()).name == "RDS"
    assert resource_types.type_of(EFS_ARN).name == "EFS"
    assert resource_types.type_of("arn:aws:ec2:us-east-1:111122223333:volume/vol-0123456789abcdef0").name == "EBS"
    assert resource_types.type_of("arn:aws:s3:::a-bucket") is None


def test_one_action_types_names_table_types_only(tmp_path):
    allowed = "allowed: a list of resource types of the capability table (EBS, EC2, RDS, Aurora, EFS)"
    with pytest.raises(ParameterError, match=re.escape(f"one_action_types: got ['Redshift']; {allowed}")):
        params.validate({"run_dir": str(tmp_path), "one_action_types": ["Redshift"]})
    with pytest.raises(ParameterError, match="one_action_types"):
        params.validate({"run_dir": str(tmp_path), "one_action_types": ["RDS", "RDS"]})


def finding(run_values: dict[str, Any], check_id: str, resource: str | None = None) -> checks.Finding:
    run = Run("check", run_values)
    return checks.CHECKS[check_id](checks.Facts(run, resource=resource) if resource else checks.Facts(run))


def test_an_rds_copy_across_account_and_region_is_two_hops_unless_the_run_or_the_table_says_one(
    world, aws, tmp_path, monkeypatch
):
    run_values = runbook_steps.values(tmp_path, resource_arn=database_arn(), force_copy=True, two_hops=False)
    prepare(run_values)
    refused = finding(run_values, "rds-single-hop")
    assert refused.status == checks.FAIL and "one_action_types: [RDS]" in refused.fix
    with pytest.raises(ParameterError, match="one_action_types naming RDS"):
        preflight.single_hop(Run("check", {**run_values, "force_copy": False}))

    one_action = {**run_values, "one_action_types": ["RDS"], "force_copy": False}
    assert finding(one_action, "rds-single-hop").status == checks.PASS
    preflight.single_hop(Run("check", one_action))
    world.configure(one_action_types=["RDS"])  # the sandbox follows AWS's reported change too
    job = copy(one_action)
    assert job["State"] == "COMPLETED", job
    assert len(aws.source("backup").list_copy_jobs()["CopyJobs"]) == 1, "one copy job, not two hops"
    verified = verify_target_key(Run("05_verify_target_key", one_action))
    assert verified["recovery_point_key_arn"] == verified["vault_key_arn"]

    row = resource_types.TYPES["RDS"]
    monkeypatch.setitem(
        resource_types.TYPES,
        "RDS",
        dataclasses.replace(row, one_action=dataclasses.replace(row.one_action, value=True)),
    )
    assert finding(run_values, "rds-single-hop").status == checks.PASS, "one edit of the row is enough"


def test_a_vault_under_aws_backup_takes_efs_copies_but_not_ebs_ones(world, tmp_path):
    world.reset("default-key-target-vault")
    run_values = runbook_steps.values(tmp_path)
    ebs = finding(run_values, "target-vault-customer-key")
    assert ebs.status == checks.FAIL and "AWS managed key" in ebs.finding
    efs = finding(run_values, "target-vault-customer-key", EFS_ARN)
    assert efs.status == checks.PASS and "EFS copies may go under" in efs.finding


def test_an_efs_backup_does_not_carry_its_file_systems_key(world, tmp_path):
    efs = finding(runbook_steps.values(tmp_path), "source-key-customer-managed", EFS_ARN)
    assert efs.status == checks.SKIPPED and "encrypted with the vault's key" in efs.finding


def test_an_efs_file_system_copies_into_a_vault_under_aws_backup_while_an_ebs_volume_is_refused(aws, world, tmp_path):
    """Must show: on the sandbox, walkthrough-efs goes into CABTargetVault under aws/backup, check and copy
    alike; walkthrough-volume into the same vault is refused before its copy."""
    world.reset("default-key-target-vault")
    efs_values = runbook_steps.values(
        tmp_path / "efs", resource_name="walkthrough-efs", target_vault_key="alias/aws/backup"
    )
    run = Run("check", efs_values)
    assert run.copies_in_two_hops() is False
    efs_arn = preflight.context.resource_arn(run)
    assert efs_arn.startswith("arn:aws:elasticfilesystem:us-east-1:222222222222:file-system/fs-")
    preflight.before_run(Parameters(**efs_values), DEFAULT_STEPS)
    prepare(efs_values)
    findings = {f.check_id: f.status for f in checks.run_checks(Run("check", efs_values))}
    assert (
        findings["target-vault-customer-key"] == checks.PASS
        and findings["source-key-customer-managed"] == checks.SKIPPED
    )
    assert copy(efs_values)["State"] == "COMPLETED"
    verified = verify_target_key(Run("05_verify_target_key", efs_values))
    aws_backup = aws.target("kms").describe_key(KeyId="alias/aws/backup")["KeyMetadata"]["Arn"]
    assert verified["recovery_point_key_arn"] == verified["vault_key_arn"] == aws_backup
    assert verified["recovery_point_arn"].startswith("arn:aws:backup:eu-west-1:333333333333:recovery-point:")

    ebs_values = runbook_steps.values(tmp_path / "ebs", target_vault_key="alias/aws/backup")
    with pytest.raises(ParameterError, match="target_vault_key: KMS key alias/aws/backup is AWS managed"):
        preflight.before_run(Parameters(**ebs_values), DEFAULT_STEPS)
    ebs_values = runbook_steps.values(tmp_path / "ebs", force_copy=True)
    prepare(ebs_values)
    with pytest.raises(StepFailed, match=r"\[target-vault-customer-key\] the target vault is encrypted with the AWS"):
        copy({**ebs_values, "force_copy": False})
    copied = aws.source("backup").list_copy_jobs()["CopyJobs"]
    assert [job["ResourceType"] for job in copied] == ["EFS"], "the EBS copy never started"
