"""Neptune and DocumentDB clusters in the walkthrough world: the RDS API describes them (their ARN is an Aurora
cluster's), AWS Backup backs each up as its Engine's type under the cluster's key, and the copy goes to the
other account and Region in one job, under the destination vault's key."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from runbook_sandbox.accounts import SOURCE, SOURCE_REGION
from runbook_sandbox.testing.walkthrough import (
    ROLE_ARN,
    SOURCE_VAULT,
    copy,
    create_source_vault,
    key_arn,
    prepare_everything,
)


@pytest.mark.parametrize(
    "name, engine, resource_type",
    [("walkthrough-neptune", "neptune", "Neptune"), ("walkthrough-docdb", "docdb", "DocumentDB")],
)
def test_a_cluster_is_backed_up_as_its_engines_type_and_copied_in_one_job(aws, name, engine, resource_type):
    cluster = aws.source("rds").describe_db_clusters(DBClusterIdentifier=name)["DBClusters"][0]
    cmk_source = key_arn(aws.source("kms"), "alias/cmkSource")
    assert (cluster["Engine"], cluster["StorageEncrypted"], cluster["KmsKeyId"]) == (engine, True, cmk_source)
    arn = f"arn:aws:rds:{SOURCE_REGION}:{SOURCE.account_id}:cluster:{name}"
    assert cluster["DBClusterArn"] == arn

    point = prepare_everything(aws, resource_arn=arn)
    assert point.startswith(f"arn:aws:rds:{SOURCE_REGION}:{SOURCE.account_id}:cluster-snapshot:awsbackup:job-")
    described = aws.source("backup").describe_recovery_point(BackupVaultName=SOURCE_VAULT, RecoveryPointArn=point)
    assert (described["ResourceType"], described["EncryptionKeyArn"]) == (resource_type, cmk_source)

    job = copy(aws, point)
    assert (job["State"], job["ResourceType"], job["MessageCategory"]) == ("COMPLETED", resource_type, "SUCCESS")
    assert job["DestinationRecoveryPointArn"].startswith("arn:aws:rds:eu-west-1:333333333333:cluster-snapshot:")
    assert job["DestinationEncryptionKeyArn"] == key_arn(aws.target("kms"), "alias/cmkTarget")
    assert job["DestinationVaultType"] == "BACKUP_VAULT" and "DestinationVaultLockState" not in job


def test_a_multi_az_db_cluster_is_not_a_type_the_sandbox_backs_up(aws):
    made = aws.source("rds").create_db_cluster(
        DBClusterIdentifier="multi-az", Engine="postgres", MasterUsername="runbook", MasterUserPassword="sandbox-only"
    )["DBCluster"]
    create_source_vault(aws)
    with pytest.raises(ClientError, match="is not supported by the sandbox"):
        aws.source("backup").start_backup_job(
            BackupVaultName=SOURCE_VAULT, ResourceArn=made["DBClusterArn"], IamRoleArn=ROLE_ARN
        )
