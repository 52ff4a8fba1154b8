"""What a step achieved, in one clause, for the line `runbook run` prints when the step ends.

Read from the run folder only (state.json and changes.jsonl), never from AWS: what the step made or
planned, and what it produced (a recovery point, the key that encrypts it). What a step produced is
told by its entry in PRODUCTS, keyed by the name of its record (core/steps.py); a step without one is
told by its changes alone, and a test fails when an entry names no step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..aws.context import FLEET_ROWS
from ..core.runstate import RunState
from ..core.steps import (
    AUTOMATE,
    CLEANUP,
    COPY_TO_TARGET,
    CREATE_BACKUP,
    PREREQUISITES,
    RESTORE_DRILL,
    VERIFY_SOURCE_KEY,
    VERIFY_TARGET_KEY,
)


@dataclass(frozen=True)
class Side:
    """Where the run's state keeps one side's products: its account, its recovery point (the backup, or
    the copy) and what verified it. The summary and the report read both sides through these."""

    name: str
    parameters: str  # the prefix of its parameters: source_region, target_vault_name
    account_key: str
    made_in: str
    arn_key: str
    verified_in: str
    alias_key: str

    def account(self, state: dict[str, Any]) -> str:
        return str(state.get(PREREQUISITES, {}).get(self.account_key, "?"))

    def recovery_point(self, state: dict[str, Any]) -> str:
        return str(state.get(self.made_in, {}).get(self.arn_key, ""))

    def key_alias(self, state: dict[str, Any]) -> str:
        return str(state.get(self.verified_in, {}).get(self.alias_key, ""))

    def verified(self, state: dict[str, Any]) -> dict[str, Any]:
        """What the verification step found (the recovery point, its key and its vault's key), or {}."""
        return dict(state.get(self.verified_in, {}).get("encryption") or {})


SIDES = (
    Side(
        "source", "source", "source_account", CREATE_BACKUP, "recovery_point_arn", VERIFY_SOURCE_KEY, "source_key_alias"
    ),
    Side(
        "destination",
        "target",
        "target_account",
        COPY_TO_TARGET,
        "destination_recovery_point_arn",
        VERIFY_TARGET_KEY,
        "destination_key_alias",
    ),
)


def _kept(state: dict[str, Any]) -> str:
    kept = state.get("kept", [])
    return f"{len(kept)} vault(s) kept" if kept else ""


PRODUCTS: dict[str, Callable[[dict[str, Any]], str]] = {
    PREREQUISITES: lambda s: f"target vault {s['target_vault_arn']}" if s.get("target_vault_arn") else "",
    CREATE_BACKUP: lambda s: f"recovery point {s['recovery_point_arn']}" if s.get("recovery_point_arn") else "",
    VERIFY_SOURCE_KEY: lambda s: (
        f"the backup is encrypted with {s['source_key_alias']}" if s.get("source_key_alias") else ""
    ),
    COPY_TO_TARGET: lambda s: (
        f"copy {s['destination_recovery_point_arn']}" if s.get("destination_recovery_point_arn") else ""
    ),
    VERIFY_TARGET_KEY: lambda s: (
        f"the copy is encrypted with {s['destination_key_alias']}" if s.get("destination_key_alias") else ""
    ),
    CLEANUP: _kept,
    AUTOMATE: lambda s: f"backup plan {s['plan_id']}, templates in cloudformation/" if s.get("plan_id") else "",
    RESTORE_DRILL: lambda s: (
        f"the restored volume is encrypted with {s['restored_key_alias']}: {s['verdict']}" if s.get("verdict") else ""
    ),
}


def _fleet(recorded: dict[str, Any]) -> str:
    """A fleet step's rows by outcome: '200 resources: 199 COMPLETED, 1 FAILED'."""
    outcomes: dict[str, int] = {}
    for row in recorded[FLEET_ROWS].values():
        outcomes[row.get("outcome", "?")] = outcomes.get(row.get("outcome", "?"), 0) + 1
    counted = ", ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes.items()))
    return f"{len(recorded[FLEET_ROWS])} resources: {counted}"


def _many(state: dict[str, Any], recorded: dict[str, Any]) -> bool:
    """Whether the step's rows are told by their count: a run of many; a run of one resource (a selection of
    one, whose step also keeps its one row) is told by what its step produced."""
    chosen = state.get("selection", {}).get("resources") or recorded.get(FLEET_ROWS, {})
    return FLEET_ROWS in recorded and len(chosen) > 1


# Steps whose one change (a job) is told by what it produced: "recovery point arn:...", not the job's plan too.
TOLD_BY_PRODUCT = (CREATE_BACKUP, COPY_TO_TARGET)


def _changes(entries: list[dict[str, Any]], done: str) -> str:
    """One change by its summary (up to its first ": "); several by their number."""
    if len(entries) == 1:
        return str(entries[0]["summary"]).split(": ", 1)[0]
    return f"{len(entries)} changes {done}" if entries else ""


def clause(step: str, folder: str | Path, since: str, applied: bool) -> str:
    """What the step did since `since` (an ISO time): its changes (made, or planned in a dry run) and
    what it produced; "nothing to change" when neither."""
    state = RunState(folder)
    if applied:
        entries = state.changes.entries()
        made = [e for e in entries if e["step"] == step and e["time"] >= since and e["outcome"] == "applied"]
        changes = _changes(made, "made")
    else:
        changes = _changes([e for e in state.planned() if e["step"] == step], "planned")
    whole = state.load()
    recorded = whole.get(step, {})
    product = _fleet(recorded) if _many(whole, recorded) else PRODUCTS.get(step, lambda _: "")(recorded)
    if product and step in TOLD_BY_PRODUCT:
        changes = ""
    return "; ".join(part for part in (changes, product) if part) or "nothing to change"
