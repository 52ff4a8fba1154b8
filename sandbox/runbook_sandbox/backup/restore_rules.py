"""Whether a restore may use the key its volume will be encrypted with, and AWS's words when it may not.

EBS creates the restored volume with the credentials of the restore job's role, as a session AWS
Backup names after the role; each KMS call it makes must be allowed by the key's policy. A refusal
ends the job with the authorization text KMS returns, which the runbook's diagnosis matches on.
The job also fails, before any key is asked, when its Metadata names a zone the Region lacks (EC2's
words) or a key that does not exist (the sandbox's words).
"""

from __future__ import annotations

from moto.kms.models import Key

from runbook_policy import iam_policy

from ..kms import models as kms_models

# The session a restore's role runs as: {account_id}, {role_name} (the role ARN's last path segment).
RESTORE_CALLER = "arn:aws:sts::{account_id}:assumed-role/{role_name}/AWSBackup-{role_name}"
MSG_RESTORE_KEY_EXPLICIT_DENY = (
    "User: {caller} is not authorized to perform: {action} on resource: {key_arn} "
    "with an explicit deny in a resource-based policy"
)
MSG_RESTORE_KEY_NOT_ALLOWED = (
    "User: {caller} is not authorized to perform: {action} on resource: {key_arn} "
    "because no resource-based policy allows the {action} action"
)
MSG_RESTORE_KEY_NOT_FOUND = "KMS key {key} does not exist in account {account_id} in {region}."
MSG_RESTORE_ZONE = "Invalid availability zone: [{zone}]"

# name -> message template, so that a test can hold the diagnosis to each.
RESTORE_FAILURE_MESSAGES: dict[str, str] = {
    "MSG_RESTORE_KEY_EXPLICIT_DENY": MSG_RESTORE_KEY_EXPLICIT_DENY,
    "MSG_RESTORE_KEY_NOT_ALLOWED": MSG_RESTORE_KEY_NOT_ALLOWED,
}

# The KMS calls EBS makes, in this order, to create a volume under the key.
RESTORE_KEY_ACTIONS = (
    "kms:DescribeKey",
    "kms:Decrypt",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:CreateGrant",
)


def restore_caller(account_id: str, iam_role_arn: str) -> str:
    return RESTORE_CALLER.format(account_id=account_id, role_name=iam_role_arn.rsplit("/", 1)[-1])


def restore_key_failure(key: Key, account_id: str, region: str, iam_role_arn: str) -> str | None:
    """The StatusMessage of a restore the key refuses (at its first refused action), or None.

    Each action is asked of the key's policy for the role in the restoring account, through EBS in
    the restoring Region (kms:ViaService), CreateGrant for an AWS resource. An answer the evaluator
    cannot decide refuses. Simplification: IAM identity policies are not evaluated, so a key policy
    statement naming the account's root allows the role as if its own policies granted the action.
    """
    principal = kms_models.principal_for(account_id, iam_role_arn)
    via = {"kms:ViaService": f"ec2.{region}.amazonaws.com"}
    for action in RESTORE_KEY_ACTIONS:
        context = {**via, "kms:GrantIsForAWSResource": "true"} if action == "kms:CreateGrant" else via
        request = iam_policy.Request(principal, action, key.arn, context, complete=True)
        outcome = iam_policy.evaluate(key.policy, request)
        if outcome == iam_policy.ALLOW:
            continue
        template = MSG_RESTORE_KEY_EXPLICIT_DENY if outcome == iam_policy.DENY else MSG_RESTORE_KEY_NOT_ALLOWED
        return template.format(caller=restore_caller(account_id, iam_role_arn), action=action, key_arn=key.arn)
    return None
