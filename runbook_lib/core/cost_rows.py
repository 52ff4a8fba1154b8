"""The estimate's rows and how they are shown: one Cost per billable thing, their totals, and the text,
table cells and numbered price citations that the console, the notebooks and report.html print.

The estimate (costs.py) makes the rows; display/plans.py and report.py show them. Keeping the row and its
wording here lets both sides share one record without the display reaching into the estimate's rules.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from .prices import ANY_REGION, Price
from .steps import CLEANUP

MONTH, ONCE = "a month", "once"
ESTIMATE_WORDING = (
    "Estimate from AWS list prices kept in runbook_lib/data/prices.json, not a bill: taxes, discounts and free "
    "tiers are left out, and the blocks a snapshot holds are at most its resource's size."
)


@dataclass(frozen=True)
class Cost:
    """One billable thing: what, where, how much, the estimate (None: unknown, and why_unknown says why),
    whether it is billed a month or once, how long it lives, and whether cleanup removes it (None: nothing
    to remove, a charge already made)."""

    what: str
    step: str
    region: str
    quantity: float | None
    unit: str
    usd: float | None
    per: str
    lives: str
    removed_by_cleanup: bool | None
    price: Price | None = None
    why_unknown: str = ""
    note: str = ""
    up_to: bool = False
    plus: str = ""  # what comes on top and is not estimated (the blocks a plan's later backups change)


def money(usd: float | None, up_to: bool = False) -> str:
    """Dollars to the cent ("< $0.01" below half a cent), "up to" for an upper bound, or "unknown"."""
    if usd is None:
        return "unknown"
    if usd == 0:
        return "$0.00"
    if usd < 0.005:
        return "< $0.01"
    return f"{'up to ' if up_to else ''}${usd:,.2f}"


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def quantity(row: Cost) -> str:
    """How much, "up to" for an upper bound, "unknown" when not known, with what comes on top."""
    plus = f" + {row.plus}" if row.plus else ""
    if row.quantity is None:
        return f"unknown {row.unit}{plus}"
    return f"{'up to ' if row.up_to and row.quantity else ''}{_number(row.quantity)} {row.unit}{plus}"


def estimate_text(row: Cost) -> str:
    """The row's estimate a month or once, or "unknown" and why."""
    if row.usd is None:
        return f"unknown: {row.why_unknown}"
    return f"{money(row.usd, row.up_to)} {row.per}" + (" + not estimated" if row.plus else "")


def cleanup_text(row: Cost) -> str:
    """yes, no, or - for a charge already made (nothing to remove)."""
    return "-" if row.removed_by_cleanup is None else "yes" if row.removed_by_cleanup else "no"


def _numbers(rows: Iterable[Cost]) -> dict[Price, int]:
    numbers: dict[Price, int] = {}
    for row in rows:
        if row.price is not None:
            numbers.setdefault(row.price, len(numbers) + 1)
    return numbers


def sources(rows: list[Cost], links: bool = True) -> list[str]:
    """The prices the rows use, numbered as the rows cite them, each with its source and read date."""
    return [f"[{number}] {price.citation(links)}" for price, number in _numbers(rows).items()]


def table_rows(rows: list[Cost]) -> list[dict[str, str]]:
    """The rows as a table's (pandas, HTML): each value as text, the price cited by its number in `sources`."""
    numbers = _numbers(rows)
    return [
        {
            "what": row.what,
            "Region": "-" if row.region == ANY_REGION else row.region,
            "quantity": quantity(row),
            "estimate (USD)": estimate_text(row),
            "lives": row.lives,
            "cleanup removes it": cleanup_text(row),
            "price": f"${row.price.value:g} per {row.price.unit} [{numbers[row.price]}]" if row.price else "none",
            "note": row.note,
        }
        for row in rows
    ]


@dataclass(frozen=True)
class Totals:
    """The known estimates added up, a month and once; `unknown` rows are not in them."""

    monthly: float
    once: float
    unknown: int
    up_to: bool
    not_estimated: tuple[str, ...] = ()  # what comes on top (the pluses of the rows)


def totals(rows: list[Cost]) -> Totals:
    """The rows' known estimates added up."""
    known = [row for row in rows if row.usd is not None]
    return Totals(
        math.fsum(row.usd for row in known if row.per == MONTH and row.usd is not None),
        math.fsum(row.usd for row in known if row.per == ONCE and row.usd is not None),
        len(rows) - len(known),
        any(row.up_to and row.usd for row in known),
        tuple(dict.fromkeys(row.plus for row in rows if row.plus)),
    )


def total_line(rows: list[Cost]) -> str:
    """The totals in one line, with the rows left out of them and what is not estimated."""
    found = totals(rows)
    text = (
        f"Total (estimate): {money(found.monthly, found.up_to)} a month while it lives, "
        f"plus {money(found.once, found.up_to)} once"
    )
    if found.unknown:
        text += f"; {found.unknown} row(s) unknown, not in the total"
    if found.not_estimated:
        text += f"; not estimated: {'; '.join(found.not_estimated)}"
    return text


def cleanup_line(rows: list[Cost]) -> str:
    """What 07_cleanup removes of the rows, and what it leaves."""
    removed = [row.what for row in rows if row.removed_by_cleanup]
    left = [row.what for row in rows if row.removed_by_cleanup is False]
    text = f"{CLEANUP} removes: {'; '.join(removed) if removed else 'nothing of these'}"
    return text + (f". It leaves (until their retention ends): {'; '.join(left)}" if left else "")


def text_table(rows: list[Cost], links: bool = True) -> str:
    """The estimate as plain text (the console, the dry run, a notebook read without HTML): the table,
    the total, the estimate's wording, what cleanup removes, and each price with its source."""
    if not rows:
        return "Nothing billable."
    cells = table_rows(rows)
    columns = [c for c in cells[0] if c != "note"]
    widths = [max(len(c), *(len(r[c]) for r in cells)) for c in columns]
    lines = ["  ".join(f"{v:<{w}}" for v, w in zip(values, widths)).rstrip()
             for values in (columns, *([r[c] for c in columns] for r in cells))]  # fmt: skip
    by_note: dict[str, list[str]] = {}
    for row in cells:
        if row["note"]:
            by_note.setdefault(row["note"], []).append(row["what"])
    notes = [f"  {note} ({'; '.join(whats)})" for note, whats in by_note.items()]
    return "\n".join(
        [*lines, "", total_line(rows), ESTIMATE_WORDING, cleanup_line(rows), "Notes:", *notes, "Prices:"]
        + [f"  {line}" for line in sources(rows, links)]
    )
