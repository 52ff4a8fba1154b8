"""Wire handlers for the Backup operations the sandbox adds; moto's own handlers are inherited.

Answers built from the sandbox's records (dicts in AWS's member names) are ShapedResults, written by
the serializer of serialize.py: a page of 1,000 recovery points in milliseconds, not a second.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote

from moto.backup.responses import BackupResponse
from moto.core.exceptions import InvalidToken
from moto.core.responses import ActionResult, EmptyResult

from ..speedups import gen_amzn_requestid_long
from .exceptions import InvalidParameterValueException
from .models import SandboxBackupBackend, sandbox_backup_backends
from .resource_rules import FULLY_MANAGED_TYPES
from .serialize import ShapedResult

INVALID_NEXT_TOKEN = "Invalid NextToken: it was not returned by this listing with these parameters."
LIST_FILTERS = (
    "ByResourceArn",
    "ByState",
    "ByBackupVaultName",
    "ByCreatedBefore",
    "ByCreatedAfter",
    "ByResourceType",
    "ByAccountId",
    "ByCompleteAfter",
    "ByCompleteBefore",
    "ByDestinationVaultArn",
    "BySourceRecoveryPointArn",
    "ByStatus",
)


class SandboxBackupResponse(BackupResponse):
    """Parses requests from botocore's service model, so shapes and types are AWS's."""

    def __init__(self) -> None:
        super().__init__()
        self.automated_parameter_parsing = True
        self._action: str | None = None

    def _get_action(self) -> str:
        """The operation, matched once: moto matches a REST request against Backup's routes each time
        it asks (three times a request). A response object answers one request."""
        if self._action is None:
            self._action = super()._get_action()
        return self._action

    @staticmethod
    def _enrich_response(headers: dict[str, str], body: Any) -> tuple[dict[str, str], Any]:
        """moto's, without its search of the body for an XML RequestId to replace: Backup answers in
        JSON, and a page of 1,000 recovery points is a megabyte to search."""
        if "status" in headers:
            headers["status"] = str(headers["status"])
        gen_amzn_requestid_long(headers)
        return headers, body

    @property
    def backup_backend(self) -> SandboxBackupBackend:
        return sandbox_backup_backends[self.current_account][self.region]

    def _param(self, name: str) -> Any:
        value = self._get_param(name)
        return unquote(value) if isinstance(value, str) and name.endswith("Arn") else value

    def _filters(self) -> dict[str, Any]:
        """The list filters given; timestamps arrive naive and mean UTC."""
        filters = {name: self._param(name) for name in LIST_FILTERS if self._param(name) is not None}
        return {
            name: value.replace(tzinfo=timezone.utc) if isinstance(value, datetime) and value.tzinfo is None else value
            for name, value in filters.items()
        }

    def _paged(self, list_method: Any, **arguments: Any) -> tuple[list[Any], str | None]:
        """Call a paginated backend method; a bad NextToken is AWS Backup's InvalidParameterValueException."""
        try:
            return list_method(
                next_token=self._get_param("NextToken"), max_results=self._get_param("MaxResults"), **arguments
            )
        except InvalidToken:
            raise InvalidParameterValueException(msg=INVALID_NEXT_TOKEN) from None

    def start_backup_job(self) -> ActionResult:
        """The answer holds the RecoveryPointArn only for a type fully managed by AWS Backup (EFS), as
        AWS's API reference says; the others' appears in DescribeBackupJob."""
        job = self.backup_backend.start_backup_job(
            backup_vault_name=self._param("BackupVaultName"),
            resource_arn=self._param("ResourceArn"),
            iam_role_arn=self._param("IamRoleArn"),
            idempotency_token=self._param("IdempotencyToken"),
            lifecycle=self._param("Lifecycle"),
            recovery_point_tags=self._param("RecoveryPointTags"),
        )
        result = {"BackupJobId": job.job_id, "CreationDate": job.creation_date, "IsParent": False}
        if job.resource_type in FULLY_MANAGED_TYPES and job.recovery_point_arn:
            result["RecoveryPointArn"] = job.recovery_point_arn
        return ShapedResult(result)

    def describe_backup_job(self) -> ActionResult:
        job = self.backup_backend.describe_backup_job(self._param("BackupJobId"))
        return ShapedResult(job.to_dict())

    def list_backup_jobs(self) -> ActionResult:
        jobs, token = self._paged(self.backup_backend.list_backup_jobs, filters=self._filters())
        return ShapedResult({"BackupJobs": [j.to_dict() for j in jobs], "NextToken": token})

    def start_copy_job(self) -> ActionResult:
        job = self.backup_backend.start_copy_job(
            recovery_point_arn=self._param("RecoveryPointArn"),
            source_backup_vault_name=self._param("SourceBackupVaultName"),
            destination_backup_vault_arn=self._param("DestinationBackupVaultArn"),
            iam_role_arn=self._param("IamRoleArn"),
            idempotency_token=self._param("IdempotencyToken"),
            lifecycle=self._param("Lifecycle"),
        )
        return ShapedResult({"CopyJobId": job.job_id, "CreationDate": job.creation_date, "IsParent": False})

    def describe_copy_job(self) -> ActionResult:
        job = self.backup_backend.describe_copy_job(self._param("CopyJobId"))
        return ShapedResult({"CopyJob": job.to_dict()})

    def list_copy_jobs(self) -> ActionResult:
        jobs, token = self._paged(self.backup_backend.list_copy_jobs, filters=self._filters())
        return ShapedResult({"CopyJobs": [j.to_dict() for j in jobs], "NextToken": token})

    def list_recovery_points_by_backup_vault(self) -> ActionResult:
        points, token = self._paged(
            self.backup_backend.list_recovery_points_by_backup_vault,
            backup_vault_name=self._param("BackupVaultName"),
            filters=self._filters(),
        )
        return ShapedResult({"RecoveryPoints": [p.to_dict() for p in points], "NextToken": token})

    def list_recovery_points_by_resource(self) -> ActionResult:
        points, token = self._paged(
            self.backup_backend.list_recovery_points_by_resource, resource_arn=self._param("ResourceArn")
        )
        return ShapedResult({"RecoveryPoints": [p.to_dict() for p in points], "NextToken": token})

    def describe_recovery_point(self) -> ActionResult:
        point = self.backup_backend.describe_recovery_point(
            self._param("BackupVaultName"), self._param("RecoveryPointArn")
        )
        return ShapedResult(point.to_dict())

    def delete_recovery_point(self) -> EmptyResult:
        self.backup_backend.delete_recovery_point(self._param("BackupVaultName"), self._param("RecoveryPointArn"))
        return EmptyResult()

    def put_backup_vault_access_policy(self) -> EmptyResult:
        self.backup_backend.put_backup_vault_access_policy(self._param("BackupVaultName"), self._param("Policy"))
        return EmptyResult()

    def get_backup_vault_access_policy(self) -> ActionResult:
        return ShapedResult(self.backup_backend.get_backup_vault_access_policy(self._param("BackupVaultName")))

    def delete_backup_vault_access_policy(self) -> EmptyResult:
        self.backup_backend.delete_backup_vault_access_policy(self._param("BackupVaultName"))
        return EmptyResult()

    def describe_global_settings(self) -> ActionResult:
        return ShapedResult(self.backup_backend.describe_global_settings())

    def update_global_settings(self) -> EmptyResult:
        self.backup_backend.update_global_settings(self._param("GlobalSettings"))
        return EmptyResult()

    def start_restore_job(self) -> ActionResult:
        job = self.backup_backend.start_restore_job(
            recovery_point_arn=self._param("RecoveryPointArn"),
            metadata=self._param("Metadata") or {},
            iam_role_arn=self._param("IamRoleArn"),
            idempotency_token=self._param("IdempotencyToken"),
        )
        return ShapedResult({"RestoreJobId": job.job_id})

    def describe_restore_job(self) -> ActionResult:
        return ShapedResult(self.backup_backend.describe_restore_job(self._param("RestoreJobId")).to_dict())

    def list_restore_jobs(self) -> ActionResult:
        jobs, token = self._paged(self.backup_backend.list_restore_jobs, filters=self._filters())
        return ShapedResult({"RestoreJobs": [j.to_dict() for j in jobs], "NextToken": token})

    def put_restore_validation_result(self) -> EmptyResult:
        self.backup_backend.put_restore_validation_result(
            self._param("RestoreJobId"), self._param("ValidationStatus"), self._param("ValidationStatusMessage")
        )
        return EmptyResult()

    def get_recovery_point_restore_metadata(self) -> ActionResult:
        """Simplification: BackupVaultAccountId is ignored; the vault is always the caller's own."""
        return ShapedResult(
            self.backup_backend.get_recovery_point_restore_metadata(
                self._param("BackupVaultName"), self._param("RecoveryPointArn")
            )
        )

    def delete_backup_vault(self) -> EmptyResult:
        self.backup_backend.delete_backup_vault(self._param("BackupVaultName"))
        return EmptyResult()

    def describe_backup_vault(self) -> ActionResult:
        """With NumberOfRecoveryPoints, which moto's Vault keeps under a name its serializer never finds."""
        vault = self.backup_backend.describe_backup_vault(self._param("BackupVaultName"))
        return ShapedResult({**vault.to_list_dict(), "VaultType": "BACKUP_VAULT"})

    def list_backup_plans(self) -> ActionResult:  # type: ignore[override]  # moto's answers a JSON string
        """With IncludeDeleted read as the boolean it is (moto takes the query text "false" for true)."""
        plans = self.backup_backend.list_backup_plans(include_deleted=self._param("IncludeDeleted"))
        return ShapedResult({"BackupPlansList": [plan.to_list_dict() for plan in plans]})

    def update_backup_plan(self) -> ActionResult:
        plan = self.backup_backend.update_backup_plan(self._param("BackupPlanId"), self._param("BackupPlan"))
        return ShapedResult(
            {
                "BackupPlanId": plan.backup_plan_id,
                "BackupPlanArn": plan.backup_plan_arn,
                "CreationDate": plan.creation_date,
                "VersionId": plan.version_id,
                "AdvancedBackupSettings": plan.advanced_backup_settings or None,
            }
        )

    def create_backup_selection(self) -> ActionResult:
        selection = self.backup_backend.create_backup_selection(
            self._param("BackupPlanId"), self._param("BackupSelection"), self._param("CreatorRequestId")
        )
        return ShapedResult(
            {
                "SelectionId": selection.selection_id,
                "BackupPlanId": selection.backup_plan_id,
                "CreationDate": selection.creation_date,
            }
        )

    def get_backup_selection(self) -> ActionResult:
        selection = self.backup_backend.get_backup_selection(self._param("BackupPlanId"), self._param("SelectionId"))
        return ShapedResult(selection.to_get_dict())

    def list_backup_selections(self) -> ActionResult:
        selections = self.backup_backend.list_backup_selections(self._param("BackupPlanId"))
        return ShapedResult({"BackupSelectionsList": [selection.to_list_dict() for selection in selections]})

    def delete_backup_selection(self) -> EmptyResult:
        self.backup_backend.delete_backup_selection(self._param("BackupPlanId"), self._param("SelectionId"))
        return EmptyResult()
