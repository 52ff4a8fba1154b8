"""The capability table: every fact sourced and dated, read by the checks and the preflight, and moved by
`two_hop_types` (or `one_action_types`) or by one edit of its row; a DB cluster's row found by its Engine;
AWS Backup's quotas as data, which max_concurrent_jobs follows."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import date
from typing import Any

import pytest

from runbook_lib.aws import clients, clusters
from runbook_lib.core import params, resource_types
from runbook_lib.core.errors import ParameterError, StepFailed
from runbook_lib.core.params import Parameters
from runbook_lib.core.steps import DEFAULT as DEFAULT_STEPS
from runbook_lib.steps.walkthrough import Run, verify_target_key
from runbook_lib.troubleshooting import checks, preflight
from runbook_sandbox.accounts import SOURCE, SOURCE_REGION, TARGET
from runbook_sandbox.testing.walkthrough import database_arn
from tests import runbook_steps
from tests.runbook_steps import copy, prepare

EFS_ARN = f"arn:aws:elasticfilesystem:{SOURCE_REGION}:{TARGET.account_id}:file-system/fs-0123456789abcdef0"


def test_every_fact_of_every_type_has_a_source_and_the_date_it_was_checked():
    assert {"EBS", "EC2", "RDS", "Aurora", "Neptune", "DocumentDB", "EFS"} <= set(resource_types.TYPES)
    for row in resource_types.TYPES.values():
        for name in resource_types.FACTS:
            fact = row.fact(name)
            assert fact.source.url.startswith("https://") and fact.source.title, (row.name, name)
            assert date.fromisoformat(fact.checked) <= date.today(), (row.name, name)
    for name, fact in resource_types.QUOTAS.items():
        assert isinstance(fact.value, int) and fact.value > 0, name
        assert fact.source.url.startswith("https://docs.aws.amazon.com/aws-backup/") and fact.checked == "2026-12-07"
    table = resource_types.readme_table()
    assert table.count("\n| ") == len(resource_types.TYPES) + 1
    assert all(f"]({source.url})" in table for source in resource_types.SOURCES.values())
    assert "- 100 concurrent copy jobs per account to one destination Region [" in table
    assert "- 2 hours a copy job may stay CREATED after a system error" in table


def test_since_october_2025_every_database_copies_across_account_and_region_in_one_job():
    for name in ("RDS", "Aurora", "Neptune", "DocumentDB"):
        one_action = resource_types.TYPES[name].one_action
        assert one_action.value is True and one_action.checked == "2026-12-07", name
        assert "single action for Amazon RDS, Amazon Aurora, Amazon Neptune, and Amazon DocumentDB" in (
            one_action.source.title
        )
    assert all(row.one_action.value for row in resource_types.TYPES.values())


def test_resource_arns_find_their_row_and_a_clusters_needs_its_engine():
    assert resource_types.type_of(database_arn()).name == "RDS"
    assert resource_types.type_of(EFS_ARN).name == "EFS"
    assert resource_types.type_of("arn:aws:ec2:us-east-1:111122223333:volume/vol-0123456789abcdef0").name == "EBS"
    assert resource_types.type_of("arn:aws:s3:::a-bucket") is None
    cluster = f"arn:aws:rds:{SOURCE_REGION}:{TARGET.account_id}:cluster:walkthrough-neptune"
    assert resource_types.needs_engine(cluster) and not resource_types.needs_engine(database_arn())
    assert resource_types.type_of(cluster) is None, "the ARN alone cannot tell Aurora, Neptune and DocumentDB apart"
    assert {engine: resource_types.type_of(cluster, engine).name for engine in resource_types.engines()} == {
        "aurora": "Aurora",
        "aurora-mysql": "Aurora",
        "aurora-postgresql": "Aurora",
        "neptune": "Neptune",
        "docdb": "DocumentDB",
    }
    assert resource_types.type_of(cluster, "postgres") is None, "a Multi-AZ DB cluster is not a type of the table"


def test_a_type_moves_to_two_hops_by_two_hop_types_and_back_by_one_action_types():
    rds = resource_types.TYPES["RDS"]
    assert rds.copies_in_one_action()
    assert not rds.copies_in_one_action(two_hop_types=["RDS"])
    assert rds.copies_in_one_action(one_action_types=["RDS"], two_hop_types=["Aurora"])
    two_hops = dataclasses.replace(rds, one_action=dataclasses.replace(rds.one_action, value=False))
    assert not two_hops.copies_in_one_action() and two_hops.copies_in_one_action(one_action_types=["RDS"])


def test_the_type_lists_name_table_types_only_and_never_the_same_type_twice(tmp_path):
    allowed = (
        "allowed: a list of resource types of the capability table (EBS, EC2, RDS, Aurora, Neptune, DocumentDB, "
        "EFS), no repeats"
    )
    with pytest.raises(ParameterError, match=re.escape(f"one_action_types: got ['Redshift']; {allowed}")):
        params.validate({"run_dir": str(tmp_path), "one_action_types": ["Redshift"]})
    with pytest.raises(ParameterError, match=re.escape(f"two_hop_types: got ['Redshift']; {allowed}, none that")):
        params.validate({"run_dir": str(tmp_path), "two_hop_types": ["Redshift"]})
    with pytest.raises(ParameterError, match="one_action_types"):
        params.validate({"run_dir": str(tmp_path), "one_action_types": ["RDS", "RDS"]})
    with pytest.raises(ParameterError, match="two_hop_types: names RDS, which one_action_types names too"):
        params.validate({"run_dir": str(tmp_path), "two_hop_types": ["RDS"], "one_action_types": ["RDS"]})
    chosen = {"run_dir": str(tmp_path), "two_hop_types": ["RDS"], "resources": [database_arn()]}
    assert params.validate(chosen).two_hop_types == ["RDS"], "a run of many resources copies these in two hops too"
    assert params.validate({"run_dir": str(tmp_path), "two_hop_types": ["Neptune", "RDS"]}).two_hop_types == [
        "Neptune",
        "RDS",
    ]


def test_max_concurrent_jobs_follows_the_quotas(tmp_path):
    most = resource_types.quota(resource_types.COPIES_PER_DESTINATION_REGION)
    assert most == 100 and resource_types.quota(resource_types.JOBS_PER_RESOURCE) == 1
    assert params.validate({"run_dir": str(tmp_path), "max_concurrent_jobs": most}).max_concurrent_jobs == most
    with pytest.raises(
        ParameterError, match=re.escape(f"max_concurrent_jobs: got {most + 1}; allowed: a whole number 1-{most}")
    ):
        params.validate({"run_dir": str(tmp_path), "max_concurrent_jobs": most + 1})
    meaning = params.BY_NAME["max_concurrent_jobs"].meaning
    assert f"{most} concurrent copies per account to one destination Region" in meaning
    assert "5 more per vault once that is reached" in meaning and "1 backup or copy job per resource" in meaning


def finding(run_values: dict[str, Any], check_id: str, resource: str | None = None) -> checks.Finding:
    run = Run("check", run_values)
    return checks.CHECKS[check_id](checks.Facts(run, resource=resource) if resource else checks.Facts(run))


def test_an_rds_copy_is_one_job_until_two_hop_types_names_it_and_two_hops_false_with_it_is_refused_up_front(
    world, tmp_path, monkeypatch
):
    run_values = runbook_steps.values(tmp_path, resource_arn=database_arn())
    one_job = finding(run_values, "rds-single-hop")
    assert one_job.status == checks.PASS and one_job.finding == (
        "RDS copies across account and Region in one copy job (capability table, checked 2026-12-07)"
    )
    assert "two_hop_types: [RDS]" in one_job.fix, "AWS's refusal, when it comes, is explained with the parameter"
    assert not Run("check", run_values).copies_in_two_hops()
    preflight.single_hop(Run("check", {**run_values, "two_hops": False}))

    two_hops = {**run_values, "two_hop_types": ["RDS"]}
    assert Run("check", two_hops).copies_in_two_hops()
    assert finding(two_hops, "rds-single-hop").finding.endswith("then across accounts (two_hop_types names it)")
    contradicting = {**two_hops, "two_hops": False}
    assert finding(contradicting, "rds-single-hop").status == checks.FAIL
    with pytest.raises(ParameterError, match="two_hops: is false while two_hop_types names RDS"):
        preflight.single_hop(Run("check", contradicting))

    row = resource_types.TYPES["RDS"]
    monkeypatch.setitem(
        resource_types.TYPES,
        "RDS",
        dataclasses.replace(row, one_action=dataclasses.replace(row.one_action, value=False)),
    )
    assert Run("check", run_values).copies_in_two_hops(), "one edit of the row moves the type back to two hops"
    assert not Run("check", {**run_values, "one_action_types": ["RDS"]}).copies_in_two_hops()


def test_a_clusters_type_is_its_engine_read_once_per_run(world, tmp_path, monkeypatch):
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv(clients.CALL_LOG_ENV, str(log))
    run = Run("check", runbook_steps.values(tmp_path, resource_name="walkthrough-neptune"))
    neptune = preflight.context.resource_arn(run)
    assert neptune == f"arn:aws:rds:{SOURCE_REGION}:{SOURCE.account_id}:cluster:walkthrough-neptune"
    assert clusters.type_of(run.source_profile, run.source_region, neptune).name == "Neptune"
    found = checks.CHECKS["rds-single-hop"](checks.Facts(run))
    assert found.finding.startswith("Neptune copies across account and Region in one copy job"), found
    preflight.check(run, ("resource", "resource_key", "single_hop"))
    looked_up = [json.loads(line)["action"] for line in log.read_text().splitlines()]
    assert looked_up.count("rds:DescribeDBClusters") == 1, looked_up
    docdb = neptune.replace("walkthrough-neptune", "walkthrough-docdb")
    assert clusters.type_of(run.source_profile, run.source_region, docdb).name == "DocumentDB"
    assert preflight.context.resource_key(run, docdb).endswith(
        run.source("kms").describe_key(KeyId="alias/cmkSource")["KeyMetadata"]["KeyId"]
    )


def test_a_cluster_the_table_does_not_hold_is_refused_up_front(world, aws, tmp_path):
    aws.source("rds").create_db_cluster(
        DBClusterIdentifier="multi-az", Engine="postgres", MasterUsername="runbook", MasterUserPassword="sandbox-only"
    )
    cluster = f"arn:aws:rds:{SOURCE_REGION}:{SOURCE.account_id}:cluster:"
    with pytest.raises(ParameterError, match=r"resource_arn: multi-az is a DB cluster of engine postgres; allowed: "):
        preflight.resource(Run("check", runbook_steps.values(tmp_path, resource_arn=cluster + "multi-az")))
    with pytest.raises(ParameterError, match=r"resource_arn: no DB cluster nope in the source account"):
        preflight.resource(Run("check", runbook_steps.values(tmp_path, resource_arn=cluster + "nope")))


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
