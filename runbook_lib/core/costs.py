"""What a run creates that AWS bills for, and what it costs: the estimate, from the run's facts to rows.

`estimate` turns the facts of a run (cost_facts.RunFacts: its resources and their sizes, the Regions, one
or two hops, retention, the restore drill, the plan's schedule) into rows (cost_rows.Cost): what, where,
how much, the estimate a month or once, how long it lives and whether cleanup removes it. It makes no AWS
call and prices from the table of prices.py. A first snapshot holds at most the resource's size, so its
rows say "up to". A price the table lacks (a Region, a resource type) leaves its row unknown, never 0,
saying why. `summary_lines` is a run folder's estimate in a few lines, for the run's console summary.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from .cost_facts import Resource, RunFacts, facts_from_state, runs_per_day
from .cost_rows import MONTH, ONCE, Cost, cleanup_text, estimate_text, quantity, total_line
from .params import Parameters
from .prices import ANY_REGION, PRICES, PriceTable
from .steps import AUTOMATE, COPY_TO_TARGET, CREATE_BACKUP, PREREQUISITES, RESTORE_DRILL

# The price of a recovery point's storage, by resource type (the capability table's names).
STORAGE_PRICES = {
    "EBS": "ebs-snapshot-storage",
    "EC2": "ebs-snapshot-storage",
    "RDS": "rds-snapshot-storage",
    "EFS": "efs-backup-storage",
}
LABELS = {
    "EBS": ("EBS volume", "EBS volumes"),
    "EC2": ("EC2 instance", "EC2 instances"),
    "RDS": ("RDS DB instance", "RDS DB instances"),
    "Aurora": ("Aurora DB cluster", "Aurora DB clusters"),
    "EFS": ("EFS file system", "EFS file systems"),
    "": ("resource", "resources"),
}
RESTORED_TYPE = "EBS"  # what the restore drill restores (steps/restore.py)


def _label(kind: str, count: int) -> str:
    one, many = LABELS.get(kind, (f"{kind} resource", f"{kind} resources"))
    return f"the {one}" if count == 1 else f"{count} {many}"


def _groups(facts: RunFacts) -> list[tuple[str, tuple[Resource, ...]]]:
    """The resources by type, in the order they come: each type has its own price."""
    found: dict[str, list[Resource]] = {}
    for item in facts.resources or (Resource("", "", None),):
        found.setdefault(item.type, []).append(item)
    return [(kind, tuple(items)) for kind, items in found.items()]


def _size(group: tuple[Resource, ...]) -> float | None:
    sizes = [item.size_gib for item in group]
    return None if any(size is None for size in sizes) else float(sum(s for s in sizes if s is not None))


def _row(
    table: PriceTable,
    what: str,
    step: str,
    region: str,
    quantity: float | None,
    unit: str,
    key: str | None,
    per: str,
    lives: str,
    removed: bool | None,
    note: str = "",
    up_to: bool = False,
    units_per_price: float = 1.0,
    share: float = 1.0,
    missing: str = "",
) -> Cost:
    """A row priced from the table: quantity / units_per_price x price x share (share: the part of a month
    a thing lives); unknown when the table has no such price or the quantity is not known."""
    price = table.price(key, region) if key else None
    why = ""
    if price is None:
        why = missing or f"no price for {region} in the table"
    elif quantity is None:
        why = missing or "the size is not known yet"
    usd = None if why or price is None or quantity is None else quantity / units_per_price * price.value * share
    return Cost(what, step, region, quantity, unit, usd, per, lives, removed, price, why, note, up_to)


def _storage(
    table: PriceTable, facts: RunFacts, what: str, step: str, region: str, kind: str, group: tuple[Resource, ...]
) -> Cost:
    """A recovery point's storage, a month while it lives (its retention, or until cleanup deletes it)."""
    key = STORAGE_PRICES.get(kind)
    note = "the first backup or copy of a resource holds at most its size"
    if facts.cold_after_days is not None and facts.cold_after_days < facts.delete_after_days:
        note += f"; it moves to cold storage after {facts.cold_after_days} days, priced here as warm"
    return _row(
        table,
        what,
        step,
        region,
        _size(group),
        "GiB",
        key,
        MONTH,
        f"{facts.delete_after_days} days (delete_after_days), or until cleanup",
        True,
        note,
        up_to=True,
        missing="" if key else f"no price for {kind or 'this resource type'}'s backups in the table",
    )


def _transfer(
    table: PriceTable, facts: RunFacts, what: str, step: str, size: float | None, note: str, plus: str = ""
) -> Cost:
    row = _row(
        table,
        what,
        step,
        facts.source_region,
        size,
        "GiB",
        "cross-region-transfer",
        ONCE,
        "once, when the copy is made",
        None,
        note,
        up_to=True,
    )
    return replace(row, plus=plus)


def _kms(table: PriceTable, what: str, step: str, region: str, requests: float | None, per: str, lives: str) -> Cost:
    assumed = table.assumptions["kms_requests_per_job_and_key"]
    return _row(
        table,
        what,
        step,
        region,
        None if requests is None else float(math.ceil(requests)),
        "requests",
        "kms-requests",
        per,
        lives,
        None,
        f"{assumed.value:g} requests a job and key, assumed: {assumed.note}",
        units_per_price=10_000,
        missing="" if requests is not None else "the plan's schedule is not one the estimate counts",
    )


def estimate(facts: RunFacts, table: PriceTable | None = None) -> list[Cost]:
    """Every billable thing the run creates (or has created), each with its estimate, in the order the
    steps make them: backups, copies (two hops: two copies, one transfer across Regions), KMS requests,
    the restore drill's volume, the backup plan's recurring backups and copies."""
    table = table or PRICES
    rows: list[Cost] = []
    groups = _groups(facts)
    jobs = sum(len(group) for _, group in groups)
    per_job = table.assumed("kms_requests_per_job_and_key")
    source, target = facts.source_region, facts.target_region
    if facts.keys:
        rows.append(
            _row(
                table,
                "KMS keys the run creates: none (it uses the existing keys of its parameters)",
                PREREQUISITES,
                ANY_REGION,
                0,
                "keys",
                "kms-key",
                MONTH,
                "-",
                None,
                "vaults and their policies cost nothing of their own",
            )
        )
    if facts.backup:
        for kind, group in groups:
            rows.append(
                _storage(
                    table,
                    facts,
                    f"backup of {_label(kind, len(group))} in the source vault",
                    CREATE_BACKUP,
                    source,
                    kind,
                    group,
                )
            )
        rows.append(_kms(table, "KMS requests of the backup jobs", CREATE_BACKUP, source, jobs * per_job, ONCE, "-"))
    if facts.copy:
        for kind, group in groups:
            label = _label(kind, len(group))
            if facts.two_hops:
                rows.append(
                    _storage(
                        table,
                        facts,
                        f"first hop: copy of {label} in the hop vault (source account)",
                        COPY_TO_TARGET,
                        target,
                        kind,
                        group,
                    )
                )
            if facts.cross_region:
                rows.append(
                    _transfer(
                        table,
                        facts,
                        f"cross-Region transfer of the copy of {label}, {source} to {target}",
                        COPY_TO_TARGET,
                        _size(group),
                        "a copy across Regions is billed as data leaving the source Region",
                    )
                )
            second = "second hop: " if facts.two_hops else ""
            rows.append(
                _storage(
                    table,
                    facts,
                    f"{second}copy of {label} in the destination vault",
                    COPY_TO_TARGET,
                    target,
                    kind,
                    group,
                )
            )
        rows.append(
            _kms(table, "KMS requests of the copy jobs (source key)", COPY_TO_TARGET, source, jobs * per_job, ONCE, "-")
        )
        target_uses = 3 if facts.two_hops else 1  # two hops: the hop key twice, then the destination key
        rows.append(
            _kms(
                table,
                "KMS requests of the copy jobs (hop and destination keys)"
                if facts.two_hops
                else "KMS requests of the copy jobs (destination key)",
                COPY_TO_TARGET,
                target,
                jobs * per_job * target_uses,
                ONCE,
                "-",
            )
        )
    if facts.restore_drill:
        rows += _drill(table, facts, groups)
    if facts.plan:
        rows += _plan(table, facts, groups)
    return rows


def _drill(table: PriceTable, facts: RunFacts, groups: list[tuple[str, tuple[Resource, ...]]]) -> list[Cost]:
    """The volume the restore drill makes in the destination account: for about an hour, or a month while
    keep_restored keeps it (until cleanup)."""
    hours = table.assumed("drill_hours")
    rows = []
    for kind, group in groups:
        if kind not in (RESTORED_TYPE, ""):
            continue  # the drill restores EBS volumes only
        note = "priced as gp3 (a restored volume takes its original's type); the restore itself costs nothing for EBS"
        what = f"restore drill: volume restored from the copy of {_label(kind, len(group))}"
        if facts.keep_restored:
            billed, lives, notes, share = MONTH, "until cleanup (keep_restored)", note, 1.0
        else:
            billed, lives = ONCE, f"about {hours:g} hour(s), assumed: the drill deletes it"
            notes, share = f"{note}; {table.assumptions['drill_hours'].note}", hours / table.hours_per_month
        rows.append(
            _row(
                table,
                what,
                RESTORE_DRILL,
                facts.target_region,
                _size(group),
                "GiB",
                "gp3-volume",
                billed,
                lives,
                True,
                notes,
                share=share,
            )
        )
    return rows


def _plan(table: PriceTable, facts: RunFacts, groups: list[tuple[str, tuple[Resource, ...]]]) -> list[Cost]:
    """Step 09's backup plan: a backup on plan_schedule and its copy to the destination vault, each kept
    delete_after_days. After the first, each holds only the blocks changed since the one before (not
    estimated: the rows price the first full one). Cleanup deletes the plan; what it made stays until
    its retention ends."""
    per_day = runs_per_day(facts.plan_schedule)
    days = facts.delete_after_days
    kept = f"each kept {days} days" + (f", about {per_day * days:,.0f} at a time" if per_day else "")
    changed = f"cleanup deletes the plan, so no new ones; those made stay until their {days} days end"
    later = "the blocks later backups and copies change"
    rows = []
    jobs = 0
    for kind, group in groups:
        label = _label(kind, len(group))
        jobs += len(group)
        for what, region in (
            (f"backup plan: backups of {label} on {facts.plan_schedule}, source vault", facts.source_region),
            ("backup plan: their copies in the destination vault", facts.target_region),
        ):
            row = _storage(table, facts, what, AUTOMATE, region, kind, group)
            rows.append(replace(row, lives=kept, removed_by_cleanup=False, note=f"{row.note}; {changed}", plus=later))
        if facts.cross_region:
            rows.append(
                _transfer(
                    table,
                    facts,
                    f"backup plan: cross-Region transfer of its first copy of {label}",
                    AUTOMATE,
                    _size(group),
                    "a copy across Regions is billed as data leaving the source Region",
                    plus=later,
                )
            )
    per_job = table.assumed("kms_requests_per_job_and_key")
    runs = None if per_day is None else per_day * table.days_per_month * jobs
    lives = "while the plan runs (until cleanup deletes it)"
    for what, region, uses in (
        ("backup plan: KMS requests of its backups and copies (source key)", facts.source_region, 2),
        ("backup plan: KMS requests of its copies (destination key)", facts.target_region, 1),
    ):
        rows.append(_kms(table, what, AUTOMATE, region, None if runs is None else runs * per_job * uses, MONTH, lives))
    return rows


def summary_lines(state: Mapping[str, Any], values: Parameters, steps: Iterable[str]) -> list[str]:
    """The estimate in a few lines for the run's console summary (a dry run's plan included): each row,
    the total, and where each price's source is (report.html)."""
    rows = estimate(facts_from_state(state, values, steps))
    lines = ["What this run creates and what it costs (estimate, AWS list prices; not a bill):"]
    for row in rows:
        removed = {"yes": "; cleanup removes it", "no": "; cleanup leaves it"}.get(cleanup_text(row), "")
        lives = (
            ""
            if row.lives == "-"
            else f"; lives {row.lives}"
            if row.removed_by_cleanup is not None
            else f"; {row.lives}"
        )
        where = "" if row.region == ANY_REGION or row.region in row.what else f", {row.region}"
        lines.append(f"  - {row.what}{where}: {quantity(row)}, {estimate_text(row)}{lives}{removed}")
    lines.append(f"  {total_line(rows)}")
    lines.append("  Each price with its source and the date it was read: report.html (section costs)")
    return lines
