"""Backup vaults, their access policies and the recovery points they hold.

moto keeps vaults but no access policies or recovery points, and a NumberOfRecoveryPoints nothing
updates; this part of the backend adds them. Recovery points are also kept by vault and by resource,
so that counting or listing one vault's points never walks every point of the account (a vault may
hold 10,000).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from moto.backup.models import BackupBackend, Vault
from moto.ec2.models import ec2_backends

from ..kms import models as kms_models
from .exceptions import (
    AlreadyExistsException,
    InvalidParameterValueException,
    InvalidRequestException,
    InvalidResourceStateException,
    ResourceNotFoundException,
)
from .paging import PAGINATION_MODEL, paginate
from .records import POINT_FILTERS, CopyJob, Job, RecoveryPoint, matching, parse_arn, validate_tags


class VaultsBackend(BackupBackend):
    """Vaults, access policies and recovery points: a part of SandboxBackupBackend (models.py).

    What it uses from the other parts is declared below: the job clock (models.py), and the jobs
    still running (jobs.py), of which a copy job may be reading a recovery point.
    """

    unsettled_jobs: dict[str, Job]
    settle_due_jobs: Callable[[], None]

    def __init__(self, region_name: str, account_id: str):
        super().__init__(region_name, account_id)
        self.recovery_points: dict[str, RecoveryPoint] = {}
        self.points_in_vault: dict[str, dict[str, RecoveryPoint]] = {}
        self.points_of_resource: dict[str, dict[str, RecoveryPoint]] = {}
        self.vault_policies: dict[str, str] = {}

    def tag_resource(self, resource_arn: str, tags: dict[str, str]) -> None:
        validate_tags(tags)
        super().tag_resource(resource_arn, tags)

    # ----- vaults --------------------------------------------------------------------------
    def create_backup_vault(
        self,
        backup_vault_name: str,
        backup_vault_tags: dict[str, str],
        encryption_key_arn: str,
        creator_request_id: str,
    ) -> Vault:
        """Resolves the vault's key as AWS does: none given means the AWS managed aws/backup key.

        Simplification: the key must be given as a key ARN or alias ARN of this account and Region.
        """
        if backup_vault_name in self.vaults:
            raise AlreadyExistsException(msg=f"Backup vault with the same name already exists: {backup_vault_name}")
        validate_tags(backup_vault_tags)
        if encryption_key_arn:
            key = kms_models.key_from_arn(encryption_key_arn)
            if key is None or key.account_id != self.account_id or key.region != self.region_name:
                raise InvalidParameterValueException(
                    msg=f"Invalid EncryptionKeyArn: {encryption_key_arn} is not a KMS key of account "
                    f"{self.account_id} in {self.region_name}."
                )
        else:
            key = kms_models.ensure_managed_key(self.account_id, self.region_name, "alias/aws/backup")
        return super().create_backup_vault(backup_vault_name, backup_vault_tags, key.arn, creator_request_id)

    def delete_backup_vault(self, backup_vault_name: str) -> None:
        """Refuses a vault that still holds recovery points, as AWS does."""
        vault = self.describe_backup_vault(backup_vault_name)
        if self.points_in_vault.get(backup_vault_name):
            raise InvalidRequestException(
                msg=f"Backup vault {backup_vault_name} cannot be deleted because it contains recovery points."
            )
        self.vault_policies.pop(backup_vault_name, None)
        self.vaults.pop(vault.backup_vault_name, None)

    def describe_backup_vault(self, backup_vault_name: str) -> Vault:
        if backup_vault_name not in self.vaults:
            raise ResourceNotFoundException(
                msg=f"Backup vault {backup_vault_name} does not exist in account {self.account_id} "
                f"in {self.region_name}."
            )
        return self._counted(self.vaults[backup_vault_name])

    def list_backup_vaults(self) -> list[Vault]:
        self.settle_due_jobs()
        return [self._counted(vault) for vault in super().list_backup_vaults()]

    def _counted(self, vault: Vault) -> Vault:
        """The vault with NumberOfRecoveryPoints as it is now (moto keeps a number nothing updates)."""
        vault.num_of_recovery_points = len(self.points_in_vault.get(vault.backup_vault_name, {}))
        return vault

    # ----- access policies -----------------------------------------------------------------
    def put_backup_vault_access_policy(self, backup_vault_name: str, policy: str | None) -> None:
        self.describe_backup_vault(backup_vault_name)
        try:
            parsed = json.loads(policy or "")
        except ValueError:
            raise InvalidParameterValueException(msg="Policy is not a valid JSON document.")
        if not isinstance(parsed, dict) or "Statement" not in parsed:
            raise InvalidParameterValueException(msg="Policy must be a JSON object with a Statement.")
        self.vault_policies[backup_vault_name] = policy  # type: ignore[assignment]

    def get_backup_vault_access_policy(self, backup_vault_name: str) -> dict[str, str]:
        vault = self.describe_backup_vault(backup_vault_name)
        if backup_vault_name not in self.vault_policies:
            raise ResourceNotFoundException(msg=f"Backup vault {backup_vault_name} has no access policy.")
        return {
            "BackupVaultName": backup_vault_name,
            "BackupVaultArn": vault.backup_vault_arn,
            "Policy": self.vault_policies[backup_vault_name],
        }

    def delete_backup_vault_access_policy(self, backup_vault_name: str) -> None:
        self.describe_backup_vault(backup_vault_name)
        self.vault_policies.pop(backup_vault_name, None)

    # ----- recovery points -----------------------------------------------------------------
    def _recovery_point(self, backup_vault_name: str, recovery_point_arn: str) -> RecoveryPoint:
        self.describe_backup_vault(backup_vault_name)
        point = self.recovery_points.get(recovery_point_arn)
        if point is None or point.backup_vault_name != backup_vault_name:
            raise ResourceNotFoundException(
                msg=f"Recovery point {recovery_point_arn} not found in backup vault {backup_vault_name}."
            )
        return point

    def describe_recovery_point(self, backup_vault_name: str, recovery_point_arn: str) -> RecoveryPoint:
        self.settle_due_jobs()
        return self._recovery_point(backup_vault_name, recovery_point_arn)

    def delete_recovery_point(self, backup_vault_name: str, recovery_point_arn: str) -> None:
        """Deletes the recovery point and its snapshot at once (AWS passes through DELETING)."""
        self.settle_due_jobs()
        point = self._recovery_point(backup_vault_name, recovery_point_arn)
        busy = [
            job
            for job in self.unsettled_jobs.values()
            if isinstance(job, CopyJob) and job.source_recovery_point_arn == recovery_point_arn
        ]
        if busy or point.status == "CREATING":
            raise InvalidResourceStateException(
                msg=f"Recovery point {recovery_point_arn} is being used by a running job and cannot be deleted."
            )
        self._remove_recovery_point(point)

    def add_recovery_point(self, point: RecoveryPoint) -> None:
        """Keep a recovery point in its vault: the one way points enter a vault (jobs and scenarios)."""
        arn = point.recovery_point_arn
        self.recovery_points[arn] = point
        self.points_in_vault.setdefault(point.backup_vault_name, {})[arn] = point
        self.points_of_resource.setdefault(point.resource_arn, {})[arn] = point

    def _remove_recovery_point(self, point: RecoveryPoint) -> None:
        arn = point.recovery_point_arn
        self.recovery_points.pop(arn, None)
        indexes = ((self.points_in_vault, point.backup_vault_name), (self.points_of_resource, point.resource_arn))
        for index, key in indexes:
            held = index.get(key, {})
            held.pop(arn, None)
            if not held:
                index.pop(key, None)
        if point.snapshot_id:
            ec2_backends[point.account_id][point.region].snapshots.pop(point.snapshot_id, None)

    @paginate(pagination_model=PAGINATION_MODEL)
    def list_recovery_points_by_backup_vault(
        self, backup_vault_name: str, filters: dict[str, Any]
    ) -> list[RecoveryPoint]:
        self.settle_due_jobs()
        self.describe_backup_vault(backup_vault_name)
        return matching(self.points_in_vault.get(backup_vault_name, {}).values(), filters, POINT_FILTERS)

    @paginate(pagination_model=PAGINATION_MODEL)
    def list_recovery_points_by_resource(self, resource_arn: str) -> list[RecoveryPoint]:
        self.settle_due_jobs()
        parse_arn(resource_arn)
        return list(self.points_of_resource.get(resource_arn, {}).values())
