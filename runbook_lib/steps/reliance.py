"""Who else relies on what a run shared or made, as far as a cleanup can see: what it may not take back.

A run that finds a grant in place (a key shared, a vault opened, cross-account backup on) uses it as it is,
whoever made it; so the run that made it must not take it back while others still need it. A cleanup looks
in two places:
- AWS: recovery points under the key that the run did not make (a later copy of them needs it shared),
  backup plans of the source account that back up or copy into a vault, and the runbook statements of other
  run folders (their Sids name them) in the policies the run touched;
- this machine: the other run folders beside this one (runs/ holds the runs made without --out, and the
  notebooks' runs/adhoc) that still hold what they made (a recovery point they recorded is in AWS now) and
  use the same key, vault or cross-account setting, as their state.json says. A run that has not backed up
  yet is not counted: its rerun of steps 00 and 03 puts back what it needs.
Run folders elsewhere, or on other machines, cannot be seen: that is why taking back what is shared needs a
confirmation in batch (take_back_shared, `runbook run --yes`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from ..aws import clients
from ..aws.context import FLEET_ROWS, Run
from ..core import arns, grants
from ..core.changes import ChangeLog
from ..core.runstate import RUN_FOLDER_FILES, RunState
from ..core.steps import AUTOMATE, COPY_TO_TARGET, CREATE_BACKUP, PREREQUISITES, VERIFY_SOURCE_KEY


@dataclass(frozen=True)
class OtherRun:
    """Another run folder on this machine that still holds what it made, and the shared things it uses."""

    folder: Path
    run_id: str
    source_account: str
    target_account: str
    organization: str
    vaults: frozenset[str]  # the ARNs of the vaults it backs up and copies into
    keys: frozenset[str]  # the ARNs of the keys it shares or copies with
    plan_id: str

    @property
    def name(self) -> str:
        return f"run folder {self.folder}" + (f" ({self.run_id})" if self.run_id else "")

    @property
    def crosses_accounts(self) -> bool:
        return bool(self.target_account) and self.source_account != self.target_account


def _recorded_points(state: dict[str, Any]) -> list[tuple[str, str]]:
    """(vault ARN, recovery point ARN) of each recovery point a run folder recorded making (a fleet's rows
    included), where its state names the vault."""
    prerequisites = state.get(PREREQUISITES, {})
    found = []
    for step, name, vault in (
        (CREATE_BACKUP, "recovery_point_arn", prerequisites.get("source_vault_arn")),
        (COPY_TO_TARGET, "destination_recovery_point_arn", prerequisites.get("target_vault_arn")),
    ):
        recorded = state.get(step, {})
        rows = [recorded, *recorded.get(FLEET_ROWS, {}).values()]
        found += [(str(vault), str(row[name])) for row in rows if vault and row.get(name)]
    return found


def _exists(run: Run, vault_arn: str, point: str) -> bool:
    """Whether the recovery point is in AWS now, read with the run's own profiles (a vault of an account and
    Region the run does not work in cannot be read here, and cannot hold what this run shared)."""
    found = arns.parts(vault_arn)
    for side in ("source", "target"):
        profile, region = run.side(side)
        if (found.get("account"), found.get("region")) != (run.account(side), region):
            continue
        backup = clients.client(profile, "backup", region)
        try:
            status = backup.describe_recovery_point(
                BackupVaultName=vault_arn.rsplit(":", 1)[-1], RecoveryPointArn=point
            ).get("Status")
        except backup.exceptions.ResourceNotFoundException:
            return False
        return status not in ("DELETED", "DELETING", "EXPIRED")
    return False


def _read(run: Run, folder: Path, own: set[str]) -> OtherRun | None:
    """Another run folder, when it still holds what it made: a recovery point it recorded (not one of this
    run's: a sandbox makes the same IDs again after a reset) is in AWS now."""
    try:
        state = json.loads((folder / "state.json").read_text())
        entries = ChangeLog(folder / "changes.jsonl").entries()
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict):
        return None
    points = [(vault, point) for vault, point in _recorded_points(state) if point not in own]
    if not any(_exists(run, vault, point) for vault, point in points):
        return None
    prerequisites = state.get(PREREQUISITES, {})
    vaults = {prerequisites.get("target_vault_arn"), prerequisites.get("source_vault_arn")}
    keys = {state.get(VERIFY_SOURCE_KEY, {}).get("source_key_arn")}
    keys |= {e["target"] for e in entries if e["action"] == "kms:PutKeyPolicy" and e.get("outcome") == "applied"}
    return OtherRun(
        folder,
        str(state.get(RunState.RUN, {}).get("id", "")),
        str(prerequisites.get("source_account", "")),
        str(prerequisites.get("target_account", "")),
        str(prerequisites.get("organization", "") or ""),
        frozenset(v for v in vaults if v),
        frozenset(k for k in keys if k),
        str(state.get(AUTOMATE, {}).get("plan_id", "")),
    )


def other_runs(run: Run, own: set[str]) -> list[OtherRun]:
    """The other run folders beside this one (in the same folder, as runs/ holds the runs made without --out,
    and the notebooks' runs/adhoc) that still hold what they made; `own` are this run's recovery points."""
    here = run.state.directory.resolve()
    found = []
    try:
        folders = sorted(p for p in here.parent.iterdir() if p.is_dir() and p.resolve() != here)
    except OSError:
        return []
    for folder in folders:
        if any((folder / name).exists() for name in RUN_FOLDER_FILES):
            other = _read(run, folder, own)
            if other is not None:
                found.append(other)
    return found


class Reliance:
    """What relies on what the run shared or made, read only when a question needs it (a cleanup that keeps
    every vault and takes nothing back lists no plan and reads no other run folder): the other run folders,
    the source account's backup plans (but `mine`, the run's own), and the runs whose statements were seen."""

    def __init__(self, run: Run, own: set[str], mine: set[str]):
        self._run, self._own, self._mine = run, own, mine
        self.statements_of: set[str] = set()  # IDs of the runs whose statements were seen

    @cached_property
    def runs(self) -> list[OtherRun]:
        return other_runs(self._run, self._own)

    @cached_property
    def plans(self) -> dict[str, list[str]]:
        """Plan name: the ARNs of the vaults it uses."""
        return plans_of_others(self._run, self._mine)

    def saw(self, statements: list[dict[str, Any]], prefixes: tuple[str, ...]) -> None:
        """Other runs' statements found in a policy the run touched: they use what the run shares."""
        self.statements_of.update(grants.owner_of(s, prefixes) or "" for s in statements)

    def using_key(self, key_arn: str, account: str) -> list[str]:
        return [o.name for o in self.runs if key_arn in o.keys and o.target_account == account]

    def using_vault(self, vault_arn: str) -> list[str]:
        return [o.name for o in self.runs if vault_arn in o.vaults] + [
            f"backup plan {name}" for name, used in self.plans.items() if vault_arn in used
        ]

    def across_accounts(self, run: Run) -> list[str]:
        """What copies across accounts in the run's organization, and so needs cross-account backup on."""
        organization = run.organization("source") or ""
        account = run.account("source")
        found = [o.name for o in self.runs if o.crosses_accounts and o.organization in ("", organization)]
        if self.statements_of:
            found.append(grants.run_names(self.statements_of) + " (their statements in the policies this run shared)")
        found += [
            f"backup plan {name} (copies to {', '.join(across)})"
            for name, used in self.plans.items()
            for across in [[arn for arn in used if arns.parts(arn).get("account") not in ("", account)]]
            if across
        ]
        return found

    def using_plan(self, plan_id: str) -> list[str]:
        return [o.name for o in self.runs if plan_id and o.plan_id == plan_id]


def plans_of_others(run: Run, mine: set[str]) -> dict[str, list[str]]:
    """The source account's backup plans in the source Region but those named in `mine` (the run's own, which
    its cleanup deletes), by name, with the ARNs of the vaults each uses: those its rules back up into, and
    those they copy to."""
    backup = run.source("backup")
    account, region = run.account("source"), run.source_region
    found: dict[str, list[str]] = {}
    for page in backup.get_paginator("list_backup_plans").paginate():
        for listed in page["BackupPlansList"]:
            if listed["BackupPlanName"] in mine:
                continue
            plan = backup.get_backup_plan(BackupPlanId=listed["BackupPlanId"])["BackupPlan"]
            used = []
            for rule in plan.get("Rules", []):
                used.append(arns.backup_vault(account, region, rule["TargetBackupVaultName"]))
                used += [action["DestinationBackupVaultArn"] for action in rule.get("CopyActions", [])]
            found[listed["BackupPlanName"]] = list(dict.fromkeys(used))
    return found


def foreign_points(run: Run, profile: str, region: str, vault: str, key_arn: str, own: set[str]) -> list[str]:
    """Recovery points under this key in this vault that the run did not make: a later copy of any of them
    needs the key shared."""
    backup = clients.client(profile, "backup", region)
    pages = backup.get_paginator("list_recovery_points_by_backup_vault").paginate(
        BackupVaultName=vault, PaginationConfig={"PageSize": 1000}
    )
    try:
        return [
            p["RecoveryPointArn"]
            for page in pages
            for p in page["RecoveryPoints"]
            if p.get("EncryptionKeyArn") == key_arn and p["RecoveryPointArn"] not in own
        ]
    except backup.exceptions.ResourceNotFoundException:
        return []


def some(items: list[str], limit: int = 3) -> str:
    """At most `limit` items, and how many more."""
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")
