"""KMS keys: what they are, whom their policy shares them with, and sharing one with an account.

Sharing grants what the KMS console's "Add other AWS accounts" grants: the destination account's
root may use the key, and create grants only for AWS resources. It does so with two statements of
its own (Sids naming the account and the run folder that added them, so a rerun finds them and a person
sees whose they are), whatever the policy already holds:
no existing statement is edited, the document keeps its formatting, nothing is ever shared with
Principal "*" and the policy lockout safety check is never bypassed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from runbook_policy import iam_policy

from ..core import arns, grants, policy_text
from ..core.changes import Change, policy_diff
from ..core.errors import StepFailed
from . import clients, facts

USE_SID_PREFIX = "RunbookAllowUseOfTheKey"
GRANT_SID_PREFIX = "RunbookAllowGrantsForAWSResources"
SID_PREFIXES = (USE_SID_PREFIX, GRANT_SID_PREFIX)
USE_ACTIONS = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
GRANT_ACTIONS = ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"]
GRANT_CONDITION = {"Bool": {"kms:GrantIsForAWSResource": "true"}}
COPY_ACTIONS = ("kms:DescribeKey", "kms:Decrypt", "kms:CreateGrant")
AWS_MANAGED_ALIAS_PREFIX = "alias/aws/"


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
    # The policy's text as read with the key (customer managed keys), so a check does not read it again.
    policy: str | None = field(default=None, compare=False, repr=False)

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
    kms = clients.client(profile, "kms", region)
    by_key = aliases_by_key(profile, region)
    if key_ref.startswith("alias/"):  # the key ID from the listing a run keeps: one DescribeKey per key
        key_ref = next((key_id for key_id, names in by_key.items() if key_ref in names), key_ref)
    meta = kms.describe_key(KeyId=key_ref)["KeyMetadata"]
    aliases = by_key.get(meta["KeyId"], ())
    shared: tuple[str, ...] = ()
    policy = None
    if meta["KeyManager"] == "CUSTOMER":
        policy = current_policy(profile, region, meta["Arn"])
        shared = shared_accounts(json.loads(policy), meta["AWSAccountId"])
    return KeyInfo(
        meta["Arn"],
        meta["KeyId"],
        aliases,
        meta["AWSAccountId"],
        region,
        meta["KeyManager"],
        meta["KeyState"],
        shared,
        policy,
    )


def aliases_by_key(profile: str, region: str) -> dict[str, tuple[str, ...]]:
    """Every alias of the account and Region by the key ID it points to: one listing (a run keeps it,
    facts.py), however many keys are described."""
    kms = clients.client(profile, "kms", region)
    found: dict[str, list[str]] = {}
    for page in kms.get_paginator("list_aliases").paginate():
        for alias in page["Aliases"]:
            if alias.get("TargetKeyId"):
                found.setdefault(alias["TargetKeyId"], []).append(alias["AliasName"])
    return {key_id: tuple(names) for key_id, names in found.items()}


def manager_by_aliases(aliases: tuple[str, ...]) -> str:
    """Who manages a key, told by its aliases alone: AWS managed keys always carry alias/aws/<service>,
    so a key without one is a customer's (no DescribeKey per key for a table of thousands of rows)."""
    return "AWS" if any(alias.startswith(AWS_MANAGED_ALIAS_PREFIX) for alias in aliases) else "CUSTOMER"


def keys_table(profile: str, region: str) -> list[dict[str, Any]]:
    """Every key of the account and Region that has an alias, customer managed first."""
    rows = [describe(profile, region, key_id).row() for key_id in sorted(aliases_by_key(profile, region))]
    return sorted(rows, key=lambda r: (r["manager"] != "CUSTOMER", r["alias"]))


def copy_principal(account: str, region: str, org_id: str | None) -> iam_policy.Principal:
    """Who uses the source key during a copy: AWS Backup's service-linked role of the destination account."""
    return iam_policy.Principal(
        account, arns.backup_service_role(account, region), org_id, partition=arns.partition(region)
    )


def copy_decision(policy: dict[str, Any], key_arn: str, principal: iam_policy.Principal) -> iam_policy.Decision:
    """Whether the policy lets the principal use the key to copy a backup: allowed, denied or undetermined.

    AWS Backup makes these calls itself, with its service-linked role, from its own network: the
    requests are `by_service`, so a Deny on the caller's network (aws:SourceVpce, aws:SourceIp) decides.
    """
    requests = [
        iam_policy.Request(
            principal,
            action,
            key_arn,
            {"kms:GrantIsForAWSResource": "true"} if action == "kms:CreateGrant" else {},
            by_service=True,
        )
        for action in COPY_ACTIONS
    ]
    return iam_policy.decide_all(policy, requests)


def share_statements(account: str, region: str, owner: str = "") -> list[dict[str, Any]]:
    """The runbook's own two statements, as the KMS console's "Add other AWS accounts" writes them; their Sids
    name the account and the run that writes them (`owner`, its run folder's ID)."""
    principal = {"AWS": arns.account_root(account, region)}
    return [
        {
            "Sid": grants.owned_sid(USE_SID_PREFIX, account, owner),
            "Effect": "Allow",
            "Principal": principal,
            "Action": USE_ACTIONS,
            "Resource": "*",
        },
        {
            "Sid": grants.owned_sid(GRANT_SID_PREFIX, account, owner),
            "Effect": "Allow",
            "Principal": principal,
            "Action": GRANT_ACTIONS,
            "Resource": "*",
            "Condition": GRANT_CONDITION,
        },
    ]


def current_policy(profile: str, region: str, key_arn: str) -> str:
    """The key policy as written (its text, so that an edit keeps its formatting)."""
    kms = clients.client(profile, "kms", region)
    return kms.get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"]


def share_change(
    step: str,
    profile: str,
    region: str,
    key_arn: str,
    principal: iam_policy.Principal,
    remove_denies: bool = False,
    force: bool = False,
    owner: str = "",
) -> Change:
    """Plan sharing the key with the principal's account, with statements whose Sids name run `owner` (its run
    folder's ID): nothing to do when its policy already does, whoever's statements do it (a rerun finds its
    own; a grant another run made, or someone else, is used as it is: that run's cleanup keeps it while this
    run folder relies on it, steps/reliance.py).

    DenyBlocks when an explicit Deny for the account decides (see grants.plan_grant).
    """
    account = principal.account_id
    with facts.fresh():  # an edit starts from the policy as it is now, not as the run first read it
        text = current_policy(profile, region, key_arn)
    plan = grants.plan_grant(
        text,
        lambda policy: copy_decision(policy, key_arn, principal),
        share_statements(account, region, owner),
        account,
        remove_denies,
        force,
    )
    after = plan.after or text
    if plan.needed and policy_text.size(after) > policy_text.MAX_KEY_POLICY_BYTES:
        raise StepFailed(
            step,
            f"[source-key-shared] the shared key policy would be {policy_text.size(after)} bytes; "
            f"KMS allows {policy_text.MAX_KEY_POLICY_BYTES}",
            "shorten the key policy (merge statements), then share again",
        )
    kms = clients.client(profile, "kms", region)

    def put() -> None:
        kms.put_key_policy(KeyId=key_arn, PolicyName="default", Policy=after)

    def changed_since() -> str:
        """At Apply: the key policy must be the one this plan was made from."""
        with facts.fresh():
            now = current_policy(profile, region, key_arn)
        if now != text:
            return "the key policy changed since this plan was made: run the cell again"
        return ""

    removed = f"; remove {', '.join(grants.label(s) for s in plan.removed)}" if plan.removed else ""
    summary = (
        f"share the key with account {account}: add the runbook's statements{removed}, keep every other statement"
        if plan.needed
        else f"the key policy already lets account {account} use the key"
    )
    return Change(
        step,
        profile,
        region,
        "kms:PutKeyPolicy",
        key_arn,
        summary,
        put,
        needed=plan.needed,
        diff=policy_diff(json.loads(text), json.loads(after), "key policy") if plan.needed else "",
        effect={"kind": "key-policy", "key_arn": key_arn, "policy": after},
        notes=plan.notes,
        precheck=changed_since,
        added=plan.log_record(),
    )
