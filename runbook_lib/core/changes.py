"""Plan, then apply: every change to AWS is a Change that is shown first and logged after.

A Change knows what it will do (summary and, for policies, a unified diff), whether it is needed
at all (so a second run changes nothing), what the world looks like once it is made (its effect,
which later steps of a dry run plan against), and how to do it. `carry_out` applies it when the
run's `apply` parameter allows and appends one JSON line to the run's change log; otherwise it
records it as planned. The log line keeps what a change added to a policy (`added`), so that
cleanup can take out exactly that, and what a cleanup took out again (`reverts`), so that a rerun
knows. No credentials are ever part of a Change.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


class NotMade:
    """What a change's `do` returns when AWS did not make the change: the log says so, with why, and
    nothing later (cleanup) takes it for the run's."""

    outcome = "not made"

    def __init__(self, detail: str):
        self.detail = detail


class FoundInPlace(NotMade):
    """AWS says the thing already exists exactly as planned (another run made it meanwhile)."""

    outcome = "found in place"


@dataclass
class Change:
    step: str
    profile: str
    region: str
    action: str
    target: str
    summary: str
    do: Callable[[], Any]
    needed: bool = True
    diff: str = ""
    effect: dict[str, Any] = field(default_factory=dict)
    blocked_by: str = ""
    notes: list[str] = field(default_factory=list)
    precheck: Callable[[], str] | None = None
    added: dict[str, Any] = field(default_factory=dict)
    reverts: dict[str, Any] = field(default_factory=dict)
    nothing_to_do: str = ""
    # Keys of changes of the same plan that must be made first (a vault's recovery points before the vault).
    after: list[str] = field(default_factory=list)
    # Why a batch run makes this change only when told to (take_back_shared, `runbook run --yes`): others may
    # use what it takes back. An Apply button pressed is that confirmation.
    confirm: str = ""
    result: Any = field(default=None, init=False)
    applied: bool = field(default=False, init=False)

    @property
    def key(self) -> str:
        """One planned change per action and target, so that planning again replaces it (a revert has
        its own, so that planning it does not replace the change it takes back)."""
        return f"{'revert ' if self.reverts else ''}{self.action} {self.profile} {self.region} {self.target}"

    def state_text(self) -> str:
        if self.applied:
            return "changed"
        if not self.needed:
            return self.nothing_to_do or "already in place, nothing to change"
        if self.blocked_by:
            return f"blocked until {self.blocked_by}"
        if self.confirm:
            return "will change once confirmed"
        return "will change"

    def describe(self) -> str:
        lines = [
            f"[{self.step}] {self.action} on {self.target} ({self.profile}, {self.region}): {self.state_text()}",
            f"  {self.summary}",
        ]
        lines += [f"  note: {note}" for note in self.notes]
        if self.confirm and self.needed and not self.applied:
            lines.append(f"  confirm: {self.confirm}")
        if self.diff and self.needed and not self.applied:
            lines += ["", self.diff]
        return "\n".join(lines)

    def as_plan(self) -> dict[str, Any]:
        """What state.json keeps of a change that was planned but not made."""
        return {
            "step": self.step,
            "profile": self.profile,
            "region": self.region,
            "action": self.action,
            "target": self.target,
            "summary": self.summary,
            "diff": self.diff,
            "effect": self.effect,
            "blocked_by": self.blocked_by,
            "notes": self.notes,
            "confirm": self.confirm,
        }

    def __str__(self) -> str:
        return self.describe()


def policy_diff(before: dict[str, Any] | None, after: dict[str, Any] | None, name: str) -> str:
    """A unified diff of two documents (None: there is none, before or after)."""
    old = json.dumps(before, indent=2, sort_keys=True).splitlines() if before else []
    new = json.dumps(after, indent=2, sort_keys=True).splitlines() if after else []
    return "\n".join(difflib.unified_diff(old, new, f"{name} (now)", f"{name} (planned)", lineterm=""))


def now() -> str:
    """The time a change is made or planned, and a run or step begins (UTC, ISO 8601, to the microsecond):
    what a run made is what is logged at or after its beginning, and a rerun can begin within the second
    of the last run's last change."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


class ChangeLog:
    """The run's JSON-lines log of every change made to AWS."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def record(self, change: Change, outcome: str) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # a run folder is its owner's only
        entry: dict[str, Any] = {
            "time": now(),
            "step": change.step,
            "profile": change.profile,
            "region": change.region,
            "action": change.action,
            "target": change.target,
            "summary": change.summary,
            "outcome": outcome,
        }
        if change.diff:
            entry["diff"] = change.diff
        if change.added:
            entry["added"] = change.added
        if change.reverts:
            entry["reverts"] = change.reverts
        with self.path.open("a") as handle:
            handle.write(json.dumps(entry) + "\n")

    def entries(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]
