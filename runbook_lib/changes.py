"""Plan, then apply: every change to AWS is a Change that is shown first and logged after.

A Change knows what it will do (summary and, for policies, a unified diff), whether it is needed
at all (so a second run changes nothing), and how to do it. `carry_out` applies it when the run's
`apply` parameter allows, and appends one JSON line to the run's change log; no credentials are
ever part of a Change.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


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
    result: Any = field(default=None, init=False)
    applied: bool = field(default=False, init=False)

    def describe(self) -> str:
        state = "will change" if self.needed else "already in place, nothing to change"
        lines = [f"[{self.step}] {self.action} on {self.target} ({self.profile}, {self.region}): {state}",
                 f"  {self.summary}"]
        if self.diff and self.needed:
            lines += ["", self.diff]
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        body = f"**{self.action}** on `{self.target}` ({self.profile}, {self.region}): " + (
            "will change" if self.needed else "already in place, nothing to change"
        ) + f"\n\n{self.summary}\n"
        if self.diff and self.needed:
            body += f"\n```diff\n{self.diff}\n```\n"
        return body

    def __str__(self) -> str:
        return self.describe()


def policy_diff(before: dict[str, Any] | None, after: dict[str, Any], name: str) -> str:
    old = json.dumps(before, indent=2, sort_keys=True).splitlines() if before else []
    new = json.dumps(after, indent=2, sort_keys=True).splitlines()
    return "\n".join(difflib.unified_diff(old, new, f"{name} (now)", f"{name} (planned)", lineterm=""))


class ChangeLog:
    """The run's JSON-lines log of every change made to AWS."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def record(self, change: Change, outcome: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        entry = {
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "step": change.step,
            "profile": change.profile,
            "region": change.region,
            "action": change.action,
            "target": change.target,
            "summary": change.summary,
            "outcome": outcome,
        }
        with self.path.open("a") as handle:
            handle.write(json.dumps(entry) + "\n")

    def entries(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]


def carry_out(change: Change, apply: bool, log: ChangeLog) -> Change:
    """Apply a needed change when `apply` is true, log it, and print what happened."""
    if not change.needed:
        print(change.describe())
        return change
    if not apply:
        print(change.describe())
        print("  apply is false: not changed")
        return change
    change.result = change.do()
    change.applied = True
    log.record(change, "applied")
    print(change.describe().splitlines()[0].replace("will change", "changed"))
    return change
