"""The steps of the procedure, one function per step, called by the step notebooks.

Each step reads what earlier steps recorded in the run's state (or, run alone, discovers it), returns
the changes it plans (shown first, applied by `apply` or an Apply button, logged after), and records
what it produced. With apply false (a dry run) every step still plans: where its input would come
from a change an earlier step only planned, it plans against what that change will produce and
says so; where nothing will produce it, it says which step does, in one line, without failing.
Nothing here knows whether it talks to AWS or to the sandbox. Steps 01 to 05 are one implementation for one
resource or many (fleet.py: a row per resource); a run of one resource is a selection of one, told in its own
words and recorded under its own names. Step 04, the copy in one job or in two hops, is told in copying.py.
"""

from __future__ import annotations

import logging
from typing import Any

from ..aws import clients, clusters, jobs, keys, vaults
from ..aws.context import Run, resource_arn, selection
from ..aws.sharing import enable_cross_account_change, vaults_principal
from ..core import arns, grants
from ..core.changes import Change
from ..core.errors import StepFailed
from ..core.steps import COPY_TO_TARGET, VERIFY_TARGET_KEY
from ..troubleshooting import checks, preflight
from . import fleet
from .cleanup import cleanup
from .copying import copy_jobs_table, hops_line, start_copy, wait_for_copy
from .encryption import (
    destination_recovery_point,
    encryption_of,
    encryption_sentence,
    planned_encryption,
    source_recovery_point,
)
from .following import Outcome, job_side

log = logging.getLogger(__name__)
RECOVERY_POINTS_PAGE = 1000  # the most ListRecoveryPointsByBackupVault returns in one page

__all__ = [  # what the notebooks and tests reach through this module, besides its own steps
    "Outcome",
    "Run",
    "cleanup",
    "copy_jobs_table",
    "hops_line",
    "start_copy",
    "wait_for_copy",
    "destination_recovery_point",
    "encryption_of",
    "encryption_sentence",
    "resource_arn",
    "source_recovery_point",
]


def _deny_blocks(
    run: Run, check_id: str, what: str, account: str, owner: str, blocked: grants.DenyBlocks
) -> StepFailed:
    labels = ", ".join(grants.label(s) for s in blocked.statements)
    fix = (
        f"remove statement {labels} (runbook fix {check_id} plans its removal)"
        if blocked.removable
        else f"statement {labels} also applies to others: {owner} must change it"
    )
    return StepFailed(run.step, f"[{check_id}] statement {labels} of {what} denies account {account}", fix)


# ----- step 00 -------------------------------------------------------------------------------------


def prerequisites(run: Run) -> list[Change]:
    """Check what the copy needs and plan what is missing: global setting, vaults, vault policy.

    The resource is looked for first: found only in step 01, a wrong one used to leave the changes
    of this step made for nothing."""
    preflight.check(run, preflight.IN_STEP_00)
    step = run.step
    facts = checks.Facts(run, as_planned=True)
    gate = ["same-organization", "role-exists"]
    if facts.target_vault is not None:
        gate.append("target-vault-customer-key")
    checks.require(run, [checks.CHECKS[check_id](facts) for check_id in gate])
    changes: list[Change] = []
    enabled = checks.CHECKS["cross-account-enabled"](facts)
    if enabled.status == checks.FAIL:
        if not run.management_profile and run.force_copy:
            log.warning(f"force_copy: going on although [cross-account-enabled] {enabled.finding}")
        elif not run.management_profile:
            raise StepFailed(
                step,
                f"[cross-account-enabled] {enabled.finding}",
                "ask the management account to enable it, or set management_profile",
            )
        else:
            changes.append(enable_cross_account_change(run))
    source_key, target_key = _vault_key(run, "source"), _vault_key(run, "target")
    types = [clusters.type_of(run.source_profile, run.source_region, arn) for arn in selection(run)]
    if target_key.manager != "CUSTOMER" and not all(row and row.any_destination_key for row in types):
        raise StepFailed(
            step,
            f"[target-vault-customer-key] target_vault_key {run.target_vault_key} is an AWS managed key",
            "use a customer managed key: copies cannot go into a vault under an AWS managed key",
        )
    source_vault_arn = arns.backup_vault(run.account("source"), run.source_region, run.source_vault_name)
    changes.append(
        vaults.create_change(
            step, run.source_profile, run.source_region, run.source_vault_name, source_key.arn, source_vault_arn
        )
    )
    target_vault = vaults.create_change(
        step,
        run.target_profile,
        run.target_region,
        run.target_vault_name,
        target_key.arn,
        run.target_vault_arn,
        keep_existing=run.force_copy,
    )
    changes.append(target_vault)
    if run.copies_in_two_hops():
        hop_key = _vault_key(run, "hop")
        profile, region = run.side("hop")
        changes.append(vaults.create_change(step, profile, region, run.hop_vault, hop_key.arn, run.hop_vault_arn))
    principal = vaults_principal(run)
    try:
        changes.append(
            vaults.access_policy_change(
                step,
                run.target_profile,
                run.target_region,
                run.target_vault_name,
                run.target_vault_arn,
                principal,
                force=run.force_copy,
                planned=target_vault.needed,
                owner=run.state.run_id(),
            )
        )
    except grants.DenyBlocks as blocked:
        raise _deny_blocks(
            run,
            "target-vault-policy",
            f"the access policy of {run.target_vault_name}",
            principal.account_id,
            f"the destination account ({run.account('target')})",
            blocked,
        ) from None
    run.state.record(
        step,
        organization=run.organization("source"),
        source_account=run.account("source"),
        target_account=run.account("target"),
        role_arn=run.role_arn,
        source_vault_key=source_key.arn,
        target_vault_key=target_key.arn,
        target_vault_arn=run.target_vault_arn,
        source_vault_arn=source_vault_arn,
    )
    return changes


def _vault_key(run: Run, side: str) -> keys.KeyInfo:
    """The key a side's vault parameter names (source, target, or the hop vault's), or one line naming the
    parameter when there is none."""
    name = f"{side}_vault_key"
    profile, region = run.side(side)
    kms = clients.client(profile, "kms", region)
    account = "source" if side == "hop" else side
    try:
        return keys.describe(profile, region, getattr(run, name))
    except kms.exceptions.NotFoundException:
        raise StepFailed(
            run.step,
            f"{name} {getattr(run, name)} is not a KMS key of the {account} account ({run.account(side)}) in {region}",
            f"set {name} to a customer managed key of that account and Region",
        ) from None


# ----- step 01 -------------------------------------------------------------------------------------


def start_backup(run: Run) -> Change:
    """Step 01 of a run of one resource: the one change of start_backups for its selection of one."""
    return start_backups(run)[0]


def wait_for_backup(run: Run, progress: jobs.Progress | None = None, delay: int = 5) -> Outcome:
    return wait_for_backups(run, progress, delay)


# ----- steps 02 and 05: which key encrypts a recovery point --------------------------------------


def verify_source_key(run: Run) -> dict[str, Any]:
    """Step 02 of a run of one resource: what encrypts its recovery point, from verify_source_keys."""
    return verify_source_keys(run)


# ----- step 03 -------------------------------------------------------------------------------------


def share_source_key(run: Run) -> Change:
    """Step 03 of a run of one resource: the one change of share_source_keys for its selection of one."""
    return share_source_keys(run)[0]


# ----- step 05 -------------------------------------------------------------------------------------


def copy_job_encryption(run: Run, point: str) -> dict[str, Any]:
    """What the run's copy job says of the copy it made (DescribeCopyJob: the key, the vault's type and lock
    state, the message category), shown beside the proof: as step 04's wait last read it, else read now; {}
    when the run has no copy job that made this point, or AWS does not know it any more."""
    job = run.state.get(COPY_TO_TARGET, "copy_job_destination") or {}
    job_id = job.get("CopyJobId") or run.state.get(COPY_TO_TARGET, "copy_job_id")
    if not job_id:
        return {}
    if job.get("DestinationRecoveryPointArn") != point:
        profile, region = run.side(job_side(run, "copy"))
        backup = clients.client(profile, "backup", region)
        try:
            job = backup.describe_copy_job(CopyJobId=job_id)["CopyJob"]
        except backup.exceptions.ResourceNotFoundException:
            return {}
    if job.get("DestinationRecoveryPointArn") != point:
        return {}
    key_arn = job.get("DestinationEncryptionKeyArn")
    alias = keys.describe(run.target_profile, run.target_region, key_arn).alias if key_arn else ""
    said = {
        "copy_job_key_arn": key_arn,
        "copy_job_key_alias": alias or None,
        "destination_vault_type": job.get("DestinationVaultType"),
        "destination_vault_lock_state": job.get("DestinationVaultLockState"),  # a logically air-gapped vault's
        "message_category": job.get("MessageCategory"),
    }
    return {"copy_job_id": job_id, **{name: value for name, value in said.items() if value is not None}}


def verify_target_key(run: Run) -> dict[str, Any]:
    """Step 05 of a run of one resource: what encrypts its copy, from verify_target_keys."""
    return verify_target_keys(run)


def recovery_points_table(profile: str, region: str, vault: str) -> list[dict[str, Any]]:
    """The vault's recovery points, newest first, with their key's alias and manager: the pages (1,000
    points each) and one alias listing, however many points and keys (no DescribeKey per point)."""
    backup = clients.client(profile, "backup", region)
    pages = backup.get_paginator("list_recovery_points_by_backup_vault").paginate(
        BackupVaultName=vault, PaginationConfig={"PageSize": RECOVERY_POINTS_PAGE}
    )
    try:
        points = [point for page in pages for point in page["RecoveryPoints"]]
    except backup.exceptions.ResourceNotFoundException:
        return []
    aliases = keys.aliases_by_key(profile, region) if points else {}
    rows = []
    for point in points:
        key_arn = point.get("EncryptionKeyArn", "")
        names = aliases.get(key_arn.rsplit("/", 1)[-1], ()) if key_arn else ()
        rows.append(
            {
                "recovery point": point["RecoveryPointArn"],
                "resource": point["ResourceArn"],
                "status": point["Status"],
                "created": point["CreationDate"],
                "key arn": key_arn,
                "key alias": names[0] if names else "",
                "key manager": keys.manager_by_aliases(names) if key_arn else "",
                "lifecycle": point.get("Lifecycle", {}),
            }
        )
    rows.sort(key=lambda row: row["created"], reverse=True)
    return rows


# ----- the steps on the run's selection ------------------------------------------------------------
# Every notebook calls these, for one resource or many: a row per resource under each step (fleet.py: its jobs
# started within max_concurrent_jobs, followed with one listing a round, a failure alone in its row, the step
# failing when every resource did). A run of one resource is a selection of one: its one row also writes its
# record under the names its run folder has always had (state.json's recovery_point_arn, backup_job_id...,
# one_record), and it is told in its own words.


def selection_line(run: Run) -> str:
    """What the run works on, in one line."""
    chosen = selection(run)
    if len(chosen) == 1:
        return f"Resource: {chosen[0]}"
    how = ", ".join(f"{k}={v}" for k, v in run.resource_tags.items()) if run.resource_tags else "resources"
    return f"Resources: {len(chosen)} selected by {how}"


def start_backups(run: Run) -> list[Change]:
    return fleet.start_backups(run)


def wait_for_backups(run: Run, progress: jobs.Progress | None = None, delay: int = 5) -> Outcome:
    return fleet.wait(run, "backup", progress, delay)


def verify_source_keys(run: Run) -> dict[str, Any]:
    """Step 02 on the selection: for one resource, what encrypts its recovery point (or, in a dry run before its
    backup, what will); for many, how many recovery points are encrypted with their resource's key."""
    rows = fleet.verify_source_keys(run)
    if fleet.only(run) is None:
        return _verified(rows, "source_key_alias")
    if not rows:
        return planned_encryption(run, "source")
    return dict(rows[0]["encryption"])


def share_source_keys(run: Run) -> list[Change]:
    return fleet.share_source_keys(run)


def start_copies(run: Run) -> list[Change]:
    """The copies (for a resource copied in two hops, its first hop)."""
    return fleet.start_copies(run)


def wait_for_copies(run: Run, progress: jobs.Progress | None = None, delay: int = 5) -> Outcome:
    """Follow the copies (for a resource copied in two hops, its first hop)."""
    return fleet.wait(run, "copy", progress, delay)


def second_hops(run: Run) -> list[Change]:
    """The second hops of the resources copied in two hops (across accounts, from the hop vault); nothing for
    a run that copies each resource in one job."""
    if not run.copies_in_two_hops():
        return []
    return fleet.second_hops(run)


def wait_for_second_hop(run: Run, progress: jobs.Progress | None = None, delay: int = 5) -> Outcome:
    if not run.copies_in_two_hops():
        return Outcome("One copy job: no second hop to follow.")
    return fleet.wait(run, "second", progress, delay)


def verify_target_keys(run: Run) -> dict[str, Any]:
    """Step 05 on the selection: the copy and its snapshot are encrypted with the destination vault's key (the
    proof is the copy itself). For one resource, what encrypts its copy, with what its copy job says of it beside
    the proof (a job that names another key is reported: the copy's own key is what counts); for many, how many
    copies are encrypted with the destination vault's key."""
    rows = fleet.verify_target_keys(run)
    one = fleet.only(run)
    if one is None:
        return _verified(rows, "destination_key_alias")
    if not rows:
        return planned_encryption(run, "target")
    found = {**rows[0]["encryption"], **copy_job_encryption(run, rows[0]["encryption"]["recovery_point_arn"])}
    job_key = found.get("copy_job_key_arn")
    if job_key and job_key != found["recovery_point_key_arn"]:
        found["copy_job_key_differs"] = (
            f"copy job {found['copy_job_id']} reports DestinationEncryptionKeyArn {job_key}, while the copy itself "
            f"is encrypted with {found['recovery_point_key_arn']}: the copy's own key is what counts"
        )
        log.warning(found["copy_job_key_differs"])
    fleet.update(run, VERIFY_TARGET_KEY, one, encryption=found)
    return found


def _verified(rows: list[dict[str, Any]], alias_field: str) -> dict[str, Any]:
    verified = [row for row in rows if row.get("outcome") == "VERIFIED"]
    return {
        "resources": len(rows),
        "verified": len(verified),
        "failed": len(rows) - len(verified),
        "keys": ", ".join(sorted({row[alias_field] or row.get("source_key_arn", "") for row in verified})),
    }


def results(run: Run) -> list[dict[str, Any]]:
    """One row per resource: recovery point, copy, destination key, outcome (a run of one resource: its record)."""
    return fleet.results_of(run)
