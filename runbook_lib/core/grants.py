"""Granting one account access through statements the runbook owns, in someone else's policy.

The runbook never edits a statement it did not write: it adds its own (their Sids name the
account, so a rerun finds and replaces them instead of adding more), and keeps every other
statement byte for byte. An Allow cannot beat an explicit Deny, so when a Deny is what blocks, the
plan says so: a fix may remove a Deny that names only that account (shown as a diff first); any
other Deny is named, with who must change it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runbook_policy import iam_policy
from runbook_policy.iam_policy import Decision

from . import policy_text


@dataclass
class GrantPlan:
    """What writing the grant would do to the policy document."""

    before: str | None
    after: str | None
    needed: bool
    decision_before: Decision
    decision_after: Decision
    removed: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    added: list[dict[str, Any]] = field(default_factory=list)
    replaced: list[dict[str, Any]] = field(default_factory=list)

    def log_record(self) -> dict[str, Any]:
        """What the change log keeps of this grant, so that cleanup can take out exactly what it added."""
        if not self.needed:
            return {}
        return {"statements": self.added, "removed": [*self.removed, *self.replaced], "created": self.before is None}


class DenyBlocks(Exception):
    """An explicit Deny stops the grant; `removable` says whether a fix may take it out."""

    def __init__(self, statements: list[dict[str, Any]], removable: bool):
        self.statements = statements
        self.removable = removable
        super().__init__(", ".join(label(s) for s in statements))


OWNER_MARK = "Run"  # between the account and the run's ID in a Sid the runbook writes for a run


def owned_sid(prefix: str, account: str, owner: str = "") -> str:
    """The Sid of the runbook's statement for `account`, written by run `owner` (its run folder's ID), so that a
    person, and another run's cleanup, can tell whose it is. Letters and digits only."""
    return f"{prefix}{account}{OWNER_MARK}{owner}" if owner else f"{prefix}{account}"


def owner_of(statement: dict[str, Any], prefixes: tuple[str, ...]) -> str | None:
    """The run that wrote a statement of the runbook's (its ID; '' for an older runbook's, whose Sids named no
    run), or None for a statement the runbook did not write."""
    sid = str(statement.get("Sid") or "")
    for prefix in prefixes:
        found = re.fullmatch(rf"{re.escape(prefix)}\d{{12}}(?:{OWNER_MARK}([A-Za-z0-9]+))?", sid)
        if found:
            return found.group(1) or ""
    return None


def of_other_runs(document: dict[str, Any], prefixes: tuple[str, ...], owner: str) -> list[dict[str, Any]]:
    """The runbook's statements in the document that another run wrote (or an older runbook, naming no run):
    what their cleanup may take out whenever it runs."""
    return [
        s for s in iam_policy.statements(document) if isinstance(s, dict) and owner_of(s, prefixes) not in (None, owner)
    ]


def run_names(owners: set[str]) -> str:
    """Runs by their IDs, as a person reads them: 'run folder demo1a2b3c, an older runbook's run folder'."""
    return ", ".join(f"run folder {owner}" if owner else "an older runbook's run folder" for owner in sorted(owners))


def runs_named(statements: list[dict[str, Any]], prefixes: tuple[str, ...]) -> str:
    """The runs that wrote these statements, as a person reads them (run_names)."""
    return run_names({owner_of(s, prefixes) or "" for s in statements})


def label(statement: dict[str, Any]) -> str:
    """How a person finds the statement in the document: its Sid, or the statement itself."""
    if statement.get("Sid"):
        return f"'{statement['Sid']}'"
    return json.dumps(statement, separators=(",", ":"))


def names_only(statement: dict[str, Any], account: str) -> bool:
    """Whether the statement's principals are all in this account (so removing it affects no one else)."""
    principal = statement.get("Principal")
    if "NotPrincipal" in statement or not isinstance(principal, dict) or set(principal) != {"AWS"}:
        return False
    values = principal["AWS"] if isinstance(principal["AWS"], list) else [principal["AWS"]]
    return bool(values) and all(str(v) == account or str(v).split(":")[4:5] == [account] for v in values)


def _actions(statement: dict[str, Any]) -> str:
    if "NotAction" in statement:
        return f"every action but {statement['NotAction']}"
    actions = statement.get("Action")
    return ", ".join(actions) if isinstance(actions, list) else str(actions)


def plan_grant(
    before: str | None,
    decide: Callable[[dict[str, Any]], Decision],
    own: list[dict[str, Any]],
    account: str,
    remove_denies: bool = False,
    force: bool = False,
    legacy: tuple[dict[str, Any], ...] = (),
) -> GrantPlan:
    """Plan the runbook's statements into `before` (a policy's text; None for no policy yet).

    Statements with the runbook's Sids are the runbook's, and are replaced; a `legacy` statement (what
    an earlier version wrote) is replaced only where it is exactly that. DenyBlocks when an explicit
    Deny decides and neither `remove_denies` (with a Deny naming only the account) nor `force`
    (trainers) says to go on.
    """
    document = iam_policy.parse_policy(before)
    decision = decide(document)
    if decision.allowed:
        return GrantPlan(before, None, False, decision, decision)
    removed: list[dict[str, Any]] = []
    notes: list[str] = []
    if decision.outcome == iam_policy.DENY:
        denies = list(decision.statements)
        removable = all(names_only(s, account) for s in denies)
        if remove_denies and removable:
            removed = denies
            notes += [
                f"removing {label(s)} lifts everything it denies account {account}: {_actions(s)}" for s in denies
            ]
        elif force:
            notes.append(
                f"statement {', '.join(label(s) for s in denies)} denies account {account}: the grant "
                "cannot win while it stays (force_copy goes on anyway)"
            )
        else:
            raise DenyBlocks(denies, removable)
    listed = document.get("Statement")
    statements: list[Any] = listed if isinstance(listed, list) else [listed]
    own_sids = {s["Sid"] for s in own}
    drop = [
        i
        for i, s in enumerate(statements)
        if isinstance(s, dict) and (s.get("Sid") in own_sids or s in removed or s in legacy)
    ]
    if not removed and [statements[i] for i in drop] == own:
        after_text = None
    elif before:
        after_text = policy_text.edited(before, remove=drop, add=own)
    else:
        after_text = json.dumps({"Version": "2012-10-17", "Statement": own}, indent=2)
    after_decision = decide(iam_policy.parse_policy(after_text or before))
    if after_decision.outcome == iam_policy.UNDETERMINED:
        notes.append(
            "unknown: the evaluator cannot decide statement "
            f"{', '.join(label(s) for s in after_decision.statements)}; it may still deny account {account}"
        )
    added = [s for s in own if s not in statements] if after_text is not None else []
    replaced = [statements[i] for i in drop if statements[i] not in own and statements[i] not in removed]
    return GrantPlan(
        before, after_text, after_text is not None, decision, after_decision, removed, notes, added, replaced
    )


def without(text: str, statements: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """The policy's text with each statement that is exactly one of `statements` taken out (every other
    statement byte for byte), and the statements it took out; the text as it is when none is there."""
    document = json.loads(text)
    listed = document.get("Statement")
    present = listed if isinstance(listed, list) else [listed]
    drop = [i for i, s in enumerate(present) if isinstance(s, dict) and s in statements]
    if not drop:
        return text, []
    return policy_text.edited(text, remove=drop), [present[i] for i in drop]
