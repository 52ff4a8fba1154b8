"""KMS keys: what they are, whom their policy shares them with, and sharing one with an account.

Sharing follows the KMS console's "Add other AWS accounts": the destination account's root is added
to the statements "Allow use of the key" and "Allow attachment of persistent resources" (the latter
only for grants for AWS resources). Every statement already in the policy stays; nothing is ever
shared with Principal "*" and the policy lockout safety check is never bypassed.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from . import aws, iam_policy
from .changes import Change, policy_diff

USE_SID = "Allow use of the key"
GRANT_SID = "Allow attachment of persistent resources"
USE_ACTIONS = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
GRANT_ACTIONS = ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"]
GRANT_CONDITION = {"Bool": {"kms:GrantIsForAWSResource": "true"}}
COPY_ACTIONS = ("kms:DescribeKey", "kms:Decrypt", "kms:CreateGrant")
MAX_POLICY_BYTES = 32 * 1024


@dataclass(frozen=True)
class KeyInfo:
    arn: str
    key_id: str
    aliases: tuple[str, ...]
    account: str
    region: str
    manager: str
    state: str
    shared_with: tuple[str, ...]

    @property
    def alias(self) -> str:
        return self.aliases[0] if self.aliases else ""

    def row(self) -> dict[str, Any]:
        return {
            "alias": self.alias,
            "arn": self.arn,
            "account": self.account,
            "region": self.region,
            "manager": self.manager,
            "state": self.state,
            "shared with": ", ".join(self.shared_with) or "-",
        }


def shared_accounts(policy: dict[str, Any], owner: str) -> tuple[str, ...]:
    """Accounts other than the owner that an Allow statement names as principal."""
    found: set[str] = set()
    for statement in iam_policy.statements(policy):
        if statement.get("Effect") != "Allow" or not isinstance(statement.get("Principal"), dict):
            continue
        principals = statement["Principal"].get("AWS", [])
        for principal in principals if isinstance(principals, list) else [principals]:
            account = principal.split(":")[4] if str(principal).startswith("arn:") else str(principal)
            if account.isdigit() and account != owner:
                found.add(account)
    return tuple(sorted(found))


def describe(profile: str, region: str, key_ref: str) -> KeyInfo:
    """A key by alias, key ID or ARN, with its aliases and the accounts its policy shares it with."""
    kms = aws.client(profile, "kms", region)
    meta = kms.describe_key(KeyId=key_ref)["KeyMetadata"]
    aliases = tuple(
        a["AliasName"]
        for page in kms.get_paginator("list_aliases").paginate(KeyId=meta["KeyId"])
        for a in page["Aliases"]
    )
    shared: tuple[str, ...] = ()
    if meta["KeyManager"] == "CUSTOMER":
        policy = json.loads(kms.get_key_policy(KeyId=meta["KeyId"], PolicyName="default")["Policy"])
        shared = shared_accounts(policy, meta["AWSAccountId"])
    return KeyInfo(meta["Arn"], meta["KeyId"], aliases, meta["AWSAccountId"], region, meta["KeyManager"],
                   meta["KeyState"], shared)


def keys_table(profile: str, region: str) -> list[dict[str, Any]]:
    """Every key of the account and Region that has an alias, customer managed first."""
    kms = aws.client(profile, "kms", region)
    aliased = {
        a["TargetKeyId"]
        for page in kms.get_paginator("list_aliases").paginate()
        for a in page["Aliases"]
        if a.get("TargetKeyId")
    }
    rows = [describe(profile, region, key_id).row() for key_id in sorted(aliased)]
    return sorted(rows, key=lambda r: (r["manager"] != "CUSTOMER", r["alias"]))


def shares_with(policy: dict[str, Any], key_arn: str, account: str, org_id: str | None = None) -> bool:
    """Whether the policy lets the account use the key to copy a backup (as AWS Backup does)."""
    principal = iam_policy.Principal(account, org_id=org_id)
    requests = [
        iam_policy.Request(principal, action, key_arn,
                           {"kms:GrantIsForAWSResource": "true"} if action == "kms:CreateGrant" else {})
        for action in COPY_ACTIONS
    ]
    return iam_policy.is_allowed(policy, requests)


def policy_sharing_with(policy: dict[str, Any], account: str) -> dict[str, Any]:
    """The policy with the account added to the two console statements; all else unchanged."""
    shared = copy.deepcopy(policy)
    root = f"arn:aws:iam::{account}:root"
    statements = shared.setdefault("Statement", [])
    for sid, actions, condition in ((USE_SID, USE_ACTIONS, None), (GRANT_SID, GRANT_ACTIONS, GRANT_CONDITION)):
        existing = next((s for s in statements if s.get("Sid") == sid), None)
        if existing is None:
            statement = {"Sid": sid, "Effect": "Allow", "Principal": {"AWS": [root]}, "Action": actions,
                         "Resource": "*"}
            if condition:
                statement["Condition"] = condition
            statements.append(statement)
            continue
        principals = existing.setdefault("Principal", {}).get("AWS", [])
        principals = principals if isinstance(principals, list) else [principals]
        if root not in principals:
            existing["Principal"]["AWS"] = [*principals, root]
    return shared


def share_change(step: str, profile: str, region: str, key_arn: str, account: str) -> Change:
    """Plan sharing the key with the account (nothing to do when its policy already does)."""
    kms = aws.client(profile, "kms", region)
    before = json.loads(kms.get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"])
    after = policy_sharing_with(before, account)
    needed = not shares_with(before, key_arn, account)
    text = json.dumps(after)
    if needed and len(text.encode()) > MAX_POLICY_BYTES:
        raise ValueError(f"the shared key policy would be {len(text.encode())} bytes; KMS allows {MAX_POLICY_BYTES}")

    def put() -> None:
        kms.put_key_policy(KeyId=key_arn, PolicyName="default", Policy=text)

    return Change(step, profile, region, "kms:PutKeyPolicy", key_arn,
                  f"share the key with account {account} (every existing statement kept)", put,
                  needed=needed, diff=policy_diff(before, after, "key policy") if needed else "")
