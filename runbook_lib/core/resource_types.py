"""What AWS Backup allows when copying each resource type: the capability table, as data.

One row per type in data/resource_types.json, each fact with its source and the date it was checked.
The checks read it (`rds-single-hop`, `target-vault-customer-key`, `source-key-customer-managed`),
the README shows it (docs.py), and the sandbox keeps its own copy of the facts it plays, tested to
agree. AWS changes these rules over time: the parameter `one_action_types` moves a type from two hops
to one action without editing the table (for RDS, reports since 2025-10-30 say one action works).
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
    cross_account_copy: Fact
    cross_region_copy: Fact
    one_action: Fact  # account and Region changed by one copy job
    destination_vault_key: Fact  # CUSTOMER_MANAGED, or ANY_KEY (aws/backup included)
    source_key_customer_managed: Fact  # whether the source's key must be customer managed to copy out

    def fact(self, name: str) -> Fact:
        value: Fact = getattr(self, name)
        return value

    def copies_in_one_action(self, one_action_types: Iterable[str] = ()) -> bool:
        """Whether one copy job may change both account and Region: the table's word, unless the run's
        `one_action_types` names the type."""
        return self.name in set(one_action_types) or bool(self.one_action.value)

    @property
    def any_destination_key(self) -> bool:
        return self.destination_vault_key.value == ANY_KEY


def _load() -> tuple[dict[str, Source], dict[str, ResourceType]]:
    data = json.loads(resources.files("runbook_lib").joinpath("data/resource_types.json").read_text())
    sources = {key: Source(**value) for key, value in data["sources"].items()}
    types: dict[str, ResourceType] = {}
    for row in data["types"]:
        facts = {
            name: Fact(
                row[name]["value"], sources[row[name]["source"]], row[name]["checked"], row[name].get("note", "")
            )
            for name in FACTS
        }
        types[row["name"]] = ResourceType(
            row["name"], row["resource"], row["arn"]["service"], row["arn"]["resource"], **facts
        )
    return sources, types


SOURCES, TYPES = _load()


def type_of(resource_arn: str) -> ResourceType | None:
    """The row of the resource an ARN names, or None for a type the table does not hold."""
    arn = arns.parts(resource_arn)
    for row in TYPES.values():
        if arn["service"] == row.arn_service and arn["resource"].startswith(row.arn_resource_prefix):
            return row
    return None


def _cell(fact: Fact, numbers: dict[Source, int]) -> str:
    value = {True: "yes", False: "no", ANY_KEY: "any, aws/backup included"}.get(fact.value, fact.value)
    note = f"; {fact.note}" if fact.note else ""
    return f"{value} [{numbers[fact.source]}], checked {fact.checked}{note}"


def readme_table() -> str:
    """The capability table as the README shows it: each fact with its source (numbered below) and date."""
    numbers: dict[Source, int] = {}
    for row in TYPES.values():
        for name in FACTS:
            numbers.setdefault(row.fact(name).source, len(numbers) + 1)
    lines = [
        "| type | cross-account copy | cross-Region copy | account and Region in one copy job "
        "| destination vault key | source key must be customer managed |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in TYPES.values():
        cells = [f"{row.name}: {row.resource}"] + [_cell(row.fact(name), numbers) for name in FACTS]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines += [f"{number}. [{source.title}]({source.url})" for source, number in numbers.items()]
    return "\n".join(lines)
