"""The rules a copy meets, in the order AWS meets them, and the message each failure ends with.

The messages are AWS's words, as AWS Backup reports them; the runbook's diagnosis matches on their
stable part. COPY_FAILURE_MESSAGES holds all seven, so that a test can hold the diagnosis to each.
"""

from __future__ import annotations

from moto.backup.models import Vault
from moto.moto_api._internal import mock_random

from runbook_policy import iam_policy

from .. import organizations
from ..kms import models as kms_models
from .records import CopyJob, RecoveryPoint
from .resource_rules import ANY_DESTINATION_KEY_TYPES, SOURCE_KEY_TYPES

MSG_NOT_SAME_ORG = "Copy job failed. Both source and destination account must be a member of the same organization."
MSG_KEY_NOT_ACCESSIBLE = (
    "{kind} snapshot copy failed with error: Given key ID is not accessible. "
    "You must have DescribeKey permissions on the default CMK."
)
MSG_VAULT_ACCESS_DENIED = "Access Denied trying to call AWS Backup service"
MSG_AWS_MANAGED_SNAPSHOT_KEY = (
    "Snapshots encrypted with the AWS Managed CMK can't be shared. Specify another snapshot. "
    "(Service: AmazonEC2; Status Code: 400; Error Code: InvalidParameter; Request ID: {request_id}; Proxy: null)"
)
MSG_DEFAULT_KEY_VAULT = (
    "Copy job failed because the destination Backup vault is encrypted with the default Backup service "
    "managed key. The contents of this vault cannot be copied. Only the contents of a Backup vault "
    "encrypted by a customer master key (CMK) may be copied."
)
# StartCopyJob's refusal of one job across account and Region for a database type, as AWS said it for RDS and
# Aurora before October 2025 (and says it where it still refuses one job: settings.refuse_one_action_types).
MSG_RDS_TWO_HOPS = (
    "Copy job from {source_region} to {destination_region} cannot be initiated for RDS resources. "
    "Feature is not supported for provided resource type."
)
MSG_CROSS_ACCOUNT_DISABLED = "Copy job failed. Cross-account copy feature is not enabled for the current organization."

# name -> message template ({kind}, {request_id}, {source_region} and {destination_region} are
# filled in when the failure happens), in the order a copy meets them: the RDS refusal when the
# copy starts, then the rules of copy_failure.
COPY_FAILURE_MESSAGES: dict[str, str] = {
    "MSG_RDS_TWO_HOPS": MSG_RDS_TWO_HOPS,
    "MSG_NOT_SAME_ORG": MSG_NOT_SAME_ORG,
    "MSG_CROSS_ACCOUNT_DISABLED": MSG_CROSS_ACCOUNT_DISABLED,
    "MSG_VAULT_ACCESS_DENIED": MSG_VAULT_ACCESS_DENIED,
    "MSG_DEFAULT_KEY_VAULT": MSG_DEFAULT_KEY_VAULT,
    "MSG_AWS_MANAGED_SNAPSHOT_KEY": MSG_AWS_MANAGED_SNAPSHOT_KEY,
    "MSG_KEY_NOT_ACCESSIBLE": MSG_KEY_NOT_ACCESSIBLE,
}

BACKUP_SERVICE_LINKED_ROLE = "role/aws-service-role/backup.amazonaws.com/AWSServiceRoleForBackup"


def copy_failure(
    point: RecoveryPoint,
    job: CopyJob,
    cross_account_enabled: bool,
    destination_vault: Vault | None,
    destination_vault_policy: str | None,
) -> str | None:
    """The StatusMessage a copy will end with, or None when it will complete.

    The caller looks up the destination vault and its access policy (None when there is none), so
    these rules need nothing from the backend.

    Cross-account rules in the order AWS meets them: organization membership, the
    organization's cross-account setting, the destination vault's access policy, the
    destination vault's key, the snapshot's AWS managed key, then whether the destination
    account may use the source key (by the key's policy, as the destination's
    AWSServiceRoleForBackup, with kms:GrantIsForAWSResource for grants).

    A type fully managed by AWS Backup (EFS) may go into a vault under any key, and its recovery
    point's key is its source vault's, never an EBS or RDS managed key. Simplification: that key
    must still let the destination account in, as for the other types, and a refusal ends with the
    same words.
    """
    if job.destination_account_id == job.account_id:
        return None
    if not organizations.same_organization(job.account_id, job.destination_account_id):
        return MSG_NOT_SAME_ORG
    if not cross_account_enabled:
        return MSG_CROSS_ACCOUNT_DISABLED
    copy_in = iam_policy.Request(
        kms_models.principal_for(job.account_id, job.iam_role_arn),
        "backup:CopyIntoBackupVault",
        job.destination_backup_vault_arn,
        complete=True,
        by_service=True,
    )
    if destination_vault is None or iam_policy.evaluate(destination_vault_policy, copy_in) != iam_policy.ALLOW:
        return MSG_VAULT_ACCESS_DENIED
    vault_key = kms_models.key_from_arn(destination_vault.encryption_key_arn)
    default_key_vault = vault_key is None or vault_key.key_manager == "AWS"
    if default_key_vault and point.resource_type not in ANY_DESTINATION_KEY_TYPES:
        return MSG_DEFAULT_KEY_VAULT
    source_key = kms_models.key_from_arn(point.encryption_key_arn)
    if point.resource_type in SOURCE_KEY_TYPES and source_key is not None and source_key.key_manager == "AWS":
        return MSG_AWS_MANAGED_SNAPSHOT_KEY.format(request_id=str(mock_random.uuid4()))
    service_role = f"arn:aws:iam::{job.destination_account_id}:{BACKUP_SERVICE_LINKED_ROLE}"
    principal = kms_models.principal_for(job.destination_account_id, service_role)
    if source_key is not None and not kms_models.key_allows(
        source_key, principal, kms_models.COPY_KEY_ACTIONS, by_service=True
    ):
        kind = "AMI" if point.resource_type == "EC2" else "EBS"
        return MSG_KEY_NOT_ACCESSIBLE.format(kind=kind)
    return None
