"""Cleanup with revert_sharing: take back what the run shared, and only what nothing else relies on.

What the run added comes from its change log: its statements in key policies and vault access policies (the
vault policy is deleted only when the run wrote it from nothing and nothing else was added since), and the
organization's cross-account backup setting when the run turned it on. Each is a Change, planned and shown
first; a rerun finds nothing to do.

Others may rely on it (reliance.py): a statement stays, named, while recovery points the run did not make
need the key shared, while a backup plan copies into the vault, while another run folder that still holds
what it made uses the same key, vault or setting. What stays is said, with who relies on it. What goes is
made in batch only once confirmed (take_back_shared, `runbook run --yes`), since a run the cleanup cannot
see (elsewhere, on another machine) may still use it; an Apply button pressed is that confirmation.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runbook_policy import iam_policy

from ..aws import clients, facts, keys, vaults
from ..aws.context import Run
from ..aws.sharing import vaults_principal
from ..core import grants
from ..core.changes import Change, policy_diff
from ..core.errors import StepFailed
from .reliance import Reliance, foreign_points, some

SETTING = "isCrossAccountBackupEnabled"
NOTHING_LEFT = "nothing of this run's left to take out"
RELIED_ON = "kept: others rely on it"
UNSEEN = (
    "a run the cleanup cannot see (another run folder elsewhere, another machine, a person copying by hand) may "
    "still use it"
)


@dataclass
class Added:
    """What the run's changes added to one policy, less what a cleanup took out again since."""

    target: str
    statements: list[dict[str, Any]] = field(default_factory=list)
    removed: list[dict[str, Any]] = field(default_factory=list)
    created: bool = False
    unknown: int = 0

    def take(self, entry: dict[str, Any]) -> None:
        """Follow one applied change of this policy from the log."""
        if "reverts" in entry:
            taken = entry["reverts"].get("statements", [])
            self.statements = [s for s in self.statements if s not in taken]
            self.created = self.created and bool(self.statements)
        elif "added" in entry:
            self.created = self.created or (not self.statements and entry["added"].get("created", False))
            self.statements += [s for s in entry["added"].get("statements", []) if s not in self.statements]
            self.removed += entry["added"].get("removed", [])
        else:
            self.unknown += 1


@dataclass
class Shared:
    """Everything the run's change log says the run shared and has not taken back."""

    key_policies: dict[tuple[str, str, str], Added] = field(default_factory=dict)
    vault_policies: dict[tuple[str, str, str], Added] = field(default_factory=dict)
    settings: dict[tuple[str, str], bool] = field(default_factory=dict)


def shared(entries: list[dict[str, Any]]) -> Shared:
    """Read the change log in order: statements added and taken out again, the setting turned on and off."""
    found = Shared()
    for entry in entries:
        if entry.get("outcome") != "applied":
            continue
        where = (entry["profile"], entry["region"], entry["target"])
        if entry["action"] == "kms:PutKeyPolicy":
            found.key_policies.setdefault(where, Added(entry["target"])).take(entry)
        elif entry["action"] in ("backup:PutBackupVaultAccessPolicy", "backup:DeleteBackupVaultAccessPolicy"):
            found.vault_policies.setdefault(where, Added(entry["target"])).take(entry)
        elif entry["action"] == "backup:UpdateGlobalSettings":
            found.settings[(entry["profile"], entry["region"])] = "reverts" not in entry
    return found


def revert_changes(run: Run, deleting: set[tuple[str, str, str]], seen: Reliance, own: set[str]) -> list[Change]:
    """Plan taking out what the run added to key policies, vault policies (those of vaults this cleanup does not
    delete) and the organization's setting, keeping (and naming) what others rely on; `own` are the run's
    recovery points, which the cleanup deletes first."""
    found = shared(run.state.changes.entries())
    changes = [
        _revert_key_policy(run, profile, region, added, seen, own)
        for (profile, region, _), added in found.key_policies.items()
    ]
    changes += [
        _revert_vault_policy(run, profile, region, added, deleting, seen)
        for (profile, region, _), added in found.vault_policies.items()
    ]
    changes += [
        _revert_setting(run, profile, region, seen) for (profile, region), enabled in found.settings.items() if enabled
    ]
    return changes


def _notes(added: Added, found: list[dict[str, Any]], text: str | None) -> list[str]:
    """What a person should know about what is not taken out."""
    notes = []
    now = {s.get("Sid") for s in iam_policy.statements(text)}
    changed = [s for s in added.statements if s not in found and s.get("Sid") in now]
    if changed:
        notes.append(f"{', '.join(grants.label(s) for s in changed)} changed since this run added it: kept as it is")
    if added.removed:
        notes.append(f"this run also took out {', '.join(grants.label(s) for s in added.removed)}: not put back")
    if added.unknown:
        notes.append(
            f"{added.unknown} earlier change(s) are logged without what they added (an older runbook): not taken out"
        )
    return notes


def _changed_since(read: Callable[[], str | None], text: str | None, what: str) -> Callable[[], str]:
    def check() -> str:
        with facts.fresh():
            now = read()
        return f"{what} changed since this plan was made: run the cell again" if now != text else ""

    return check


def _kept(reason: str, reliers: list[str]) -> list[str]:
    return [reason, f"they rely on it: {'; '.join(reliers)}", "once they no longer do, run cleanup again"]


def _revert_key_policy(run: Run, profile: str, region: str, added: Added, seen: Reliance, own: set[str]) -> Change:
    key_arn = added.target
    kms = clients.client(profile, "kms", region)
    with facts.fresh():  # an edit starts from the policy as it is now
        text = keys.current_policy(profile, region, key_arn)
    after, found = grants.without(text, added.statements)
    others = grants.of_other_runs(json.loads(after), keys.SID_PREFIXES, run.state.run_id())
    seen.saw(others, keys.SID_PREFIXES)
    kept_for = _key_kept_for(run, profile, region, key_arn, found, json.loads(after), seen, own)
    notes = [*kept_for[1:], *_notes(added, found, text)]

    def put() -> None:
        kms.put_key_policy(KeyId=key_arn, PolicyName="default", Policy=after)

    taking = bool(found) and not kept_for
    summary = (
        f"keep what this run added to the key policy: {kept_for[0]}"
        if kept_for
        else f"take out what this run added to the key policy: {', '.join(grants.label(s) for s in found)}; "
        "keep every other statement"
        if found
        else "nothing this run added is left in the key policy"
    )
    return Change(
        run.step,
        profile,
        region,
        "kms:PutKeyPolicy",
        key_arn,
        summary,
        put,
        needed=taking,
        diff=policy_diff(json.loads(text), json.loads(after), "key policy") if taking else "",
        notes=notes,
        reverts={"statements": found},
        nothing_to_do=RELIED_ON if kept_for else NOTHING_LEFT,
        precheck=_changed_since(lambda: keys.current_policy(profile, region, key_arn), text, "the key policy"),
        confirm=f"{UNSEEN} to copy with this key" if taking else "",
    )


def _key_kept_for(
    run: Run,
    profile: str,
    region: str,
    key_arn: str,
    found: list[dict[str, Any]],
    after: dict[str, Any],
    seen: Reliance,
    own: set[str],
) -> list[str]:
    """Why the run's statements stay in the key policy (the reason, then who relies on them), or [] to take
    them out: for an account they share the key with that would lose it (no other statement shares it),
    another run folder that copies with the key to that account, or recovery points under the key that the
    run did not make (a later copy of them needs it)."""
    for account in keys.shared_accounts({"Statement": found}, run.account("source")):
        principal = keys.copy_principal(account, run.target_region, run.organization("target"))
        if keys.copy_decision(after, key_arn, principal).allowed:
            continue  # still shared with it by another statement: taking out the run's takes nothing from it
        runs = seen.using_key(key_arn, account)
        if runs:
            return _kept(f"{len(runs)} other run folder(s) copy with this key to account {account}", runs)
        vault = run.source_vault_name if region == run.source_region else run.hop_vault
        points = foreign_points(run, profile, region, vault, key_arn, own)
        if points:
            return _kept(
                f"{len(points)} recovery point(s) this run did not make are encrypted with it, and their copies to "
                f"account {account} need it",
                [some(points)],
            )
    return []


def _revert_vault_policy(
    run: Run, profile: str, region: str, added: Added, deleting: set[tuple[str, str, str]], seen: Reliance
) -> Change:
    arn = added.target
    name = arn.rsplit(":", 1)[-1]
    backup = clients.client(profile, "backup", region)

    def change(
        summary: str,
        action: str = "backup:PutBackupVaultAccessPolicy",
        do: Callable[[], Any] = lambda: None,
        found: list[dict[str, Any]] | None = None,
        kept: bool = False,
        **more: Any,
    ) -> Change:
        taking = bool(found) and not kept
        return Change(
            run.step,
            profile,
            region,
            action,
            arn,
            summary,
            do,
            needed=taking,
            reverts={"statements": found or []},
            nothing_to_do=RELIED_ON if kept else NOTHING_LEFT,
            confirm=f"{UNSEEN} to copy into {name}" if taking else "",
            **more,
        )

    if (profile, region, name) in deleting:
        return change(f"the access policy of {name} goes with the vault, which this cleanup deletes")
    with facts.fresh():  # an edit starts from the policy as it is now
        text = vaults.current_policy(profile, region, name)
    if text is None:
        return change(f"vault {name} has no access policy now")
    after, found = grants.without(text, added.statements)
    notes = _notes(added, found, text)
    seen.saw(grants.of_other_runs(json.loads(after), (vaults.SID_PREFIX,), run.state.run_id()), (vaults.SID_PREFIX,))
    if not found:
        return change(f"nothing this run added is left in the access policy of {name}", notes=notes)
    users = seen.using_vault(arn)
    if users and not vaults.copy_in_decision(after, arn, vaults_principal(run)).allowed:
        kept_for = _kept("others copy into the vault, and nothing else lets the source account in", users)
        return change(
            f"keep what this run added to the access policy of {name}: {kept_for[0]}",
            found=found,
            kept=True,
            notes=[*kept_for[1:], *notes],
        )
    labels = ", ".join(grants.label(s) for s in found)
    precheck = _changed_since(
        lambda: vaults.current_policy(profile, region, name), text, f"the access policy of {name}"
    )
    if not iam_policy.statements(after):
        why = (
            "this run wrote it from nothing and nothing else was added since"
            if added.created
            else f"nothing but {labels} is left in it (an empty policy allows nothing either)"
        )
        return change(
            f"delete the access policy of {name}: {why}",
            "backup:DeleteBackupVaultAccessPolicy",
            lambda: backup.delete_backup_vault_access_policy(BackupVaultName=name),
            found,
            notes=notes,
            diff=policy_diff(json.loads(text), None, "vault access policy"),
            precheck=precheck,
        )
    return change(
        f"take {labels} (this run added it) out of the access policy of {name}; keep every other statement",
        "backup:PutBackupVaultAccessPolicy",
        lambda: backup.put_backup_vault_access_policy(BackupVaultName=name, Policy=after),
        found,
        notes=notes,
        diff=policy_diff(json.loads(text), json.loads(after), "vault access policy"),
        precheck=precheck,
    )


def _revert_setting(run: Run, profile: str, region: str, seen: Reliance) -> Change:
    """Turn cross-account backup off again, since this run turned it on (and it is on now): kept while another
    run folder or a backup plan copies across accounts with it."""
    backup = clients.client(profile, "backup", region)
    try:
        enabled = backup.describe_global_settings()["GlobalSettings"].get(SETTING) == "true"
    except backup.exceptions.InvalidRequestException as error:
        raise StepFailed(
            run.step,
            f"cannot read the organization's cross-account backup setting as {profile}: "
            f"{error.response['Error']['Message']}",
            "run cleanup with the profile of the management account that turned it on",
        ) from None

    def disable() -> None:
        try:
            backup.update_global_settings(GlobalSettings={SETTING: "false"})
        except backup.exceptions.InvalidRequestException as error:
            raise StepFailed(
                run.step,
                f"cannot turn cross-account backup off as {profile}: {error.response['Error']['Message']}",
                "ask an administrator of the management account to turn it off",
            ) from None

    reliers = seen.across_accounts(run) if enabled else []
    kept = _kept("others copy across accounts with it", reliers) if reliers else []
    return Change(
        run.step,
        profile,
        region,
        "backup:UpdateGlobalSettings",
        "organization",
        "keep the organization's cross-account backup on (this run turned it on): others copy across accounts with it"
        if kept
        else "turn the organization's cross-account backup off again: this run turned it on"
        if enabled
        else "the organization's cross-account backup is off",
        disable,
        needed=enabled and not kept,
        diff=policy_diff({SETTING: "true"}, {SETTING: "false"}, "global settings") if enabled and not kept else "",
        notes=kept[1:]
        if kept
        else ["no other run folder or backup plan of the source account is seen to rely on it"]
        if enabled
        else [],
        reverts={SETTING: "true"},
        nothing_to_do=RELIED_ON if kept else "already off, nothing to change",
        confirm="every cross-account copy in the organization needs it, not only this run's, and the runbook "
        "cannot see the other accounts' use"
        if enabled and not kept
        else "",
    )
