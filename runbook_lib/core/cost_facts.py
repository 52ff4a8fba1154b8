"""What the estimate needs of a run besides prices: its resources and their sizes, the Regions, one or two
hops, the steps it runs and the plan's schedule.

The notebooks' plans build RunFacts from what their step read; the report and the dry run's summary from
what the run folder recorded (`facts_from_state`), reading nothing from AWS. Kept apart from the estimate
so the rules that read a run folder and count a schedule do not sit among the prices' arithmetic.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from . import resource_types
from .params import Parameters
from .steps import AUTOMATE, COPY_TO_TARGET, CREATE_BACKUP, PREREQUISITES, RESTORE_DRILL

# Where the run's state keeps the sizes a step read (resource ARN: GiB), for the report and the summary.
STATE_KEY, SIZES = "costs", "sizes_gib"
PLANNED = "planned"  # runstate.PLANNED: the changes a dry run planned
FLEET_SELECTION = "selection"  # steps.fleet_rows.SELECTED: a fleet's resources
GIB = 1024**3


@dataclass(frozen=True)
class Resource:
    """One resource the run backs up: its ARN ('' when not looked up yet), type and size (None: unknown)."""

    arn: str
    type: str
    size_gib: float | None


@dataclass(frozen=True)
class RunFacts:
    """What the estimate needs of a run, as the caller read or recorded it."""

    resources: tuple[Resource, ...]
    source_region: str
    target_region: str
    delete_after_days: int
    two_hops: bool = False
    backup: bool = True  # step 01 runs
    copy: bool = True  # step 04 runs
    restore_drill: bool = False
    keep_restored: bool = False
    plan: bool = False  # step 09 runs
    plan_schedule: str = "cron(0 5 ? * * *)"
    cold_after_days: int | None = None
    keys: bool = True  # the KMS keys row (step 00: the run creates none)

    @property
    def cross_region(self) -> bool:
        return self.source_region != self.target_region


def size_gib(described: Mapping[str, Any]) -> float | None:
    """A resource's size in GiB from what AWS describes: an EBS volume's Size, an RDS DB instance's
    AllocatedStorage, an EFS file system's SizeInBytes; None for anything else."""
    if "Size" in described:
        return float(described["Size"])
    if "AllocatedStorage" in described:
        return float(described["AllocatedStorage"])
    metered = described.get("SizeInBytes")
    if isinstance(metered, Mapping) and "Value" in metered:
        return float(metered["Value"]) / GIB
    return None


def resource(arn: str, size: float | None) -> Resource:
    """The resource an ARN names, with its type from the capability table ('' when unknown)."""
    row = resource_types.type_of(arn) if arn.startswith("arn:") else None
    return Resource(arn, row.name if row else "", size)


# ----- the plan's schedule ------------------------------------------------------------------------------

DAY_NAMES = {name: number for number, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), 1)}
MONTH_NAMES = {
    name: number
    for number, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), 1
    )
}


def _values(field: str, low: int, high: int, names: Mapping[str, int] | None = None) -> int | None:
    """How many values a cron field takes (*, lists, ranges, steps), or None for what is not counted here."""
    if field in ("*", "?"):
        return high - low + 1
    chosen: set[int] = set()
    for part in field.split(","):
        base, _, step = part.partition("/")
        if base == "*":
            first, last = low, high
        elif "-" in base:
            start, end = (names.get(v.upper(), v) if names else v for v in base.split("-", 1))
            if not (str(start).isdigit() and str(end).isdigit()):
                return None
            first, last = int(start), int(end)
        else:
            single = names.get(base.upper(), base) if names else base
            if not str(single).isdigit():
                return None
            first = int(single)
            last = high if step else first
        if step and (not step.isdigit() or int(step) == 0):
            return None  # not a step AWS takes (cron refuses /0): not counted
        chosen.update(range(first, last + 1, int(step) if step else 1))
    return len(chosen)


def runs_per_day(schedule: str) -> float | None:
    """How many backups a day an AWS Backup schedule expression starts (its average), or None when the
    expression is not one counted here (L, W, #, a year)."""
    rate = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", schedule.strip())
    if rate:
        value, unit = int(rate.group(1)), rate.group(2).rstrip("s")
        return {"minute": 1440, "hour": 24, "day": 1}[unit] / value if value else None
    cron = re.fullmatch(r"cron\((.+)\)", schedule.strip())
    if not cron:
        return None
    fields = cron.group(1).split()
    if len(fields) != 6 or fields[5] not in ("*", "?"):
        return None
    counted = [
        _values(fields[0], 0, 59),
        _values(fields[1], 0, 23),
        _values(fields[2], 1, 31),
        _values(fields[3], 1, 12, MONTH_NAMES),
        _values(fields[4], 1, 7, DAY_NAMES),
    ]
    numbers = [n for n in counted if n is not None]
    if len(numbers) != len(counted):
        return None
    minutes, hours, days, months, weekdays = numbers
    share = (days / 31 if fields[2] not in ("*", "?") else 1.0) * (weekdays / 7 if fields[4] not in ("*", "?") else 1)
    return minutes * hours * share * months / 12


# ----- the facts of a run folder -------------------------------------------------------------------------


def sizes_in(state: Mapping[str, Any]) -> dict[str, float | None]:
    """The sizes (GiB) of the run's resources as its steps recorded them."""
    return dict(state.get(STATE_KEY, {}).get(SIZES, {}))


def _resource_arns(state: Mapping[str, Any], values: Parameters) -> list[str]:
    """The run's resources, as its state names them (a fleet's selection, the backup's resource, the
    backups a dry run planned, the sizes recorded), else as its parameters do."""
    found: list[str] = list(state.get(FLEET_SELECTION, {}).get("resources", []))
    backup = state.get(CREATE_BACKUP, {})
    found += [backup["resource_arn"]] if backup.get("resource_arn") else []
    found += list(backup.get("fleet", {}))
    found += [
        entry["effect"]["resource_arn"]
        for entry in state.get(PLANNED, [])
        if entry.get("effect", {}).get("kind") == "backup" and entry["effect"].get("resource_arn")
    ]
    found += list(sizes_in(state))
    if not found:
        found = [values.resource_arn] if values.resource_arn else [a for a in values.resources if a.startswith("arn:")]
    return list(dict.fromkeys(found))


def _two_hops(state: Mapping[str, Any], values: Parameters, items: tuple[Resource, ...]) -> bool:
    """Whether the run copies in two hops: as its state says (its hop jobs, a hop it planned), else as
    context.Run.copies_in_two_hops would decide from the parameters and the capability table."""
    copied = state.get(COPY_TO_TARGET, {})
    planned = [e.get("effect", {}).get("kind") for e in state.get(PLANNED, []) if e.get("step") == COPY_TO_TARGET]
    hopped = [row for row in copied.get("fleet", {}).values() if row.get("kind") in ("hop", "second")]
    if any(copied.get(name) for name in ("hop_job_id", "hop_recovery_point_arn", "failed_hop_jobs")) or (
        "hop" in planned or hopped
    ):
        return True
    if copied.get("copy_job_id") or copied.get("destination_recovery_point_arn") or "copy" in planned:
        return False
    if not values.two_hops or values.source_region == values.target_region:
        return False
    accounts = state.get(PREREQUISITES, {})
    if accounts.get("source_account") and accounts.get("target_account"):
        across = accounts["source_account"] != accounts["target_account"]
    else:
        across = values.source_profile != values.target_profile
    rows = [resource_types.TYPES.get(item.type) for item in items]
    return (
        across
        and bool(rows)
        and all(
            row is not None and not row.copies_in_one_action(values.one_action_types, values.two_hop_types)
            for row in rows
        )
    )


def facts_from_state(state: Mapping[str, Any], values: Parameters, steps: Iterable[str]) -> RunFacts:
    """The facts of a run folder (state.json, as RunState.load reads it) for the steps it runs: what the
    report and the dry run's summary price, reading nothing from AWS."""
    chosen = set(steps)
    sizes = sizes_in(state)
    items = tuple(resource(arn, sizes.get(arn)) for arn in _resource_arns(state, values))
    return RunFacts(
        items,
        values.source_region,
        values.target_region,
        values.delete_after_days,
        two_hops=_two_hops(state, values, items),
        backup=CREATE_BACKUP in chosen,
        copy=COPY_TO_TARGET in chosen,
        restore_drill=RESTORE_DRILL in chosen,
        keep_restored=values.keep_restored,
        plan=AUTOMATE in chosen,
        plan_schedule=values.plan_schedule,
        cold_after_days=values.move_to_cold_storage_after_days,
        keys=PREREQUISITES in chosen,
    )
