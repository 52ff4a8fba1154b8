"""What AWS Backup allows when copying each resource type: the capability table, as data.

One row per type in data/resource_types.json, each fact with its source and the date it was checked.
The checks read it (`rds-single-hop`, `target-vault-customer-key`, `source-key-customer-managed`),
the resource types page shows it (tools/docs.py), and the sandbox keeps its own copy of the facts it plays, tested to
agree. AWS changes these rules over time, and not everywhere at once: since October 2025 every type
copies across account and Region in one job, and the parameter `two_hop_types` moves a type back to
two hops where AWS still refuses that (`one_action_types` the other way), without editing the table.

Each row's ARN form (service, resource prefix) is data here, matched by `candidates`; resource_kinds.py holds
one class per row, with what the runbook does with that kind. A DB cluster's ARN is Aurora's, Neptune's and
DocumentDB's alike: their rows name the engines that make a cluster theirs, and `type_of` needs the cluster's
Engine (DescribeDBClusters, aws/clusters.py reads it) to tell them apart.

AWS Backup's quotas and job rules that a run's jobs meet (data/backup_quotas.json) are here too, as
`QUOTAS`: max_concurrent_jobs is bounded by them and the wait for a copy names the retry phase.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from . import arns

CUSTOMER_MANAGED = "customer managed"
ANY_KEY = "any"
FACTS = (
    "cross_account_copy",
    "cross_region_copy",
    "one_action",
    "destination_vault_key",
    "source_key_customer_managed",
)


@dataclass(frozen=True)
class Source:
    title: str
    url: str


@dataclass(frozen=True)
class Fact:
    """One fact of a row: its value, the source that says so, and when that was checked."""

    value: Any
    source: Source
    checked: str
    note: str = ""


@dataclass(frozen=True)
class ResourceType:
    """A resource type's copy rules."""

    name: str
    resource: str
    arn_service: str
    arn_resource_prefix: str
    arn_engines: tuple[str, ...]  # the engines of a type whose ARN others share (a DB cluster's); () for the rest
    cross_account_copy: Fact
    cross_region_copy: Fact
    one_action: Fact  # account and Region changed by one copy job
    destination_vault_key: Fact  # CUSTOMER_MANAGED, or ANY_KEY (aws/backup included)
    source_key_customer_managed: Fact  # whether the source's key must be customer managed to copy out

    def fact(self, name: str) -> Fact:
        value: Fact = getattr(self, name)
        return value

    def copies_in_one_action(self, one_action_types: Iterable[str] = (), two_hop_types: Iterable[str] = ()) -> bool:
        """Whether one copy job may change both account and Region: the table's word, unless the run names the
        type in `one_action_types` (one job) or `two_hop_types` (two hops: where AWS refuses one job for it).
        Validation keeps the two lists apart."""
        if self.name in set(one_action_types):
            return True
        return self.name not in set(two_hop_types) and bool(self.one_action.value)

    @property
    def any_destination_key(self) -> bool:
        return self.destination_vault_key.value == ANY_KEY


def _data(name: str) -> Any:
    return json.loads(resources.files("runbook_lib").joinpath(f"data/{name}").read_text())


def _fact(entry: dict[str, Any], sources: dict[str, Source]) -> Fact:
    return Fact(entry["value"], sources[entry["source"]], entry["checked"], entry.get("note", ""))


def _load() -> tuple[dict[str, Source], dict[str, ResourceType]]:
    data = _data("resource_types.json")
    sources = {key: Source(**value) for key, value in data["sources"].items()}
    types: dict[str, ResourceType] = {}
    for row in data["types"]:
        facts = {name: _fact(row[name], sources) for name in FACTS}
        arn = row["arn"]
        types[row["name"]] = ResourceType(
            row["name"], row["resource"], arn["service"], arn["resource"], tuple(arn.get("engines", ())), **facts
        )
    return sources, types


def _load_quotas() -> tuple[dict[str, Source], dict[str, Fact]]:
    data = _data("backup_quotas.json")
    sources = {key: Source(**value) for key, value in data["sources"].items()}
    return sources, {name: _fact(entry, sources) for name, entry in data["quotas"].items()}


SOURCES, TYPES = _load()
QUOTA_SOURCES, QUOTAS = _load_quotas()
# The quotas by the name the runbook uses them under (each a whole number, in data/backup_quotas.json).
COPIES_PER_DESTINATION_REGION = "copies_per_destination_region"
COPIES_PER_VAULT_BEYOND = "copies_per_vault_beyond"
CROSS_ACCOUNT_COPIES_PER_RESOURCE = "cross_account_copies_per_resource"
JOBS_PER_RESOURCE = "jobs_per_resource"
COPY_RETRY_HOURS = "copy_retry_hours"


def quota(name: str) -> int:
    """A quota's figure (KeyError for a name data/backup_quotas.json does not hold)."""
    return int(QUOTAS[name].value)


def candidates(resource_arn: str) -> list[ResourceType]:
    """The rows whose ARN form an ARN has: one, or every DB cluster row for a cluster's ARN. The one place an
    ARN is matched to a kind (resource_kinds.py's classes ask here)."""
    arn = arns.parts(resource_arn)
    return [
        row
        for row in TYPES.values()
        if arn["service"] == row.arn_service and arn["resource"].startswith(row.arn_resource_prefix)
    ]


def needs_engine(resource_arn: str) -> bool:
    """Whether the ARN alone cannot say the type: a DB cluster's, which Aurora, Neptune and DocumentDB share."""
    return any(row.arn_engines for row in candidates(resource_arn))


def type_of(resource_arn: str, engine: str | None = None) -> ResourceType | None:
    """The row of the resource an ARN names, or None for a type the table does not hold.

    A DB cluster's row needs its `engine` (DescribeDBClusters' Engine; aws/clusters.py reads it): without
    one, or with an engine no row names (a Multi-AZ DB cluster of mysql or postgres), None."""
    for row in candidates(resource_arn):
        if not row.arn_engines or (engine is not None and engine in row.arn_engines):
            return row
    return None


def engines() -> dict[str, str]:
    """Each DB cluster engine the table knows, with its type's name."""
    return {engine: row.name for row in TYPES.values() for engine in row.arn_engines}


def _cell(fact: Fact, numbers: dict[Source, int]) -> str:
    value = {True: "yes", False: "no", ANY_KEY: "any, aws/backup included"}.get(fact.value, fact.value)
    note = f"; {fact.note}" if fact.note else ""
    return f"{value} [{numbers[fact.source]}], checked {fact.checked}{note}"


QUOTA_LINES = {
    COPIES_PER_DESTINATION_REGION: "concurrent copy jobs per account to one destination Region",
    COPIES_PER_VAULT_BEYOND: "more per destination vault once that is reached",
    CROSS_ACCOUNT_COPIES_PER_RESOURCE: "concurrent cross-account copies of one resource to one destination Region",
    JOBS_PER_RESOURCE: "backup or copy job per resource at a time (the runbook never starts a second)",
    COPY_RETRY_HOURS: "hours a copy job may stay CREATED after a system error while AWS Backup retries it "
    "(a wait never calls it failed)",
}


def readme_table() -> str:
    """The capability table as the resource types page shows it: each fact with its source (numbered below) and
    date; then the quotas a run's jobs respect, numbered alike."""
    numbers: dict[Source, int] = {}
    for row in TYPES.values():
        for name in FACTS:
            numbers.setdefault(row.fact(name).source, len(numbers) + 1)
    for fact in QUOTAS.values():
        numbers.setdefault(fact.source, len(numbers) + 1)
    lines = [
        "| type | cross-account copy | cross-Region copy | account and Region in one copy job "
        "| destination vault key | source key must be customer managed |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in TYPES.values():
        cells = [f"{row.name}: {row.resource}"] + [_cell(row.fact(name), numbers) for name in FACTS]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Quotas a run's jobs respect (max_concurrent_jobs is bounded by the first):", ""]
    lines += [
        f"- {QUOTAS[name].value} {what} [{numbers[QUOTAS[name].source]}], checked {QUOTAS[name].checked}"
        for name, what in QUOTA_LINES.items()
    ]
    lines.append("")
    lines += [f"{number}. [{source.title}]({source.url})" for source, number in numbers.items()]
    return "\n".join(lines)
