"""Fixes the runbook can make itself for a failed check, each planned first like any change.

Sharing the key, writing the vault policy and enabling cross-account backup reuse the steps' own
changes. For a snapshot under an AWS managed key (which no other account may use), the fix copies
the snapshot under a customer managed key and makes a volume of it: back that volume up instead.
The other failures need a decision the runbook cannot take for you; their fix is said, not made.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from ..aws import clients, keys, restores, vaults
from ..aws.context import Run
from ..aws.sharing import enable_cross_account_change, vaults_principal
from ..core import arns, grants, resource_kinds
from ..core.changes import Change, policy_diff
from ..core.errors import StepFailed
from . import checks, registry

log = logging.getLogger(__name__)

Fixer = Callable[[Run, checks.Facts, checks.Finding, str], list[Change]]
FIXERS: dict[str, Fixer] = {}


def fixer(check_id: str) -> Callable[[Fixer], Fixer]:
    """Register the fix of a known failure the registry marks fixable."""
    if check_id not in registry.FIXABLE:
        raise KeyError(f"{check_id!r} is not a fixable known failure in the registry")

    def register(function: Fixer) -> Fixer:
        FIXERS[check_id] = function
        return function

    return register


def plan(run: Run, check_id: str, reencrypt_key: str = "alias/cmkSource") -> list[Change]:
    """The changes that fix this check; an empty list when it does not fail.

    Applying a fix twice changes nothing the second time: the runbook's statements are found again
    by their Sids, and once the check passes there is nothing to plan. When an explicit Deny blocks,
    the fix plans its removal (shown as a diff) if it names only that account, and otherwise refuses,
    naming the statement and who must change it.
    """
    facts = checks.Facts(run)
    finding = checks.CHECKS[check_id](facts)
    if finding.status != checks.FAIL:
        return []
    if check_id not in FIXERS:
        raise StepFailed(run.step, f"[{check_id}] {finding.finding}", finding.fix)
    try:
        return FIXERS[check_id](run, facts, finding, reencrypt_key)
    except grants.DenyBlocks:
        raise StepFailed(run.step, f"[{check_id}] {finding.finding}", finding.fix) from None


@fixer("source-key-shared")
def share_source_key(run: Run, facts: checks.Facts, finding: checks.Finding, reencrypt_key: str) -> list[Change]:
    assert facts.source_key is not None  # the check fails only for a customer managed source key
    principal = keys.copy_principal(run.account("target"), run.target_region, run.organization("target"))
    return [
        keys.share_change(
            run.step,
            run.source_profile,
            arns.parts(facts.source_key.arn)["region"],  # the hop key's Region for a copy in two hops
            facts.source_key.arn,
            principal,
            remove_denies=True,
            owner=run.state.run_id(),
        )
    ]


@fixer("target-vault-policy")
def allow_copy_in(run: Run, facts: checks.Facts, finding: checks.Finding, reencrypt_key: str) -> list[Change]:
    return [
        vaults.access_policy_change(
            run.step,
            run.target_profile,
            run.target_region,
            run.target_vault_name,
            run.target_vault_arn,
            vaults_principal(run),
            remove_denies=True,
            owner=run.state.run_id(),
        )
    ]


@fixer("cross-account-enabled")
def enable_cross_account(run: Run, facts: checks.Facts, finding: checks.Finding, reencrypt_key: str) -> list[Change]:
    return [enable_cross_account_change(run)]


@fixer("restore-key-usable")
def let_restore_role_in(run: Run, facts: checks.Facts, finding: checks.Finding, reencrypt_key: str) -> list[Change]:
    """Take out the key policy's Denies that name only the restore role; anything else is the key
    administrators' or the role's owner's to change (the finding says which)."""
    key, role = facts.restore_key, run.restore_role()
    denying = finding.evidence.get(f"statements of the {restores.KEY_POLICY}", [])
    if key is None or role is None or checks.DENY_WINS not in finding.finding or not denying:
        raise grants.DenyBlocks(denying, removable=False)
    if not all(restores.names_only_role(s, role["Arn"]) for s in denying):
        raise grants.DenyBlocks(denying, removable=False)
    before = keys.current_policy(run.target_profile, run.target_region, key.arn)
    after, removed = grants.without(before, denying)
    kms = run.target("kms")

    def put() -> None:
        kms.put_key_policy(KeyId=key.arn, PolicyName="default", Policy=after)

    return [
        Change(
            run.step,
            run.target_profile,
            run.target_region,
            "kms:PutKeyPolicy",
            key.arn,
            f"take out of {key.alias or key.arn}'s policy {', '.join(grants.label(s) for s in removed)}, which "
            f"denies the restore role {role['RoleName']}; every other statement stays",
            put,
            diff=policy_diff(json.loads(before), json.loads(after), "key policy"),
        )
    ]


def plan_all(run: Run, findings: list[checks.Finding], reencrypt_key: str = "alias/cmkSource") -> list[Change]:
    """The fixes for every failing check the runbook can fix itself."""
    return [
        change
        for finding in findings
        if finding.blocks() and finding.check_id in FIXERS
        for change in plan(run, finding.check_id, reencrypt_key)
    ]


@fixer("source-key-customer-managed")
def reencrypt(run: Run, facts: checks.Facts, finding: checks.Finding, key_ref: str) -> list[Change]:
    """Copy the snapshot under a customer managed key, then make a volume of it: the recovery point's snapshot,
    or, before any backup (the preflight refuses backing up a volume under an AWS managed key), a snapshot
    taken of the volume now."""
    point = facts.recovery_point
    point_arn = str(point.get("RecoveryPointArn") or "") if point else ""
    snapshot_id = point_arn.rsplit("/", 1)[1] if ":snapshot/" in point_arn else ""
    volume_id = next(iter(resource_kinds.EBS.identifiers_in([facts.resource])), None)
    if not snapshot_id and volume_id is None:
        raise StepFailed(
            run.step,
            "[source-key-customer-managed] no EBS recovery point or volume to re-encrypt",
            "only an EBS snapshot or volume can be copied under another key",
        )
    key = keys.describe(run.source_profile, run.source_region, key_ref)
    if key.manager != "CUSTOMER":
        raise StepFailed(
            run.step,
            f"[source-key-customer-managed] {key_ref} is not a customer managed key",
            "name a customer managed key to re-encrypt with",
        )
    ec2 = clients.client(run.source_profile, "ec2", run.source_region)
    zone = f"{run.source_region}a"
    done = run.state.get("fixes", "reencrypted_volume_arn")

    def source_snapshot() -> str:
        if snapshot_id:
            return snapshot_id
        taken = ec2.create_snapshot(VolumeId=volume_id, Description=f"{volume_id}, to copy under {key.alias}")
        ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[taken["SnapshotId"]])
        return str(taken["SnapshotId"])

    def copy_and_restore() -> str:
        snapshot = source_snapshot()
        copied = ec2.copy_snapshot(
            SourceSnapshotId=snapshot,
            SourceRegion=run.source_region,
            Encrypted=True,
            KmsKeyId=key.arn,
            Description=f"{snapshot} re-encrypted with {key.alias}",
        )
        ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[copied["SnapshotId"]])
        if not snapshot_id:  # the snapshot the fix took of the volume served only to be copied
            ec2.delete_snapshot(SnapshotId=snapshot)
        volume = ec2.create_volume(
            SnapshotId=copied["SnapshotId"],
            AvailabilityZone=zone,
            Encrypted=True,
            KmsKeyId=key.arn,
            TagSpecifications=[
                {"ResourceType": "volume", "Tags": [{"Key": "Name", "Value": f"{run.resource_name}-cmk"}]}
            ],
        )
        arn = arns.volume(run.account("source"), run.source_region, volume["VolumeId"])
        run.state.record("fixes", reencrypted_snapshot_id=copied["SnapshotId"], reencrypted_volume_arn=arn)
        log.warning(f"Back up {arn} (set resource_arn to it) and copy that recovery point instead.")
        return arn

    what = (
        f"snapshot {snapshot_id}"
        if snapshot_id
        else f"a snapshot of volume {volume_id} (taken now, deleted once copied)"
    )
    return [
        Change(
            run.step,
            run.source_profile,
            run.source_region,
            "ec2:CopySnapshot",
            snapshot_id or str(volume_id),
            f"copy {what} under {key.alias or key.arn}, then create a volume {run.resource_name}-cmk from it in {zone}",
            copy_and_restore,
            needed=done is None,
        )
    ]
