"""The sandbox's faster ways of writing answers write what moto writes: the Backup serializer compiled
per shape, the memoizing attribute picker, and EC2 tags read from a resource's own entry."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest
from moto.backup.models import Vault
from moto.core import responses as moto_responses
from moto.core.responses import ActionContext, ActionResult
from moto.core.serialize import get_serializer_class
from moto.core.utils import get_service_model
from moto.ec2.exceptions import InvalidSnapshotIdError
from moto.ec2.models import ec2_backends
from moto.ec2.models.core import TaggedEC2Resource
from moto.ec2.models.elastic_block_store import EBSBackend
from moto.ec2.responses import EC2Response

from runbook_sandbox.backup.records import BackupJob, CopyJob, RecoveryPoint, RestoreJob
from runbook_sandbox.backup.responses import SandboxBackupResponse
from runbook_sandbox.backup.serialize import ShapedResult, epoch_seconds
from runbook_sandbox.ec2.models import describe_snapshots, get_tags
from runbook_sandbox.speedups import MemoizedAttributePicker

ACCOUNT, REGION = "222222222222", "us-east-1"
CREATED = datetime(2026, 11, 29, 12, 34, 56, 789_654, tzinfo=timezone.utc)
VAULT_ARN = f"arn:aws:backup:{REGION}:{ACCOUNT}:backup-vault:SourceVault"
POINT_ARN = f"arn:aws:ec2:{REGION}::snapshot/snap-0123456789abcdef0"
VOLUME_ARN = f"arn:aws:ec2:{REGION}:{ACCOUNT}:volume/vol-0123456789abcdef0"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/service-role/AWSBackupDefaultServiceRole"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/11111111-2222-3333-4444-555555555555"


def answers(service: str, protocol: str, operation: str, result: Any, response: Any) -> Any:
    model = get_service_model(service)
    context = ActionContext(model, model.operation_model(operation), get_serializer_class(service, protocol), response)
    return ActionResult(result).execute_result(context), context


def point() -> RecoveryPoint:
    return RecoveryPoint(
        recovery_point_arn=POINT_ARN,
        backup_vault_name="SourceVault",
        backup_vault_arn=VAULT_ARN,
        account_id=ACCOUNT,
        region=REGION,
        resource_arn=VOLUME_ARN,
        resource_type="EBS",
        resource_name="walkthrough-volume",
        iam_role_arn=ROLE_ARN,
        encryption_key_arn=KEY_ARN,
        lifecycle={"DeleteAfterDays": 35},
        created_by={"BackupPlanId": "plan", "BackupRuleId": "rule"},
        snapshot_id="snap-0123456789abcdef0",
        status="COMPLETED",
        creation_date=CREATED,
        completion_date=CREATED + timedelta(minutes=4, microseconds=1),
    )


def jobs() -> tuple[BackupJob, CopyJob, RestoreJob]:
    common = {"account_id": ACCOUNT, "region": REGION, "iam_role_arn": ROLE_ARN, "resource_arn": VOLUME_ARN}
    backup = BackupJob(
        job_id="B1", resource_type="EBS", duration=0, creation_date=CREATED, backup_vault_name="SourceVault",
        backup_vault_arn=VAULT_ARN, recovery_point_arn=POINT_ARN, encryption_key_arn=KEY_ARN, settled=True,
        completion_date=CREATED, lifecycle={"DeleteAfterDays": 35}, resource_name="walkthrough-volume", **common,
    )  # fmt: skip
    copy = CopyJob(
        job_id="C1", resource_type="EBS", duration=0, creation_date=CREATED, failure="Access Denied", settled=True,
        source_backup_vault_arn=VAULT_ARN, source_recovery_point_arn=POINT_ARN,
        destination_backup_vault_arn="arn:aws:backup:eu-west-1:333333333333:backup-vault:CABTargetVault",
        destination_account_id="333333333333", destination_region="eu-west-1", **common,
    )  # fmt: skip
    restore = RestoreJob(
        job_id="R1", resource_type="EBS", duration=60, creation_date=CREATED, recovery_point_arn=POINT_ARN,
        backup_vault_arn=VAULT_ARN, validation_status="SUCCESSFUL", validation_status_message="Checked.", **common,
    )  # fmt: skip
    return backup, copy, restore


def backup_answers() -> list[tuple[str, dict[str, Any]]]:
    backup, copy, restore = jobs()
    vault = Vault("SourceVault", KEY_ARN, "request-1", SimpleNamespace(region_name=REGION, account_id=ACCOUNT))
    vault.num_of_recovery_points = 10_000
    return [
        ("ListRecoveryPointsByBackupVault", {"RecoveryPoints": [point().to_dict()] * 2, "NextToken": "next"}),
        ("ListRecoveryPointsByResource", {"RecoveryPoints": [point().to_dict()]}),
        ("DescribeRecoveryPoint", point().to_dict()),
        ("ListBackupJobs", {"BackupJobs": [backup.to_dict()], "NextToken": "next"}),
        ("DescribeBackupJob", backup.to_dict()),
        ("ListCopyJobs", {"CopyJobs": [copy.to_dict()]}),
        ("DescribeCopyJob", {"CopyJob": copy.to_dict()}),
        ("DescribeRestoreJob", restore.to_dict()),
        ("ListRestoreJobs", {"RestoreJobs": [restore.to_dict()], "NextToken": "next"}),
        (
            "GetRecoveryPointRestoreMetadata",
            {
                "BackupVaultArn": VAULT_ARN,
                "RecoveryPointArn": POINT_ARN,
                "ResourceType": "EBS",
                "RestoreMetadata": {"availabilityZone": f"{REGION}a", "encrypted": "true", "kmsKeyId": KEY_ARN},
            },
        ),
        ("StartBackupJob", {"BackupJobId": "B1", "CreationDate": CREATED, "IsParent": False}),
        ("DescribeGlobalSettings", {"GlobalSettings": {"isCrossAccountBackupEnabled": "true"}, "LastUpdateTime": None}),
        ("DescribeBackupVault", {**vault.to_list_dict(), "VaultType": "BACKUP_VAULT"}),
    ]


@pytest.mark.parametrize("operation, result", backup_answers(), ids=[name for name, _ in backup_answers()])
def test_the_compiled_serializer_writes_what_moto_writes(operation, result):
    (status, headers, body), context = answers("backup", "rest-json", operation, result, SandboxBackupResponse())
    shaped_status, shaped_headers, shaped_body = ShapedResult(result).execute_result(context)
    assert (shaped_status, shaped_headers) == (status, headers)
    assert json.loads(shaped_body) == json.loads(body)


@pytest.mark.parametrize(
    "moment, seconds",
    [
        (CREATED, 1_795_955_696.789),
        (datetime(1970, 1, 1, 0, 0, 1), 1),
        (datetime(2026, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=1))), 1_767_225_600),
        (1_767_225_600.5, 1_767_225_600.5),
    ],
)
def test_timestamps_are_seconds_to_the_millisecond_as_moto_writes_them(moment, seconds):
    assert epoch_seconds(moment) == seconds


@pytest.fixture
def volumes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Three tagged, encrypted volumes of an EC2 backend of this process (without moto's public AMIs)."""
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    ec2 = ec2_backends[ACCOUNT][REGION]
    made = []
    for number in range(3):
        volume = ec2.create_volume(8, f"{REGION}a", encrypted=True, kms_key_id=KEY_ARN, volume_type="gp3")
        ec2.create_tags([volume.id], {"Name": f"fleet-{number}", "Fleet": "demo"})
        made.append(volume)
    yield made
    for volume in made:
        ec2.delete_volume(volume.id)
        ec2.tags.pop(volume.id, None)


def test_the_memoizing_attribute_picker_writes_what_moto_writes(volumes, monkeypatch):
    (_, _, body), context = answers("ec2", "ec2", "DescribeVolumes", {"Volumes": volumes}, EC2Response())
    monkeypatch.setattr(moto_responses, "XFormedAttributePicker", MemoizedAttributePicker)
    (_, _, memoized), _ = answers("ec2", "ec2", "DescribeVolumes", {"Volumes": volumes}, EC2Response())
    request_id = re.compile(r"<requestId>[^<]*</requestId>")
    assert request_id.sub("", memoized) == request_id.sub("", body)
    assert body.count("<key>Fleet</key>") == 3


def test_ec2_tags_read_from_the_resource_entry_are_moto_tags(volumes):
    for volume in volumes:
        assert get_tags(volume) == TaggedEC2Resource.get_tags(volume)


def test_snapshots_named_by_id_are_those_moto_finds(volumes):
    ec2 = ec2_backends[ACCOUNT][REGION]
    made = [ec2.create_snapshot(volume.id, "test") for volume in volumes]
    try:
        named = [made[2].id, made[0].id, made[2].id]
        assert describe_snapshots(ec2, named) == [made[2], made[0]]
        assert set(describe_snapshots(ec2, named)) == set(EBSBackend.describe_snapshots(ec2, named[:2]))
        filters = {"volume-id": [volumes[0].id]}
        assert describe_snapshots(ec2, named, filters) == EBSBackend.describe_snapshots(ec2, named[:2], filters)
        with pytest.raises(InvalidSnapshotIdError):
            describe_snapshots(ec2, [made[0].id, "snap-00000000000000000"])
    finally:
        for snapshot in made:
            ec2.snapshots.pop(snapshot.id, None)
