"""Backup vaults, their access policies and the recovery points they hold.

moto keeps vaults but no access policies or recovery points, and a NumberOfRecoveryPoints nothing
updates; this part of the backend adds them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from moto.backup.models import BackupBackend, Vault
from moto.ec2.models import ec2_backends
from moto.utilities.paginator import paginate

from ..kms import models as kms_models
from .exceptions import (
    AlreadyExistsException,
    InvalidParameterValueException,
    InvalidRequestException,
    InvalidResourceStateException,
    ResourceNotFoundException,
)
from .records import PAGINATION_MODEL, CopyJob, RecoveryPoint, parse_arn, point_matches, validate_tags


class VaultsBackend(BackupBackend):
    """Vaults, access policies and recovery points: a part of SandboxBackupBackend (models.py).

    What it uses from the other parts is declared below: the job clock (models.py), and the copy
    jobs (jobs.py) that may still be reading a recovery point.
    """

    copy_jobs: dict[str, CopyJob]
    settle_due_jobs: Callable[[], None]

    def __init__(self, region_name: str, account_id: str):
        super().__init__(region_name, account_id)
        self.recovery_points: dict[str, RecoveryPoint] = {}
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
        if any(rp.backup_vault_name == backup_vault_name for rp in self.recovery_points.values()):
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
        vault.num_of_recovery_points = sum(
            1 for rp in self.recovery_points.values() if rp.backup_vault_name == vault.backup_vault_name
        )
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
            j for j in self.copy_jobs.values() if j.source_recovery_point_arn == recovery_point_arn and not j.settled
        ]
        if busy or point.status == "CREATING":
            raise InvalidResourceStateException(
                msg=f"Recovery point {recovery_point_arn} is being used by a running job and cannot be deleted."
            )
        self._remove_recovery_point(point)

    def _remove_recovery_point(self, point: RecoveryPoint) -> None:
        self.recovery_points.pop(point.recovery_point_arn, None)
        if point.snapshot_id:
            ec2_backends[point.account_id][point.region].snapshots.pop(point.snapshot_id, None)

    @paginate(pagination_model=PAGINATION_MODEL)
    def list_recovery_points_by_backup_vault(
        self, backup_vault_name: str, filters: dict[str, Any]
    ) -> list[RecoveryPoint]:
        self.settle_due_jobs()
        self.describe_backup_vault(backup_vault_name)
        points = [p for p in self.recovery_points.values() if p.backup_vault_name == backup_vault_name]
        return [p for p in points if point_matches(p, filters)]

    @paginate(pagination_model=PAGINATION_MODEL)
    def list_recovery_points_by_resource(self, resource_arn: str) -> list[RecoveryPoint]:
        self.settle_due_jobs()
        parse_arn(resource_arn)
        return [p for p in self.recovery_points.values() if p.resource_arn == resource_arn]
