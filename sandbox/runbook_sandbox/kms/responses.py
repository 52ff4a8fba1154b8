"""KMS handlers that let one account read another account's key when that key's policy allows it."""

from __future__ import annotations

import json

from moto.kms.responses import KmsResponse

from runbook_policy import iam_policy

from . import models
from .exceptions import AccessDeniedException, MalformedPolicyDocumentException, NotFoundException

MAX_KEY_POLICY_BYTES = 32 * 1024


class SandboxKmsResponse(KmsResponse):
    def _foreign_key(self) -> models.Key | None:
        """The key a request names by ARN in another account, or None for this account's keys."""
        key_ref = self._get_param("KeyId") or ""
        if not key_ref.startswith("arn:aws:kms:") or key_ref.split(":")[4] == self.current_account:
            return None
        key = models.key_from_arn(key_ref)
        if key is None:
            raise NotFoundException(f"Key '{key_ref}' does not exist")
        return key

    def _validate_alias(self, key_id: str) -> None:
        """moto's check that an alias (name or ARN) exists, building its error only to raise it: moto
        builds it first, rendering an XML body for every call that names a key by alias."""
        is_alias = key_id.startswith("alias/") or (key_id.startswith("arn:") and ":alias/" in key_id)
        backend = self.kms_backend
        if not is_alias or backend.get_key_id_from_alias(backend.get_alias_name(key_id)) is None:
            raise NotFoundException(f"Alias {self._display_arn(key_id)} is not found.")

    def _validate_key_policy(self, key_id: str, action: str) -> None:
        """An explicit Deny for the caller refuses (moto's check ignores the Deny's principal), and so
        does a Deny the evaluator cannot decide."""
        key = self.kms_backend.describe_key(self.kms_backend.get_key_id(key_id))
        request = iam_policy.Request(models.principal_for(self.current_account), action, key.arn, complete=True)
        decision = iam_policy.decide(key.policy, request)
        undecided_deny = decision.outcome == iam_policy.UNDETERMINED and any(
            s.get("Effect") == iam_policy.DENY for s in decision.statements
        )
        if decision.outcome == iam_policy.DENY or undecided_deny:
            raise AccessDeniedException(
                f"User: arn:aws:iam::{self.current_account}:root is not authorized to perform: {action} on "
                f"resource: {key.arn} with an explicit deny in a resource-based policy"
            )

    def describe_key(self) -> str:
        """Cross-account DescribeKey, decided by the key policy (the identity side is not modelled)."""
        key = self._foreign_key()
        if key is None:
            return super().describe_key()
        principal = models.principal_for(self.current_account)
        if not models.key_allows(key, principal, ("kms:DescribeKey",)):
            raise AccessDeniedException(
                f"User: arn:aws:iam::{self.current_account}:root is not authorized to perform: "
                f"kms:DescribeKey on resource: {key.arn} because no resource-based policy allows the "
                "kms:DescribeKey action"
            )
        return json.dumps(key.to_dict())

    def list_aliases(self) -> str:
        """AWS managed aliases not yet backed by a key carry no TargetKeyId (moto invents one)."""
        listed = json.loads(super().list_aliases())
        for alias in listed["Aliases"]:
            if alias.get("TargetKeyId") and alias["TargetKeyId"] not in self.kms_backend.keys:
                del alias["TargetKeyId"]
        return json.dumps(listed)

    def put_key_policy(self) -> str:
        """Refuses policies AWS refuses: over 32 KB, or not JSON."""
        policy = self._get_param("Policy") or ""
        if len(policy.encode()) > MAX_KEY_POLICY_BYTES:
            raise MalformedPolicyDocumentException("The key policy exceeds the maximum size of 32768 bytes.")
        try:
            json.loads(policy)
        except ValueError:
            raise MalformedPolicyDocumentException("The new key policy is not a valid JSON document.")
        return super().put_key_policy()
