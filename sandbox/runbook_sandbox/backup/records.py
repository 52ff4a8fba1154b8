"""What AWS Backup keeps about jobs and recovery points, shaped as its API returns them.

Jobs advance with the clock: CREATED, then RUNNING, then COMPLETED or FAILED once `duration`
seconds have passed. A copy job AWS retries after a system error first stays CREATED for its
`retry_seconds` (AWS's retry phase, up to 2 hours), then runs as any. The backend settles them (see
jobs.py); these records only tell the time.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

from ..kms import models as kms_models
from .exceptions import InvalidParameterValueException

BACKUP_SIZE_BYTES = 8 * 1024**3  # every sandbox volume is 8 GiB
RecordT = TypeVar("RecordT")


def _present(data: dict[str, Any]) -> dict[str, Any]:
    """The members that have a value: AWS omits the rest."""
    return {k: v for k, v in data.items() if v is not None}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def parse_arn(arn: str) -> dict[str, str]:
    """Split an ARN; InvalidParameterValueException when it is not one."""
    parts = arn.split(":", 5) if isinstance(arn, str) else []
    if len(parts) != 6 or parts[0] != "arn" or not parts[2]:
        raise InvalidParameterValueException(msg=f"Invalid ARN: {arn}")
    return {"service": parts[2], "region": parts[3], "account": parts[4], "resource": parts[5]}


TAG_PUNCTUATION = set("_.:/=+-@")
MAX_TAGS = 50


def _tag_text_ok(text: str, low: int, high: int) -> bool:
    """AWS's tag pattern ^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$ with its length limits."""
    return low <= len(text) <= high and all(c in TAG_PUNCTUATION or unicodedata.category(c)[0] in "LZN" for c in text)


def validate_tags(tags: dict[str, str] | None) -> None:
    """Tags as AWS Backup accepts them: at most 50, keys 1-128 and values 0-256 characters of letters,
    separators, numbers and _ . : / = + - @, keys not starting with aws:."""
    if not tags:
        return
    if len(tags) > MAX_TAGS:
        raise InvalidParameterValueException(msg=f"Too many tags: {len(tags)}; at most {MAX_TAGS} are allowed.")
    for key, value in tags.items():
        if not _tag_text_ok(key, 1, 128) or key.lower().startswith("aws:"):
            raise InvalidParameterValueException(msg=f"Invalid tag key: {key!r}.")
        if not _tag_text_ok(value, 0, 256):
            raise InvalidParameterValueException(msg=f"Invalid tag value for key {key!r}.")


def validate_lifecycle(lifecycle: dict[str, Any] | None) -> None:
    if not lifecycle:
        return
    cold = lifecycle.get("MoveToColdStorageAfterDays")
    delete = lifecycle.get("DeleteAfterDays")
    if delete is not None and delete < 1:
        raise InvalidParameterValueException(msg="DeleteAfterDays must be at least 1.")
    if cold is not None and delete is not None and delete < cold + 90:
        raise InvalidParameterValueException(
            msg=(
                f"Invalid lifecycle. DeleteAfterDays ({delete}) must be at least 90 days greater than "
                f"MoveToColdStorageAfterDays ({cold})."
            )
        )


def calculated_lifecycle(created: datetime, lifecycle: dict[str, Any] | None) -> dict[str, datetime]:
    result = {}
    if lifecycle and lifecycle.get("MoveToColdStorageAfterDays") is not None:
        result["MoveToColdStorageAt"] = created + timedelta(days=lifecycle["MoveToColdStorageAfterDays"])
    if lifecycle and lifecycle.get("DeleteAfterDays") is not None:
        result["DeleteAt"] = created + timedelta(days=lifecycle["DeleteAfterDays"])
    return result


@dataclass
class RecoveryPoint:
    recovery_point_arn: str
    backup_vault_name: str
    backup_vault_arn: str
    account_id: str
    region: str
    resource_arn: str
    resource_type: str
    resource_name: str | None
    iam_role_arn: str
    encryption_key_arn: str | None
    lifecycle: dict[str, Any] | None
    created_by: dict[str, str]
    source_backup_vault_arn: str | None = None
    snapshot_id: str | None = None
    status: str = "CREATING"
    creation_date: datetime = field(default_factory=utcnow)
    completion_date: datetime | None = None
    backup_size_in_bytes: int = BACKUP_SIZE_BYTES
    storage_class: str = "WARM"

    @property
    def is_encrypted(self) -> bool:
        return self.encryption_key_arn is not None

    def to_dict(self) -> dict[str, Any]:
        data = {
            "RecoveryPointArn": self.recovery_point_arn,
            "BackupVaultName": self.backup_vault_name,
            "BackupVaultArn": self.backup_vault_arn,
            "SourceBackupVaultArn": self.source_backup_vault_arn,
            "ResourceArn": self.resource_arn,
            "ResourceType": self.resource_type,
            "ResourceName": self.resource_name,
            "CreatedBy": self.created_by,
            "IamRoleArn": self.iam_role_arn,
            "Status": self.status,
            "CreationDate": self.creation_date,
            "InitiationDate": self.creation_date,
            "CompletionDate": self.completion_date,
            "BackupSizeInBytes": self.backup_size_in_bytes,
            "BackupSizeBytes": self.backup_size_in_bytes,
            "Lifecycle": self.lifecycle,
            "CalculatedLifecycle": calculated_lifecycle(self.creation_date, self.lifecycle) or None,
            "EncryptionKeyArn": self.encryption_key_arn,
            "IsEncrypted": self.is_encrypted,
            "StorageClass": self.storage_class,
            "IsParent": False,
            "VaultType": "BACKUP_VAULT",
            "EncryptionKeyType": self._encryption_key_type(),
        }
        return _present(data)

    def _encryption_key_type(self) -> str | None:
        key = kms_models.key_from_arn(self.encryption_key_arn)
        if key is None:
            return None
        return "AWS_OWNED_KMS_KEY" if key.key_manager == "AWS" else "CUSTOMER_MANAGED_KMS_KEY"


@dataclass
class Job:
    """What backup, copy and restore jobs share: an ID, an owner, and a clock."""

    job_id: str
    account_id: str
    region: str
    iam_role_arn: str
    resource_arn: str
    resource_type: str
    duration: float
    creation_date: datetime = field(default_factory=utcnow)
    started: float = field(default_factory=time.monotonic)
    completion_date: datetime | None = None
    failure: str | None = None
    settled: bool = False
    resource_name: str | None = None
    lifecycle: dict[str, Any] | None = None
    idempotency_token: str | None = None
    created_by: dict[str, str] = field(default_factory=dict)
    retry_seconds: float = 0.0  # how long AWS's retry phase keeps the job CREATED before it runs

    @property
    def due_date(self) -> datetime:
        """When the job ends, by the clock: its CompletionDate, whoever looks first."""
        return self.creation_date + timedelta(seconds=self.retry_seconds + self.duration)

    def due(self) -> bool:
        return not self.settled and time.monotonic() - self.started >= self.retry_seconds + self.duration

    @property
    def retrying(self) -> bool:
        """Still in AWS's retry phase: CREATED, whatever its duration."""
        return not self.settled and time.monotonic() - self.started < self.retry_seconds

    @property
    def progress(self) -> float:
        if self.settled:
            return 1.0
        if self.retrying:
            return 0.0
        if self.duration <= 0:
            return 1.0
        return min(1.0, (time.monotonic() - self.started - self.retry_seconds) / self.duration)

    @property
    def state(self) -> str:
        """Backup and copy job state; restore jobs name theirs differently (see RestoreJob.status)."""
        if not self.settled:
            return "CREATED" if self.retrying or self.progress < 0.1 else "RUNNING"
        return "FAILED" if self.failure else "COMPLETED"

    def common_members(self) -> dict[str, Any]:
        """The members backup and copy jobs report alike."""
        return {
            "AccountId": self.account_id,
            "ResourceArn": self.resource_arn,
            "ResourceName": self.resource_name,
            "ResourceType": self.resource_type,
            "CreationDate": self.creation_date,
            "CompletionDate": self.completion_date,
            "State": self.state,
            "StatusMessage": self.failure,
            "IamRoleArn": self.iam_role_arn,
            "CreatedBy": self.created_by,
            "IsParent": False,
        }


@dataclass
class BackupJob(Job):
    backup_vault_name: str = ""
    backup_vault_arn: str = ""
    recovery_point_tags: dict[str, str] | None = None
    recovery_point_arn: str | None = None
    encryption_key_arn: str | None = None
    copy_actions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def backup_job_id(self) -> str:
        return self.job_id

    @property
    def start_by(self) -> datetime:
        """When the job must have started: the default start window, eight hours."""
        return self.creation_date + timedelta(hours=8)

    def to_dict(self) -> dict[str, Any]:
        return _present(
            {
                **self.common_members(),
                "BackupJobId": self.job_id,
                "BackupVaultName": self.backup_vault_name,
                "BackupVaultArn": self.backup_vault_arn,
                "VaultType": "BACKUP_VAULT",
                "RecoveryPointArn": self.recovery_point_arn,
                "RecoveryPointLifecycle": self.lifecycle,
                "EncryptionKeyArn": self.encryption_key_arn,
                "IsEncrypted": self.encryption_key_arn is not None,
                "InitiationDate": self.creation_date,
                "PercentDone": f"{self.progress * 100:.1f}",
                "BackupSizeInBytes": BACKUP_SIZE_BYTES if self.state == "COMPLETED" else None,
                "StartBy": self.start_by,
                "BackupType": "",
            }
        )


@dataclass
class CopyJob(Job):
    source_backup_vault_arn: str = ""
    source_recovery_point_arn: str = ""
    destination_backup_vault_arn: str = ""
    destination_account_id: str = ""
    destination_region: str = ""
    destination_recovery_point_arn: str | None = None
    destination_encryption_key_arn: str | None = None
    created_by_backup_job_id: str | None = None

    @property
    def copy_job_id(self) -> str:
        return self.job_id

    def to_dict(self) -> dict[str, Any]:
        """As DescribeCopyJob and ListCopyJobs report it.

        Simplification: MessageCategory is SUCCESS once the job completed, and absent otherwise (AWS
        names a failure's category too); DestinationVaultLockState is absent, as the sandbox has only
        standard vaults (AWS reports it for logically air-gapped ones)."""
        return _present(
            {
                **self.common_members(),
                "CopyJobId": self.job_id,
                "SourceBackupVaultArn": self.source_backup_vault_arn,
                "SourceRecoveryPointArn": self.source_recovery_point_arn,
                "DestinationBackupVaultArn": self.destination_backup_vault_arn,
                "DestinationVaultType": "BACKUP_VAULT",
                "DestinationRecoveryPointArn": self.destination_recovery_point_arn,
                "DestinationEncryptionKeyArn": self.destination_encryption_key_arn,
                "MessageCategory": "SUCCESS" if self.state == "COMPLETED" else None,
                "DestinationRecoveryPointLifecycle": self.lifecycle,
                "CreatedByBackupJobId": self.created_by_backup_job_id,
                "BackupSizeInBytes": BACKUP_SIZE_BYTES,
            }
        )


@dataclass
class RestoreJob(Job):
    recovery_point_arn: str = ""
    backup_vault_arn: str = ""
    created_resource_arn: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    validation_status: str | None = None
    validation_status_message: str | None = None

    @property
    def restore_job_id(self) -> str:
        return self.job_id

    @property
    def status(self) -> str:
        if not self.settled:
            return "PENDING" if self.progress < 0.1 else "RUNNING"
        return "FAILED" if self.failure else "COMPLETED"

    def to_dict(self) -> dict[str, Any]:
        return _present(
            {
                "AccountId": self.account_id,
                "RestoreJobId": self.job_id,
                "RecoveryPointArn": self.recovery_point_arn,
                "SourceResourceArn": self.resource_arn,
                "BackupVaultArn": self.backup_vault_arn,
                "CreationDate": self.creation_date,
                "CompletionDate": self.completion_date,
                "Status": self.status,
                "StatusMessage": self.failure,
                "PercentDone": f"{self.progress * 100:.1f}",
                "IamRoleArn": self.iam_role_arn or None,
                "CreatedResourceArn": self.created_resource_arn,
                "ResourceType": self.resource_type,
                "ValidationStatus": self.validation_status,
                "ValidationStatusMessage": self.validation_status_message,
                "IsParent": False,
            }
        )


@dataclass
class SourceResource:
    """What a backup needs to know about the resource it protects."""

    arn: str
    resource_type: str
    name: str | None
    kms_key_arn: str | None
    volume_id: str | None = None


# Each list filter the sandbox honours, as a test of one record against the filter's value.
JOB_FILTERS: dict[str, Callable[[Any, Any], bool]] = {
    "ByResourceArn": lambda job, v: job.resource_arn == v,
    "ByState": lambda job, v: job.state == v,
    "ByStatus": lambda job, v: getattr(job, "status", None) == v,
    "ByResourceType": lambda job, v: job.resource_type == v,
    "ByAccountId": lambda job, v: job.account_id == v,
    "ByCreatedAfter": lambda job, v: job.creation_date >= v,
    "ByCreatedBefore": lambda job, v: job.creation_date <= v,
    "ByCompleteAfter": lambda job, v: job.completion_date is not None and job.completion_date >= v,
    "ByCompleteBefore": lambda job, v: job.completion_date is not None and job.completion_date <= v,
    "ByBackupVaultName": lambda job, v: getattr(job, "backup_vault_name", None) == v,
    "ByDestinationVaultArn": lambda job, v: getattr(job, "destination_backup_vault_arn", None) == v,
    "BySourceRecoveryPointArn": lambda job, v: getattr(job, "source_recovery_point_arn", None) == v,
}
POINT_FILTERS: dict[str, Callable[[Any, Any], bool]] = {
    "ByResourceArn": lambda point, v: point.resource_arn == v,
    "ByResourceType": lambda point, v: point.resource_type == v,
    "ByCreatedAfter": lambda point, v: point.creation_date >= v,
    "ByCreatedBefore": lambda point, v: point.creation_date <= v,
}


def matching(
    records: Iterable[RecordT], filters: dict[str, Any], tests: dict[str, Callable[[Any, Any], bool]]
) -> list[RecordT]:
    """The records that pass every filter given; filters the sandbox does not know keep every record."""
    given = [(tests[name], value) for name, value in filters.items() if value is not None and name in tests]
    if not given:
        return list(records)
    return [record for record in records if all(test(record, value) for test, value in given)]
