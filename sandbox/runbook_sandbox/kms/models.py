"""KMS fidelity the copy procedure depends on: AWS managed keys and cross-account key policies.

moto creates `alias/aws/*` keys on first use but marks them customer managed, and it keeps each
account's keys to itself. Here the managed keys carry KeyManager AWS and the policy AWS gives them
(usable only through the service, only by the owning account), and another account's use of a key
is decided by that key's policy, evaluated with runbook_policy.iam_policy.
"""

from __future__ import annotations

import functools
import json

from moto.kms import models as moto_kms_models
from moto.kms.models import Key, KmsBackend, kms_backends
from moto.kms.utils import AbstractPrivateKey

from runbook_policy import iam_policy

MANAGED_KEY_SERVICES = {"alias/aws/ebs": "ec2", "alias/aws/backup": "backup", "alias/aws/rds": "rds"}
MANAGED_KEY_DESCRIPTIONS = {
    "alias/aws/ebs": "Default key that protects my EBS volumes when no other key is defined",
    "alias/aws/backup": "Default key that protects my backups when no other key is defined",
    "alias/aws/rds": "Default key that protects my RDS database volumes when no other key is defined",
}

# What the destination account does with the source key while copying an encrypted snapshot.
COPY_KEY_ACTIONS = ("kms:DescribeKey", "kms:Decrypt", "kms:CreateGrant")


def managed_key_policy(account_id: str, region: str, alias: str) -> str:
    """The policy AWS attaches to an AWS managed key: its own account, through its own service."""
    service = MANAGED_KEY_SERVICES.get(alias, "ec2")
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Id": f"auto-{service}-2",
            "Statement": [
                {
                    "Sid": f"Allow access through {service} for all principals in the account",
                    "Effect": "Allow",
                    "Principal": {"AWS": "*"},
                    "Action": [
                        "kms:Encrypt",
                        "kms:Decrypt",
                        "kms:ReEncrypt*",
                        "kms:GenerateDataKey*",
                        "kms:CreateGrant",
                        "kms:DescribeKey",
                    ],
                    "Resource": "*",
                    "Condition": {
                        "StringEquals": {
                            "kms:ViaService": f"{service}.{region}.amazonaws.com",
                            "kms:CallerAccount": account_id,
                        }
                    },
                },
                {
                    "Sid": "Allow direct access to key metadata to the account",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
                    "Action": ["kms:Describe*", "kms:Get*", "kms:List*"],
                    "Resource": "*",
                },
            ],
        }
    )


def create_managed_key(backend: KmsBackend, alias: str) -> Key:
    """Create an AWS managed key the way AWS does on a service's first use in a Region."""
    key = backend.create_key(
        managed_key_policy(backend.account_id, backend.region_name, alias),
        "ENCRYPT_DECRYPT",
        "SYMMETRIC_DEFAULT",
        MANAGED_KEY_DESCRIPTIONS.get(alias, "Default key"),
        None,
    )
    key.key_manager = "AWS"
    backend.create_alias(key.id, alias)
    return key


def _generate_default_keys(self: KmsBackend, alias_name: str) -> str | None:
    """Replaces moto's lazy creation of reserved aliases so the key is AWS managed."""
    if not alias_name.startswith("alias/aws/"):
        return None
    return create_managed_key(self, alias_name).id


def ensure_managed_key(account_id: str, region: str, alias: str) -> Key:
    """The AWS managed key of an alias, created on first use as AWS creates it: moto creates only the
    keys of its own list of reserved aliases, which lacks aws/backup."""
    backend = kms_backends[account_id][region]
    key_id = backend.get_key_id_from_alias(alias)
    if key_id is None:
        return create_managed_key(backend, alias)
    return backend.keys[key_id]


def find_key(account_id: str, region: str, key_ref: str) -> Key | None:
    """A key of one account and Region by key ID, key ARN, alias name or alias ARN, or None."""
    backend = kms_backends[account_id][region]
    try:
        key_id = backend.any_id_to_key_id(key_ref)
    except (KeyError, AttributeError, TypeError):
        return None
    return backend.keys.get(key_id)


def key_from_arn(arn: str | None) -> Key | None:
    """The key an ARN (key or alias ARN) names, in whichever account and Region it lives."""
    if not arn or not arn.startswith("arn:aws:kms:"):
        return None
    parts = arn.split(":", 5)
    if len(parts) < 6:
        return None
    return find_key(parts[4], parts[3], parts[5] if parts[5].startswith("alias/") else arn)


def principal_for(account_id: str, arn: str | None = None) -> iam_policy.Principal:
    """The caller as AWS knows it: account, role, organization and organization path."""
    from runbook_sandbox.organizations import organization_id_of, organization_paths_of

    return iam_policy.Principal(
        account_id=account_id,
        arn=arn,
        org_id=organization_id_of(account_id),
        org_paths=organization_paths_of(account_id),
    )


def key_allows(
    key: Key, principal: iam_policy.Principal, actions: tuple[str, ...], by_service: bool = False, **context: str
) -> bool:
    """Whether the key policy lets this principal perform every one of these actions; `by_service` for a call
    AWS Backup makes itself with a service-linked role (what AWS sets of such a call, as AWS documents it).

    Simplification: a policy the evaluator cannot decide (an operator it does not know) refuses.
    """
    requests = [
        iam_policy.Request(
            principal, action, key.arn, _action_context(action, context), complete=True, by_service=by_service
        )
        for action in actions
    ]
    return iam_policy.is_allowed(key.policy, requests)


def _action_context(action: str, context: dict[str, str]) -> dict[str, str]:
    ctx = dict(context)
    if action == "kms:CreateGrant":
        ctx.setdefault("kms:GrantIsForAWSResource", "true")
    return ctx


_moto_generate_private_key = moto_kms_models.generate_private_key


@functools.cache
def _shared_private_key(key_spec: str) -> AbstractPrivateKey:
    return _moto_generate_private_key(key_spec)


def _generate_private_key(key_spec: str) -> AbstractPrivateKey:
    """moto makes a 2048-bit RSA key pair for every key, symmetric ones included (about 0.1 s each,
    seven per scenario). A symmetric key never signs with it, so they all share one."""
    if key_spec == "SYMMETRIC_DEFAULT":
        return _shared_private_key(key_spec)
    return _moto_generate_private_key(key_spec)


def install() -> None:
    """Teach moto's KMS backend to create AWS managed keys as AWS does, and symmetric keys quickly."""
    KmsBackend._generate_default_keys = _generate_default_keys  # type: ignore[method-assign]
    moto_kms_models.generate_private_key = _generate_private_key
